"""runtime.layers.merge against numpy references, with Lasagne's cropping."""
import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import BundleError

from ..helpers import build_layer, check_layer


def crop_reference(arrays, cropping):
    """Lasagne's autocrop, by index lists: keep ``m`` items from the chosen offset."""
    if cropping is None:
        return arrays
    out = []
    for x in arrays:
        for axis, mode in enumerate(cropping):
            if mode is None:
                continue
            m = min(a.shape[axis] for a in arrays)
            n = x.shape[axis]
            offset = {"lower": 0, "upper": n - m, "center": (n - m) // 2}[mode]
            x = np.take(x, np.arange(offset, offset + m, dtype=int), axis=axis)
        out.append(x)
    return out


@st.composite
def merge_setups(draw, concat):
    """Input shapes, cropping and (for concat) the axis, so that the layer is valid."""
    ndim = draw(st.integers(1, 3))
    count = draw(st.integers(1, 3))
    cropping = draw(st.one_of(st.none(), st.lists(
        st.sampled_from([None, "lower", "upper", "center"]), min_size=1, max_size=ndim)))
    axis = draw(st.integers(-ndim, ndim - 1)) if concat else None
    base = draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim))
    shapes = []
    for _ in range(count):
        shape = list(base)
        for a in range(ndim):
            cropped = cropping is not None and a < len(cropping) and cropping[a] is not None
            if cropped or (concat and a == axis % ndim):
                shape[a] = draw(st.integers(1, 5))
        shapes.append(shape)
    return shapes, cropping, axis


def random_inputs(shapes, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype("f4") for s in shapes]


def no_batch(shapes):
    return [[None] * len(s) for s in shapes]


class TestConcatLayer:
    @settings(max_examples=40, deadline=None)
    @given(setup=merge_setups(concat=True), seed=st.integers(0, 100))
    def test_random_configurations(self, setup, seed):
        shapes, cropping, axis = setup
        check_layer("ConcatLayer", {"axis": axis, "cropping": cropping}, {}, None,
                    lambda *xs: np.concatenate(crop_reference(xs, cropping), axis=axis),
                    data=random_inputs(shapes, seed), declared=no_batch(shapes))

    def test_crops_as_lasagne(self):
        a = np.arange(2 * 5, dtype="f4").reshape(2, 5)
        b = np.arange(3 * 3, dtype="f4").reshape(3, 3)
        out = build_layer("ConcatLayer", {"axis": 0, "cropping": [None, "center"]},
                          inputs=["a", "b"])(a, b)
        np.testing.assert_array_equal(out, np.vstack([a[:, 1:4], b]))

    @pytest.mark.parametrize("config, match", [
        ({"axis": 1, "cropping": ["middle"]}, "cropping must be null or a list"),
        ({"axis": 1, "cropping": "center"}, "cropping must be null or a list"),
        ({"axis": None, "cropping": None}, "axis must be an int"),
    ])
    def test_bad_configs(self, config, match):
        with pytest.raises(BundleError, match=match):
            build_layer("ConcatLayer", config, inputs=["a", "b"])

    def test_input_errors(self):
        layer = build_layer("ConcatLayer", {"axis": 1, "cropping": None}, inputs=["a", "b"])
        with pytest.raises(ValueError, match="dimension"):
            layer(np.zeros((2, 3)), np.zeros((3, 3)))


class TestElemwiseSumLayer:
    @settings(max_examples=40, deadline=None)
    @given(setup=merge_setups(concat=False), seed=st.integers(0, 100), data=st.data())
    def test_random_configurations(self, setup, seed, data):
        shapes, cropping, _ = setup
        coeffs = data.draw(st.lists(st.sampled_from([1, 1.0, -1, 0.5, 2.5, 0]),
                                    min_size=len(shapes), max_size=len(shapes)))
        check_layer("ElemwiseSumLayer", {"coeffs": coeffs, "cropping": cropping}, {}, None,
                    lambda *xs: sum(c * x.astype("f8") for c, x in
                                    zip(coeffs, crop_reference(xs, cropping))),
                    data=random_inputs(shapes, seed), declared=no_batch(shapes))

    @pytest.mark.parametrize("coeffs", [[1], [1, 2, 3], "1", [1, "2"], [1, True]])
    def test_bad_coeffs(self, coeffs):
        with pytest.raises(BundleError, match="coeffs must be a list of 2 numbers"):
            build_layer("ElemwiseSumLayer", {"coeffs": coeffs, "cropping": None},
                        inputs=["a", "b"])

    def test_shapes_must_agree_without_cropping(self):
        layer = build_layer("ElemwiseSumLayer", {"coeffs": [1, 1], "cropping": None},
                            inputs=["a", "b"])
        with pytest.raises(ValueError, match=r"inputs must have one shape, got \[\(2, 3\), "
                                             r"\(1, 3\)\]"):
            layer(np.zeros((2, 3)), np.zeros((1, 3)))


class TestElemwiseMergeLayer:
    FUNCTIONS = {"add": np.add, "sub": np.subtract, "mul": np.multiply,
                 "true_div": np.divide, "maximum": np.fmax, "minimum": np.fmin}

    @settings(max_examples=40, deadline=None)
    @given(setup=merge_setups(concat=False), seed=st.integers(0, 100),
           name=st.sampled_from(sorted(FUNCTIONS)))
    def test_random_configurations(self, setup, seed, name):
        shapes, cropping, _ = setup
        f = self.FUNCTIONS[name]
        check_layer("ElemwiseMergeLayer", {"merge_function": name, "cropping": cropping}, {},
                    None, lambda *xs: functools.reduce(
                        f, [x.astype("f8") for x in crop_reference(xs, cropping)]),
                    data=random_inputs(shapes, seed), declared=no_batch(shapes))

    def test_folds_left_to_right(self):
        layer = build_layer("ElemwiseMergeLayer", {"merge_function": "sub", "cropping": None},
                            inputs=["a", "b", "c"])
        out = layer(*(np.array([v], "f4") for v in (10, 3, 2)))
        assert out.tolist() == [5.0]

    def test_unknown_function(self):
        with pytest.raises(BundleError, match=r"\(ElemwiseMergeLayer\): unknown merge_function "
                                              r"'pow'"):
            build_layer("ElemwiseMergeLayer", {"merge_function": "pow", "cropping": None},
                        inputs=["a", "b"])
