import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

from forge.layers import (DimshuffleLayer, FlattenLayer, InputLayer, PadLayer,
                          ReshapeLayer, SliceLayer, dimshuffle, flatten, get_output,
                          pad, reshape)

FLOATX = pytensor.config.floatX


def arange(*shape):
    return np.arange(np.prod(shape), dtype=FLOATX).reshape(shape)


def evaluate(layer, data):
    var = T.tensor(dtype=FLOATX, shape=(None,) * data.ndim)
    return pytensor.function([var], layer.get_output_for(var))(data)


class TestFlattenLayer:
    @pytest.mark.parametrize("outdim, expected", [
        (1, (120,)), (2, (2, 60)), (3, (2, 3, 20)), (4, (2, 3, 4, 5)),
    ])
    def test_matches_numpy(self, outdim, expected):
        layer = FlattenLayer((2, 3, 4, 5), outdim=outdim)
        assert layer.output_shape == expected
        data = arange(2, 3, 4, 5)
        np.testing.assert_array_equal(evaluate(layer, data), data.reshape(expected))

    def test_unknown_sizes(self):
        assert FlattenLayer((None, 3, 4)).output_shape == (None, 12)
        assert FlattenLayer((2, None, 4)).output_shape == (2, None)

    @pytest.mark.parametrize("outdim", [0, 4, 1.5])
    def test_bad_outdim(self, outdim):
        with pytest.raises(ValueError, match=f"outdim={outdim}"):
            FlattenLayer((None, 3, 4), outdim=outdim)

    def test_alias(self):
        assert flatten is FlattenLayer


class TestReshapeLayer:
    @pytest.mark.parametrize("input_shape, spec, expected", [
        ((None, 784), ([0], 1, 28, 28), (None, 1, 28, 28)),
        ((None, 784), ([0], -1, 7), (None, 112, 7)),
        ((None, 3, 4), ([0], -1), (None, 12)),
        ((None, 3, 4), ([0], [2], [1]), (None, 4, 3)),
        ((6, 4), (-1, 3), (8, 3)),
        ((6, None), (2, -1), (2, None)),
        ((None, None), ([0], [1], 1), (None, None, 1)),
        ((None, 2), ([0], [0], -1), (None, None, None)),
    ])
    def test_output_shape(self, input_shape, spec, expected):
        layer = ReshapeLayer(input_shape, spec)
        assert layer.shape == tuple(spec)
        assert layer.output_shape == expected

    def test_output_matches_numpy(self):
        layer = ReshapeLayer((None, 3, 4), ([0], -1, [1]))
        data = arange(2, 3, 4)
        np.testing.assert_array_equal(evaluate(layer, data), data.reshape(2, 4, 3))

    def test_symbolic_size(self):
        n = T.iscalar("n")
        layer = ReshapeLayer((None, 12), ([0], n, -1))
        assert layer.output_shape == (None, None, None)
        x = T.matrix()
        out = pytensor.function([x, n], layer.get_output_for(x))(arange(2, 12), 3)
        assert out.shape == (2, 3, 4)

    @pytest.mark.parametrize("spec, message", [
        ((0, 2), "got 0"),
        ((-2, 2), "got -2"),
        (([0, 1], 2), r"got \[0, 1\]"),
        ((2.0, 6), "got 2.0"),
        ((T.vector(), 2), "symbolic scalar"),
        ((-1, -1), "-1 at most once"),
        (([3], -1), r"input axis \[3\].*2 dimensions"),
        ((5, 5), r"total sizes differ \(12 elements vs 25\)"),
        ((5, -1), "12 elements do not divide into parts of 5"),
    ])
    def test_bad_specs(self, spec, message):
        with pytest.raises(ValueError, match=message):
            ReshapeLayer((3, 4), spec)

    def test_alias(self):
        assert reshape is ReshapeLayer


