"""Hypothesis strategies shared by the parity tests."""
import numpy as np
import pytensor
import pytensor.tensor as T
from hypothesis import HealthCheck, strategies as st

from forge import nonlinearities as nl

# bundle_path hands out a fresh file per call, so sharing it across examples is safe
SETTINGS = dict(max_examples=30, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def fn_id(fn):
    """A stable test id for a callable (repr has a memory address; xdist needs equal ids)."""
    return getattr(fn, "__name__", None) or type(fn).__name__

ELEMENTWISE = [
    nl.linear, nl.identity, nl.rectify, nl.sigmoid, nl.ultra_fast_sigmoid, nl.tanh,
    nl.elu, nl.softplus, nl.selu, nl.leaky_rectify, nl.very_leaky_rectify,
    nl.LeakyRectify(0.3), nl.ScaledTanH(0.5, 2.4), nl.SELU(1.2, 1.5), None,
    T.tanh, T.sigmoid, T.softplus, T.abs, T.sqr,
]


def nonlinearities(ndim):
    """Elementwise nonlinearities, plus softmax where the output is 2-D."""
    choices = list(ELEMENTWISE) + ([nl.softmax] if ndim == 2 else [])
    return st.sampled_from(choices)


def shapes(min_dims=1, max_dims=3, min_side=1, max_side=5):
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims)


def parameter(draw, shape, rng, allow_expression=True):
    """A parameter spec: an array, a shared variable or an expression over shared ones."""
    kind = draw(st.sampled_from(["array", "shared", "exp", "dot"] if allow_expression
                                else ["array", "shared"]))
    value = (0.5 * rng.standard_normal(shape)).astype(np.float32)
    if kind == "array":
        return value
    if kind == "shared":
        return pytensor.shared(value)
    if kind == "exp" or len(shape) != 2:
        return T.exp(pytensor.shared(value))
    k = 3
    w1 = pytensor.shared((0.5 * rng.standard_normal((shape[0], k))).astype(np.float32))
    w2 = pytensor.shared((0.5 * rng.standard_normal((k, shape[1]))).astype(np.float32))
    return T.dot(w1, w2)
