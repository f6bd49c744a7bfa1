"""Run a user function that ``forge.export`` lowered to a list of numpy operations.

A program (``docs/lowering.md``) is a JSON object::

    {"inputs": [{"ndim": 2, "dtype": "float32"}],
     "code": [{"op": "constant", "inputs": [], "attrs": {"shape": [], "value": 0.5},
               "dtype": "float32"},
              {"op": "mul", "inputs": [0, 1], "attrs": {}, "dtype": "float32"}],
     "output": 2}

Slots ``0 .. len(inputs) - 1`` hold the inputs; instruction ``j`` writes slot
``len(inputs) + j`` and reads only earlier slots. Every result is cast to the
instruction's ``dtype``, so float32 stays float32 throughout. :class:`Program` checks all
of it when the bundle loads.

>>> import numpy as np
>>> p = Program({"inputs": [{"ndim": 1, "dtype": "float32"}], "output": 2, "code": [
...     {"op": "constant", "inputs": [], "attrs": {"shape": [], "value": 0.5},
...      "dtype": "float32"},
...     {"op": "mul", "inputs": [0, 1], "attrs": {}, "dtype": "float32"}]})
>>> p(np.array([2.0, -4.0], dtype=np.float32))
array([ 1., -2.], dtype=float32)
"""
import base64
import functools

import numpy as np

from .bundle import array_digest
from .errors import BundleError

__all__ = ["Program", "OPS"]

DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float32", "float64")


# -- operations that numpy lacks -----------------------------------------------------

def _sigmoid(x):
    e = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


def _erfc(x):
    """erfc in float64: a Chebyshev fit (relative error < 1.2e-7) for |x| >= 0.5, and
    1 - erf from the Taylor series (13 terms, exact to float64 rounding) below."""
    z = np.abs(np.asarray(x, dtype=np.float64))
    t = 1 / (1 + 0.5 * z)
    poly = 0.17087277
    for c in (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418,
              0.37409196, 1.00002368, -1.26551223):
        poly = c + t * poly
    big = t * np.exp(-z * z + poly)
    big = np.where(np.asarray(x) < 0, 2 - big, big)
    return np.where(z < 0.5, 1 - _erf_series(x), big)


def _erf_series(x):
    x = np.asarray(x, dtype=np.float64)
    term, total = x, x.copy()
    for n in range(1, 13):  # sum (-1)^n x^(2n+1) / (n! (2n+1))
        term = term * (-x * x) / n
        total = total + term / (2 * n + 1)
    return total * (2 / np.sqrt(np.pi))


def _erf(x):
    return np.where(np.abs(x) < 0.5, _erf_series(x), 1 - _erfc(x))


def _log1mexp(x):  # log(1 - exp(x)) for x <= 0
    return np.where(x < -np.log(2), np.log1p(-np.exp(x)), np.log(-np.expm1(x)))


def _round_half_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _fold(ufunc):
    return lambda *xs: functools.reduce(ufunc, xs)


def _reduce(np_function, accumulates):
    def run(x, axes, acc_dtype=None):
        axis = None if axes is None else tuple(axes)
        return np_function(x, axis=axis, **({"dtype": acc_dtype} if accumulates else {}))
    return run


def _dimshuffle(x, order):
    kept = [a for a in order if a != "x"]
    dropped = [a for a in range(x.ndim) if a not in kept]
    if any(x.shape[a] != 1 for a in dropped):
        raise ValueError(f"dimshuffle {order} drops axes {dropped} of an input of shape "
                         f"{x.shape}; dropped axes must have size 1")
    return np.transpose(x, kept + dropped).reshape(
        [1 if a == "x" else x.shape[a] for a in order])


def _subtensor(x, *positions, index):
    values = (None, *positions)  # index entries count instruction inputs from 1

    def item(k):
        return None if k is None else values[k]

    return x[tuple(slice(*map(item, e)) if isinstance(e, list) else values[e]
                   for e in index)]


