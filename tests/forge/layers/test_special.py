import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

from forge import nonlinearities
from forge.layers import (BiasLayer, ExpressionLayer, InputLayer, NonlinearityLayer,
                          ScaleLayer)

FLOATX = pytensor.config.floatX


def random_array(*shape, seed=0):
    return np.random.RandomState(seed).normal(size=shape).astype(FLOATX)


def evaluate(layer, data):
    var = T.tensor(dtype=FLOATX, shape=(None,) * data.ndim)
    return pytensor.function([var], layer.get_output_for(var))(data)


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
