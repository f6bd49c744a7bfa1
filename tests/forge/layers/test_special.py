from functools import partial

import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

from forge import nonlinearities
from forge import updates as forge_updates
from forge.layers import (BiasLayer, ConcatLayer, Conv2DLayer, DenseLayer, ExpressionLayer,
                          FlattenLayer, InputLayer, InverseLayer, MaxPool2DLayer,
                          NonlinearityLayer, ParametricRectifierLayer,
                          RandomizedRectifierLayer, ScaleLayer, TPSTransformerLayer,
                          TransformerLayer, get_all_params, get_output, prelu, rrelu,
                          standardize)

FLOATX = pytensor.config.floatX


def random_array(*shape, seed=0):
    return np.random.RandomState(seed).normal(size=shape).astype(FLOATX)


def evaluate(layer, data):
    var = T.tensor(dtype=FLOATX, shape=(None,) * data.ndim)
    return pytensor.function([var], layer.get_output_for(var))(data)


def train(l_in, l_out, x, y, update, steps):
    """Fit ``l_out`` to ``y`` by mean squared error with ``update(loss, params)``; the
    loss at the first and at the last step."""
    loss = T.mean((get_output(l_out) - y) ** 2)
    params = get_all_params(l_out, trainable=True)
    step = pytensor.function([l_in.input_var], loss, updates=update(loss, params))
    first = step(x)
    for _ in range(steps):
        last = step(x)
    return first, last


class TestNonlinearityLayer:
    def test_applies_nonlinearity(self):
        layer = NonlinearityLayer((None, 4), nonlinearity=nonlinearities.tanh)
        data = random_array(3, 4)
        np.testing.assert_allclose(evaluate(layer, data), np.tanh(data), rtol=1e-5)
        assert layer.output_shape == (None, 4)

    def test_default_rectify(self):
        assert NonlinearityLayer((None, 4)).nonlinearity is nonlinearities.rectify

    def test_none_is_identity(self):
        assert NonlinearityLayer((None, 4), None).nonlinearity is nonlinearities.identity


class TestBiasLayer:
    @pytest.mark.parametrize("shape, shared_axes, b_shape", [
        ((None, 3), "auto", (3,)),
        ((None, 3, 4, 5), "auto", (3,)),
        ((None, 3, 4, 5), (0, 1), (4, 5)),
        ((None, 3, 4, 5), 0, (3, 4, 5)),
        ((None, 3, 4, 5), (0, -1), (3, 4)),
    ])
    def test_output_matches_numpy(self, shape, shared_axes, b_shape):
        layer = BiasLayer(shape, b=random_array(*b_shape), shared_axes=shared_axes)
        assert layer.b.get_value().shape == b_shape
        assert layer.output_shape == shape
        data = random_array(2, *shape[1:], seed=1)
        # numpy reference: insert size-1 axes where the bias is shared
        b = layer.b.get_value().reshape(
            [1 if a in layer.shared_axes else s for a, s in enumerate(data.shape)])
        np.testing.assert_allclose(evaluate(layer, data), data + b, rtol=1e-6)

    def test_shared_axes_normalised(self):
        assert BiasLayer((None, 3, 4), shared_axes=(0, -1)).shared_axes == (0, 2)
        assert BiasLayer((None, 3, 4)).shared_axes == (0, 2)

    def test_param_tags(self):
        layer = BiasLayer((None, 3), name="bias")
        assert layer.b.name == "bias.b"
        assert layer.get_params(regularizable=True) == []
        assert layer.get_params(trainable=True) == [layer.b]

    def test_no_bias_is_identity(self):
        layer = BiasLayer((None, 3), b=None)
        assert layer.get_params() == []
        x = T.matrix()
        assert layer.get_output_for(x) is x

    def test_needs_known_sizes(self):
        with pytest.raises(ValueError, match=r"fixed sizes.*\(None, None\)"):
            BiasLayer((None, None))

    def test_bad_shared_axes(self):
        with pytest.raises(ValueError, match=r"shared_axes=\(3,\)"):
            BiasLayer((None, 3), shared_axes=3)
        with pytest.raises(ValueError, match="'all'"):
            BiasLayer((None, 3), shared_axes="all")