def _constant(value):
    return lambda: value


# -- attribute checks: each returns the value to pass on, or raises ValueError ----------

def _is_int(v, low=None):
    return isinstance(v, int) and not isinstance(v, bool) and (low is None or v >= low)


def _want(ok, what, value):
    if not ok:
        raise ValueError(f"{what}, got {value!r:.80}")
    return value


def _axes(v):
    return _want(v is None or (isinstance(v, list) and all(map(_is_int, v))
                               and len(set(v)) == len(v)),
                 "axes must be null or a list of distinct ints", v)


def _axis(v):
    return _want(v is None or _is_int(v), "axis must be null or an int", v)


def _int(v):
    return _want(_is_int(v, 0), "must be an int >= 0", v)


def _dtype(v):
    return _want(v is None or v in DTYPES, f"acc_dtype must be null or one of {DTYPES}", v)


def _order(v):
    ok = isinstance(v, list) and all(a == "x" or _is_int(a, 0) for a in v)
    kept = [a for a in v if a != "x"] if ok else []
    return _want(ok and len(set(kept)) == len(kept),
                 "order must be a list of distinct ints >= 0 and 'x'", v)


def _index(v):
    def pos(k, allow_none):
        return (allow_none and k is None) or _is_int(k, 1)
    return _want(isinstance(v, list) and all(
        pos(e, False) or (isinstance(e, list) and len(e) == 3 and all(pos(k, True) for k in e))
        for e in v), "index must be a list of input positions (ints >= 1) and "
        "[start, stop, step] lists of positions or null", v)


# name -> (function, (min inputs, max inputs or None), {attribute: check})
_UNARY = {
    "neg": np.negative, "exp": np.exp, "log": np.log, "log1p": np.log1p,
    "expm1": np.expm1, "sqrt": np.sqrt, "abs": np.abs, "tanh": np.tanh,
    "sigmoid": _sigmoid, "softplus": _softplus, "sign": np.sign, "floor": np.floor,
    "ceil": np.ceil, "trunc": np.trunc, "round_half_even": np.round,
    "round_half_away": _round_half_away, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan, "sinh": np.sinh,
    "cosh": np.cosh, "arcsinh": np.arcsinh, "arccosh": np.arccosh, "arctanh": np.arctanh,
    "exp2": np.exp2, "log2": np.log2, "log10": np.log10, "sqr": np.square,
    "reciprocal": np.reciprocal, "erf": _erf, "erfc": _erfc, "log1mexp": _log1mexp,
    "invert": np.invert, "isnan": np.isnan, "isinf": np.isinf, "cast": np.asarray,
    "identity": np.asarray, "shape": lambda x: np.array(x.shape, dtype=np.int64),
}
_BINARY = {
    "sub": np.subtract, "true_div": np.true_divide, "int_div": np.floor_divide,
    "mod": np.mod, "pow": np.power, "maximum": np.maximum, "minimum": np.minimum,
    "arctan2": np.arctan2, "lt": np.less, "gt": np.greater, "le": np.less_equal,
    "ge": np.greater_equal, "eq": np.equal, "neq": np.not_equal, "and": np.bitwise_and,
    "or": np.bitwise_or, "xor": np.bitwise_xor, "dot": np.dot, "matmul": np.matmul,
    "reshape": lambda x, shape: np.reshape(x, tuple(int(s) for s in shape)),
    "second": lambda a, b: np.broadcast_to(b, np.broadcast_shapes(a.shape, b.shape)),
}
OPS = {
    **{name: (f, (1, 1), {}) for name, f in _UNARY.items()},
    **{name: (f, (2, 2), {}) for name, f in _BINARY.items()},
    "add": (_fold(np.add), (1, None), {}),
    "mul": (_fold(np.multiply), (1, None), {}),
    "clip": (np.clip, (3, 3), {}),
    "switch": (np.where, (3, 3), {}),
    "sum": (_reduce(np.sum, True), (1, 1), {"axes": _axes, "acc_dtype": _dtype}),
    "prod": (_reduce(np.prod, True), (1, 1), {"axes": _axes, "acc_dtype": _dtype}),
    "max": (_reduce(np.max, False), (1, 1), {"axes": _axes}),
    "min": (_reduce(np.min, False), (1, 1), {"axes": _axes}),
    "all": (_reduce(np.all, False), (1, 1), {"axes": _axes}),
    "any": (_reduce(np.any, False), (1, 1), {"axes": _axes}),
    "argmax": (lambda x, axis: np.argmax(x, axis=axis), (1, 1), {"axis": _axis}),
    "softmax": (_softmax, (1, 1), {"axis": _axis}),
    "log_softmax": (_log_softmax, (1, 1), {"axis": _axis}),
    "dimshuffle": (_dimshuffle, (1, 1), {"order": _order}),
    "subtensor": (_subtensor, (1, None), {"index": _index}),
    "join": (lambda *xs, axis: np.concatenate(xs, axis=axis), (1, None), {"axis": _axis}),
    "alloc": (lambda v, *dims: np.broadcast_to(v, tuple(int(d) for d in dims)), (1, None), {}),
    "shape_i": (lambda x, i: np.int64(x.shape[i]), (1, 1), {"i": _int}),
    "make_vector": (lambda *xs: np.stack(xs) if xs else np.zeros(0), (0, None), {}),
    "constant": (None, (0, 0), {}),  # built by _decode_constant
}


