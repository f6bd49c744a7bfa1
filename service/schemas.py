"""Request and response bodies of the HTTP API (pydantic models)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ErrorResponse",
    "HealthResponse",
    "ModelInfo",
    "ModelList",
    "PredictRequest",
    "PredictResponse",
    "TensorInfo",
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
