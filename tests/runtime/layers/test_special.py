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


# -- rectifiers, inverse, spatial transformers -----------------------------------------

def test_parametric_rectifier_matches_numpy():
    alpha = np.array([0.1, -0.5, 2.0], "f4")
    check_layer("ParametricRectifierLayer", {"shared_axes": [0, 2]}, {"alpha": alpha},
                [(4, 3, 5)], lambda x: np.where(x > 0, x, alpha[:, None] * x))


def test_parametric_rectifier_all_shared():
    check_layer("ParametricRectifierLayer", {"shared_axes": [0, 1]},
                {"alpha": np.array(0.3, "f4")}, [(4, 3)], lambda x: np.where(x > 0, x, 0.3 * x))


def test_randomized_rectifier_uses_the_mean_slope():
    check_layer("RandomizedRectifierLayer", {"lower": 0.1, "upper": 0.5}, {}, [(4, 3)],
                lambda x: np.where(x > 0, x, np.float32(0.3) * x))


def test_randomized_rectifier_refuses_bad_bounds():
    with pytest.raises(BundleError, match="lower <= upper"):
        build_layer("RandomizedRectifierLayer", {"lower": 0.8, "upper": 0.1})


def _dense_entry(W, nonlinearity="linear"):
    return {"layer_type": "DenseLayer",
            "layer_config": {"num_units": W.shape[1], "num_leading_axes": 1,
                             "nonlinearity": {"name": nonlinearity}}}, {"W": W, "b": None}


@pytest.mark.parametrize("name, slope", [
    ("linear", lambda z: np.ones_like(z)), ("rectify", lambda z: (z > 0) * 1.0),
    ("tanh", lambda z: 1 - np.tanh(z) ** 2), ("softplus", lambda z: 1 / (1 + np.exp(-z))),
    ("elu", lambda z: np.where(z > 0, 1, np.exp(z))), ("exp", np.exp)])
def test_inverse_of_dense_is_the_transposed_jacobian(name, slope):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, 3)).astype("f4")
    x, g = rng.standard_normal((4, 5)).astype("f4"), rng.standard_normal((4, 3)).astype("f4")
    config, params = _dense_entry(W, name)
    layer = build_layer("InverseLayer", config, params, inputs=("g", "y", "x"))
    dense = build_layer("DenseLayer", config["layer_config"], params)
    got = layer(g, dense(x), x)
    np.testing.assert_allclose(got, (g * slope(x @ W)) @ W.T, rtol=1e-4, atol=1e-5)


def _numeric_pullback(forward, x, g, eps=1e-6):
    """``g`` pulled back through ``forward`` at ``x`` by central differences (the
    reference for InverseLayer: ``sum(g * d forward / d x)`` per element of ``x``)."""
    numeric = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        numeric[index] = np.sum(g * (forward(x + step) - forward(x - step))) / (2 * eps)
    return numeric


def test_inverse_of_max_pool_matches_finite_differences():
    rng = np.random.default_rng(3)
    config = {"pool_size": [2, 2], "stride": [1, 2], "pad": [1, 0], "ignore_border": True,
              "mode": "max"}
    pool = build_layer("Pool2DLayer", dict(config))
    inverse = build_layer("InverseLayer", {"layer_type": "Pool2DLayer", "layer_config": config},
                          {}, inputs=("g", "y", "x"))
    x = rng.standard_normal((1, 2, 4, 5))  # float64: exact finite differences
    g = rng.standard_normal(pool(x).shape)
    np.testing.assert_allclose(inverse(g, pool(x), x), _numeric_pullback(pool, x, g),
                               atol=1e-6)


_W = np.random.default_rng(5).standard_normal((3, 2, 2, 3))


