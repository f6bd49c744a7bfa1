"""The FastAPI application: ``create_app(settings=None)``.

Models are loaded in the lifespan hook, when the server starts, never at import.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata

from fastapi import FastAPI

from .config import Settings, get_settings
from .handlers import install_exception_handlers
from .middleware import BodySizeLimitMiddleware
from .repository import ModelRepository, RepositoryError
from .routes import health, models, predict

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def _version() -> str:
    try:
        return metadata.version("forge-nn")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def resolve_settings(app: FastAPI) -> Settings:
    """The settings ``app`` runs with: an override of ``get_settings`` if any, else the environment."""
    return app.dependency_overrides.get(get_settings, get_settings)()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = resolve_settings(app)
    app.state.settings = settings
    try:
        repository = ModelRepository.from_path(settings.model_path)
    except RepositoryError as exc:
        logger.error("cannot start the service: %s", exc)
        raise
    app.state.repository = repository
    logger.info("serving %d model(s): %s", len(repository), ", ".join(repository.names()))
    yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; ``settings`` defaults to :func:`get_settings` (the environment)."""
    app = FastAPI(
        title="Forge prediction service",
        summary="Runs Forge model bundles (.npz) with the numpy runtime.",
        version=_version(),
        lifespan=lifespan,
    )
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    app.add_middleware(BodySizeLimitMiddleware)
    install_exception_handlers(app)
    app.include_router(health.router)
    app.include_router(models.router)
    app.include_router(predict.router)
    return app
