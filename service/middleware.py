"""ASGI middleware: the request body size limit."""
from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodySizeLimitMiddleware"]


class BodySizeLimitMiddleware:
    """Refuse request bodies larger than ``settings.max_body_bytes`` with 413.

    A declared ``Content-Length`` above the limit is refused before anything is
    read; otherwise the body is read (and buffered) only up to the limit, which
    also catches chunked uploads that declare no length. The limit comes from
    ``app.state.settings``, set by the lifespan hook.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = getattr(scope["app"].state, "settings", None) if "app" in scope else None
        if scope["type"] != "http" or settings is None:
            await self.app(scope, receive, send)
            return
        limit = settings.max_body_bytes

        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _error(send, 400, f"invalid Content-Length header {declared!r}")
                return
            if length > limit:
                await _error(send, 413, _too_large(limit, f"declared {length} bytes"))
                return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client is gone: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _error(send, 413, _too_large(limit, f"more than {limit} bytes sent"))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break

        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _too_large(limit: int, got: str) -> str:
    return f"request body too large: {got}, the limit is {limit} bytes (max_body_bytes)"


async def _error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
