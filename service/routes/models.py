"""GET /models and GET /models/{name}."""
from __future__ import annotations

from fastapi import APIRouter

import runtime

from ..dependencies import ModelDep, RepositoryDep
from ..repository import ModelEntry
from ..schemas import ModelInfo, ModelList, TensorInfo
from . import error_responses

router = APIRouter(tags=["models"])


@router.get("/models")
async def list_models(repository: RepositoryDep) -> ModelList:
    """List the served models with their input and output specs."""
    return ModelList(models=[describe_model(repository.get(name)) for name in repository.names()])


@router.get("/models/{name}", responses=error_responses(404))
async def get_model(entry: ModelDep) -> ModelInfo:
    """Describe one model: its inputs, outputs, layers and metadata."""
    return describe_model(entry)


def describe_model(entry: ModelEntry) -> ModelInfo:
    model = entry.model
    return ModelInfo(
        name=entry.name,
        format_version=model.format_version,
        inputs=[_tensor_info(spec) for spec in model.inputs],
        outputs=[_tensor_info(spec) for spec in model.outputs],
        layers=list(model.layers),
        metadata=dict(model.metadata),
    )


def _tensor_info(spec: runtime.TensorSpec) -> TensorInfo:
    return TensorInfo(name=spec.name, shape=list(spec.shape), dtype=str(spec.dtype))
