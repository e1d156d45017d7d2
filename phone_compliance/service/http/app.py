"""The FastAPI app over the serving index, the single-lookup fast path, and `serve`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

from phone_compliance.keys import InvalidKey
from phone_compliance.service.http.api_keys import (
    API_KEY_HEADER,
    API_KEYS_ENV,
    API_KEYS_FILE_ENV,
    ApiKeys,
)
from phone_compliance.service.http.errors import (
    key_errors,
    missing_errors,
    unprocessable,
    validation_errors,
)
from phone_compliance.service.http.guard import MAX_BODY_BYTES, RequestGuard, send_json
from phone_compliance.service.http.models import (
    ERROR_RESPONSES,
    EXAMPLE_PAIR,
    BatchIn,
    BatchOut,
    DecisionOut,
    IndexOut,
    ReadyOut,
)
from phone_compliance.service.index import (
    DecisionIndex,
    IndexNotFound,
    LiveIndex,
    default_index_dir,
)

log = logging.getLogger(__name__)

SINGLE_PATH = "/v1/sms-permission"
BATCH_PATH = "/v1/sms-permission:batch"
OPEN_PATHS = ("/healthz", "/readyz")  # everything else needs the key


def create_app(
    index_dir: str | Path | None = None,
    *,
    api_keys: ApiKeys | Iterable[str] | None = None,
    poll_interval: float = 1.0,
    live: LiveIndex | None = None,
    fast_path: bool = True,
    warm: bool = True,
    docs: bool = True,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The FastAPI app over the index published in `index_dir` (default: `default_index_dir()`).

    `api_keys` defaults to the environment settings; with no key configured every decision
    request is refused (401): the service fails closed. `fast_path` serves the single lookup
    ahead of FastAPI's routing (same answers, a fraction of the CPU). `warm` faults each new
    build's pages in (from the background watcher) before it is swapped in. `docs` serves the
    OpenAPI description (/openapi.json, /docs, /redoc) without a key; off, those paths do not
    exist. A request body over `max_body_bytes` is refused with 413.
    """
    if live is None:
        where = index_dir if index_dir is not None else default_index_dir()
        live = LiveIndex(where, poll_interval=poll_interval, warm=warm)
    if api_keys is None:
        keys = ApiKeys.from_env()
    elif isinstance(api_keys, ApiKeys):
        keys = api_keys
    else:
        keys = ApiKeys(api_keys)
    if not len(keys):
        log.warning("no API keys configured: every decision request will get 401")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        live.start()
        try:
            yield
        finally:
            live.stop()

    app = FastAPI(
        title="phone-compliance decision service",
        version="1",
        description=(
            "May this number be texted on this account (R10), and why. Answers come from the "
            "Gold `phone_consent` table through a local serving index stamped with its Gold "
            "version. Inputs are normalized per R11: `(212) 555-0123`, `+1 212 555 0123` and "
            "`12125550123` are the same phone. Every endpoint but `/healthz`, `/readyz` and "
            f"this description needs the `{API_KEY_HEADER}` header. Request bodies are limited "
            f"to {max_body_bytes:,} bytes (413). Errors name the field and the rule it breaks, "
            "never the value sent."
        ),
        lifespan=lifespan,
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    app.state.live = live
    app.state.api_keys = keys

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(unprocessable(validation_errors(exc.errors())), status_code=422)

    # The key is checked by RequestGuard before any route (and before the body is read); this
    # dependency only declares the scheme in the OpenAPI description.
    documented_key = Security(
        APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="API key")
    )

    def current_index() -> DecisionIndex:
        try:
            return live.current()
        except IndexNotFound as e:
            raise HTTPException(status_code=503, detail=str(e)) from None

    @app.get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Ready only with a decision index loaded",
        response_model=ReadyOut,
        responses={503: {"model": ReadyOut, "description": "No index loaded"}},
    )
    async def readyz() -> JSONResponse:
        try:
            index = live.current()
        except IndexNotFound as e:
            return JSONResponse({"status": "not ready", "detail": str(e)}, status_code=503)
        return JSONResponse(
            {
                "status": "ready",
                "index_id": index.index_id,
                "gold_version": index.gold_version,
                "pairs": index.n,
            }
        )

    # The single lookup is the hot path (thousands a second). FastAPI's routing, dependency
    # and parameter machinery cost several times the decision itself, so `single_lookup` takes
    # the query values directly, and with `fast_path` (the default) a thin ASGI layer in front
    # of FastAPI answers GET /v1/sms-permission with it before FastAPI's routing. This route
    # documents the operation (its parameters are declared below) and answers the same way
    # when the fast path is off. Missing or invalid inputs are a 422 naming the field.
    @app.get(
        SINGLE_PATH,
        tags=["decisions"],
        summary="May an SMS be sent to this phone on this account? (R10)",
        response_model=DecisionOut,
        responses=_responses(401, 422, 503),
        openapi_extra={
            "parameters": [
                {
                    "name": "account",
                    "in": "query",
                    "required": True,
                    "description": "Account number, 16 digits (R2)",
                    "schema": {"type": "string"},
                    "example": EXAMPLE_PAIR["account"],
                },
                {
                    "name": "phone",
                    "in": "query",
                    "required": True,
                    "description": "US phone number, any common format (R3)",
                    "schema": {"type": "string"},
                    "example": EXAMPLE_PAIR["phone"],
                },
                {
                    "name": "as_of",
                    "in": "query",
                    "required": False,
                    "description": "YYYY-MM-DD: the decision the files dated on or before "
                    "it give (R14); default: now",
                    "schema": {"type": "string", "format": "date"},
                },
            ],
            "security": [{"APIKeyHeader": []}],
        },
    )
    async def sms_permission(request: Request) -> JSONResponse:
        query = request.query_params
        status, payload = single_lookup(
            live, query.get("account"), query.get("phone"), query.get("as_of")
        )
        return JSONResponse(payload, status_code=status)

    @app.post(
        BATCH_PATH,
        tags=["decisions"],
        summary="Decisions for up to 10,000 pairs, in input order",
        response_model=BatchOut,
        responses=_responses(401, 413, 422, 503),
        dependencies=[documented_key],
    )
    def sms_permission_batch(body: BatchIn) -> JSONResponse:
        errors: list[dict[str, Any]] = []
        for i, pair in enumerate(body.pairs):
            errors += key_errors(pair.account, pair.phone, ("body", "pairs", i), pair.as_of)
        if errors:
            return JSONResponse(unprocessable(errors), status_code=422)
        index = current_index()
        try:
            decisions = [index.decide(p.account, p.phone, p.as_of).to_dict() for p in body.pairs]
        except IndexNotFound as e:  # as-of questions to a build without a history
            raise HTTPException(status_code=503, detail=str(e)) from None
        return JSONResponse(
            {
                "gold_version": index.gold_version,
                "index_id": index.index_id,
                "count": len(decisions),
                "decisions": decisions,
            }
        )

    @app.get(
        "/v1/index",
        tags=["operations"],
        summary="The index being served: Gold version, build time, pair counts",
        response_model=IndexOut,
        responses=_responses(401, 503),
        dependencies=[documented_key],
    )
    async def index_info() -> JSONResponse:
        return JSONResponse(current_index().info())

    # Starlette runs the middleware added last first: the guard sees every request.
    if fast_path:
        app.add_middleware(SingleLookupFastPath, live=live)
    docs_paths = (app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    app.add_middleware(
        RequestGuard,
        keys=keys,
        open_paths=[*OPEN_PATHS, *(p for p in docs_paths if docs and p)],
        max_body_bytes=max_body_bytes,
    )
    return app


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: ERROR_RESPONSES[status] for status in statuses}


