"""FastAPI dependencies, as ``Annotated`` aliases for route signatures."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from .config import Settings, get_settings
from .repository import MODEL_NAME_PATTERN, ModelEntry, ModelRepository

__all__ = ["ModelDep", "RepositoryDep", "SettingsDep", "get_model_entry", "get_repository"]

SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_repository(request: Request) -> ModelRepository:
    """The repository the lifespan hook loaded."""
    return request.app.state.repository


RepositoryDep = Annotated[ModelRepository, Depends(get_repository)]


async def get_model_entry(
    name: Annotated[str, Path(description=f"Model name (matches {MODEL_NAME_PATTERN}).")],
    repository: RepositoryDep,
) -> ModelEntry:
    """The model named in the path; 404 if none is served under that name."""
    return repository.get(name)


ModelDep = Annotated[ModelEntry, Depends(get_model_entry)]