@pytest.mark.parametrize("layer_type, config, params", [
    ("TransposedConv2DLayer", {"num_filters": 2, "filter_size": [2, 3], "stride": [2, 1],
                               "crop": [[1, 0], [0, 1]], "output_size": [None, None],
                               "num_groups": 1, "untie_biases": False, "flip_filters": False,
                               "nonlinearity": {"name": "tanh"}}, {"W": _W, "b": None}),
    ("Upscale2DLayer", {"scale_factor": [2, 3], "mode": "repeat"}, {}),
    ("Upscale2DLayer", {"scale_factor": [3, 2], "mode": "dilate"}, {}),
    ("DimshuffleLayer", {"pattern": [0, 3, "x", 1, 2]}, {}),
    ("PadLayer", {"width": [[1, 2], [0, 1]], "val": 1.5, "batch_ndim": 2}, {}),
    ("SliceLayer", {"axis": -2, "indices": {"start": 3, "stop": 0, "step": -2}}, {}),
    ("SliceLayer", {"axis": 1, "indices": 2}, {}),
    ("FeaturePoolLayer", {"pool_size": 2, "axis": -1, "pool_function": "max"}, {}),
    ("FeaturePoolLayer", {"pool_size": 2, "axis": 2, "pool_function": "mean"}, {}),
    ("GlobalPoolLayer", {"pool_function": "min"}, {}),
    ("GlobalPoolLayer", {"pool_function": "sum"}, {}),
])
def test_inverse_matches_finite_differences(layer_type, config, params):
    forward = build_layer(layer_type, dict(config), dict(params))
    inverse = build_layer("InverseLayer", {"layer_type": layer_type, "layer_config": config},
                          dict(params), inputs=("g", "y", "x"))
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 4, 4))  # float64: exact finite differences
    g = rng.standard_normal(forward(x).shape)
    np.testing.assert_allclose(inverse(g, forward(x), x), _numeric_pullback(forward, x, g),
                               atol=1e-6)


def test_inverse_refuses_what_it_cannot_invert():
    with pytest.raises(BundleError, match="layer_type 'FeatureWTALayer' cannot be inverted"):
        build_layer("InverseLayer", {"layer_type": "FeatureWTALayer", "layer_config": {}}, {},
                    inputs=("g", "y", "x"))
    config, params = _dense_entry(np.ones((2, 2), "f4"), "hard_sigmoid")
    with pytest.raises(BundleError, match="cannot invert through the nonlinearity"):
        build_layer("InverseLayer", config, params, inputs=("g", "y", "x"))


def test_transformer_identity_and_shift():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 5)).astype("f4")
    layer = build_layer("TransformerLayer", {"downsample_factor": [1, 1],
                                             "border_mode": "nearest"}, inputs=("x", "t"))
    identity = np.tile(np.array([1, 0, 0, 0, 1, 0], "f4"), (2, 1))
    np.testing.assert_allclose(layer(x, identity), x, atol=1e-6)
    shift = identity.copy()
    shift[:, 2] = 0.5  # a quarter of [-1, 1]: one pixel of 5 columns to the right
    np.testing.assert_allclose(layer(x, shift)[..., :-1], x[..., 1:], atol=1e-6)


@pytest.mark.parametrize("border_mode, expected", [
    ("nearest", [0, 0, 0, 1, 2, 3, 3, 3]), ("wrap", [2, 3, 0, 1, 2, 3, 0, 1]),
    ("mirror", [2, 1, 0, 1, 2, 3, 2, 1])])
def test_border_modes(border_mode, expected):
    from runtime.layers.special import _border_index

    positions = np.arange(-2, 6, dtype="f4")
    np.testing.assert_array_equal(_border_index(positions, 4, border_mode), expected)


def test_tps_zero_offsets_are_the_identity():
    x = np.random.default_rng(1).standard_normal((2, 1, 6, 7)).astype("f4")
    layer = build_layer("TPSTransformerLayer", {"downsample_factor": [1, 1],
                                                "control_points": 9, "border_mode": "wrap"},
                        inputs=("x", "offsets"))
    np.testing.assert_allclose(layer(x, np.zeros((2, 18), "f4")), x, atol=1e-5)
    with pytest.raises(ValueError, match=r"parameters \(batch, 18\)"):
        layer(x, np.zeros((2, 16), "f4"))


@pytest.mark.parametrize("config, message", [
    ({"downsample_factor": [1, 1], "control_points": 8, "border_mode": "wrap"},
     "perfect square"),
    ({"downsample_factor": [0, 1], "control_points": 9, "border_mode": "wrap"},
     "downsample_factor"),
    ({"downsample_factor": [1, 1], "control_points": 9, "border_mode": "zero"},
     "border_mode")])
def test_tps_refuses_bad_configs(config, message):
    with pytest.raises(BundleError, match=message):
        build_layer("TPSTransformerLayer", config, inputs=("x", "offsets"))