def single_lookup(
    live: LiveIndex, account: str | None, phone: str | None, as_of: str | None = None
) -> tuple[int, dict[str, Any]]:
    """GET /v1/sms-permission (the key already checked) as (status, JSON payload)."""
    if account is None or phone is None:
        return 422, unprocessable(missing_errors(("query",), account=account, phone=phone))
    try:
        index = live.current()
        decision = index.decide(account, phone, as_of)
    except IndexNotFound as e:
        return 503, {"detail": str(e)}
    except InvalidKey:
        return 422, unprocessable(key_errors(account, phone, ("query",), as_of))
    return 200, decision.to_dict()


class SingleLookupFastPath:
    """ASGI middleware answering GET /v1/sms-permission without FastAPI's routing layers.

    Parses the query exactly as Starlette does (latin-1, then `parse_qsl`, last value wins) and
    encodes as `JSONResponse` does; everything else passes through.
    """

    def __init__(self, app: Any, live: LiveIndex) -> None:
        self.app = app
        self.live = live

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != SINGLE_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        status, payload = single_lookup(
            self.live, query.get("account"), query.get("phone"), query.get("as_of")
        )
        await send_json(send, status, payload)


def serve(
    index_dir: str | Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    poll_interval: float = 1.0,
    access_log: bool = False,
    log_level: str = "info",
    warm: bool = True,
    docs: bool = True,
) -> None:
    """Run the app on uvicorn (one process; the index is shared memory-mapped pages anyway)."""
    import uvicorn

    keys = ApiKeys.from_env()
    if not len(keys):
        raise SystemExit(
            f"no API keys: set {API_KEYS_ENV} (comma-separated) or {API_KEYS_FILE_ENV} "
            "(one key per line); the service will not run open"
        )
    app = create_app(index_dir, api_keys=keys, poll_interval=poll_interval, warm=warm, docs=docs)
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level=log_level)