class TestScaleLayer:
    def test_default_ones(self):
        layer = ScaleLayer((None, 3, 4))
        np.testing.assert_array_equal(layer.scales.get_value(), np.ones(3))
        assert layer.scales.name == "scales"

    @pytest.mark.parametrize("shared_axes, scales_shape", [
        ("auto", (3,)), ((0, 1), (4,)), ((0,), (3, 4)),
    ])
    def test_output_matches_numpy(self, shared_axes, scales_shape):
        layer = ScaleLayer((None, 3, 4), scales=random_array(*scales_shape),
                           shared_axes=shared_axes)
        data = random_array(2, 3, 4, seed=1)
        scales = layer.scales.get_value().reshape(
            [1 if a in layer.shared_axes else s for a, s in enumerate(data.shape)])
        np.testing.assert_allclose(evaluate(layer, data), data * scales, rtol=1e-6)

    def test_param_tags(self):
        layer = ScaleLayer((None, 3))
        assert layer.get_params(regularizable=False) == [layer.scales]

    def test_needs_known_sizes(self):
        with pytest.raises(ValueError, match="ScaleLayer needs fixed sizes"):
            ScaleLayer((None, None, 3), shared_axes=(0, 2))


class TestExpressionLayer:
    def double(self, x):
        return 2 * x

    def test_output(self):
        layer = ExpressionLayer((None, 3), self.double)
        data = random_array(2, 3)
        np.testing.assert_allclose(evaluate(layer, data), 2 * data)
        assert layer.function == self.double

    def test_shape_default_is_input_shape(self):
        assert ExpressionLayer((None, 3), self.double).output_shape == (None, 3)

    def test_shape_tuple(self):
        layer = ExpressionLayer((None, 3), lambda x: x.sum(axis=1), output_shape=(None,))
        assert layer.output_shape == (None,)

    def test_shape_callable(self):
        layer = ExpressionLayer((None, 3, 4), lambda x: x.sum(axis=1),
                                output_shape=lambda s: (s[0], s[2]))
        assert layer.output_shape == (None, 4)

    @pytest.mark.parametrize("function, expected", [
        (lambda x: x.sum(axis=1), (None, 5)),
        (lambda x: x.dimshuffle(2, 0, 1), (5, None, 4)),
        (lambda x: x.reshape((x.shape[0], -1)), (None, 20)),
        (lambda x: x[:, :2], (None, 2, 5)),
        (lambda x: x.max(axis=0), (4, 5)),  # would fail on a zero-size dummy
    ])
    def test_shape_auto(self, function, expected):
        layer = ExpressionLayer((None, 4, 5), function, output_shape="auto")
        assert layer.output_shape == expected

    def test_shape_auto_fixed_input(self):
        layer = ExpressionLayer((2, 6), lambda x: x.reshape((3, -1)), output_shape="auto")
        assert layer.output_shape == (3, 4)

    def test_bad_output_shape(self):
        with pytest.raises(ValueError, match="'guess'"):
            ExpressionLayer((None, 3), self.double, output_shape="guess")

    def test_function_must_be_callable(self):
        with pytest.raises(TypeError, match="callable"):
            ExpressionLayer((None, 3), "double")

    def test_in_a_network(self):
        l_in = InputLayer((None, 3))
        layer = ExpressionLayer(l_in, T.exp)
        from forge.layers import get_output
        data = random_array(2, 3)
        np.testing.assert_allclose(get_output(layer, data).eval(), np.exp(data), rtol=1e-5)


# -- rectifiers, standardize, inverse, spatial transformers ---------------------------


def evaluate_network(layer, feeds, **kwargs):
    inputs = [T.tensor(dtype=FLOATX, shape=(None,) * x.ndim) for x in feeds.values()]
    out = get_output(layer, dict(zip(feeds, inputs)), **kwargs)
    return pytensor.function(inputs, out, on_unused_input="ignore")(*feeds.values())


