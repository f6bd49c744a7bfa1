"""POST /models/{name}/predict."""
from __future__ import annotations

from fastapi import APIRouter

from ..dependencies import ModelDep, SettingsDep
from ..inference import (
    Limits,
    decode_feeds,
    encode_tensor,
    feeds_from_instances,
    predicted_labels,
    resolve_outputs,
    run_model,
)
from ..schemas import PredictRequest, PredictResponse
from . import error_responses

router = APIRouter(tags=["predict"])


@router.post(
    "/models/{name}/predict",
    response_model_exclude_none=True,
    responses=error_responses(400, 404, 413, 415, 422),
)
def run_prediction(body: PredictRequest, entry: ModelDep, settings: SettingsDep) -> PredictResponse:
    """Run a model on a batch and return the requested outputs (and labels, if any)."""
    # A plain `def`: FastAPI runs it in its thread pool, off the event loop.
    model = entry.model
    outputs = resolve_outputs(model, entry.name, body.outputs)
    if body.inputs is not None:
        feeds = body.inputs
    else:
        feeds = feeds_from_instances(model, entry.name, body.instances)
    arrays = decode_feeds(model, feeds, Limits.from_settings(settings))
    results = run_model(model, arrays, outputs)
    return PredictResponse(
        model=entry.name,
        outputs={name: encode_tensor(value) for name, value in results.items()},
        predictions=predicted_labels(model, results),
    )
