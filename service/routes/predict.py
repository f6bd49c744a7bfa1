"""POST /models/{name}/predict (the first API; kept as is, now batched and metered)."""
from __future__ import annotations

from fastapi import APIRouter

from ..dependencies import ModelDep, SchedulerDep, SettingsDep
from ..inference import (
    Limits,
    decode_feeds,
    encode_tensor,
    feeds_from_instances,
    predicted_labels,
    resolve_outputs,
)
from ..schemas import PredictRequest, PredictResponse
from . import error_responses

router = APIRouter(tags=["predict"])


@router.post(
    "/models/{name}/predict",
    response_model_exclude_none=True,
    responses=error_responses(400, 404, 413, 415, 422, 503, 504),
)
async def run_prediction(
    body: PredictRequest, entry: ModelDep, settings: SettingsDep, scheduler: SchedulerDep
) -> PredictResponse:
    """Run a model on a batch and return the requested outputs (and labels, if any)."""
    model = entry.model
    outputs = resolve_outputs(model, entry.name, body.outputs)
    if body.inputs is not None:
        feeds = body.inputs
    else:
        feeds = feeds_from_instances(model, entry.name, body.instances)
    arrays = decode_feeds(model, feeds, Limits.from_settings(settings))
    results = await scheduler.infer(entry, arrays, outputs)  # in the thread pool
    return PredictResponse(
        model=entry.name,
        outputs={name: encode_tensor(value) for name, value in results.items()},
        predictions=predicted_labels(model, results),
    )
