"""GET /metrics: Prometheus exposition text."""
from __future__ import annotations

from fastapi import APIRouter, Response

from ..dependencies import MetricsDep, RepositoryDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
async def get_metrics(metrics: MetricsDep, repository: RepositoryDep) -> Response:
    """Request counts, latency and batch-size histograms, loaded models (Prometheus text)."""
    metrics.models_loaded.set(len(repository.entries()))
    content, content_type = metrics.render()
    return Response(content, media_type=content_type)
