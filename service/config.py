"""Service settings, read from ``FORGE_``-prefixed environment variables.

Every field can be set as an environment variable (``FORGE_MODEL_PATH``,
``FORGE_PORT``, ``FORGE_ALLOW_NONFINITE`` ...), passed to ``Settings(...)``
directly, or, for the network fields, given to ``forge serve`` on the command
line (arguments win over the environment).

The application reads its settings through :func:`get_settings`, a cached
FastAPI dependency. Tests and embedders either pass ``create_app(settings=...)``
or override it: ``app.dependency_overrides[get_settings] = lambda: settings``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_MODEL_PATH", "LogLevel", "Settings", "get_settings"]

#: The folder of example bundles shipped inside the package (``service/models``).
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "models"

LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]

MiB = 1024 * 1024


class Settings(BaseSettings):
    """Configuration of the prediction service."""

    model_config = SettingsConfigDict(env_prefix="FORGE_", extra="ignore")

    model_path: Path = Field(
        DEFAULT_MODEL_PATH,
        description="A folder of *.npz bundles (model name = file stem) or one bundle file.",
    )
    host: str = Field("127.0.0.1", description="Interface `forge serve` binds to.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port `forge serve` listens on.")
    max_body_bytes: int = Field(
        8 * MiB, gt=0, description="Largest accepted request body, in bytes (413 above it)."
    )
    max_batch_size: int = Field(
        1024, gt=0, description="Most rows (leading-axis length) per input in one request."
    )
    max_elements: int = Field(
        1_000_000, gt=0, description="Most numbers, summed over all inputs, in one request."
    )
    allow_nonfinite: bool = Field(
        False, description="Accept NaN and +/-inf in inputs (rejected with 422 when false)."
    )
    log_level: LogLevel = Field("info", description="Log level of the server and the service.")

    @field_validator("model_path", mode="after")
    @classmethod
    def _expand_user(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_log_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()
