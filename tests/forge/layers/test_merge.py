import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

from forge.layers import (ConcatLayer, ElemwiseMergeLayer, ElemwiseSumLayer,
                          InputLayer, autocrop, autocrop_array_shapes, concat,
                          get_output)

FLOATX = pytensor.config.floatX


def random_array(*shape, seed=0):
    return np.random.RandomState(seed).normal(size=shape).astype(FLOATX)


def evaluate(layer, arrays):
    variables = [T.tensor(dtype=FLOATX, shape=(None,) * a.ndim) for a in arrays]
    return pytensor.function(variables, layer.get_output_for(variables))(*arrays)


def np_crop(arrays, cropping):
    """numpy reference for autocrop."""
    result = [a for a in arrays]
    for axis, mode in enumerate(cropping):
        if mode is None:
            continue
        size = min(a.shape[axis] for a in arrays)
        cropped = []
        for a in result:
            surplus = a.shape[axis] - size
            start = {"lower": 0, "upper": surplus, "center": surplus // 2}[mode]
            cropped.append(np.take(a, range(start, start + size), axis=axis))
        result = cropped
    return result


class TestAutocrop:
    @pytest.mark.parametrize("cropping", [
        [None, "lower"], [None, "upper"], [None, "center", "center"],
        ["lower", "upper", "center"], [None], None,
    ])
    def test_matches_numpy(self, cropping):
        arrays = [random_array(2, 7, 5, seed=1), random_array(3, 4, 6, seed=2),
                  random_array(2, 5, 5, seed=3)]
        variables = [T.tensor3() for _ in arrays]
        cropped = autocrop(variables, cropping)
        outs = pytensor.function(variables, cropped)(*arrays)
        expected = arrays if cropping is None else np_crop(arrays, cropping)
        for out, ref in zip(outs, expected):
            np.testing.assert_array_equal(out, ref)

    def test_none_returns_inputs(self):
        inputs = [T.matrix(), T.matrix()]
        assert autocrop(inputs, None) is inputs

    def test_dimension_mismatch(self):
        with pytest.raises(ValueError, match=r"\[2, 3\]"):
            autocrop([T.matrix(), T.tensor3()], ["lower"])

    def test_bad_mode(self):
        with pytest.raises(ValueError, match="'middle'"):
            autocrop([T.matrix(), T.matrix()], [None, "middle"])


class TestAutocropArrayShapes:
    def test_shapes(self):
        shapes = [(1, 2, 3, 4), (5, 6, 7, 8), (5, 4, 3, 2)]
        assert autocrop_array_shapes(shapes, None) is shapes
        assert autocrop_array_shapes(shapes, [None, "lower", "upper", "center"]) == [
            (1, 2, 3, 2), (5, 2, 3, 2), (5, 2, 3, 2)]
        assert autocrop_array_shapes(shapes, ["center"]) == [
            (1, 2, 3, 4), (1, 6, 7, 8), (1, 4, 3, 2)]

    def test_unknown_sizes(self):
        shapes = [(None, 5), (3, 4)]
        assert autocrop_array_shapes(shapes, ["lower", "lower"]) == [
            (None, 4), (None, 4)]

    def test_dimension_mismatch(self):
        with pytest.raises(ValueError, match="same number of dimensions"):
            autocrop_array_shapes([(1, 2), (1, 2, 3)], ["lower"])

    def test_bad_mode(self):
        with pytest.raises(ValueError, match="'both'"):
            autocrop_array_shapes([(1, 2), (1, 2)], ["both"])


class TestConcatLayer:
    @pytest.mark.parametrize("axis", [0, 1, -1])
    def test_matches_numpy(self, axis):
        shapes = {0: [(2, 3), (4, 3)], 1: [(2, 3), (2, 5)], -1: [(2, 3), (2, 1)]}[axis]
        layer = ConcatLayer(shapes, axis=axis)
        arrays = [random_array(*s, seed=i) for i, s in enumerate(shapes)]
        reference = np.concatenate(arrays, axis=axis)
        assert layer.output_shape == reference.shape
        np.testing.assert_array_equal(evaluate(layer, arrays), reference)

    def test_output_shape_with_unknowns(self):
        assert ConcatLayer([(None, 3), (None, 5)]).output_shape == (None, 8)
        assert ConcatLayer([(None, 3), (4, None)]).output_shape == (4, None)
        assert ConcatLayer([(None, 3), (4, 3)], axis=0).output_shape == (None, 3)

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match=r"concatenation axis 1.*\(3, 2\)"):
            ConcatLayer([(2, 3), (3, 2)])

    def test_rank_mismatch(self):
        with pytest.raises(ValueError, match="agree"):
            ConcatLayer([(2, 3), (2, 3, 4)])

    def test_bad_axis(self):
        with pytest.raises(ValueError, match="axis=2"):
            ConcatLayer([(2, 3), (2, 3)], axis=2)

    def test_cropping(self):
        layer = ConcatLayer([(2, 3, 7), (2, 5, 4)], axis=1, cropping=[None, "lower", "center"])
        assert layer.cropping == [None, None, "center"]  # never the concatenation axis
        assert layer.output_shape == (2, 8, 4)
        arrays = [random_array(2, 3, 7), random_array(2, 5, 4, seed=1)]
        reference = np.concatenate(np_crop(arrays, [None, None, "center"]), axis=1)
        np.testing.assert_array_equal(evaluate(layer, arrays), reference)

    def test_short_cropping_is_padded(self):
        layer = ConcatLayer([(2, 3, 4), (3, 5, 4)], axis=2, cropping=["lower", "lower"])
        assert layer.cropping == ["lower", "lower", None]
        assert layer.output_shape == (2, 3, 8)

    def test_in_a_network(self):
        a, b = InputLayer((None, 2)), InputLayer((None, 3))
        out = get_output(concat([a, b]), {a: np.ones((1, 2)), b: np.zeros((1, 3))})
        np.testing.assert_array_equal(out.eval(), [[1, 1, 0, 0, 0]])

    def test_alias(self):
        assert concat is ConcatLayer


