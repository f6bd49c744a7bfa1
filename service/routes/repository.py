"""The model repository extension (as Triton has it): index, load, unload."""
from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Body, Request

from ..dependencies import NameParam, RepositoryDep
from ..errors import BadRequestError
from ..repository import RepositoryError
from ..schemas import RepositoryIndexEntry, RepositoryIndexRequest
from . import error_responses

router = APIRouter(prefix="/v2/repository", tags=["repository"])


@router.post("/index")
async def get_repository_index(
    repository: RepositoryDep,
    body: Annotated[RepositoryIndexRequest | None, Body()] = None,
) -> list[RepositoryIndexEntry]:
    """List every model version served, and the bundles that were refused (with the reason)."""
    entries = [
        RepositoryIndexEntry(name=e.name, version=str(e.version), state="READY")
        for e in repository.entries()
    ]
    if not (body and body.ready):
        for where, reason in sorted(repository.failures().items()):
            name, _, version = where.partition("/")
            entries.append(
                RepositoryIndexEntry(name=name, version=version, state="UNAVAILABLE", reason=reason)
            )
    return entries


@router.post("/models/{name}/load", responses=error_responses(400, 404))
async def load_model(request: Request, name: NameParam, repository: RepositoryDep) -> dict:
    """Load (or reload) a model from disk now; its new versions serve once warmed."""
    try:
        await asyncio.to_thread(repository.load, name)
    except (RepositoryError, ValueError) as exc:
        raise BadRequestError(str(exc)) from None
    _update_gauge(request, repository)
    return {}


@router.post("/models/{name}/unload", responses=error_responses(404))
async def unload_model(request: Request, name: NameParam, repository: RepositoryDep) -> dict:
    """Stop serving a model (requests in flight finish); polling leaves it unloaded."""
    repository.unload(name)
    _update_gauge(request, repository)
    return {}


def _update_gauge(request: Request, repository: RepositoryDep) -> None:
    request.app.state.metrics.models_loaded.set(len(repository.entries()))
