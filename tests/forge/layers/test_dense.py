import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

from forge import init, nonlinearities
from forge.layers import DenseLayer, NINLayer

FLOATX = pytensor.config.floatX


def random_array(*shape, seed=0):
    return np.random.RandomState(seed).normal(size=shape).astype(FLOATX)


def evaluate(layer, data):
    var = T.tensor(dtype=FLOATX, shape=(None,) * data.ndim)
    return pytensor.function([var], layer.get_output_for(var))(data)


class TestDenseLayer:
    def test_shapes(self):
        layer = DenseLayer((None, 10), num_units=3)
        assert layer.output_shape == (None, 3)
        assert layer.W.get_value().shape == (10, 3)
        assert layer.b.get_value().shape == (3,)

    def test_flattens_trailing_axes(self):
        layer = DenseLayer((None, 2, 3, 4), num_units=5)
        assert layer.W.get_value().shape == (24, 5)
        assert layer.output_shape == (None, 5)

    def test_output_matches_numpy(self):
        W, b = random_array(6, 3), random_array(3, seed=1)
        layer = DenseLayer((None, 2, 3), num_units=3, W=W, b=b)
        data = random_array(4, 2, 3, seed=2)
        expected = np.maximum(data.reshape(4, 6) @ W + b, 0)
        np.testing.assert_allclose(evaluate(layer, data), expected, rtol=1e-5, atol=1e-6)

    @pytest.mark.parametrize("num_leading_axes, out_shape, W_shape", [
        (0, (3,), (120, 3)),
        (1, (None, 3), (60, 3)),
        (2, (None, 4, 3), (15, 3)),
        (3, (None, 4, 5, 3), (3, 3)),
        (-1, (None, 4, 5, 3), (3, 3)),
        (-2, (None, 4, 3), (15, 3)),
        (-3, (None, 3), (60, 3)),
    ])
    def test_num_leading_axes(self, num_leading_axes, out_shape, W_shape):
        shape = (2, 4, 5, 3) if num_leading_axes == 0 else (None, 4, 5, 3)
        layer = DenseLayer(shape, num_units=3, num_leading_axes=num_leading_axes,
                           nonlinearity=None)
        assert layer.num_leading_axes == num_leading_axes
        assert layer.output_shape == (out_shape if num_leading_axes else (3,))
        assert layer.W.get_value().shape == W_shape

        data = random_array(2, 4, 5, 3)
        keep = num_leading_axes % 4 if num_leading_axes < 0 else num_leading_axes
        flat = data.reshape(data.shape[:keep] + (-1,))
        expected = flat @ layer.W.get_value() + layer.b.get_value()
        np.testing.assert_allclose(evaluate(layer, data), expected, rtol=1e-5, atol=1e-5)

    def test_negative_num_leading_axes_adapts_to_input_rank(self):
        layer = DenseLayer((None, 5), num_units=2, num_leading_axes=-1)
        out = layer.get_output_for(T.tensor3())
        assert out.ndim == 3

    def test_too_many_leading_axes(self):
        with pytest.raises(ValueError) as err:
            DenseLayer((None, 5), num_units=2, num_leading_axes=2)
        assert "got num_leading_axes=2 for a 2-dimensional input" in str(err.value)

    def test_too_many_trailing_axes(self):
        with pytest.raises(ValueError, match="num_leading_axes=-3 for a 2-dimensional"):
            DenseLayer((None, 5), num_units=2, num_leading_axes=-3)

    def test_unknown_trailing_size(self):
        with pytest.raises(ValueError, match=r"fixed sizes.*\(None, None\)"):
            DenseLayer((None, None), num_units=2)

    @pytest.mark.parametrize("num_units", [0, -3, 2.5])
    def test_bad_num_units(self, num_units):
        with pytest.raises(ValueError, match=f"num_units={num_units}"):
            DenseLayer((None, 5), num_units=num_units)

    def test_no_bias(self):
        layer = DenseLayer((None, 5), num_units=2, b=None)
        assert layer.b is None
        assert layer.get_params() == [layer.W]

    def test_nonlinearity_none_is_identity(self):
        layer = DenseLayer((None, 5), num_units=2, nonlinearity=None)
        assert layer.nonlinearity is nonlinearities.identity
        data = random_array(3, 5)
        np.testing.assert_allclose(evaluate(layer, data), data @ layer.W.get_value(),
                                   rtol=1e-5, atol=1e-6)

    def test_param_tags_and_names(self):
        layer = DenseLayer((None, 5), num_units=2, name="fc")
        assert (layer.W.name, layer.b.name) == ("fc.W", "fc.b")
        assert layer.get_params(regularizable=True) == [layer.W]
        assert layer.get_params(trainable=True) == [layer.W, layer.b]

    def test_default_initialisation(self, seeded):
        layer = DenseLayer((None, 50), num_units=50)
        W = layer.W.get_value()
        assert np.abs(W).max() <= np.sqrt(6 / 100)
        assert (layer.b.get_value() == 0).all()

    def test_wrong_W_shape(self):
        with pytest.raises(ValueError, match=r"parameter 'W'.*\(5, 2\)"):
            DenseLayer((None, 5), num_units=2, W=np.zeros((2, 5)))


class TestNINLayer:
    def reference(self, data, W, b, untie_biases):
        out = np.einsum("bc...,cu->bu...", data, W)
        if b is not None:
            out = out + (b[None] if untie_biases else b.reshape((1, -1) + (1,) * (data.ndim - 2)))
        return np.maximum(out, 0)

    @pytest.mark.parametrize("untie_biases", [False, True])
    @pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (2, 3, 4, 5)])
    def test_output_matches_numpy(self, shape, untie_biases):
        b_shape = (6,) + shape[2:] if untie_biases else (6,)
        W, b = random_array(3, 6), random_array(*b_shape, seed=1)
        layer = NINLayer((None,) + shape[1:], num_units=6, untie_biases=untie_biases,
                         W=W, b=b)
        assert layer.output_shape == (None, 6) + shape[2:]
        data = random_array(*shape, seed=2)
        np.testing.assert_allclose(evaluate(layer, data),
                                   self.reference(data, W, b, untie_biases),
                                   rtol=1e-5, atol=1e-5)

    def test_no_bias(self):
        layer = NINLayer((None, 3, 4), num_units=2, b=None)
        assert layer.get_params() == [layer.W]
        data = random_array(2, 3, 4)
        np.testing.assert_allclose(
            evaluate(layer, data),
            self.reference(data, layer.W.get_value(), None, False), rtol=1e-5, atol=1e-6)

    def test_bias_shapes(self):
        assert NINLayer((None, 3, 4, 5), 2).b.get_value().shape == (2,)
        assert NINLayer((None, 3, 4, 5), 2, untie_biases=True).b.get_value().shape == (2, 4, 5)

    def test_needs_known_channels(self):
        with pytest.raises(ValueError, match=r"axis 1.*\(None, None, 4\)"):
            NINLayer((None, None, 4), num_units=2)

    def test_untied_biases_need_known_spatial_sizes(self):
        with pytest.raises(ValueError, match=r"untie_biases=True.*\(None, 3, None\)"):
            NINLayer((None, 3, None), num_units=2, untie_biases=True)

    def test_param_tags(self):
        layer = NINLayer((None, 3, 4), num_units=2, W=init.Normal())
        assert layer.get_params(regularizable=True) == [layer.W]
