"""One router module per resource: ``health``, ``models``, ``predict``."""
from __future__ import annotations

from typing import Any

from ..schemas import ErrorResponse

__all__ = ["error_responses"]

_DESCRIPTIONS = {
    400: "Malformed JSON.",
    404: "No model by that name.",
    413: "Body, batch or element count over the configured limits.",
    415: "The body is not sent as application/json.",
    422: "The request does not fit the schema or the model.",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer with."""
    return {code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in codes}
