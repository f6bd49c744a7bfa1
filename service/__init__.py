"""Forge's prediction service: a FastAPI app over :mod:`runtime`, and the ``forge`` CLI.

Importing this package imports neither FastAPI nor pydantic: ``create_app`` is
resolved on first use, so the numpy-only parts (the CLI) stay light.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["create_app"]

if TYPE_CHECKING:
    from .app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
