"""Elementwise functions and merge functions, by the names a bundle stores them under.

Every function keeps its input's dtype (float32 stays float32) and is written so that
no input, however large, overflows an intermediate (sigmoid, softplus, elu, selu).

>>> import numpy as np
>>> f = get_nonlinearity({"name": "leaky_rectify", "leakiness": 0.1})
>>> f
leaky_rectify(leakiness=0.1)
>>> f(np.array([-2.0, 3.0], dtype=np.float32))
array([-0.2,  3. ], dtype=float32)

A function that is not one of these names is stored as ``{"name": "program",
"program": {...}}``: the user's PyTensor graph lowered to numpy operations, run by
:class:`runtime.program.Program` (see ``docs/lowering.md``).
"""
import numpy as np

from .errors import BundleError

__all__ = ["get_nonlinearity", "get_merge_function", "NONLINEARITIES", "MERGE_FUNCTIONS"]


def linear(x):
    return x


def rectify(x):
    return np.maximum(x, 0)


def leaky_rectify(x, leakiness):
    if 0 <= leakiness <= 1:  # the same values, several times faster than np.where
        return np.maximum(x, x * leakiness)
    return np.where(x > 0, x, x * leakiness)


def sigmoid(x):
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def hard_sigmoid(x):
    return np.clip(x * 0.2 + 0.5, 0, 1)


def scaled_tanh(x, scale_in, scale_out):
    return scale_out * np.tanh(scale_in * x)


def softmax(x):
    """Softmax over the last axis, with the row maximum subtracted first."""
    with np.errstate(over="ignore"):  # x - max may round to -inf, whose exp is 0
        e = np.exp(x - np.max(x, axis=-1, keepdims=True, initial=-np.inf))
    return e / np.sum(e, axis=-1, keepdims=True)


def elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def selu(x, scale, scale_neg):
    return scale * np.where(x > 0, x, scale_neg * np.expm1(np.minimum(x, 0)))


def softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


#: name -> (function, names of its parameters, in the order of the bundle's table)
NONLINEARITIES = {
    "linear": (linear, ()),
    "rectify": (rectify, ()),
    "leaky_rectify": (leaky_rectify, ("leakiness",)),
    "sigmoid": (sigmoid, ()),
    "ultra_fast_sigmoid": (sigmoid, ()),  # exact on both sides of the export
    "hard_sigmoid": (hard_sigmoid, ()),
    "tanh": (np.tanh, ()),
    "scaled_tanh": (scaled_tanh, ("scale_in", "scale_out")),
    "softmax": (softmax, ()),
    "elu": (elu, ()),
    "selu": (selu, ("scale", "scale_neg")),
    "softplus": (softplus, ()),
    "exp": (np.exp, ()),
    "log": (np.log, ()),
    "sqrt": (np.sqrt, ()),
    "abs": (np.abs, ()),
    "sqr": (np.square, ()),
}

#: name -> binary ufunc; ``ElemwiseMergeLayer`` folds its inputs left to right.
MERGE_FUNCTIONS = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "true_div": np.true_divide,
    "maximum": np.maximum, "minimum": np.minimum,
}


class Nonlinearity:
    """A named function with its parameters bound; ``repr`` shows how it was stored."""

    __slots__ = ("name", "params", "_function")

    def __init__(self, name, function, params):
        self.name, self.params, self._function = name, params, function

    def __call__(self, x):
        return self._function(x, **self.params)

    def __repr__(self):
        args = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{self.name}({args})" if args else self.name


def get_nonlinearity(spec):
    """Build the function a ``{"name": ..., <parameters>}`` object describes.

    Raises :class:`BundleError` for an unknown name, or missing, extra or non-numeric
    parameters.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise BundleError(f"a nonlinearity must be an object with a 'name', got {spec!r}")
    name = spec["name"]
    if name == "program":
        return _program(spec, "nonlinearity", 1)
    if name not in NONLINEARITIES:
        raise BundleError(f"unknown nonlinearity {name!r}; known: "
                          f"{', '.join(sorted(NONLINEARITIES))}")
    function, wanted = NONLINEARITIES[name]
    params = {key: value for key, value in spec.items() if key != "name"}
    if set(params) != set(wanted):
        raise BundleError(f"nonlinearity {name!r} takes parameters "
                          f"{list(wanted)}, got {sorted(params)}")
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BundleError(f"nonlinearity {name!r}: {key} must be a number, "
                              f"got {value!r}")
    return Nonlinearity(name, function, {key: float(params[key]) for key in wanted})


def _program(spec, what, num_inputs):
    from .program import Program

    if set(spec) != {"name", "program"}:
        raise BundleError(f"a program {what} takes the keys name and program, got "
                          f"{sorted(spec)}")
    program = Program(spec["program"], what)
    if program.num_inputs != num_inputs:
        raise BundleError(f"a program {what} takes {num_inputs} input(s), this one "
                          f"takes {program.num_inputs}")
    return program


def get_merge_function(name):
    """The binary ufunc stored as ``name`` (``"add"``, ``"mul"``, ...), or the
    two-input program stored as ``{"name": "program", "program": {...}}``."""
    if isinstance(name, dict) and name.get("name") == "program":
        return _program(name, "merge_function", 2)
    if not isinstance(name, str) or name not in MERGE_FUNCTIONS:
        raise BundleError(f"unknown merge_function {name!r}; known: "
                          f"{', '.join(MERGE_FUNCTIONS)}")
    return MERGE_FUNCTIONS[name]