def _decode_constant(attrs, dtype):
    """The array a ``constant`` instruction holds: ``value`` (a nested JSON list or a
    number) or ``data`` (base64 of the little-endian bytes) with its ``sha256``."""
    shape = attrs.get("shape")
    _want(isinstance(shape, list) and all(_is_int(s, 0) for s in shape),
          "shape must be a list of ints >= 0", shape)
    keys = {"shape", "value"} if "value" in attrs else {"shape", "data", "sha256"}
    _want(set(attrs) == keys, "a constant takes shape and value, or shape, data and "
          "sha256", sorted(attrs))
    if "value" in attrs:
        _want(isinstance(attrs["value"], (int, float, list)), "value must be a number or "
              "a nested list", attrs["value"])
        try:
            value = np.array(attrs["value"], dtype=dtype)
        except (TypeError, ValueError, OverflowError):
            _want(False, f"value must be a number or a nested list of {dtype}",
                  attrs["value"])
    else:
        data = _want(isinstance(attrs["data"], str), "data must be a base64 string",
                     attrs["data"])
        value = np.frombuffer(base64.b64decode(data), dtype=np.dtype(dtype).newbyteorder("<"))
        value = value.astype(dtype)
        _want(value.size == np.prod(shape), f"data must hold {np.prod(shape)} values",
              value.size)
        _want(array_digest(value) == attrs["sha256"], "data must match its sha256",
              attrs["sha256"])
    _want(value.size == np.prod(shape) and (value.ndim == len(shape) or "data" in attrs),
          f"value must have shape {shape}", list(value.shape))
    value = value.reshape(shape)
    value.flags.writeable = False
    return value


def _check_input(spec):
    _want(isinstance(spec, dict) and set(spec) == {"ndim", "dtype"} and _is_int(
        spec.get("ndim"), 0) and spec.get("dtype") in DTYPES,
          "each input must be {\"ndim\": int >= 0, \"dtype\": name}", spec)
    return spec["ndim"], np.dtype(spec["dtype"])


def _compile(spec):
    _want(isinstance(spec, dict) and set(spec) == {"inputs", "code", "output"},
          "a program is an object with keys inputs, code and output",
          sorted(spec) if isinstance(spec, dict) else spec)
    _want(isinstance(spec["inputs"], list) and spec["inputs"],
          "inputs must be a non-empty list", spec["inputs"])
    _want(isinstance(spec["code"], list), "code must be a list", spec["code"])
    inputs = [_check_input(s) for s in spec["inputs"]]
    steps, slots = [], len(inputs)
    for j, ins in enumerate(spec["code"]):
        try:
            steps.append(_compile_instruction(ins, slots))
        except ValueError as exc:
            raise ValueError(f"instruction {j} (slot {slots}): {exc}") from None
        slots += 1
    _want(_is_int(spec["output"], 0) and spec["output"] < slots,
          f"output must be a slot in [0, {slots})", spec["output"])
    return inputs, steps, spec["output"]