class TestDimshuffleLayer:
    @pytest.mark.parametrize("pattern, expected", [
        ((0, 1, 2), (None, 3, 1)),
        ((2, 0, 1), (1, None, 3)),
        ((1, "x", 0), (3, 1, None)),
        ((0, 1), (None, 3)),  # drops the size-1 axis 2
    ])
    def test_output_matches_numpy(self, pattern, expected):
        layer = DimshuffleLayer((None, 3, 1), pattern)
        assert layer.pattern == pattern
        assert layer.output_shape == expected
        data = arange(2, 3, 1)
        reference = np.expand_dims(data, -1) if "x" in pattern else data
        numpy_axes = [a if a != "x" else 3 for a in pattern]
        dropped = [a for a in range(reference.ndim) if a not in numpy_axes]
        reference = np.transpose(reference, numpy_axes + dropped)
        reference = reference.reshape(reference.shape[:len(pattern)])
        var = InputLayer((None, 3, 1)).input_var
        out = pytensor.function([var], layer.get_output_for(var))(data)
        np.testing.assert_array_equal(out, reference)

    def test_drops_unknown_axis_checked_at_run_time(self):
        layer = DimshuffleLayer((None, None, 4), (0, 2))
        assert layer.output_shape == (None, 4)
        np.testing.assert_array_equal(evaluate(layer, arange(2, 1, 4)), arange(2, 4))
        with pytest.raises(AssertionError, match="SpecifyShape"):
            evaluate(layer, arange(2, 2, 4))

    @pytest.mark.parametrize("pattern, message", [
        ((0, 0, 1), "more than once"),
        ((0, "y", 1), "'y'"),
        ((0, 3, 1), "axis 3.*axes 0 to 2"),
        ((0, 2), "drops input axis 1 of size 3"),
    ])
    def test_bad_patterns(self, pattern, message):
        with pytest.raises(ValueError, match=message):
            DimshuffleLayer((None, 3, 1), pattern)

    def test_alias(self):
        assert dimshuffle is DimshuffleLayer


class TestSliceLayer:
    @pytest.mark.parametrize("indices, axis", [
        (slice(0, 2), -1), (slice(1, None, 2), 1), (slice(None, -1), 0),
        (2, 1), (-1, -1), (0, 0),
    ])
    def test_matches_numpy(self, indices, axis):
        layer = SliceLayer((3, 4, 5), indices=indices, axis=axis)
        assert (layer.slice, layer.axis) == (indices, axis)
        data = arange(3, 4, 5)
        reference = data[(slice(None),) * (axis % 3) + (indices,)]
        assert layer.output_shape == reference.shape
        np.testing.assert_array_equal(evaluate(layer, data), reference)

    def test_unknown_size(self):
        assert SliceLayer((None, 4), slice(0, 2), axis=0).output_shape == (None, 4)
        assert SliceLayer((None, 4), 0, axis=0).output_shape == (4,)

    def test_bad_axis(self):
        with pytest.raises(ValueError, match="axis=2"):
            SliceLayer((None, 4), 0, axis=2)

    def test_index_out_of_range(self):
        with pytest.raises(ValueError, match="indices=4.*size 4"):
            SliceLayer((None, 4), 4)

    def test_bad_indices(self):
        with pytest.raises(TypeError, match=r"\[0, 1\]"):
            SliceLayer((None, 4), [0, 1])


class TestPadLayer:
    @pytest.mark.parametrize("width, batch_ndim, pairs", [
        (1, 2, [(1, 1), (1, 1)]),
        ([1, (0, 2)], 2, [(1, 1), (0, 2)]),
        ([(2, 1)], 2, [(2, 1), (0, 0)]),
        (2, 1, [(2, 2), (2, 2), (2, 2)]),
        ((0, 1, 2), 1, [(0, 0), (1, 1), (2, 2)]),
    ])
    def test_matches_numpy(self, width, batch_ndim, pairs):
        layer = PadLayer((2, 3, 4, 5), width=width, val=-1.5, batch_ndim=batch_ndim)
        assert layer.width == pairs
        assert (layer.val, layer.batch_ndim) == (-1.5, batch_ndim)
        data = arange(2, 3, 4, 5)
        reference = np.pad(data, [(0, 0)] * batch_ndim + pairs, constant_values=-1.5)
        assert layer.output_shape == reference.shape
        out = evaluate(layer, data)
        assert out.dtype == FLOATX
        np.testing.assert_array_equal(out, reference)

    def test_unknown_sizes(self):
        assert PadLayer((None, 3, None, 5), width=2).output_shape == (None, 3, None, 9)

    @pytest.mark.parametrize("width", [-1, [1, 2, 3], [(1, 2, 3)], [(1, -1)], 1.5, [1.0]])
    def test_bad_width(self, width):
        with pytest.raises(ValueError, match="width="):
            PadLayer((None, 3, 4, 5), width=width)

    def test_bad_batch_ndim(self):
        with pytest.raises(ValueError, match="batch_ndim=5"):
            PadLayer((None, 3, 4, 5), width=1, batch_ndim=5)

    def test_in_a_network(self):
        l_in = InputLayer((None, 1, 2, 2))
        out = get_output(pad(l_in, 1), np.ones((1, 1, 2, 2), dtype=FLOATX)).eval()
        assert out.shape == (1, 1, 4, 4) and out.sum() == 4

    def test_alias(self):
        assert pad is PadLayer
