"""Exception handlers: every error leaves the service as ``{"error": message}``."""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import runtime

from .errors import ServiceError
from .repository import ModelNotFoundError

__all__ = ["install_exception_handlers", "validation_message"]

logger = logging.getLogger(__name__)

_FORM_HINT = "a predict request has 'inputs' or 'instances', and optionally 'outputs'"


def install_exception_handlers(app: FastAPI) -> None:
    """Register the handlers below on ``app``."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(ModelNotFoundError, _model_not_found)
    app.add_exception_handler(runtime.InputError, _runtime_input_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


def error_response(status_code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return error_response(exc.status_code, exc.message, headers=exc.headers)


async def _model_not_found(request: Request, exc: Exception) -> JSONResponse:
    return error_response(404, str(exc))


async def _runtime_input_error(request: Request, exc: Exception) -> JSONResponse:
    return error_response(422, str(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    route = f"{request.method} {request.url.path}"
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"no such endpoint: {route} (the API is described at /docs)"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow") or (exc.headers or {}).get("allow")
        message = f"method {request.method} is not allowed on {request.url.path}" + (
            f"; allowed: {allowed}" if allowed else ""
        )
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, message, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "invalid JSON")
            position = error["loc"][-1] if len(error.get("loc", ())) > 1 else "?"
            return error_response(
                400, f"malformed JSON in the request body: {reason} at character {position}"
            )
    if isinstance(exc.body, bytes | bytearray) and exc.body:
        content_type = request.headers.get("content-type")
        return error_response(
            415,
            "the request body must be JSON sent with Content-Type: application/json"
            + (f" (got {content_type!r})" if content_type else " (no Content-Type given)"),
        )
    return error_response(422, validation_message(errors))


def validation_message(errors: list[Any]) -> str:
    """Fold pydantic/FastAPI validation errors into one readable sentence."""
    parts = []
    for error in errors:
        loc = [part for part in error.get("loc", ()) if part != "body"]
        where = _format_loc(loc)
        kind = error.get("type", "")
        message = str(error.get("msg", "invalid value"))
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if kind == "missing" and not loc:
            parts.append(f"the request body is missing; {_FORM_HINT}")
        elif kind == "extra_forbidden":
            parts.append(f"unexpected field {where!r}; {_FORM_HINT}")
        elif not loc and kind in {"model_attributes_type", "model_type", "dict_type"}:
            parts.append(f"the request body must be a JSON object; {_FORM_HINT}")
        elif where:
            parts.append(f"{where}: {message}")
        else:
            parts.append(message)
    return "invalid request: " + "; ".join(parts)


def _format_loc(loc: list[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500, "internal server error while handling the request; the server log has the details"
    )
