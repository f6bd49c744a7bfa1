import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

from forge.layers import InputLayer


class TestInputLayer:
    def test_shape_and_variable(self):
        layer = InputLayer((None, 20))
        assert layer.shape == (None, 20)
        assert layer.output_shape == (None, 20)
        assert layer.input_var.ndim == 2
        assert layer.input_var.dtype == pytensor.config.floatX
        assert layer.input_layer is None
        assert layer.get_params() == []

    def test_variable_name(self):
        assert InputLayer((None, 2)).input_var.name == "input"
        assert InputLayer((None, 2), name="x").input_var.name == "x.input"

    def test_size_one_axes_are_broadcastable(self):
        var = InputLayer((None, 1, 5)).input_var
        assert var.broadcastable == (False, True, False)

    def test_given_variable(self):
        var = T.tensor4("images")
        layer = InputLayer((None, 3, 8, 8), input_var=var)
        assert layer.input_var is var

    def test_given_variable_wrong_ndim(self):
        with pytest.raises(ValueError, match=r"shape=\(None, 3\) \(2\).*3 dimensions"):
            InputLayer((None, 3), input_var=T.tensor3())

    def test_accepts_numpy_ints_and_lists(self):
        layer = InputLayer([np.int64(4), None])
        assert layer.shape == (4, None)
        assert type(layer.shape[0]) is int

    @pytest.mark.parametrize("shape", [(None, 0), (-1, 3), (2.0, 3), ("a",), (True, 2)])
    def test_rejects_bad_entries(self, shape):
        with pytest.raises(ValueError, match="positive int or None"):
            InputLayer(shape)

    def test_rejects_non_iterable(self):
        with pytest.raises(TypeError, match="tuple"):
            InputLayer(5)
