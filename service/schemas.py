"""Request and response bodies of the HTTP API (pydantic models)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ErrorResponse",
    "HealthResponse",
    "InferenceRequest",
    "InferenceResponse",
    "MetadataTensor",
    "ModelInfo",
    "ModelList",
    "ModelMetadata",
    "ModelReady",
    "PredictRequest",
    "PredictResponse",
    "RepositoryIndexEntry",
    "RepositoryIndexRequest",
    "RequestInput",
    "RequestOutput",
    "ResponseOutput",
    "ServerLive",
    "ServerMetadata",
    "ServerReady",
    "TensorInfo",
    "V1PredictRequest",
    "V1PredictResponse",
]

Tensor = Annotated[
    Any,
    Field(description="A number or a rectangular nested list of numbers, row-major."),
]


class ErrorResponse(BaseModel):
    """Body of every 4xx and 5xx response."""

    error: str = Field(description="What was wrong with the request and what was expected.")


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    models: int = Field(description="How many models are served.")


class TensorInfo(BaseModel):
    """An input or output of a model."""

    name: str
    shape: list[int | None] = Field(description="Axis sizes; null marks a free axis (the batch).")
    dtype: str = Field(examples=["float32"])


class ModelInfo(BaseModel):
    name: str
    format_version: int = Field(description="Version of the bundle format the model came in.")
    inputs: list[TensorInfo]
    outputs: list[TensorInfo] = Field(description="The outputs returned when none are requested.")
    layers: list[str] = Field(description="Layer names, in order; any may be requested as an output.")
    metadata: dict[str, Any] = Field(description="The bundle's metadata, e.g. class `labels`.")


class ModelList(BaseModel):
    models: list[ModelInfo]


class PredictRequest(BaseModel):
    """Either ``inputs`` (by input name) or ``instances`` (rows of a single-input model)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"inputs": {"input": [[0.0, 0.5, 1.0, 0.25]]}},
                {"instances": [[0.0, 0.5, 1.0, 0.25], [1.0, 0.0, 0.0, 0.5]]},
                {"inputs": {"input": [[0.0, 0.5, 1.0, 0.25]]}, "outputs": ["dense_1", "output"]},
            ]
        },
    )

    inputs: dict[str, Tensor] | None = Field(
        None, description="Input name -> batch (a nested list with the batch axis first)."
    )
    instances: list[Any] | None = Field(
        None, min_length=1, description="The batch for a single-input model, one row per item."
    )
    outputs: list[str] | None = Field(
        None,
        min_length=1,
        description="Layer names to return (any layer); the model's outputs when omitted.",
    )

    @model_validator(mode="after")
    def _exactly_one_form(self) -> PredictRequest:
        if (self.inputs is None) == (self.instances is None):
            raise ValueError(
                "send exactly one of 'inputs' (an object mapping input names to nested "
                "lists) or 'instances' (a list of rows, for single-input models)"
            )
        return self


class PredictResponse(BaseModel):
    model: str
    outputs: dict[str, Any] = Field(
        description='Layer name -> nested list. Non-finite values appear as "NaN", '
        '"Infinity" or "-Infinity".'
    )
    predictions: list[Any] | None = Field(
        None,
        description="Arg-max class label per row of the model's first output; present when "
        "the bundle's metadata has `labels` and that output is 2-D with one column per label.",
    )


# -- Open Inference Protocol (v2) ----------------------------------------------------

Parameters = Annotated[
    dict[str, Any] | None,
    Field(description="Free-form parameters; see docs/service.md for the ones read."),
]


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class ServerMetadata(BaseModel):
    name: str = Field(examples=["forge"])
    version: str
    extensions: list[str]


class MetadataTensor(BaseModel):
    name: str
    datatype: str = Field(examples=["FP32"])
    shape: list[int] = Field(description="Axis sizes; -1 marks a free axis (the batch).")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str] = Field(description="The versions served, oldest first.")
    platform: str = Field(examples=["forge_npz"])
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: dict[str, Any] | None = Field(
        None, description="`layers` (any can be requested as an output) and `labels`."
    )


class RequestInput(BaseModel):
    """An input tensor: JSON ``data`` (flat or nested) or ``parameters.binary_data_size``."""

    name: str
    shape: list[Annotated[int, Field(ge=0)]]
    datatype: str = Field(examples=["FP32"])
    parameters: Parameters = None
    data: Any = Field(None, description="Row-major values, flat or nested.")


class RequestOutput(BaseModel):
    name: str = Field(description="Any layer of the model, intermediate ones included.")
    parameters: Parameters = None


class InferenceRequest(BaseModel):
    """An Open Inference Protocol inference request."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "42",
                    "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                                "data": [0.0, 0.5, 1.0, 0.25]}],
                    "outputs": [{"name": "output"}],
                }
            ]
        }
    )

    id: str | None = None
    parameters: Parameters = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters = None
    data: list[Any] | None = Field(None, description="Row-major values (absent when binary).")


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters = None
    outputs: list[ResponseOutput]


class RepositoryIndexEntry(BaseModel):
    name: str
    version: str | None = None
    state: Literal["READY", "UNAVAILABLE"]
    reason: str | None = None


class RepositoryIndexRequest(BaseModel):
    ready: bool = Field(False, description="List only models that are ready.")


# -- TF-Serving-like predict (v1) ------------------------------------------------------


class V1PredictRequest(BaseModel):
    """``instances``: one item per row: a row of the only input, or ``{input: row}``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"instances": [[0.0, 0.5, 1.0, 0.25]]}]},
    )

    instances: list[Any] = Field(min_length=1)
    signature_name: str | None = Field(None, description="Accepted and ignored (TF Serving).")
    outputs: list[str] | None = Field(
        None, min_length=1, description="Layers to return; the model's outputs when omitted."
    )


class V1PredictResponse(BaseModel):
    model_name: str
    model_version: str
    predictions: list[Any] = Field(
        description="One item per instance: the output row, or {output name: row} when "
        "several outputs are returned."
    )
    labels: list[Any] | None = Field(
        None, description="Arg-max class label per instance, when the bundle has labels."
    )
