"""The HTTP face of the decision service: FastAPI on uvicorn.

    GET  /v1/sms-permission?account=...&phone=...   one decision (R10, R11)
    POST /v1/sms-permission:batch                   up to 10,000 pairs
    GET  /v1/index                                  which Gold version is being served
    GET  /healthz                                   the process is up
    GET  /readyz                                    an index is loaded (503 until then)
    GET  /docs, /redoc, /openapi.json               OpenAPI (`create_app(docs=False)`: none)

Every other path needs an API key in the `X-API-Key` header: 401 without, before the body is
read (`guard`). Keys come from PHONE_COMPLIANCE_API_KEYS (comma-separated) and/or
PHONE_COMPLIANCE_API_KEYS_FILE (one per line, re-read when it changes) and are compared in
constant time (`api_keys`). A body over MAX_BODY_BYTES is a 413. Input that cannot be normalized
is a 422 naming the field and the rule, never the value (R11, `errors`). A newer index published
under the index directory is swapped in by a background thread; a request keeps the index it
started with, so none is dropped (`app`).
"""

from phone_compliance.service.http.api_keys import ApiKeys
from phone_compliance.service.http.app import create_app, serve
from phone_compliance.service.http.guard import MAX_BODY_BYTES
from phone_compliance.service.http.models import MAX_BATCH

__all__ = ["MAX_BATCH", "MAX_BODY_BYTES", "ApiKeys", "create_app", "serve"]
