"""runtime.nonlinearities against float64 references written from the definitions."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from runtime import BundleError
from runtime.nonlinearities import (MERGE_FUNCTIONS, NONLINEARITIES, get_merge_function,
                                    get_nonlinearity)

from .helpers import REFERENCE_NONLINEARITIES

EXTREMES = np.array([-1e4, -100, -88.7, -20, -1, -1e-8, 0, 1e-8, 1, 20, 88.7, 100, 1e4])
POSITIVE_ONLY = {"log", "sqrt"}
STABLE = {"linear", "rectify", "leaky_rectify", "sigmoid", "ultra_fast_sigmoid",
          "hard_sigmoid", "tanh", "scaled_tanh", "softmax", "elu", "selu", "softplus", "abs"}


def test_every_contract_name_is_implemented_and_tested():
    assert set(NONLINEARITIES) == set(REFERENCE_NONLINEARITIES)
    assert set(MERGE_FUNCTIONS) == {"add", "sub", "mul", "true_div", "maximum", "minimum"}


def values(name, dtype):
    x = np.concatenate([EXTREMES, np.random.default_rng(0).standard_normal(50) * 5])
    x = np.abs(x) + 1e-3 if name in POSITIVE_ONLY else x
    return x.reshape(-1, 7 if name == "softmax" else 1).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(REFERENCE_NONLINEARITIES))
def test_matches_reference_and_keeps_dtype(name, dtype):
    spec, reference = REFERENCE_NONLINEARITIES[name]
    x = values(name, dtype)
    with np.errstate(over="ignore"):
        got = get_nonlinearity(spec)(x)
    assert got.dtype == np.dtype(dtype) and got.shape == x.shape
    tolerance = dict(rtol=2e-6, atol=1e-7) if dtype == "float32" else dict(rtol=1e-12, atol=1e-15)
    with np.errstate(over="ignore"):
        expected = reference(x).astype(dtype)  # exp(100) is inf in float32
    np.testing.assert_allclose(got, expected, **tolerance)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", sorted(STABLE))
def test_stable_functions_never_overflow(name):
    spec, reference = REFERENCE_NONLINEARITIES[name]
    x = np.array([[-3e38, -1e4, 0, 1e4, 3e38]], dtype=np.float32)
    got = get_nonlinearity(spec)(x)
    assert np.isfinite(got).all() or name in {"linear", "abs", "rectify", "leaky_rectify",
                                              "elu", "selu", "softplus", "scaled_tanh"}
    assert not np.isnan(got).any()


def test_sigmoid_tails_are_exact():
    f = get_nonlinearity({"name": "sigmoid"})
    x = np.array([-80.0, -50.0, 50.0, 200.0], dtype=np.float32)
    np.testing.assert_allclose(f(x), [np.exp(-80.0), 1 / (1 + np.exp(50.0)), 1, 1], rtol=1e-6)


def test_softmax_rows_sum_to_one_for_large_logits():
    f = get_nonlinearity({"name": "softmax"})
    y = f(np.array([[1000.0, 1000.0, -1000.0]], dtype=np.float32))
    np.testing.assert_allclose(y, [[0.5, 0.5, 0.0]])


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(REFERENCE_NONLINEARITIES)),
       x=hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6),
                    elements=st.floats(-60, 60, width=32)))
def test_property_matches_reference(name, x):
    spec, reference = REFERENCE_NONLINEARITIES[name]
    if name in POSITIVE_ONLY:
        x = np.abs(x) + np.float32(1e-3)
    got = get_nonlinearity(spec)(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, reference(x), rtol=3e-6, atol=1e-6)


@pytest.mark.parametrize("spec, match", [
    ({"name": "swish"}, "unknown nonlinearity 'swish'; known: abs, elu, exp"),
    ("rectify", "must be an object with a 'name'"),
    ({"leakiness": 0.1}, "must be an object with a 'name'"),
    ({"name": "leaky_rectify"}, r"takes parameters \['leakiness'\], got \[\]"),
    ({"name": "rectify", "leakiness": 0.1}, r"takes parameters \[\], got \['leakiness'\]"),
    ({"name": "selu", "scale": 1.0}, r"takes parameters \['scale', 'scale_neg'\]"),
    ({"name": "scaled_tanh", "scale_in": "1", "scale_out": 1}, "scale_in must be a number"),
    ({"name": "leaky_rectify", "leakiness": True}, "leakiness must be a number"),
])
def test_bad_specs(spec, match):
    with pytest.raises(BundleError, match=match):
        get_nonlinearity(spec)


def test_repr_shows_the_stored_form():
    assert repr(get_nonlinearity({"name": "tanh"})) == "tanh"
    assert repr(get_nonlinearity({"name": "selu", "scale_neg": 2, "scale": 1})) == \
        "selu(scale=1.0, scale_neg=2.0)"


@pytest.mark.parametrize("name, reference", [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("true_div", lambda a, b: a / b), ("maximum", max), ("minimum", min),
])
def test_merge_functions(name, reference):
    a = np.array([1.5, -2.0, 3.0], dtype=np.float32)
    b = np.array([0.5, 4.0, -3.0], dtype=np.float32)
    got = get_merge_function(name)(a, b)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [reference(float(p), float(q)) for p, q in zip(a, b)])


@pytest.mark.parametrize("name", ["pow", None, ["add"]])
def test_unknown_merge_function(name):
    with pytest.raises(BundleError, match="unknown merge_function .*; known: add, sub, mul"):
        get_merge_function(name)
