"""The Open Inference Protocol (KServe v2) REST endpoints, with the binary data extension."""
from __future__ import annotations

import json
import zlib
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

import runtime

from ..dependencies import ModelDep, ModelVersionDep, RepositoryDep, SchedulerDep, SettingsDep
from ..errors import (
    BadRequestError,
    InvalidInputError,
    NotReadyError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from ..handlers import validation_message
from ..inference import Limits, resolve_outputs
from ..protocol import datatype_of, decode_inputs, encode_outputs, split_body
from ..repository import ModelEntry
from ..schemas import (
    InferenceRequest,
    InferenceResponse,
    MetadataTensor,
    ModelMetadata,
    ModelReady,
    ServerLive,
    ServerMetadata,
    ServerReady,
)
from . import error_responses

router = APIRouter(prefix="/v2", tags=["inference (v2)"])

HEADER_LENGTH = "Inference-Header-Content-Length"
EXTENSIONS = ["binary_tensor_data", "model_repository"]
PLATFORM = "forge_npz"

#: The request body as OpenAPI sees it: JSON, or JSON followed by binary tensor data.
INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": f"The JSON header, then raw tensors; send {HEADER_LENGTH}.",
            },
        },
    }
}
#: What both infer routes (newest version, one version) declare.
_INFER_ROUTE: dict[str, Any] = {
    "openapi_extra": INFER_BODY,
    "response_model": InferenceResponse,
    "responses": error_responses(400, 404, 413, 415, 503, 504),
}


@router.get("/health/live")
async def get_live() -> ServerLive:
    """Liveness: the process answers HTTP."""
    return ServerLive(live=True)


@router.get("/health/ready", responses=error_responses(503))
async def get_ready(request: Request, repository: RepositoryDep) -> ServerReady:
    """Readiness: models are loaded and warmed, and the server is not shutting down."""
    if getattr(request.app.state, "shutting_down", False):
        raise NotReadyError("the server is shutting down")
    if len(repository) == 0:
        raise NotReadyError("no model is loaded")
    return ServerReady(ready=True)


@router.get("")
async def get_server_metadata(request: Request) -> ServerMetadata:
    """Server name, version and the protocol extensions it implements."""
    return ServerMetadata(name="forge", version=request.app.version, extensions=EXTENSIONS)


@router.get("/models/{name}", responses=error_responses(404))
async def get_model_metadata(entry: ModelDep, repository: RepositoryDep) -> ModelMetadata:
    """Metadata of a model's newest served version."""
    return model_metadata(entry, repository.versions(entry.name))


@router.get("/models/{name}/versions/{version}", responses=error_responses(404))
async def get_model_version_metadata(entry: ModelVersionDep) -> ModelMetadata:
    """Metadata of one version of a model."""
    return model_metadata(entry, [entry.version])


@router.get("/models/{name}/ready", responses=error_responses(404))
async def get_model_ready(entry: ModelDep) -> ModelReady:
    """200 when the model is loaded, warmed and serving."""
    return ModelReady(name=entry.name, ready=True)


@router.get("/models/{name}/versions/{version}/ready", responses=error_responses(404))
async def get_model_version_ready(entry: ModelVersionDep) -> ModelReady:
    """200 when this version is loaded, warmed and serving."""
    return ModelReady(name=entry.name, ready=True)


@router.post("/models/{name}/infer", **_INFER_ROUTE)
async def infer(
    request: Request, entry: ModelDep, settings: SettingsDep, scheduler: SchedulerDep
) -> Response:
    """Run the model's newest version on JSON or binary tensors."""
    return await run_inference(request, entry, settings, scheduler)


@router.post("/models/{name}/versions/{version}/infer", **_INFER_ROUTE)
async def infer_version(
    request: Request, entry: ModelVersionDep, settings: SettingsDep, scheduler: SchedulerDep
) -> Response:
    """Run one version of the model on JSON or binary tensors."""
    return await run_inference(request, entry, settings, scheduler)


