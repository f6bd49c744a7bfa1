"""Parity of FlattenLayer, ReshapeLayer, DimshuffleLayer, SliceLayer and PadLayer."""
import numpy as np
from hypothesis import assume, given, settings, strategies as st

from forge import layers as L

from .helpers import assert_parity
from .strategies import SETTINGS, shapes


class TestFlattenLayer:
    @settings(**SETTINGS)
    @given(trailing=shapes(1, 4), data=st.data())
    def test_parity(self, trailing, data, bundle_path):
        outdim = data.draw(st.integers(1, len(trailing) + 1))
        layer = L.FlattenLayer(L.InputLayer([None] + trailing), outdim=outdim)
        assert_parity(layer, bundle_path())


class TestReshapeLayer:
    @settings(**SETTINGS)
    @given(trailing=shapes(1, 3, 1, 4), data=st.data())
    def test_parity(self, trailing, data, bundle_path):
        size = int(np.prod(trailing))
        # keep the batch axis ([0]) and split the rest into a factorisation of its size
        factors = [d for d in range(1, size + 1) if size % d == 0]
        first = data.draw(st.sampled_from(factors))
        spec = [[0], first, -1] if data.draw(st.booleans()) else [[0], -1, first]
        if data.draw(st.booleans()):
            spec = [[0], size]
        layer = L.ReshapeLayer(L.InputLayer([None] + trailing), tuple(spec))
        assert_parity(layer, bundle_path())

    def test_fixed_batch_axis_reshape(self, bundle_path):
        layer = L.ReshapeLayer(L.InputLayer((4, 3, 2)), (2, -1, [2]))
        assert_parity(layer, bundle_path(), batch=4)


class TestDimshuffleLayer:
    @settings(**SETTINGS)
    @given(trailing=shapes(1, 3), data=st.data())
    def test_parity(self, trailing, data, bundle_path):
        axes = list(range(len(trailing) + 1))
        pattern = data.draw(st.permutations(axes))
        for _ in range(data.draw(st.integers(0, 2))):
            pattern.insert(data.draw(st.integers(0, len(pattern))), "x")
        layer = L.DimshuffleLayer(L.InputLayer([None] + trailing), pattern)
        assert_parity(layer, bundle_path())

    def test_drops_broadcastable_axis(self, bundle_path):
        layer = L.DimshuffleLayer(L.InputLayer((None, 1, 5)), (0, 2))
        assert_parity(layer, bundle_path())


class TestSliceLayer:
    @settings(**SETTINGS)
    @given(trailing=shapes(1, 3, 2, 6), data=st.data())
    def test_parity(self, trailing, data, bundle_path):
        axis = data.draw(st.integers(1, len(trailing))) * data.draw(st.sampled_from([1, -1]))
        if axis < 0:
            axis = axis - 1 if -axis > len(trailing) else axis
        size = ([None] + trailing)[axis]
        assume(size is not None)
        if data.draw(st.booleans()):
            indices = data.draw(st.integers(-size, size - 1))
        else:
            indices = slice(data.draw(st.none() | st.integers(-size, size)),
                            data.draw(st.none() | st.integers(-size, size)),
                            data.draw(st.none() | st.sampled_from([1, 2, 3, -1, -2])))
        try:
            layer = L.SliceLayer(L.InputLayer([None] + trailing), indices=indices, axis=axis)
        except ValueError:
            assume(False)  # an empty slice is refused at construction
        assume(0 not in layer.output_shape)
        assert_parity(layer, bundle_path())


class TestPadLayer:
    @settings(**SETTINGS)
    @given(trailing=shapes(1, 3), data=st.data())
    def test_parity(self, trailing, data, bundle_path):
        batch_ndim = data.draw(st.integers(1, len(trailing)))
        n_pad = len(trailing) + 1 - batch_ndim
        form = data.draw(st.sampled_from(["int", "ints", "pairs"]))
        if form == "int":
            width = data.draw(st.integers(0, 3))
        elif form == "ints":
            width = [data.draw(st.integers(0, 3)) for _ in range(n_pad)]
        else:
            width = [(data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3)))
                     for _ in range(n_pad)]
        layer = L.PadLayer(L.InputLayer([None] + trailing), width=width,
                           val=data.draw(st.sampled_from([0, 1.5, -2])), batch_ndim=batch_ndim)
        assert_parity(layer, bundle_path())
