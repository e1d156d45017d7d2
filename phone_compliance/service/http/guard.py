"""The request guard: API key and body size checked before a byte of the body is read.

A pure ASGI middleware in front of the app. FastAPI reads and parses a request's body before
any dependency runs, so a key checked by a dependency came too late: a 50 MB batch without a key
was read and parsed (the server grew from 71 MB to 510 MB) before its 401. Here:

1. a request to any path but the open ones (`/healthz`, `/readyz`, the API docs when on) without
   an accepted `X-API-Key` gets 401, and its body is never received;
2. a body whose Content-Length is over the limit gets 413, never received either;
3. a body of unannounced length (chunked) is counted as the app receives it, and cut off with a
   413 as soon as it passes the limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from phone_compliance.service.http.api_keys import API_KEY_HEADER, ApiKeys
from phone_compliance.service.http.models import MAX_BATCH

# A pair is ~60 bytes of JSON; 400 leaves room for indentation and long phone formats.
BODY_BYTES_PER_PAIR = 400
MAX_BODY_BYTES = MAX_BATCH * BODY_BYTES_PER_PAIR  # 4 MB: a full batch with generous slack

UNAUTHORIZED = f"missing or invalid API key (header {API_KEY_HEADER})"
_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "ApiKey"}
_API_KEY_HEADER_LOWER = API_KEY_HEADER.lower().encode("latin-1")

Scope = dict[str, Any]
Message = dict[str, Any]


class BodyTooLarge(Exception):
    """Raised into the app when the body it is receiving passes the limit."""


def encode_json(payload: Any) -> bytes:
    """JSON exactly as Starlette's `JSONResponse` renders it."""
    return json.dumps(
        payload, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


async def send_json(
    send: Any, status: int, payload: Any, headers: dict[str, str] | None = None
) -> None:
    """A whole JSON response, with the headers `JSONResponse` would send."""
    body = encode_json(payload)
    raw_headers = [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", b"application/json"),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """ASGI middleware: 401 without a key, 413 over `max_body_bytes`, before the body is read."""

    def __init__(
        self,
        app: Any,
        *,
        keys: ApiKeys,
        open_paths: Iterable[str],
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.keys = keys
        self.open_paths = frozenset(open_paths)
        self.max_body_bytes = max_body_bytes
        self._too_large = {"detail": f"request body over the limit of {max_body_bytes} bytes"}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api_key, length = _api_key_and_length(scope["headers"])
        if scope["path"] not in self.open_paths and not self.keys.check(api_key):
            await send_json(send, 401, {"detail": UNAUTHORIZED}, _UNAUTHORIZED_HEADERS)
            return
        if length is not None and length > self.max_body_bytes:
            await send_json(send, 413, self._too_large)
            return
        if length is not None:  # the server holds the body to its Content-Length
            await self.app(scope, receive, send)
            return
        await self._counting(scope, receive, send)

    async def _counting(self, scope: Scope, receive: Any, send: Any) -> None:
        received = 0
        cut_off = started = False

        async def receive_counted() -> Message:
            nonlocal received, cut_off
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    cut_off = True
                    raise BodyTooLarge
            return message

        async def send_unless_cut_off(message: Message) -> None:
            nonlocal started
            if cut_off:  # whatever the app makes of a cut-off body, the client gets the 413
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_counted, send_unless_cut_off)
        except Exception:
            if not cut_off:
                raise
        if cut_off:
            if started:  # an answer was already under way: all that is left is to drop it
                raise BodyTooLarge
            await send_json(send, 413, self._too_large)


def _api_key_and_length(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, int | None]:
    """The first X-API-Key header (latin-1, as Starlette decodes it) and the Content-Length."""
    api_key = length = None
    for name, value in headers:
        if name == _API_KEY_HEADER_LOWER:
            if api_key is None:
                api_key = value.decode("latin-1")
        elif name == b"content-length" and value.isdigit():
            length = int(value)
    return api_key, length