class TestElemwiseMergeLayer:
    @pytest.mark.parametrize("function, reference", [
        (T.mul, np.multiply), (T.maximum, np.maximum), (T.sub, np.subtract),
    ])
    def test_folds_left(self, function, reference):
        layer = ElemwiseMergeLayer([(None, 3)] * 3, function)
        assert layer.merge_function is function
        arrays = [random_array(2, 3, seed=i) for i in range(3)]
        expected = reference(reference(arrays[0], arrays[1]), arrays[2])
        np.testing.assert_allclose(evaluate(layer, arrays), expected, rtol=1e-6)

    def test_output_shape_fills_unknowns(self):
        layer = ElemwiseMergeLayer([(None, 3), (4, None)], T.add)
        assert layer.output_shape == (4, 3)

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match=r"one shape.*\(2, 4\)"):
            ElemwiseMergeLayer([(2, 3), (2, 4)], T.add)

    def test_cropping(self):
        layer = ElemwiseMergeLayer([(2, 5), (2, 3)], T.add, cropping=[None, "upper"])
        assert layer.output_shape == (2, 3)
        arrays = [random_array(2, 5), random_array(2, 3, seed=1)]
        a, b = np_crop(arrays, [None, "upper"])
        np.testing.assert_allclose(evaluate(layer, arrays), a + b, rtol=1e-6)

    def test_function_must_be_callable(self):
        with pytest.raises(TypeError, match="callable"):
            ElemwiseMergeLayer([(2,), (2,)], "add")


class TestElemwiseSumLayer:
    def test_plain_sum(self):
        layer = ElemwiseSumLayer([(None, 3)] * 3)
        assert layer.coeffs == [1, 1, 1]
        assert layer.merge_function is T.add
        arrays = [random_array(2, 3, seed=i) for i in range(3)]
        np.testing.assert_allclose(evaluate(layer, arrays), sum(arrays), rtol=1e-6)

    def test_coefficients(self):
        layer = ElemwiseSumLayer([(None, 3)] * 2, coeffs=[0.5, -2])
        assert layer.coeffs == [0.5, -2]
        arrays = [random_array(2, 3, seed=i) for i in range(2)]
        out = evaluate(layer, arrays)
        assert out.dtype == FLOATX
        np.testing.assert_allclose(out, 0.5 * arrays[0] - 2 * arrays[1], rtol=1e-6)

    def test_single_coefficient_is_repeated(self):
        assert ElemwiseSumLayer([(2,)] * 3, coeffs=0.25).coeffs == [0.25] * 3

    def test_wrong_number_of_coefficients(self):
        with pytest.raises(ValueError, match=r"one per input \(2\), got 3 coeffs"):
            ElemwiseSumLayer([(2,), (2,)], coeffs=[1, 2, 3])

    def test_cropping(self):
        layer = ElemwiseSumLayer([(4, 2), (3, 2)], cropping=["center"])
        assert layer.cropping == ["center"]
        assert layer.output_shape == (3, 2)
