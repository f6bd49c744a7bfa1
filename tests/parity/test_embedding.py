"""Parity of EmbeddingLayer over generated index shapes, sizes and weights."""
import numpy as np
import pytensor.tensor as T
from hypothesis import given, settings, strategies as st

from forge import layers as L

from .helpers import assert_parity
from .strategies import SETTINGS, parameter, shapes


class TestEmbeddingLayer:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        trailing = data.draw(shapes(0, 2))
        dtype = data.draw(st.sampled_from(["int32", "int64", "uint8"]))
        var = T.tensor(dtype=dtype, shape=(None,) * (1 + len(trailing)))
        l_in = L.InputLayer([None] + trailing, input_var=var)
        input_size, output_size = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 5))
        layer = L.EmbeddingLayer(l_in, input_size, output_size,
                                 W=parameter(data.draw, (input_size, output_size), rng))
        batch = data.draw(st.integers(1, 3))
        low = 0 if dtype == "uint8" else -input_size  # negative indices count from the end
        tokens = rng.integers(low, input_size, size=[batch] + trailing).astype(dtype)
        out = layer
        if data.draw(st.booleans()):  # the usual next step: a recurrent layer
            out = L.LSTMLayer(L.ReshapeLayer(layer, ([0], -1, output_size)), 3,
                              only_return_final=True) if trailing else layer
        assert_parity(out, bundle_path(), feeds=[tokens])
