"""The HTTP face of the decision service: FastAPI on uvicorn.

    GET  /v1/sms-permission?account=...&phone=...   one decision (R10, R11)
    POST /v1/sms-permission:batch                   up to 10,000 pairs
    GET  /v1/index                                  which Gold version is being served
    GET  /healthz                                   the process is up
    GET  /readyz                                    an index is loaded (503 until then)
    GET  /docs, /openapi.json                       OpenAPI

Decision endpoints need an API key in the `X-API-Key` header (401 without); keys come from
PHONE_COMPLIANCE_API_KEYS (comma-separated) and/or PHONE_COMPLIANCE_API_KEYS_FILE (one per line,
re-read when it changes) and are compared in constant time. Input that cannot be normalized is a
422 naming the field (R11). A newer index published under the index directory is swapped in by
a background thread; a request keeps the index it started with, so none is dropped.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field

from phone_compliance.keys import InvalidKey, normalize_account, normalize_phone
from phone_compliance.schema import DECISION_REASONS
from phone_compliance.service.index import (
    DecisionIndex,
    IndexNotFound,
    LiveIndex,
    default_index_dir,
)

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
API_KEYS_ENV = "PHONE_COMPLIANCE_API_KEYS"
API_KEYS_FILE_ENV = "PHONE_COMPLIANCE_API_KEYS_FILE"
SINGLE_PATH = "/v1/sms-permission"
_API_KEY_HEADER_LOWER = API_KEY_HEADER.lower().encode("latin-1")
UNAUTHORIZED = f"missing or invalid API key (header {API_KEY_HEADER})"
MAX_BATCH = 10_000
MAX_LISTED_ERRORS = 100

EXAMPLE_PAIR = {"account": "1234567890123456", "phone": "(212) 555-0123"}
Reason = Literal["ALLOWED", "NOT_FOUND", "NOT_CLIENT_SOURCED", "DELETED", "CONSENT_WITHDRAWN"]
assert set(Reason.__args__) == set(DECISION_REASONS)  # type: ignore[attr-defined]


# --- API keys ----------------------------------------------------------------------------


class ApiKeys:
    """The accepted API keys: explicit ones, the env setting, and a key file re-read on change."""

    def __init__(
        self,
        keys: Iterable[str] = (),
        *,
        env: str | None = None,
        file: str | Path | None = None,
    ) -> None:
        self._fixed = [k for k in (s.strip() for s in keys) if k]
        if env:
            self._fixed += [k for k in (s.strip() for s in env.split(",")) if k]
        self._file = Path(file) if file else None
        self._file_stamp: tuple[int, int] | None = None
        self._file_keys: list[str] = []
        self._next_check = 0.0
        self._lock = threading.Lock()
        self._refresh_file()

    @classmethod
    def from_env(cls) -> ApiKeys:
        """Keys from PHONE_COMPLIANCE_API_KEYS and PHONE_COMPLIANCE_API_KEYS_FILE."""
        return cls(env=os.environ.get(API_KEYS_ENV), file=os.environ.get(API_KEYS_FILE_ENV))

    def __len__(self) -> int:
        return len(self._all())

    def _refresh_file(self) -> None:
        if self._file is None:
            return
        with self._lock:
            self._next_check = time.monotonic() + 1.0
            try:
                st = self._file.stat()
                stamp = (st.st_ino, st.st_mtime_ns)
                if stamp != self._file_stamp:
                    lines = self._file.read_text().splitlines()
                    self._file_keys = [
                        k for k in (s.strip() for s in lines) if k and not k.startswith("#")
                    ]
                    self._file_stamp = stamp
            except OSError as e:  # keep the keys we had; say so
                log.error("API key file %s: %s", self._file, e)

    def _all(self) -> list[str]:
        if self._file is not None and time.monotonic() >= self._next_check:
            self._refresh_file()
        return self._fixed + self._file_keys

    def check(self, presented: str | None) -> bool:
        """Whether `presented` is an accepted key; compares against every key in constant time."""
        if not presented:
            return False
        given = presented.encode("utf-8", "surrogateescape")
        ok = False
        for key in self._all():
            ok |= hmac.compare_digest(given, key.encode("utf-8"))
        return ok


# --- Wire models (documentation; responses are built as plain JSON for speed) --------------------


class EvidenceOut(BaseModel):
    role: Literal["attributes", "presence", "deletion", "consent"]
    file: str | None = Field(description="Client file whose evidence set this part (R12)")
    file_date: dt.date | None = Field(description="The file date its name carries (SPEC §1)")
    date: dt.date | None = Field(description="The Gold date this evidence set")
    deciding: bool = Field(description="Whether the reason rests on this evidence")


class PairOut(BaseModel):
    phone_source: str | None
    has_sms_consent: bool | None
    sms_consent_updated_at: dt.date | None
    is_deleted: bool | None
    delete_type: str | None
    deleted_at: dt.date | None
    phone_type: str | None
    phone_status: str | None
    phone_technology: str | None
    quality_score: int | None
    attributes_file: str | None
    presence_file: str | None
    latest_present_date: dt.date | None
    deletion_file: str | None
    consent_file: str | None
    content_hash: str | None


class DecisionOut(BaseModel):
    account_number: str = Field(description="Normalized (R2)")
    phone_number: str = Field(description="Normalized to E.164 (R3)")
    can_send_sms: bool
    reason: Reason
    gold_version: int = Field(description="Gold Delta version the index was built from")
    index_id: str
    pair: PairOut | None = Field(description="The pair's Gold row; null when NOT_FOUND")
    evidence: list[EvidenceOut]


class PairIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_PAIR]})

    account: str = Field(description="16-digit account number (R2)")
    phone: str = Field(description="US phone number in any common format (R3)")


class BatchIn(BaseModel):
    pairs: list[PairIn] = Field(max_length=MAX_BATCH, description="At most 10,000 pairs")


class BatchOut(BaseModel):
    gold_version: int
    index_id: str
    count: int
    decisions: list[DecisionOut] = Field(description="One per input pair, in input order")


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    detail: list[ErrorItem]


class MessageOut(BaseModel):
    detail: str


class IndexOut(BaseModel):
    index_id: str
    gold_version: int
    built_at: str | None
    pairs: int
    reasons: dict[str, int] | None
    path: str


class ReadyOut(BaseModel):
    status: str
    index_id: str | None = None
    gold_version: int | None = None
    pairs: int | None = None
    detail: str | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": MessageOut, "description": "Missing or invalid API key"},
    422: {"model": ValidationErrorOut, "description": "An input cannot be normalized (R11)"},
    503: {"model": MessageOut, "description": "No decision index is loaded yet"},
}


# --- The app -----------------------------------------------------------------------------


def create_app(
    index_dir: str | Path | None = None,
    *,
    api_keys: ApiKeys | Iterable[str] | None = None,
    poll_interval: float = 1.0,
    live: LiveIndex | None = None,
    fast_path: bool = True,
    warm: bool = True,
) -> FastAPI:
    """The FastAPI app over the index published in `index_dir` (default: `default_index_dir()`).

    `api_keys` defaults to the environment settings; with no key configured every decision
    request is refused (401): the service fails closed. `fast_path` serves the single lookup
    ahead of FastAPI's routing (same answers, a fraction of the CPU). `warm` faults each new
    build's pages in (from the background watcher) before it is swapped in.
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
            "`12125550123` are the same phone."
        ),
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's 422 names the field; drop the echoed input (phone numbers, maybe 10,000 of
        # them) from the answer.
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return _unprocessable(errors)

    app.state.live = live
    app.state.api_keys = keys
    key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="API key")

    async def require_key(key: str | None = Depends(key_header)) -> None:
        if not keys.check(key):
            raise HTTPException(
                status_code=401, detail=UNAUTHORIZED, headers={"WWW-Authenticate": "ApiKey"}
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
    # and parameter machinery cost several times the decision itself, so `_single_lookup` reads
    # the header and query directly, and with `fast_path` (the default) a thin ASGI layer in
    # front of FastAPI answers GET /v1/sms-permission with it before FastAPI's routing. This
    # route documents the operation (its parameters are declared below) and answers the same
    # way when the fast path is off. Auth comes first (401), then missing or invalid inputs
    # (422 naming the field), as on the other endpoints.
    @app.get(
        SINGLE_PATH,
        tags=["decisions"],
        summary="May an SMS be sent to this phone on this account? (R10)",
        response_model=DecisionOut,
        responses=_ERRORS,
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
            ],
            "security": [{"APIKeyHeader": []}],
        },
    )
    async def sms_permission(request: Request) -> JSONResponse:
        query = request.query_params
        status, payload, headers = _single_lookup(
            live,
            keys,
            request.headers.get(API_KEY_HEADER),
            query.get("account"),
            query.get("phone"),
        )
        return JSONResponse(payload, status_code=status, headers=headers)

    @app.post(
        "/v1/sms-permission:batch",
        tags=["decisions"],
        summary="Decisions for up to 10,000 pairs, in input order",
        response_model=BatchOut,
        responses=_ERRORS,
        dependencies=[Depends(require_key)],
    )
    def sms_permission_batch(body: BatchIn) -> JSONResponse:
        errors: list[dict[str, Any]] = []
        for i, pair in enumerate(body.pairs):
            errors += _key_errors(pair.account, pair.phone, ("body", "pairs", i))
        if errors:
            return _unprocessable(errors)
        index = current_index()
        decisions = [index.decide(p.account, p.phone).to_dict() for p in body.pairs]
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
        responses={401: _ERRORS[401], 503: _ERRORS[503]},
        dependencies=[Depends(require_key)],
    )
    async def index_info() -> JSONResponse:
        return JSONResponse(current_index().info())

    if fast_path:
        app.add_middleware(SingleLookupFastPath, live=live, keys=keys)
    return app


