"""One router module per resource: ``health``, ``models``, ``predict`` (the first API),
``v2`` (Open Inference Protocol), ``repository``, ``v1`` (TF-Serving-like), ``metrics``."""
from __future__ import annotations

from typing import Any

from ..schemas import ErrorResponse

__all__ = ["error_responses"]

_DESCRIPTIONS = {
    400: "Malformed JSON (any bad input, on the v2 endpoints).",
    404: "No model by that name, or no such version.",
    413: "Body, batch or element count over the configured limits.",
    415: "The body is not sent as application/json.",
    422: "The request does not fit the schema or the model.",
    503: "Not ready, shutting down, or the model's queue is full (see Retry-After).",
    504: "The request took longer than request_timeout.",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer with."""
    return {code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in codes}
