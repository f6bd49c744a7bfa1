"""runtime.kernels._numpy, the reference kernels."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import kernels
from runtime.kernels import _numpy


def test_the_numpy_kernels_are_selected():
    assert kernels.BACKEND == "numpy"
    assert kernels.dense is _numpy.dense and kernels.autocrop is _numpy.autocrop


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 5), k=st.integers(0, 6), m=st.integers(1, 5), bias=st.booleans(),
       dtype=st.sampled_from(["float32", "float64"]))
def test_dense(n, k, m, bias, dtype):
    rng = np.random.default_rng(n * 100 + k * 10 + m)
    x, W = rng.standard_normal((n, k)).astype(dtype), rng.standard_normal((k, m)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype) if bias else None
    x_before = x.copy()
    y = _numpy.dense(x, W, b)
    expected = np.array([[sum(float(x[i, j]) * float(W[j, c]) for j in range(k))
                          + (float(b[c]) if bias else 0.0) for c in range(m)] for i in range(n)])
    assert y.dtype == np.dtype(dtype) and y.shape == (n, m)
    np.testing.assert_allclose(y, expected.reshape(n, m), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(x, x_before)


class TestAutocrop:
    def test_none_returns_the_inputs(self):
        a, b = np.zeros(3), np.zeros(5)
        assert all(p is q for p, q in zip(_numpy.autocrop([a, b], None), [a, b]))

    @pytest.mark.parametrize("mode, first, second", [
        ("lower", [0, 1, 2], [0, 1, 2]), ("upper", [0, 1, 2], [4, 5, 6]),
        ("center", [0, 1, 2], [2, 3, 4]), (None, [0, 1, 2], [0, 1, 2, 3, 4, 5, 6]),
    ])
    def test_modes_on_one_axis(self, mode, first, second):
        a, b = _numpy.autocrop([np.arange(3), np.arange(7)], [mode])
        assert a.tolist() == first and b.tolist() == second

    def test_per_axis_and_trailing_axes_untouched(self):
        a = np.arange(4 * 6 * 2).reshape(4, 6, 2)
        b = np.arange(2 * 3 * 5).reshape(2, 3, 5)
        ca, cb = _numpy.autocrop([a, b], ["upper", "center"])
        np.testing.assert_array_equal(ca, a[2:4, 1:4, :])
        np.testing.assert_array_equal(cb, b)

    def test_refuses_mixed_ranks_and_too_many_entries(self):
        with pytest.raises(ValueError, match=r"one dimensionality, got \[1, 2\]"):
            _numpy.autocrop([np.zeros(3), np.zeros((3, 1))], ["lower"])
        with pytest.raises(ValueError, match="cropping has 2 entries for 1-dimensional"):
            _numpy.autocrop([np.zeros(3), np.zeros(2)], ["lower", None])

    def test_empty_axis(self):
        a, b = _numpy.autocrop([np.arange(3), np.zeros(0)], ["upper"])
        assert a.shape == b.shape == (0,)
