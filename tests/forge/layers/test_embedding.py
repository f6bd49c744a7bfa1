import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

from forge.layers import EmbeddingLayer, InputLayer, get_output


class TestEmbeddingLayer:
    def test_output_is_rows_of_W(self):
        W = np.random.RandomState(0).normal(size=(6, 3)).astype("float32")
        l_in = InputLayer((None, 4), input_var=T.imatrix())
        layer = EmbeddingLayer(l_in, input_size=6, output_size=3, W=W)
        assert layer.output_shape == (None, 4, 3)
        tokens = np.array([[0, 5, 2, 2], [1, 1, 3, -1]], dtype="int32")
        out = pytensor.function([l_in.input_var], get_output(layer))(tokens)
        np.testing.assert_array_equal(out, W[tokens])

    @pytest.mark.parametrize("shape", [(None,), (2, 3, 4), (None, None)])
    def test_output_shape_appends_output_size(self, shape):
        assert EmbeddingLayer(shape, 5, 7).output_shape == shape + (7,)

    def test_W_param_and_tags(self):
        layer = EmbeddingLayer((None, 3), 10, 4, name="emb")
        assert layer.W.get_value().shape == (10, 4)
        assert layer.W.name == "emb.W"
        assert layer.get_params(trainable=True) == [layer.W]
        assert layer.get_params(regularizable=True) == [layer.W]

    @pytest.mark.parametrize("kwargs, message", [
        ({"input_size": 0, "output_size": 3}, "input_size=0"),
        ({"input_size": 4, "output_size": -1}, "output_size=-1"),
        ({"input_size": 2.5, "output_size": 3}, "input_size=2.5"),
    ])
    def test_bad_sizes(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            EmbeddingLayer((None, 3), **kwargs)

    def test_W_of_wrong_shape(self):
        with pytest.raises(ValueError, match=r"shape \(4, 3\)"):
            EmbeddingLayer((None, 3), 4, 3, W=np.zeros((3, 4), "float32"))

    def test_float_input_is_refused(self):
        layer = EmbeddingLayer(InputLayer((None, 3)), 4, 2)
        with pytest.raises(TypeError, match="integer indices"):
            get_output(layer)

    def test_gradient_reaches_only_used_rows(self):
        l_in = InputLayer((None, 2), input_var=T.imatrix())
        layer = EmbeddingLayer(l_in, 5, 2)
        grad = pytensor.grad(get_output(layer).sum(), layer.W)
        g = pytensor.function([l_in.input_var], grad)(np.array([[1, 3], [1, 1]], "int32"))
        np.testing.assert_array_equal(g[:, 0], [0, 3, 0, 1, 0])
