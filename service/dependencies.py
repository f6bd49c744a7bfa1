"""FastAPI dependencies, as ``Annotated`` aliases for route signatures."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from .batching import Scheduler
from .config import Settings, get_settings
from .metrics import Metrics
from .repository import MODEL_NAME_PATTERN, ModelEntry, ModelRepository

__all__ = [
    "MetricsDep",
    "ModelDep",
    "RepositoryDep",
    "SchedulerDep",
    "SettingsDep",
    "get_model_entry",
    "get_repository",
]

SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_repository(request: Request) -> ModelRepository:
    """The repository the lifespan hook loaded."""
    return request.app.state.repository


RepositoryDep = Annotated[ModelRepository, Depends(get_repository)]


async def get_scheduler(request: Request) -> Scheduler:
    """The scheduler (thread pool and batchers) the lifespan hook started."""
    return request.app.state.scheduler


SchedulerDep = Annotated[Scheduler, Depends(get_scheduler)]


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]

NameParam = Annotated[str, Path(description=f"Model name (matches {MODEL_NAME_PATTERN}).")]
VersionParam = Annotated[str, Path(description="Model version, a decimal number.")]


async def get_model_entry(
    request: Request, name: NameParam, repository: RepositoryDep
) -> ModelEntry:
    """The model named in the path (newest version); 404 if none is served under that name."""
    entry = repository.get(name)
    _note_model(request, entry)
    return entry


async def get_model_version(
    request: Request, name: NameParam, version: VersionParam, repository: RepositoryDep
) -> ModelEntry:
    """The model version named in the path; 404 if it is not served."""
    entry = repository.get(name, version)
    _note_model(request, entry)
    return entry


def _note_model(request: Request, entry: ModelEntry) -> None:
    # Read by RequestContextMiddleware for the per-model request metrics.
    request.state.forge_model = entry.name
    request.state.forge_version = str(entry.version)


ModelDep = Annotated[ModelEntry, Depends(get_model_entry)]
ModelVersionDep = Annotated[ModelEntry, Depends(get_model_version)]