def _compile_instruction(ins, slots):
    _want(isinstance(ins, dict) and set(ins) == {"op", "inputs", "attrs", "dtype"},
          "an instruction is an object with keys op, inputs, attrs and dtype", ins)
    name, refs, attrs, dtype = ins["op"], ins["inputs"], ins["attrs"], ins["dtype"]
    _want(isinstance(name, str) and name in OPS,
          f"unknown op; known: {', '.join(sorted(OPS))}", name)
    function, (low, high), checks = OPS[name]
    _want(dtype in DTYPES, f"dtype must be one of {', '.join(DTYPES)}", dtype)
    _want(isinstance(refs, list) and all(_is_int(r, 0) and r < slots for r in refs),
          f"inputs must be a list of earlier slots (ints in [0, {slots}))", refs)
    _want(low <= len(refs) and (high is None or len(refs) <= high),
          f"op {name!r} takes {low} to {high or 'any number of'} inputs", len(refs))
    _want(isinstance(attrs, dict), "attrs must be an object", attrs)
    if name == "constant":
        return _constant(_decode_constant(attrs, dtype)), (), np.dtype(dtype)
    optional = {"acc_dtype"}
    missing = [k for k in checks if k not in attrs and k not in optional]
    _want(not missing and set(attrs) <= set(checks),
          f"op {name!r} takes attrs {sorted(checks)}", sorted(attrs))
    bound = {key: checks[key](value) for key, value in attrs.items()}
    if name == "subtensor":
        flat = [k for e in bound["index"] for k in (e if isinstance(e, list) else [e])]
        _want(all(k is None or k < len(refs) for k in flat),
              f"index positions must be < {len(refs)} (the number of inputs)", flat)
    return functools.partial(function, **bound), tuple(refs), np.dtype(dtype)


class Program:
    """A validated program: call it with one array per input.

    Parameters
    ----------
    spec : dict
        The program as stored in the bundle.
    where : str
        Who holds it (``"layer 'dense_1' (DenseLayer) nonlinearity"``), for messages.

    Raises
    ------
    BundleError
        An unknown op, a reference to a later slot, a missing or malformed attribute, a
        constant that does not match its shape or sha256: anything that is not a
        well-formed program.
    """

    def __init__(self, spec, where="program"):
        try:
            self._inputs, self._steps, self._output = _compile(spec)
        except ValueError as exc:
            raise BundleError(f"{where}: malformed program: {exc}") from None
        self.spec, self.where = spec, where

    @property
    def num_inputs(self):
        """int: how many arrays a call takes."""
        return len(self._inputs)

    def __call__(self, *xs):
        if len(xs) != len(self._inputs):
            raise ValueError(f"{self.where}: takes {len(self._inputs)} input(s), got {len(xs)}")
        values = []
        for k, (x, (ndim, dtype)) in enumerate(zip(xs, self._inputs)):
            x = np.asarray(x)
            if x.ndim != ndim:
                raise ValueError(f"{self.where}: input {k} must have {ndim} axes (the rank "
                                 f"it was exported for), got shape {x.shape}")
            values.append(x)
        with np.errstate(all="ignore"):  # inf and nan propagate as in forge
            for function, refs, dtype in self._steps:
                out = np.asarray(function(*[values[r] for r in refs]))
                values.append(out if out.dtype == dtype else out.astype(dtype))
        return np.require(values[self._output], requirements=("C", "W", "O"))

    def __repr__(self):
        return f"program({len(self._steps)} instructions)"