def _single_lookup(
    live: LiveIndex,
    keys: ApiKeys,
    api_key: str | None,
    account: str | None,
    phone: str | None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """GET /v1/sms-permission as (status, JSON payload, extra headers)."""
    if not keys.check(api_key):
        return 401, {"detail": UNAUTHORIZED}, {"WWW-Authenticate": "ApiKey"}
    if account is None or phone is None:
        missing = [f for f, v in (("account", account), ("phone", phone)) if v is None]
        errors = [
            {"loc": ["query", f], "msg": "Field required", "type": "missing"} for f in missing
        ]
        return 422, _unprocessable_payload(errors), {}
    try:
        index = live.current()
    except IndexNotFound as e:
        return 503, {"detail": str(e)}, {}
    try:
        decision = index.decide(account, phone)
    except InvalidKey:
        return 422, _unprocessable_payload(_key_errors(account, phone, ("query",))), {}
    return 200, decision.to_dict(), {}


class SingleLookupFastPath:
    """ASGI middleware answering GET /v1/sms-permission without FastAPI's routing layers.

    Parses exactly as Starlette does (query string as latin-1 then `parse_qsl`, last value wins;
    first `X-API-Key` header) and encodes as `JSONResponse` does; everything else passes through.
    """

    def __init__(self, app: Any, live: LiveIndex, keys: ApiKeys) -> None:
        self.app = app
        self.live = live
        self.keys = keys

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != SINGLE_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        api_key = None
        for name, value in scope["headers"]:
            if name == _API_KEY_HEADER_LOWER:
                api_key = value.decode("latin-1")
                break
        status, payload, headers = _single_lookup(
            self.live, self.keys, api_key, query.get("account"), query.get("phone")
        )
        body = json.dumps(
            payload, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        ).encode("utf-8")
        raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})


