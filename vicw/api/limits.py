"""Request body size caps, enforced while the body streams in (before any parsing).

A declared Content-Length over the cap is refused before a byte of the body is read; a chunked
(or under-declared) body is read until it passes the cap and refused then, so no more than the
cap is ever held. The same reader serves the ASGI middleware of the app (Lambda, behind API
Gateway + Mangum) and the local API Gateway stand-in of `vicw local`, which must not buffer a
60 MB body before the app gets a chance to refuse it.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# JSON framing around an /ingest document adds a little: allowed on top of MAX_INGEST_BYTES.
INGEST_FRAMING_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than {limit} bytes")
        self.limit = limit


class BodyLimits:
    """MAX_BODY_BYTES for every route, MAX_INGEST_BYTES (+ framing) for POST /ingest."""

    def __init__(self, max_bytes: int, per_path: dict[str, int] | None = None) -> None:
        self.max_bytes = max_bytes
        self.per_path = per_path or {}

    @classmethod
    def from_settings(cls, settings: Any) -> BodyLimits:
        ingest = max(settings.max_body_bytes, settings.max_ingest_bytes + INGEST_FRAMING_BYTES)
        return cls(settings.max_body_bytes, {"/ingest": ingest})

    def for_path(self, path: str) -> int:
        return self.per_path.get(path, self.max_bytes)

    def setting_for(self, limit: int) -> str:
        return "MAX_BODY_BYTES" if limit == self.max_bytes else "MAX_INGEST_BYTES"

    async def read(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None if the client went away; BodyTooLarge once it passes the cap."""
        limit = self.for_path(scope.get("path", ""))
        for name, value in scope.get("headers") or []:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise BodyTooLarge(limit)
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                raise BodyTooLarge(limit)
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def reject(self, send: Send, exc: BodyTooLarge, close: bool = False) -> None:
        """413 naming the setting; `close` asks the HTTP server to drop the connection (the rest of
        the body is never read)."""
        message = f"request body is larger than {exc.limit} bytes ({self.setting_for(exc.limit)})"
        body = json.dumps({"error": {"message": message, "type": "request_too_large", "code": 413}, "detail": message}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                *([(b"connection", b"close")] if close else [])]})
        await send({"type": "http.response.body", "body": body})


def replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands out `body` once, then the real messages (a later http.disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class BodySizeLimit:
    """ASGI middleware: reads the body under its cap, then hands it to the app in one message.

    (Raising from inside the app's own receive does not work: FastAPI turns any exception while
    parsing a body into a 400.)"""

    def __init__(self, app: ASGIApp, max_bytes: int, per_path: dict[str, int] | None = None) -> None:
        self.app = app
        self.limits = BodyLimits(max_bytes, per_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await self.limits.read(scope, receive)
        except BodyTooLarge as exc:
            await self.limits.reject(send, exc)
            return
        if body is None:
            return  # the client left before sending its body: nobody to answer
        await self.app(scope, replaying(body, receive), send)
