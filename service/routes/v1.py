"""``POST /v1/models/{name}:predict``: a TF-Serving-like JSON endpoint for people."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..dependencies import ModelDep, ModelVersionDep, SchedulerDep, SettingsDep
from ..errors import InvalidInputError
from ..inference import (
    Limits,
    decode_feeds,
    encode_tensor,
    feeds_from_instances,
    predicted_labels,
    resolve_outputs,
)
from ..repository import ModelEntry
from ..schemas import V1PredictRequest, V1PredictResponse
from . import error_responses

router = APIRouter(prefix="/v1", tags=["predict (v1)"])

_ERRORS = error_responses(400, 404, 413, 415, 422, 503, 504)


@router.post("/models/{name}:predict", response_model_exclude_none=True, responses=_ERRORS)
async def predict_v1(
    body: V1PredictRequest, entry: ModelDep, settings: SettingsDep, scheduler: SchedulerDep
) -> V1PredictResponse:
    """Predict with the newest version: one prediction (and label) per instance."""
    return await predict(body, entry, settings, scheduler)


@router.post(
    "/models/{name}/versions/{version}:predict", response_model_exclude_none=True, responses=_ERRORS
)
async def predict_v1_version(
    body: V1PredictRequest, entry: ModelVersionDep, settings: SettingsDep, scheduler: SchedulerDep
) -> V1PredictResponse:
    """Predict with one version of the model."""
    return await predict(body, entry, settings, scheduler)


async def predict(
    body: V1PredictRequest, entry: ModelEntry, settings: Any, scheduler: Any
) -> V1PredictResponse:
    model = entry.model
    outputs = resolve_outputs(model, entry.name, body.outputs)
    feeds = _columns(entry, body.instances)
    arrays = decode_feeds(model, feeds, Limits.from_settings(settings))
    results = await scheduler.infer(entry, arrays, outputs)
    encoded = {name: encode_tensor(value) for name, value in results.items()}
    if len(encoded) == 1:
        predictions = next(iter(encoded.values()))
    else:
        rows = len(body.instances)
        predictions = [{name: value[i] for name, value in encoded.items()} for i in range(rows)]
    return V1PredictResponse(
        model_name=entry.name,
        model_version=str(entry.version),
        predictions=predictions,
        labels=predicted_labels(model, results),
    )


def _columns(entry: ModelEntry, instances: list[Any]) -> dict[str, Any]:
    """Rows (``[row, ...]`` or ``[{input: row}, ...]``) as ``{input: [row, ...]}``."""
    if not all(isinstance(item, dict) for item in instances):
        return feeds_from_instances(entry.model, entry.name, instances)
    names = [spec.name for spec in entry.model.inputs]
    for i, item in enumerate(instances):
        if sorted(item) != sorted(names):
            raise InvalidInputError(
                f"instances[{i}] has keys {sorted(item)}; each instance object must have "
                f"exactly the inputs of model {entry.name!r}: {names}"
            )
    return {name: [item[name] for item in instances] for name in names}
