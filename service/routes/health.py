"""GET /health."""
from __future__ import annotations

from fastapi import APIRouter

from ..dependencies import RepositoryDep
from ..schemas import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/health")
async def get_health(repository: RepositoryDep) -> HealthResponse:
    """Report that the server is up and how many models it serves."""
    return HealthResponse(status="ok", models=len(repository))