class TestParametricRectifierLayer:
    @pytest.mark.parametrize("shared_axes, alpha_shape", [
        ("auto", (3,)), ("all", ()), (0, (3, 4)), ((0, 2), (3,)), (-1, (2, 3))])
    def test_output_matches_numpy(self, shared_axes, alpha_shape):
        x = random_array(2, 3, 4)
        alpha = np.random.RandomState(1).uniform(0, 1, alpha_shape).astype(FLOATX)
        layer = ParametricRectifierLayer((2, 3, 4), alpha=alpha, shared_axes=shared_axes)
        axes = layer.shared_axes
        broadcast = alpha.reshape([1 if a in axes else s for a, s in enumerate(x.shape)])
        np.testing.assert_allclose(evaluate(layer, x), np.where(x > 0, x, broadcast * x),
                                   rtol=1e-6)

    def test_default_alpha_and_tags(self):
        layer = ParametricRectifierLayer((None, 5))
        np.testing.assert_allclose(layer.alpha.get_value(), np.full(5, 0.25))
        assert layer.params[layer.alpha] == {"trainable"}

    def test_needs_known_sizes(self):
        with pytest.raises(ValueError, match="fixed sizes"):
            ParametricRectifierLayer((None, 5), shared_axes=1)

    def test_bad_shared_axes(self):
        with pytest.raises(ValueError, match="'auto', 'all'.*got 'some'"):
            ParametricRectifierLayer((None, 5), shared_axes="some")

    def test_prelu_replaces_the_nonlinearity(self):
        dense = DenseLayer(InputLayer((None, 3)), num_units=2)
        layer = prelu(dense, alpha=np.array([0.1, 0.2], FLOATX))
        assert dense.nonlinearity is nonlinearities.identity
        assert layer.input_layer is dense

    def test_trains(self, seeded):
        """A PReLU network fits y = -|x| style targets; alpha moves toward the slope."""
        rng = np.random.RandomState(0)
        x = rng.uniform(-1, 1, (64, 1)).astype(FLOATX)
        y = np.where(x > 0, x, -0.8 * x).astype(FLOATX)  # a leaky slope of -0.8
        l_in = InputLayer((None, 1))
        layer = ParametricRectifierLayer(l_in, alpha=np.array([0.25], FLOATX))
        first, last = train(l_in, layer, x, y, partial(forge_updates.sgd, learning_rate=0.5),
                            steps=100)
        assert last < first / 100
        assert abs(layer.alpha.get_value()[0] + 0.8) < 0.05


class TestRandomizedRectifierLayer:
    def test_deterministic_is_mean_slope(self):
        x = random_array(4, 3)
        l_in = InputLayer((None, 3))
        layer = RandomizedRectifierLayer(l_in, lower=0.2, upper=0.6)
        out = evaluate_network(layer, {l_in: x}, deterministic=True)
        np.testing.assert_allclose(out, np.where(x > 0, x, 0.4 * x), rtol=1e-6)

    def test_training_slopes_are_uniform(self, seeded):
        """Slopes drawn in training: inside [lower, upper), mean near the middle, one per
        channel with the default sharing, fresh on every call."""
        l_in = InputLayer((None, 200, 2))
        layer = RandomizedRectifierLayer(l_in, lower=0.3, upper=0.8)
        fn = pytensor.function([l_in.input_var], get_output(layer))
        x = -np.ones((5, 200, 2), FLOATX)
        slopes = -fn(x)
        assert slopes.min() >= 0.3 and slopes.max() < 0.8
        assert np.all(slopes == slopes[:1, :, :1])  # shared over axes 0 and 2
        assert abs(slopes[0, :, 0].mean() - 0.55) < 0.05  # 200 draws: std of mean ~0.01
        assert not np.array_equal(slopes, -fn(x))
        positive = np.abs(random_array(5, 200, 2))
        np.testing.assert_array_equal(fn(positive), positive)

    def test_shared_all_and_no_sharing(self, seeded):
        x = -np.ones((3, 4), FLOATX)
        l_in = InputLayer((None, 4))
        everywhere = RandomizedRectifierLayer(l_in, shared_axes="all")
        assert len(np.unique(evaluate_network(everywhere, {l_in: x}))) == 1
        nowhere = RandomizedRectifierLayer(l_in, shared_axes=())
        assert len(np.unique(evaluate_network(nowhere, {l_in: x}))) == 12

    def test_equal_bounds_are_fixed(self, seeded):
        l_in = InputLayer((None, 4))
        layer = RandomizedRectifierLayer(l_in, lower=0.5, upper=0.5)
        np.testing.assert_allclose(evaluate_network(layer, {l_in: -np.ones((2, 4), FLOATX)}),
                                   -0.5)

    def test_lower_above_upper(self):
        with pytest.raises(ValueError, match="lower <= upper, got lower=0.9, upper=0.1"):
            RandomizedRectifierLayer((None, 3), lower=0.9, upper=0.1)

    def test_rrelu_trains(self, seeded):
        rng = np.random.RandomState(0)
        x = rng.standard_normal((64, 4)).astype(FLOATX)
        y = (x @ rng.standard_normal((4, 1))).astype(FLOATX)
        l_in = InputLayer((None, 4))
        hidden = rrelu(DenseLayer(l_in, num_units=16))
        l_out = DenseLayer(hidden, num_units=1, nonlinearity=None)
        first, last = train(l_in, l_out, x, y, partial(forge_updates.adam, learning_rate=0.02),
                            steps=150)
        assert last < first / 10


