"""From JSON-decoded request data to model outputs and back, without any web framework.

The routes call these functions; they are kept apart from FastAPI so that other
front ends (the Open Inference Protocol routes, ``forge predict``) reuse the same
checks and produce the same messages.

Policy on non-finite numbers: unless ``allow_nonfinite`` is set, an input value
that is NaN or +/-infinity -- either sent as such (``NaN``, ``Infinity``,
``1e999``) or produced by casting to the model's dtype (``1e39`` overflows
float32) -- is rejected. Non-finite *output* values are encoded as the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (the protobuf JSON convention), since
JSON has no literal for them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

import runtime

from .errors import InvalidInputError, PayloadTooLargeError, ServiceError

__all__ = [
    "Limits",
    "check_finite",
    "decode_feeds",
    "decode_tensor",
    "encode_tensor",
    "feeds_from_instances",
    "predicted_labels",
    "resolve_outputs",
    "run_model",
]

_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned ints, floats
_MAX_DEPTH = 32
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


class _LimitSource(Protocol):
    max_batch_size: int
    max_elements: int
    allow_nonfinite: bool


@dataclass(frozen=True)
class Limits:
    """Per-request limits (see :class:`service.config.Settings`)."""

    max_batch_size: int = 1024
    max_elements: int = 1_000_000
    allow_nonfinite: bool = False

    @classmethod
    def from_settings(cls, settings: _LimitSource) -> Limits:
        return cls(
            max_batch_size=settings.max_batch_size,
            max_elements=settings.max_elements,
            allow_nonfinite=settings.allow_nonfinite,
        )


# -- decoding ------------------------------------------------------------------------


def feeds_from_instances(model: runtime.Model, model_name: str, instances: Any) -> dict[str, Any]:
    """Map the ``instances`` form (a list of rows) onto the model's only input."""
    if len(model.inputs) != 1:
        names = ", ".join(repr(spec.name) for spec in model.inputs)
        raise InvalidInputError(
            f"'instances' is only for single-input models, but model {model_name!r} has "
            f"{len(model.inputs)} inputs ({names}); send "
            '{"inputs": {"<input name>": <nested list>, ...}} instead'
        )
    return {model.inputs[0].name: instances}


def decode_feeds(
    model: runtime.Model, inputs: Mapping[str, Any], limits: Limits
) -> dict[str, np.ndarray]:
    """Turn ``{input name: nested list}`` into arrays, enforcing ``limits``.

    Names are not checked here: the runtime refuses missing and extra inputs, and
    wrong ranks or sizes, with messages that show what it expected.
    """
    specs = {spec.name: spec for spec in model.inputs}
    feeds: dict[str, np.ndarray] = {}
    total = 0
    for name, data in inputs.items():
        array = decode_tensor(name, data)
        if array.ndim >= 1 and array.shape[0] > limits.max_batch_size:
            raise PayloadTooLargeError(
                f"input {name!r} has {array.shape[0]} rows; at most {limits.max_batch_size} "
                f"rows are accepted per request (max_batch_size): split the batch"
            )
        total += array.size
        if total > limits.max_elements:
            raise PayloadTooLargeError(
                f"the request holds more than {limits.max_elements} numbers "
                f"(max_elements); send a smaller batch"
            )
        spec = specs.get(name)
        if spec is not None:
            array = _cast(name, array, spec.dtype, limits.allow_nonfinite)
        feeds[name] = array
    return feeds


def decode_tensor(name: str, data: Any) -> np.ndarray:
    """A JSON number or rectangular nested list of numbers as an array.

    Raises :class:`InvalidInputError` naming the first offending element for
    strings, nulls, objects, out-of-range integers and ragged lists.
    """
    try:
        array = np.asarray(data)
    except (ValueError, TypeError, OverflowError):
        array = None
    if array is None or array.dtype.kind not in _NUMERIC_KINDS:
        raise InvalidInputError(f"input {name!r}: {_describe_problem(data)}")
    return array


def _cast(name: str, array: np.ndarray, dtype: np.dtype, allow_nonfinite: bool) -> np.ndarray:
    dtype = np.dtype(dtype)
    if array.dtype.kind == "f" and not allow_nonfinite:
        check_finite(name, array, array, None)
    if dtype.kind != "f":
        return array  # the runtime converts and checks non-float inputs itself
    with np.errstate(over="ignore", invalid="ignore"):
        cast = array.astype(dtype, copy=False)
    if not allow_nonfinite:
        check_finite(name, cast, array, dtype)
    return cast


