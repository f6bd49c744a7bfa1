"""runtime.layers.special against numpy references."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import BundleError

from ..helpers import REFERENCE_NONLINEARITIES, build_layer, check_layer


@pytest.mark.parametrize("name", sorted(REFERENCE_NONLINEARITIES))
@pytest.mark.parametrize("type_name, key", [("NonlinearityLayer", "nonlinearity"),
                                            ("ExpressionLayer", "function")])
def test_elementwise_layers_apply_the_function(type_name, key, name):
    spec, reference = REFERENCE_NONLINEARITIES[name]
    data = np.random.default_rng(1).standard_normal((3, 5)).astype("f4")
    if name in ("log", "sqrt"):
        data = np.abs(data) + 0.1
    check_layer(type_name, {key: spec}, {}, None, reference, data=[data])


def test_expression_layer_refuses_an_unknown_function():
    with pytest.raises(BundleError, match=r"layer 'layer' \(ExpressionLayer\): unknown "
                                          r"nonlinearity 'lambda'"):
        build_layer("ExpressionLayer", {"function": {"name": "lambda"}})


@st.composite
def shared_axes_setups(draw):
    ndim = draw(st.integers(1, 4))
    shape = draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim))
    shared = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    return shape, sorted(shared) if draw(st.booleans()) else shared


@pytest.mark.parametrize("type_name, key, combine", [
    ("BiasLayer", "b", np.add), ("ScaleLayer", "scales", np.multiply)])
class TestBiasAndScale:
    @settings(max_examples=30, deadline=None)
    @given(setup=shared_axes_setups(), dtype=st.sampled_from(["float32", "float64"]),
           seed=st.integers(0, 1000))
    def test_random_configurations(self, type_name, key, combine, setup, dtype, seed):
        shape, shared = setup
        rng = np.random.default_rng(seed)
        param = rng.standard_normal([s for a, s in enumerate(shape) if a not in shared])
        param = param.astype(dtype)
        data = rng.standard_normal(shape).astype(dtype)
        expected = combine(data.astype("f8"), np.expand_dims(param, tuple(sorted(shared))))
        check_layer(type_name, {"shared_axes": shared}, {key: param}, None,
                    lambda x: expected, data=[data], dtype=dtype,
                    declared=[[None] * len(shape)])

    def test_lasagne_default_sharing(self, type_name, key, combine):
        param = np.arange(3, dtype="f4")  # one value per channel, shared over batch and space
        data = np.ones((2, 3, 4, 5), "f4")
        check_layer(type_name, {"shared_axes": [0, 2, 3]}, {key: param}, None,
                    lambda x: combine(x, param[:, None, None]), data=[data])

    @pytest.mark.parametrize("shared", [[3], [0, 0], [-1], "auto", [True]])
    def test_bad_shared_axes(self, type_name, key, combine, shared):
        with pytest.raises(BundleError, match="shared_axes must be a list of distinct axes"):
            build_layer(type_name, {"shared_axes": shared}, {key: np.zeros((2, 3))})

    def test_input_that_does_not_fit(self, type_name, key, combine):
        layer = build_layer(type_name, {"shared_axes": [0]}, {key: np.zeros(3)})
        for bad in (np.zeros((2, 4)), np.zeros((2, 1)), np.zeros((2, 3, 1))):
            with pytest.raises(ValueError, match=rf"{key} of shape \(1, 3\) \(1 on shared axes "
                                                 rf"\(0,\)\) does not fit"):
                layer(bad)