class TestStandardize:
    def test_subtracts_and_divides(self):
        l_in = InputLayer((None, 3, 2))
        offset, scale = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 0.5])
        layer = standardize(l_in, offset, scale)
        x = random_array(2, 3, 2)
        want = (x - offset[:, None]) / scale[:, None]
        np.testing.assert_allclose(evaluate_network(layer, {l_in: x}), want, rtol=1e-5)
        assert get_all_params(layer, trainable=True) == []
        assert len(get_all_params(layer)) == 2


class TestInverseLayer:
    def test_dense_is_transpose(self):
        l_in = InputLayer((None, 5))
        dense = DenseLayer(l_in, num_units=3, nonlinearity=None)
        g = random_array(2, 3)
        l_g = InputLayer((None, 3))
        inverse = InverseLayer(l_g, dense)
        out = evaluate_network(inverse, {l_g: g, l_in: random_array(2, 5, seed=1)})
        np.testing.assert_allclose(out, g @ dense.W.get_value().T, rtol=1e-5)
        assert inverse.output_shape == (None, 5)

    def test_rectify_uses_the_derivative(self):
        l_in = InputLayer((None, 4))
        dense = DenseLayer(l_in, num_units=3)
        l_g = InputLayer((None, 3))
        x, g = random_array(6, 4), random_array(6, 3, seed=2)
        out = evaluate_network(InverseLayer(l_g, dense), {l_g: g, l_in: x})
        z = x @ dense.W.get_value() + dense.b.get_value()
        np.testing.assert_allclose(out, (g * (z > 0)) @ dense.W.get_value().T, rtol=1e-5,
                                   atol=1e-6)

    def test_max_unpool_puts_values_at_the_maxima(self):
        l_in = InputLayer((None, 1, 2, 2))
        pool = MaxPool2DLayer(l_in, 2)
        x = np.array([[[[1, 5], [3, 2]]]], FLOATX)
        out = evaluate_network(InverseLayer(pool, pool), {l_in: x})
        np.testing.assert_array_equal(out, [[[[0, 5], [0, 0]]]])

    def test_conv_round_trip_shape(self):
        l_in = InputLayer((None, 2, 7, 7))
        conv = Conv2DLayer(l_in, 3, 3, stride=2)
        assert InverseLayer(conv, conv).output_shape == (None, 2, 7, 7)

    def test_refuses_a_merge_layer(self):
        a, b = InputLayer((None, 2)), InputLayer((None, 2))
        with pytest.raises(TypeError, match="one input"):
            InverseLayer(a, ConcatLayer([a, b]))

    def test_refuses_a_layer_built_on_a_shape(self):
        with pytest.raises(ValueError, match="built on the shape"):
            InverseLayer(InputLayer((None, 3)), DenseLayer((None, 4), 3))

    def test_shape_mismatch(self):
        dense = DenseLayer(InputLayer((None, 4)), 3)
        with pytest.raises(ValueError, match=r"shaped like the inverted layer's output"):
            InverseLayer(InputLayer((None, 5)), dense)


