"""Service settings: keyword arguments, then ``FORGE_*`` variables, then a config file.

Every field can be set as an environment variable (``FORGE_MODEL_REPOSITORY``,
``FORGE_PORT``, ``FORGE_BATCHING`` ...), passed to ``Settings(...)`` directly,
written in a TOML, JSON or YAML file named by ``FORGE_CONFIG`` (keys are the field
names without the prefix), or, for the options ``forge serve`` has, given on the
command line. Priority, highest first: keyword arguments (and so the command
line), environment variables, the config file, the defaults.

The application reads its settings through :func:`get_settings`, a cached
FastAPI dependency. Tests and embedders either pass ``create_app(settings=...)``
or override it: ``app.dependency_overrides[get_settings] = lambda: settings``.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

__all__ = ["CONFIG_ENV", "DEFAULT_MODEL_PATH", "LogLevel", "Settings", "get_settings"]

#: The folder of example bundles shipped inside the package (``service/models``).
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "models"

#: The environment variable naming an optional config file (.toml, .json, .yaml/.yml).
CONFIG_ENV = "FORGE_CONFIG"

LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]

MiB = 1024 * 1024

_CONFIG_SOURCES = {
    ".toml": TomlConfigSettingsSource,
    ".json": JsonConfigSettingsSource,
    ".yaml": YamlConfigSettingsSource,
    ".yml": YamlConfigSettingsSource,
}


class Settings(BaseSettings):
    """Configuration of the prediction service."""

    model_config = SettingsConfigDict(env_prefix="FORGE_", extra="ignore")

    # -- models ---------------------------------------------------------------------
    model_repository: Path = Field(
        DEFAULT_MODEL_PATH,
        description="The model repository: a folder of <name>/<version>/model.npz and/or "
        "<name>.npz bundles, or one bundle file.",
    )
    model_path: Path | None = Field(
        None, description="Older name of model_repository; used when that one is not set."
    )
    version_policy: Literal["latest", "all", "specific"] = Field(
        "latest", description="Which versions of each model are served."
    )
    latest_versions: int = Field(
        1, ge=1, description="With version_policy=latest: how many of the newest versions."
    )
    versions: list[int] = Field(
        default_factory=list, description="With version_policy=specific: the versions served."
    )
    poll_interval: float = Field(
        0.0, ge=0, description="Seconds between repository scans for new versions; 0 = no polling."
    )
    warmup: bool = Field(True, description="Run each model once on zeros before it serves.")

    # -- network --------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface `forge serve` binds to.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port `forge serve` listens on.")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes (`forge serve`).")

    # -- limits ---------------------------------------------------------------------
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
        False, description="Accept NaN and +/-inf in inputs (rejected with 4xx when false)."
    )
    request_timeout: float = Field(
        30.0, gt=0, description="Seconds a request may wait and run before it gets 504."
    )

    # -- execution ------------------------------------------------------------------
    inference_threads: int = Field(
        default_factory=lambda: min(4, os.cpu_count() or 1),
        ge=1,
        description="Threads that run models (off the event loop).",
    )
    batching: bool = Field(False, description="Merge concurrent requests into one model call.")
    batch_max_size: int = Field(
        64, ge=1, description="Most rows merged into one model call when batching."
    )
    batch_max_delay_ms: float = Field(
        2.0, ge=0, description="Longest a request waits for others to batch with (ms)."
    )
    max_queue_size: int = Field(
        256, ge=1, description="Most requests waiting or running per model; 503 beyond."
    )

    # -- security and observability --------------------------------------------------
    api_key: SecretStr | None = Field(
        None, description="When set, every request except health checks must carry it."
    )
    api_key_header: str = Field("X-API-Key", description="Header that carries the API key.")
    log_level: LogLevel = Field("info", description="Log level of the server and the service.")
    log_format: Literal["text", "json"] = Field("text", description="Log line format.")
    metrics: bool = Field(True, description="Serve Prometheus metrics at /metrics.")

    @field_validator("model_repository", "model_path", mode="after")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_log_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_repository_path(self) -> Settings:
        # model_path is the older name: it counts only when model_repository is not set.
        if "model_repository" not in self.model_fields_set and self.model_path is not None:
            self.model_repository = self.model_path
        self.model_path = self.model_repository
        if self.version_policy == "specific" and not self.versions:
            raise ValueError("version_policy='specific' needs a non-empty list of versions")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get(CONFIG_ENV)
        if config:
            path = Path(config).expanduser()
            source = _CONFIG_SOURCES.get(path.suffix.lower())
            if source is None:
                raise ValueError(
                    f"{CONFIG_ENV}={config!r}: the config file must end in "
                    f"{', '.join(_CONFIG_SOURCES)}"
                )
            if not path.is_file():
                raise ValueError(f"{CONFIG_ENV}={config!r}: no such file")
            kwargs: dict[str, Any] = {"toml_file" if source is TomlConfigSettingsSource
                                      else "json_file" if source is JsonConfigSettingsSource
                                      else "yaml_file": path}
            sources.append(source(settings_cls, **kwargs))
        return tuple(sources)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()