def model_metadata(entry: ModelEntry, versions: list[int]) -> ModelMetadata:
    model = entry.model
    parameters: dict[str, Any] = {"layers": list(model.layers)}
    labels = model.metadata.get("labels")
    if isinstance(labels, list):
        parameters["labels"] = labels
    return ModelMetadata(
        name=entry.name,
        versions=[str(v) for v in versions],
        platform=PLATFORM,
        inputs=[_tensor(spec) for spec in model.inputs],
        outputs=[_tensor(spec) for spec in model.outputs],
        parameters=parameters,
    )


def _tensor(spec: runtime.TensorSpec) -> MetadataTensor:
    return MetadataTensor(
        name=spec.name,
        datatype=datatype_of(spec.dtype),
        shape=[-1 if size is None else size for size in spec.shape],
    )


async def run_inference(
    request: Request, entry: ModelEntry, settings: Any, scheduler: Any
) -> Response:
    header_bytes, binary = split_body(
        await _read_body(request, settings.max_body_bytes), request.headers.get(HEADER_LENGTH)
    )
    if not binary and HEADER_LENGTH.lower() not in request.headers:
        _check_content_type(request.headers.get("content-type"))
    payload = _parse_header(header_bytes)
    try:
        parsed = InferenceRequest.model_validate(payload)
    except ValidationError as exc:
        raise BadRequestError(
            validation_message(list(exc.errors())).replace(
                "a predict request has 'inputs' or 'instances', and optionally 'outputs'",
                "an inference request has 'inputs' and optionally 'id', 'parameters', 'outputs'",
            )
        ) from None
    try:
        decoded = decode_inputs(
            entry.model, entry.name, payload, binary, Limits.from_settings(settings)
        )
        outputs = resolve_outputs(entry.model, entry.name, decoded.outputs)
        results = await scheduler.infer(entry, decoded.feeds, outputs)
    except InvalidInputError as exc:  # the OIP answers 400 for any bad input
        raise BadRequestError(exc.message) from None
    entries, chunks = encode_outputs(results, decoded)
    body: dict[str, Any] = {"model_name": entry.name, "model_version": str(entry.version)}
    if parsed.id is not None:
        body["id"] = parsed.id
    body["outputs"] = entries
    header = json.dumps(body, separators=(",", ":")).encode()
    if not chunks:
        return Response(header, media_type="application/json")
    return Response(
        b"".join([header, *chunks]),
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(len(header))},
    )


async def _read_body(request: Request, limit: int) -> bytes:
    body = await request.body()
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {encoding!r} is not supported; send identity, gzip or deflate"
        )
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequestError(f"the body is not valid {encoding} data: {exc}") from None
    if len(data) > limit:
        raise PayloadTooLargeError(
            f"request body too large once decompressed: more than {limit} bytes (max_body_bytes)"
        )
    if not inflater.eof:
        raise BadRequestError(f"the body is not valid {encoding} data: the stream is truncated")
    return data


def _check_content_type(content_type: str | None) -> None:
    if content_type is None:
        return  # tritonclient sends none
    base = content_type.split(";")[0].strip().lower()
    if base in ("application/json", "application/octet-stream") or base.endswith("+json"):
        return
    raise UnsupportedMediaTypeError(
        f"the request body must be JSON (Content-Type: application/json), or JSON followed by "
        f"binary tensors with the {HEADER_LENGTH} header (got {content_type!r})"
    )


def _parse_header(data: bytes) -> Any:
    try:
        payload = json.loads(data)
    except UnicodeDecodeError:
        raise BadRequestError(
            "the request is not UTF-8 JSON; to send binary tensors, put the JSON header first "
            f"and give its length in the {HEADER_LENGTH} header"
        ) from None
    except json.JSONDecodeError as exc:
        raise BadRequestError(
            f"malformed JSON in the request body: {exc.msg} at character {exc.pos}"
        ) from None
    if not isinstance(payload, dict):
        raise BadRequestError(
            "the request body must be a JSON object with 'inputs' (an inference request)"
        )
    return payload