def _key_errors(account: str, phone: str, loc: tuple) -> list[dict[str, Any]]:
    """R11: a 422 item per input that cannot be normalized, naming the field and saying why."""
    errors = []
    for field, fn, raw in (
        ("account", normalize_account, account),
        ("phone", normalize_phone, phone),
    ):
        try:
            fn(raw)
        except InvalidKey as e:
            errors.append({"loc": [*loc, field], "msg": f"{field}: {e}", "type": "value_error"})
    return errors


def _unprocessable(errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(_unprocessable_payload(errors), status_code=422)


def _unprocessable_payload(errors: list[dict[str, Any]]) -> dict[str, Any]:
    shown = errors[:MAX_LISTED_ERRORS]
    if len(errors) > len(shown):
        shown.append(
            {
                "loc": ["body"],
                "msg": f"... and {len(errors) - len(shown)} more invalid inputs",
                "type": "value_error",
            }
        )
    return {"detail": shown}


def serve(
    index_dir: str | Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    poll_interval: float = 1.0,
    access_log: bool = False,
    log_level: str = "info",
    warm: bool = True,
) -> None:
    """Run the app on uvicorn (one process; the index is shared memory-mapped pages anyway)."""
    import uvicorn

    keys = ApiKeys.from_env()
    if not len(keys):
        raise SystemExit(
            f"no API keys: set {API_KEYS_ENV} (comma-separated) or {API_KEYS_FILE_ENV} "
            "(one key per line); the service will not run open"
        )
    app = create_app(index_dir, api_keys=keys, poll_interval=poll_interval, warm=warm)
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level=log_level)
