"""The Open Inference Protocol (KServe v2) tensor codec, without any web framework.

Decodes an inference request -- its JSON part already parsed into a dict, plus the
bytes that follow it under the *binary tensor data extension* -- into arrays the
model takes, and encodes the results back. The routes in ``routes/v2.py`` do the
HTTP part; everything a client can get wrong raises :class:`BadRequestError` (400)
or :class:`PayloadTooLargeError` (413) with a message that names the tensor.

Datatypes. A tensor's ``datatype`` says how its ``data`` (or its raw bytes) is
typed; the service then converts it to the dtype of the model input when that is
*safe*:

- to a floating-point input: ``FP16``/``FP32``/``FP64`` (FP64 is rounded; a value
  out of range becomes infinite and falls under the NaN/inf policy), ``BOOL``,
  and every integer type whose values are all exactly representable (``INT8``,
  ``INT16``, ``UINT8``, ``UINT16`` always; ``INT32``, ``INT64``, ``UINT32``,
  ``UINT64`` when every value is at most 2**24 in magnitude for float32 inputs,
  2**53 for float64 ones);
- to an integer input: ``BOOL`` and integer types whose values fit its range;
- ``BYTES`` and ``BF16`` are refused.

JSON ``data`` may be flat (row-major) or nested; its element count must equal the
product of ``shape``. Binary data is little-endian, row-major, exactly
``binary_data_size`` bytes per tensor, in the order of ``inputs``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

import runtime

from .errors import BadRequestError, InvalidInputError, PayloadTooLargeError
from .inference import Limits, check_finite, decode_tensor, encode_tensor

__all__ = [
    "DATATYPES",
    "DecodedRequest",
    "datatype_of",
    "decode_inputs",
    "encode_outputs",
    "split_body",
]

#: OIP datatype name -> numpy dtype (little-endian), for the types this service reads.
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}
_UNSUPPORTED = {"BYTES", "BF16"}


def datatype_of(dtype: np.dtype) -> str:
    """The OIP datatype name of a numpy dtype (``float32`` -> ``FP32``)."""
    dtype = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).itemsize > 1 else np.dtype(dtype)
    for name, candidate in DATATYPES.items():
        if candidate == dtype:
            return name
    raise ValueError(f"no Open Inference Protocol datatype for numpy dtype {dtype}")


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """Split a request body into its JSON part and the binary tensor data after it."""
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 <= length <= len(body):
        raise BadRequestError(
            f"Inference-Header-Content-Length is {header_length!r}; it must be the byte "
            f"length of the JSON header, between 0 and the body length {len(body)}"
        )
    return body[:length], body[length:]


@dataclass(frozen=True)
class DecodedRequest:
    """An inference request made ready for the model."""

    feeds: dict[str, np.ndarray]
    outputs: list[str] | None  # None: the model's declared outputs
    binary: dict[str, bool]  # output name -> answer as binary data
    binary_default: bool


def decode_inputs(
    model: runtime.Model,
    model_name: str,
    request: Mapping[str, Any],
    binary: bytes,
    limits: Limits,
) -> DecodedRequest:
    """Check and convert the ``inputs`` (and read ``outputs``) of a validated request."""
    specs = {spec.name: spec for spec in model.inputs}
    feeds: dict[str, np.ndarray] = {}
    offset = total = 0
    for tensor in request["inputs"]:
        name = tensor["name"]
        if name in feeds:
            raise BadRequestError(f"input {name!r} is given twice")
        spec = specs.get(name)
        if spec is None:
            raise BadRequestError(
                f"unexpected input {name!r} for model {model_name!r}; its inputs are "
                + ", ".join(repr(s) for s in specs)
            )
        shape = [int(s) for s in tensor["shape"]]
        count = math.prod(shape)
        if any(size > limits.max_elements for size in shape):  # even when count is 0
            raise PayloadTooLargeError(
                f"input {name!r} has shape {shape}; an axis longer than {limits.max_elements} "
                f"(max_elements) is not accepted"
            )
        if shape and shape[0] > limits.max_batch_size:
            raise PayloadTooLargeError(
                f"input {name!r} has {shape[0]} rows; at most {limits.max_batch_size} rows "
                f"are accepted per request (max_batch_size): split the batch"
            )
        total += count
        if total > limits.max_elements:
            raise PayloadTooLargeError(
                f"the request holds more than {limits.max_elements} numbers "
                f"(max_elements); send a smaller batch"
            )
        datatype = str(tensor["datatype"]).upper()
        wire = DATATYPES.get(datatype)
        if wire is None:
            hint = "not supported by this service" if datatype in _UNSUPPORTED else "unknown"
            raise BadRequestError(
                f"input {name!r}: datatype {tensor['datatype']!r} is {hint}; send "
                f"{datatype_of(spec.dtype)} (or a type that converts safely: "
                + ", ".join(DATATYPES) + ")"
            )
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            array, offset = _read_binary(name, binary, offset, size, wire, shape, count)
        else:
            array = _read_json(name, tensor.get("data"), wire, datatype, shape, count)
        feeds[name] = _convert(name, array, datatype, spec.dtype, limits.allow_nonfinite)
    if offset != len(binary):
        raise BadRequestError(
            f"{len(binary) - offset} bytes of binary data follow the JSON header but no input "
            f"claims them (binary_data_size of the inputs adds up to {offset})"
        )
    missing = [name for name in specs if name not in feeds]
    if missing:
        raise BadRequestError(
            f"model {model_name!r} needs input(s) {', '.join(map(repr, missing))}; got "
            + (", ".join(repr(n) for n in feeds) or "none")
        )
    return _decode_outputs(request, feeds)


def _decode_outputs(request: Mapping[str, Any], feeds: dict[str, np.ndarray]) -> DecodedRequest:
    parameters = request.get("parameters") or {}
    default = bool(parameters.get("binary_data_output", False))
    requested = request.get("outputs")
    binary: dict[str, bool] = {}
    names: list[str] | None = None
    if requested:
        names = []
        for output in requested:
            params = output.get("parameters") or {}
            if params.get("classification"):
                raise BadRequestError(
                    f"output {output['name']!r}: the classification extension is not "
                    f"supported; use POST /v1/models/{{name}}:predict for class labels"
                )
            names.append(output["name"])
            binary[output["name"]] = bool(params.get("binary_data", default))
    return DecodedRequest(feeds=feeds, outputs=names, binary=binary, binary_default=default)


def _read_binary(
    name: str, binary: bytes, offset: int, size: Any, wire: np.dtype, shape: list[int], count: int
) -> tuple[np.ndarray, int]:
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadRequestError(f"input {name!r}: binary_data_size must be a byte count, got {size!r}")
    if size != count * wire.itemsize:
        raise BadRequestError(
            f"input {name!r}: binary_data_size is {size} bytes, but shape {shape} of "
            f"{wire.itemsize}-byte elements needs {count * wire.itemsize}"
        )
    if offset + size > len(binary):
        raise BadRequestError(
            f"input {name!r}: expected {size} bytes of binary data, only "
            f"{len(binary) - offset} follow the JSON header"
        )
    array = np.frombuffer(binary, dtype=wire, count=count, offset=offset).reshape(shape)
    return array, offset + size


def _read_json(
    name: str, data: Any, wire: np.dtype, datatype: str, shape: list[int], count: int
) -> np.ndarray:
    if data is None:
        raise BadRequestError(
            f"input {name!r} has neither 'data' nor parameters.binary_data_size"
        )
    try:
        array = decode_tensor(name, data)
    except InvalidInputError as exc:
        raise BadRequestError(exc.message) from None
    if array.size != count:
        raise BadRequestError(
            f"input {name!r}: shape {shape} needs {count} elements, 'data' has {array.size}"
        )
    if wire.kind == "b" and array.dtype.kind != "b":
        raise BadRequestError(f"input {name!r}: datatype BOOL needs true/false values")
    if wire.kind in "iu":
        if array.dtype.kind == "f" and not np.all(np.isfinite(array) & (array == np.round(array))):
            raise BadRequestError(
                f"input {name!r}: datatype {datatype} needs integers, 'data' has fractions"
            )
        info = np.iinfo(wire)
        # A float64 array holds integers only up to 2**53: compare with the exclusive
        # power-of-two bound, since info.max (2**64 - 1, 2**63 - 1) rounds up to it.
        top = 2.0 ** (info.bits - (info.min < 0)) if array.dtype.kind == "f" else info.max + 1
        if array.size and (array.min() < info.min or array.max() >= top):
            raise BadRequestError(
                f"input {name!r}: a value is outside the {datatype} range [{info.min}, {info.max}]"
            )
    if wire.kind == "f":  # keep full precision: the model conversion checks overflow
        return array.astype(np.float64).reshape(shape)
    return array.astype(wire).reshape(shape)


def _convert(
    name: str, array: np.ndarray, datatype: str, target: np.dtype, allow_nonfinite: bool
) -> np.ndarray:
    """``array`` (typed as ``datatype``) as ``target`` when that is safe (module docstring)."""
    if array.dtype.kind == "f" and not allow_nonfinite:
        check_finite(name, array, array, None, error=BadRequestError)
    if target.kind == "f":
        if array.dtype.kind in "iu" and array.dtype.itemsize >= 4 and array.size:
            exact = 2 ** (np.finfo(target).nmant + 1)
            if int(np.abs(array.astype(np.float64)).max()) > exact:
                raise BadRequestError(
                    f"input {name!r}: {datatype} values above {exact} in magnitude cannot be "
                    f"converted exactly to {target.name}; send {datatype_of(target)}"
                )
        with np.errstate(over="ignore", invalid="ignore"):
            cast = array.astype(target)
        if not allow_nonfinite and array.dtype.kind == "f":
            check_finite(name, cast, array, target, error=BadRequestError)
        return cast
    if array.dtype.kind == "f":
        raise BadRequestError(
            f"input {name!r} is {datatype}, but the model takes {datatype_of(target)}: "
            f"floating-point data is not converted to integers"
        )
    if array.size and array.dtype.kind in "iu":
        info = np.iinfo(target)
        if array.min() < info.min or array.max() > info.max:
            raise BadRequestError(
                f"input {name!r}: a value is outside the {datatype_of(target)} range"
            )
    return array.astype(target)


def encode_outputs(
    results: Mapping[str, np.ndarray], decoded: DecodedRequest
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Response ``outputs`` entries, and the binary chunks to append (in the same order)."""
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, value in results.items():
        value = np.ascontiguousarray(value)
        entry: dict[str, Any] = {
            "name": name,
            "datatype": datatype_of(value.dtype),
            "shape": list(value.shape),
        }
        if decoded.binary.get(name, decoded.binary_default):
            raw = value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = encode_tensor(value.reshape(-1))
        entries.append(entry)
    return entries, chunks