def check_finite(
    name: str,
    array: np.ndarray,
    sent: np.ndarray,
    dtype: np.dtype | None,
    error: type[ServiceError] = InvalidInputError,
) -> None:
    """Refuse NaN/inf in ``array`` with ``error``; ``sent`` is what the client sent."""
    finite = np.isfinite(array)
    if finite.all():
        return
    bad = np.argwhere(~finite)
    first = tuple(bad[0])
    where = "".join(f"[{i}]" for i in first) or "the top level"
    if dtype is None:
        what = f"{array[first]}"
    else:
        what = f"{sent[first].item()!r} overflows {dtype}"
    raise error(
        f"input {name!r} has {len(bad)} non-finite value(s) (first at {where}: {what}); "
        f"NaN and infinity are rejected: send finite numbers"
    )


class _Problem(Exception):
    pass


def _describe_problem(data: Any) -> str:
    """Say why ``data`` is not a rectangular nested list of numbers."""
    try:
        _shape_of(data, ())
    except _Problem as problem:
        return str(problem)
    except RecursionError:
        return f"nested more than {_MAX_DEPTH} levels deep"
    return "expected a number or a nested list of numbers"


def _shape_of(node: Any, path: tuple[int, ...]) -> tuple[int, ...]:
    where = "".join(f"[{i}]" for i in path) or "the value"
    if isinstance(node, bool | float):
        return ()
    if isinstance(node, int):
        if not _INT_MIN <= node <= _INT_MAX:
            digits = len(str(abs(node)))
            raise _Problem(
                f"{where} is an integer of {digits} digits, outside the 64-bit range; "
                f"expected a number between {_INT_MIN} and {_INT_MAX}"
            )
        return ()
    if isinstance(node, list):
        if len(path) >= _MAX_DEPTH:
            raise _Problem(f"nested more than {_MAX_DEPTH} levels deep at {where}")
        shapes = [_shape_of(child, (*path, i)) for i, child in enumerate(node)]
        for i, shape in enumerate(shapes[1:], start=1):
            if shape != shapes[0]:
                first = "".join(f"[{j}]" for j in (*path, 0))
                other = "".join(f"[{j}]" for j in (*path, i))
                raise _Problem(
                    f"ragged nested list: {other} is {_shape_text(shape)} but {first} is "
                    f"{_shape_text(shapes[0])}; every row must have the same length"
                )
        return (len(node), *(shapes[0] if shapes else ()))
    raise _Problem(f"{where} is {_json_kind(node)}; expected a number")


def _shape_text(shape: tuple[int, ...]) -> str:
    if not shape:
        return "a number"
    if len(shape) == 1:
        return f"a list of {shape[0]}"
    return f"a nested list of shape {list(shape)}"


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        shown = value if len(value) <= 20 else value[:17] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


# -- running ------------------------------------------------------------------------


def resolve_outputs(
    model: runtime.Model, model_name: str, requested: Sequence[str] | None
) -> list[str] | None:
    """Check requested output layer names (duplicates dropped); ``None`` means the defaults."""
    if requested is None:
        return None
    layers = model.layers
    unknown = [name for name in requested if name not in layers]
    if unknown:
        shown = ", ".join(repr(name) for name in unknown)
        raise InvalidInputError(
            f"unknown output layer {shown} for model {model_name!r}; outputs may name any "
            f"layer: {', '.join(layers)}"
        )
    return list(dict.fromkeys(requested))


def run_model(
    model: runtime.Model, feeds: dict[str, np.ndarray], outputs: list[str] | None
) -> dict[str, np.ndarray]:
    """``model.run`` with the runtime's input errors turned into :class:`InvalidInputError`."""
    try:
        return model.run(feeds, outputs=outputs)
    except runtime.InputError as exc:
        raise InvalidInputError(str(exc)) from exc


# -- encoding -----------------------------------------------------------------------


def encode_tensor(array: np.ndarray) -> Any:
    """An array as nested lists; non-finite floats become "NaN"/"Infinity"/"-Infinity"."""
    array = np.asarray(array)
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return array.tolist()
    encoded = array.astype(object)
    encoded[np.isnan(array)] = "NaN"
    encoded[np.isposinf(array)] = "Infinity"
    encoded[np.isneginf(array)] = "-Infinity"
    return encoded.tolist()


def predicted_labels(model: runtime.Model, results: Mapping[str, np.ndarray]) -> list[Any] | None:
    """The arg-max class label per row of the model's first output, when that makes sense.

    Only when the bundle's metadata has a ``labels`` list, the first declared output
    is among ``results``, and it is 2-D with one column per label.
    """
    labels = model.metadata.get("labels") if isinstance(model.metadata, Mapping) else None
    if not isinstance(labels, list) or not labels or not model.outputs:
        return None
    scores = results.get(model.outputs[0].name)
    if scores is None or scores.ndim != 2 or scores.shape[1] != len(labels):
        return None
    return [labels[i] for i in np.argmax(scores, axis=1).tolist()]
