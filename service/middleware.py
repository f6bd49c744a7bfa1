"""ASGI middleware: request ids and access log, API key, the request body size limit."""
from __future__ import annotations

import hmac
import json
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logs import REQUEST_ID

__all__ = ["AUTH_EXEMPT", "ApiKeyMiddleware", "BodySizeLimitMiddleware", "RequestContextMiddleware"]

access_logger = logging.getLogger("service.access")

#: Paths that never need the API key.
AUTH_EXEMPT = frozenset({"/health", "/v2/health/live", "/v2/health/ready"})

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


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


async def _error(
    send: Send, status: int, message: str, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": message}, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *(extra_headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Request ids, the access log line and the per-request inference metrics.

    The id is the client's ``X-Request-ID`` when it is a short token (at most 128
    characters from ``A-Za-z0-9._:-``), else a fresh uuid4; it is echoed in the
    response's ``X-Request-ID`` header and attached to every log record.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID_RE.fullmatch(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        state = scope.setdefault("state", {})
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            path = scope.get("path", "")
            access_logger.info(
                "%s %s %d %.1f ms", scope.get("method"), path, status, elapsed * 1000,
                extra={"status": status, "duration_ms": round(elapsed * 1000, 3),
                       "request_id": request_id},
            )
            metrics = getattr(scope["app"].state, "metrics", None) if "app" in scope else None
            if metrics is not None and _is_inference(scope.get("method"), path):
                model = state.get("forge_model", "_unknown")
                version = state.get("forge_version", "")
                metrics.requests.labels(model, version, str(status)).inc()
                metrics.request_seconds.labels(model, version).observe(elapsed)
            REQUEST_ID.reset(token)


def _is_inference(method: str | None, path: str) -> bool:
    return method == "POST" and (
        path.endswith("/infer") or path.endswith(":predict") or path.endswith("/predict")
    )


class ApiKeyMiddleware:
    """When ``settings.api_key`` is set, refuse requests without it (401).

    The key is read from ``settings.api_key_header`` (default ``X-API-Key``) or from
    ``Authorization: Bearer <key>``, compared in constant time. Health endpoints
    (:data:`AUTH_EXEMPT`) stay open for load balancers and orchestrators.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = getattr(scope["app"].state, "settings", None) if "app" in scope else None
        key = getattr(settings, "api_key", None)
        if scope["type"] != "http" or key is None or scope.get("path") in AUTH_EXEMPT:
            await self.app(scope, receive, send)
            return
        header = settings.api_key_header
        given = _header(scope, header.lower().encode("latin-1"))
        if given is None:
            authorization = _header(scope, b"authorization") or ""
            scheme, _, credentials = authorization.partition(" ")
            given = credentials.strip() if scheme.lower() == "bearer" else None
        expected = key.get_secret_value().encode()
        if given is None or not hmac.compare_digest(given.encode("latin-1"), expected):
            what = "missing" if given is None else "wrong"
            await _error(
                send, 401,
                f"{what} API key: send it in the {header} header or as Authorization: Bearer",
                extra_headers=[(b"www-authenticate", b"Bearer")],
            )
            return
        await self.app(scope, receive, send)
