"""Errors a request can cause, each carrying the HTTP status it maps to.

Nothing here imports FastAPI: the decoding in :mod:`service.inference` raises
these, and the web layer (:mod:`service.handlers`) turns them into
``{"error": message}`` responses.
"""
from __future__ import annotations

__all__ = [
    "BadRequestError",
    "InferenceTimeoutError",
    "InvalidInputError",
    "NotReadyError",
    "OverloadedError",
    "PayloadTooLargeError",
    "ServiceError",
    "UnsupportedMediaTypeError",
]


class ServiceError(Exception):
    """A request the service refuses; ``message`` says what was wrong and what was expected."""

    status_code = 400

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class BadRequestError(ServiceError):
    """The request could not be read at all (for example, malformed JSON)."""

    status_code = 400


class PayloadTooLargeError(ServiceError):
    """The request is larger than a configured limit (body size, rows, elements)."""

    status_code = 413


class InvalidInputError(ServiceError):
    """The request is well-formed but its content does not fit the model."""

    status_code = 422


class UnsupportedMediaTypeError(ServiceError):
    """The body is sent with a Content-Type the endpoint does not read."""

    status_code = 415


class NotReadyError(ServiceError):
    """The model (or the server) cannot take requests yet."""

    status_code = 503


class OverloadedError(ServiceError):
    """The model's queue is full; the client should retry after ``Retry-After`` seconds."""

    status_code = 503


class InferenceTimeoutError(ServiceError):
    """The request waited and ran longer than ``request_timeout``."""

    status_code = 504