def _transformer_net(cls, shape, num_params, **kwargs):
    l_in, l_loc = InputLayer(shape), InputLayer((None, num_params))
    return l_in, l_loc, cls(l_in, l_loc, **kwargs)


def numpy_bilinear(image, px, py, border_mode):
    """Reference sampler for one (rows, cols) image at pixel coordinates, pixel by pixel."""
    rows, cols = image.shape

    def fix(i, size):
        if border_mode == "nearest":
            return min(max(i, 0), size - 1)
        if border_mode == "wrap":
            return i % size
        period = max(2 * (size - 1), 1)
        return min(i % period, -i % period)

    out = []
    for x, y in zip(px, py):
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        value = 0.0
        for dx in (0, 1):
            for dy in (0, 1):
                w = (1 - abs(x - (x0 + dx))) * (1 - abs(y - (y0 + dy)))
                value += w * image[fix(y0 + dy, rows), fix(x0 + dx, cols)]
        out.append(value)
    return np.array(out)


class TestTransformerLayer:
    def test_identity(self):
        l_in, l_loc, layer = _transformer_net(TransformerLayer, (None, 2, 5, 6), 6)
        x = random_array(3, 2, 5, 6)
        theta = np.tile(np.array([1, 0, 0, 0, 1, 0], FLOATX), (3, 1))
        np.testing.assert_allclose(evaluate_network(layer, {l_in: x, l_loc: theta}), x,
                                   atol=1e-5)

    @pytest.mark.parametrize("border_mode", ["nearest", "mirror", "wrap"])
    def test_against_a_pixel_by_pixel_reference(self, border_mode):
        l_in, l_loc, layer = _transformer_net(TransformerLayer, (None, 1, 4, 5), 6,
                                              border_mode=border_mode, downsample_factor=0.5)
        x = random_array(1, 1, 4, 5)
        theta = np.array([[1.3, 0.4, 0.3, -0.2, 1.1, -0.5]], FLOATX)
        out = evaluate_network(layer, {l_in: x, l_loc: theta})
        assert out.shape == (1, 1, 8, 10)
        xt, yt = np.meshgrid(np.linspace(-1, 1, 10), np.linspace(-1, 1, 8))
        src = theta[0].reshape(2, 3) @ np.stack([xt.ravel(), yt.ravel(), np.ones(80)])
        px, py = (src[0] + 1) / 2 * 4, (src[1] + 1) / 2 * 3
        want = numpy_bilinear(x[0, 0].astype(np.float64), px, py, border_mode)
        np.testing.assert_allclose(out.ravel(), want, rtol=1e-4, atol=1e-4)

    def test_gradient_flows_to_theta_and_input(self):
        l_in, l_loc, layer = _transformer_net(TransformerLayer, (None, 2, 6, 6), 6)
        out = get_output(layer)
        grads = pytensor.grad(T.sum(out ** 2), [l_in.input_var, l_loc.input_var])
        fn = pytensor.function([l_in.input_var, l_loc.input_var], grads)
        theta = np.array([[0.9, 0.1, 0.05, -0.1, 1.1, 0.02]], FLOATX)
        g_x, g_theta = fn(random_array(1, 2, 6, 6), theta)
        assert np.all(np.isfinite(g_theta)) and np.abs(g_theta).max() > 0
        assert np.abs(g_x).max() > 0
        # finite differences on theta
        f = pytensor.function([l_in.input_var, l_loc.input_var], T.sum(out ** 2))
        x = random_array(1, 2, 6, 6)
        _, g_theta = fn(x, theta)
        eps = 1e-3
        for k in range(6):
            step = np.zeros_like(theta)
            step[0, k] = eps
            numeric = (f(x, theta + step) - f(x, theta - step)) / (2 * eps)
            assert abs(numeric - g_theta[0, k]) < 2e-2 * max(1, abs(numeric))

    def test_output_shape(self):
        layer = TransformerLayer(InputLayer((None, 3, 10, 9)), InputLayer((None, 6)),
                                 downsample_factor=(2, 1.5))
        assert layer.output_shape == (None, 3, 5, 6)

    @pytest.mark.parametrize("kwargs, message", [
        (dict(border_mode="zero"), "border_mode must be one of nearest, mirror, wrap"),
        (dict(downsample_factor=0), "downsample_factor must be a positive number"),
        (dict(downsample_factor=20), "leaves no output pixel"),
    ])
    def test_bad_arguments(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            TransformerLayer(InputLayer((None, 3, 10, 9)), InputLayer((None, 6)), **kwargs)

    def test_bad_shapes(self):
        with pytest.raises(ValueError, match="4-dimensional input"):
            TransformerLayer(InputLayer((None, 10, 9)), InputLayer((None, 6)))
        with pytest.raises(ValueError, match="6 localization outputs"):
            TransformerLayer(InputLayer((None, 1, 10, 9)), InputLayer((None, 5)))


class TestTPSTransformerLayer:
    def test_zero_offsets_are_the_identity(self):
        l_in, l_loc, layer = _transformer_net(TPSTransformerLayer, (None, 2, 6, 7), 32)
        x = random_array(2, 2, 6, 7)
        out = evaluate_network(layer, {l_in: x, l_loc: np.zeros((2, 32), FLOATX)})
        np.testing.assert_allclose(out, x, atol=1e-5)

    def test_uniform_offset_is_a_shift(self):
        """Moving every control point by the same offset translates the sampling grid."""
        l_in, l_loc, layer = _transformer_net(TPSTransformerLayer, (None, 1, 5, 5), 8,
                                              control_points=4)
        offsets = np.array([[0.5] * 4 + [0.0] * 4], FLOATX)  # x + 0.5: one pixel right
        x = random_array(1, 1, 5, 5)
        out = evaluate_network(layer, {l_in: x, l_loc: offsets})
        np.testing.assert_allclose(out[..., :-1], x[..., 1:], atol=1e-5)

    def test_precomputed_and_symbolic_grids_agree(self):
        x, offsets = random_array(2, 1, 6, 5), 0.3 * random_array(2, 18, seed=3)
        outs = []
        for precompute in (True, False):
            l_in, l_loc, layer = _transformer_net(TPSTransformerLayer, (None, 1, 6, 5), 18,
                                                  control_points=9,
                                                  precompute_grid=precompute)
            assert layer.precompute_grid is precompute
            outs.append(evaluate_network(layer, {l_in: x, l_loc: offsets}))
        np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)

    def test_gradient_flows_to_the_localization_network(self, seeded):
        l_in = InputLayer((None, 1, 6, 6))
        l_loc = DenseLayer(FlattenLayer(l_in), 32, W=np.zeros((36, 32), FLOATX),
                           nonlinearity=None)
        layer = TPSTransformerLayer(l_in, l_loc, border_mode="mirror")
        loss = T.sum(get_output(layer) ** 2)
        grads = pytensor.grad(loss, [l_loc.W, l_loc.b])
        g_W, g_b = pytensor.function([l_in.input_var], grads)(random_array(2, 1, 6, 6))
        assert np.all(np.isfinite(g_W)) and np.abs(g_b).max() > 0

    @pytest.mark.parametrize("kwargs, message", [
        (dict(control_points=10), "perfect square of at least 4"),
        (dict(control_points=1), "perfect square of at least 4"),
        (dict(precompute_grid="yes"), "precompute_grid must be"),
    ])
    def test_bad_arguments(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            TPSTransformerLayer(InputLayer((None, 3, 10, 9)), InputLayer((None, 32)), **kwargs)

    def test_precompute_needs_fixed_sizes(self):
        with pytest.raises(ValueError, match="precompute_grid=True needs fixed rows"):
            TPSTransformerLayer(InputLayer((None, 3, None, 9)), InputLayer((None, 32)),
                                precompute_grid=True)
