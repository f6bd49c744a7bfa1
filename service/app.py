"""The FastAPI application: ``create_app(settings=None)``.

Models are loaded (and warmed) in the lifespan hook, when the server starts, never
at import. The hook also starts the scheduler (thread pool, batchers) and, when
``poll_interval`` > 0, the task that reloads the repository; at shutdown it stops
polling, lets queued requests finish and stops the threads.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .batching import BatchingConfig, Scheduler
from .config import Settings, get_settings
from .handlers import install_exception_handlers
from .metrics import Metrics
from .middleware import ApiKeyMiddleware, BodySizeLimitMiddleware, RequestContextMiddleware
from .repository import ModelRepository, RepositoryError, VersionPolicy
from .routes import health, metrics, models, predict, repository, v1, v2
from .schemas import InferenceRequest

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


def version_policy(settings: Settings) -> VersionPolicy:
    return VersionPolicy(
        kind=settings.version_policy,
        latest=settings.latest_versions,
        versions=tuple(settings.versions),
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = resolve_settings(app)
    app.state.settings = settings
    app.state.shutting_down = False
    try:
        repo = await asyncio.to_thread(
            ModelRepository.from_path,
            settings.model_repository,
            policy=version_policy(settings),
            warmup=settings.warmup,
        )
    except RepositoryError as exc:
        logger.error("cannot start the service: %s", exc)
        raise
    app.state.repository = repo
    app.state.metrics.models_loaded.set(len(repo.entries()))
    app.state.scheduler = Scheduler(BatchingConfig.from_settings(settings), app.state.metrics)
    served = ", ".join(f"{e.name}:{e.version}" for e in repo.entries())
    logger.info("serving %d model(s): %s", len(repo), served)
    poller = (
        asyncio.create_task(_poll(app, repo, settings.poll_interval))
        if settings.poll_interval > 0
        else None
    )
    try:
        yield
    finally:
        app.state.shutting_down = True
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        await app.state.scheduler.close()
        logger.info("stopped: every queued request was answered")


async def _poll(app: FastAPI, repo: ModelRepository, interval: float) -> None:
    """Rescan the repository every ``interval`` seconds (in a thread: loads are slow)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(repo.reload)
        except Exception:  # a scan error must not stop polling
            logger.exception("repository reload failed; serving what was loaded")
        app.state.metrics.models_loaded.set(len(repo.entries()))


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; ``settings`` defaults to :func:`get_settings` (the environment)."""
    app = FastAPI(
        title="Forge prediction service",
        summary="Runs Forge model bundles (.npz) with the numpy runtime: the Open Inference "
        "Protocol (v2), a TF-Serving-like predict endpoint, and Prometheus metrics.",
        version=_version(),
        lifespan=lifespan,
    )
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    app.state.metrics = Metrics()
    # Last added runs first: request id and access log, then the API key, then the body limit.
    app.add_middleware(BodySizeLimitMiddleware)
    app.add_middleware(ApiKeyMiddleware)
    app.add_middleware(RequestContextMiddleware)
    install_exception_handlers(app)
    for module in (health, models, predict, v2, repository, v1, metrics):
        app.include_router(module.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema, plus InferenceRequest (the v2 infer routes read the body raw)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        request_schema = InferenceRequest.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components.update(request_schema.pop("$defs", {}))
        components["InferenceRequest"] = request_schema
        app.openapi_schema = schema
    return app.openapi_schema
