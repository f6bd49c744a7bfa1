"""runtime.layers.shape against numpy references."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import BundleError

from ..helpers import build_layer, check_layer

shapes = st.lists(st.integers(0, 3), min_size=1, max_size=4)


class TestFlattenLayer:
    @settings(max_examples=25, deadline=None)
    @given(shape=shapes, data=st.data())
    def test_random_configurations(self, shape, data):
        outdim = data.draw(st.integers(1, len(shape)))
        kept = shape[:outdim - 1]
        check_layer("FlattenLayer", {"outdim": outdim}, {}, [shape],
                    lambda x: np.reshape(x, kept + [math.prod(shape[outdim - 1:])]))

    def test_errors(self):
        with pytest.raises(BundleError, match="outdim must be a positive int, got 0"):
            build_layer("FlattenLayer", {"outdim": 0})
        with pytest.raises(ValueError, match="cannot flatten a 2-dimensional input to outdim=3"):
            build_layer("FlattenLayer", {"outdim": 3})(np.zeros((2, 2)))


class TestReshapeLayer:
    @pytest.mark.parametrize("target, expected", [
        ([[0], -1], (2, 12)), ([[0], 4, 3, 1], (2, 4, 3, 1)), ([-1], (24,)),
        ([[0], [2], [1]], (2, 4, 3)), ([[0], 1, -1, 1], (2, 1, 12, 1)), ([6, -1], (6, 4)),
    ])
    def test_targets(self, target, expected):
        check_layer("ReshapeLayer", {"shape": target}, {}, [(2, 3, 4)],
                    lambda x: np.reshape(x, expected))

    @settings(max_examples=25, deadline=None)
    @given(batch=st.integers(1, 3), dims=st.lists(st.integers(1, 3), min_size=1, max_size=3),
           data=st.data())
    def test_random_permutations_of_sizes(self, batch, dims, data):
        order = data.draw(st.permutations(range(len(dims))))
        target = [[0]] + [dims[i] for i in order]
        if data.draw(st.booleans()):
            target[1 + data.draw(st.integers(0, len(dims) - 1))] = -1
        check_layer("ReshapeLayer", {"shape": target}, {}, [[batch] + dims],
                    lambda x: np.reshape(x, [batch] + [dims[i] for i in order]))

    @pytest.mark.parametrize("shape, match", [
        ([-1, -1], "one -1 at most"), ([-2], "ints >= -1 or"), ([[0, 1]], "ints >= -1 or"),
        ([[-1]], "ints >= -1 or"), ("auto", "ints >= -1 or"), ([2.0], "ints >= -1 or"),
    ])
    def test_bad_shapes(self, shape, match):
        with pytest.raises(BundleError, match=match):
            build_layer("ReshapeLayer", {"shape": shape})

    def test_input_errors(self):
        with pytest.raises(ValueError, match=r"copies axis 2 of a 2-dimensional input"):
            build_layer("ReshapeLayer", {"shape": [[2], -1]})(np.zeros((2, 3)))
        with pytest.raises(ValueError, match="cannot reshape array of size 6"):
            build_layer("ReshapeLayer", {"shape": [4, -1]})(np.zeros((2, 3)))


@st.composite
def dimshuffle_setups(draw):
    shape = draw(st.lists(st.integers(1, 3), min_size=1, max_size=4))
    droppable = [axis for axis, size in enumerate(shape) if size == 1]
    dropped = draw(st.lists(st.sampled_from(droppable), unique=True)) if droppable else []
    kept = draw(st.permutations([a for a in range(len(shape)) if a not in dropped]))
    pattern = list(kept)
    for _ in range(draw(st.integers(0, 2))):
        pattern.insert(draw(st.integers(0, len(pattern))), "x")
    return shape, pattern, dropped


def dimshuffle_reference(x, pattern, dropped):
    y = np.squeeze(x, axis=tuple(dropped))
    remaining = [a for a in range(x.ndim) if a not in dropped]
    kept = [p for p in pattern if p != "x"]
    y = np.transpose(y, [remaining.index(p) for p in kept])
    for position, p in enumerate(pattern):
        if p == "x":
            y = np.expand_dims(y, position)
    return y


class TestDimshuffleLayer:
    @settings(max_examples=40, deadline=None)
    @given(setup=dimshuffle_setups())
    def test_random_patterns(self, setup):
        shape, pattern, dropped = setup
        data = np.random.default_rng(0).standard_normal(shape).astype("f4")
        check_layer("DimshuffleLayer", {"pattern": pattern}, {}, None,
                    lambda x: dimshuffle_reference(x, pattern, dropped), data=[data],
                    declared=[[None] * len(shape)])

    @pytest.mark.parametrize("pattern", [[0, 0], [-1, 0], ["y"], "01", [1.0]])
    def test_bad_patterns(self, pattern):
        with pytest.raises(BundleError, match="pattern must be a list of distinct axes"):
            build_layer("DimshuffleLayer", {"pattern": pattern})

    def test_input_errors(self):
        with pytest.raises(ValueError, match=r"pattern \[0, 'x', 2\] uses axis 2 of a "
                                             r"2-dimensional input"):
            build_layer("DimshuffleLayer", {"pattern": [0, "x", 2]})(np.zeros((2, 3)))
        with pytest.raises(ValueError, match="drops axis 0, which has size 2; only size-1"):
            build_layer("DimshuffleLayer", {"pattern": [1]})(np.zeros((2, 3)))


class TestSliceLayer:
    @settings(max_examples=40, deadline=None)
    @given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data())
    def test_random_slices(self, shape, data):
        axis = data.draw(st.integers(-len(shape), len(shape) - 1))
        size = shape[axis]
        if data.draw(st.booleans()):
            index = data.draw(st.integers(-size, size - 1))
            indices, reference = index, lambda x: np.take(x, index % size, axis=axis)
        else:
            bound = st.one_of(st.none(), st.integers(-6, 6))
            start, stop = data.draw(bound), data.draw(bound)
            step = data.draw(st.one_of(st.none(), st.integers(-3, 3).filter(bool)))
            picked = list(range(*slice(start, stop, step).indices(size)))
            indices = {"start": start, "stop": stop, "step": step}
            reference = lambda x: np.take(x, picked, axis=axis)  # noqa: E731
        check_layer("SliceLayer", {"axis": axis, "indices": indices}, {}, None, reference,
                    data=[np.random.default_rng(0).standard_normal(shape).astype("f4")],
                    declared=[[None] * len(shape)])

    @pytest.mark.parametrize("config, match", [
        ({"axis": 1.0, "indices": 0}, "axis must be an int"),
        ({"axis": 1, "indices": "0"}, "indices must be an int or a start/stop/step"),
        ({"axis": 1, "indices": {"start": 0}}, "indices must hold 'start', 'stop' and 'step'"),
        ({"axis": 1, "indices": {"start": 0, "stop": 1, "step": 0}}, "step not 0"),
        ({"axis": 1, "indices": {"start": 0.5, "stop": 1, "step": 1}}, "ints or null"),
    ])
    def test_bad_configs(self, config, match):
        with pytest.raises(BundleError, match=match):
            build_layer("SliceLayer", config)

    def test_input_errors(self):
        with pytest.raises(ValueError, match="axis 2 is out of range for a 2-dimensional"):
            build_layer("SliceLayer", {"axis": 2, "indices": 0})(np.zeros((2, 3)))
        with pytest.raises(ValueError, match="index -4 is out of range for axis 1 of size 3"):
            build_layer("SliceLayer", {"axis": -1, "indices": -4})(np.zeros((2, 3)))


class TestPadLayer:
    @settings(max_examples=30, deadline=None)
    @given(shape=st.lists(st.integers(0, 3), min_size=1, max_size=4), data=st.data())
    def test_random_widths(self, shape, data):
        batch_ndim = data.draw(st.integers(0, len(shape)))
        count = data.draw(st.integers(0, len(shape) - batch_ndim))
        width = [data.draw(st.lists(st.integers(0, 2), min_size=2, max_size=2))
                 for _ in range(count)]
        val = data.draw(st.sampled_from([0, 0.5, -3]))

        def reference(x):
            out_shape = list(x.shape)
            index = [slice(None)] * x.ndim
            for k, (before, after) in enumerate(width):
                axis = batch_ndim + k
                out_shape[axis] += before + after
                index[axis] = slice(before, before + x.shape[axis])
            out = np.full(out_shape, val, dtype=np.float64)
            out[tuple(index)] = x
            return out

        check_layer("PadLayer", {"width": width, "val": val, "batch_ndim": batch_ndim}, {},
                    [shape], reference, declared=[[None] * len(shape)])

    def test_widths_start_after_the_batch_axes_as_in_lasagne(self):
        out = build_layer("PadLayer", {"width": [[1, 0]], "val": 9, "batch_ndim": 1})(
            np.zeros((1, 2, 2), "f4"))
        assert out.shape == (1, 3, 2) and out.dtype == np.float32
        np.testing.assert_array_equal(out[0, :, 0], [9, 0, 0])

    @pytest.mark.parametrize("config, match", [
        ({"width": [1, 1], "val": 0, "batch_ndim": 2}, "width must be a list of"),
        ({"width": [[1, -1]], "val": 0, "batch_ndim": 2}, "width must be a list of"),
        ({"width": [[1, 1]], "val": "0", "batch_ndim": 2}, "val must be a number"),
        ({"width": [[1, 1]], "val": 0, "batch_ndim": -1}, "batch_ndim must be an int >= 0"),
    ])
    def test_bad_configs(self, config, match):
        with pytest.raises(BundleError, match=match):
            build_layer("PadLayer", config)

    def test_input_errors(self):
        layer = build_layer("PadLayer", {"width": [[1, 1], [1, 1]], "val": 0, "batch_ndim": 2})
        with pytest.raises(ValueError, match=r"batch_ndim=2 and 2 widths need an input with at "
                                             r"least 4 axes, got shape \(1, 2, 3\)"):
            layer(np.zeros((1, 2, 3)))
