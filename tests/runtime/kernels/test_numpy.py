"""runtime.kernels._numpy, the reference kernels, against direct-loop oracles."""
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import kernels
from runtime.kernels import _numpy

from .. import oracles
from .cases import TOLERANCE, arrays, conv_cases, pool_cases


def test_kernels_exports_the_numpy_kernels():
    assert kernels.dense is _numpy.dense and kernels.autocrop is _numpy.autocrop
    assert all(getattr(kernels, name) is getattr(_numpy, name) for name in _numpy.__all__)


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


@pytest.mark.parametrize("nonlinearity", [
    {"name": "rectify"}, {"name": "leaky_rectify", "leakiness": 0.3}, {"name": "softmax"},
    {"name": "leaky_rectify", "leakiness": 1.5}, {"name": "tanh"}, {"name": "linear"}])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dense_applies_the_nonlinearity_as_the_function_does(nonlinearity, dtype):
    """In place for rectify, leaky_rectify and softmax: the same values as the
    nonlinearity applied afterwards, inf and NaN rows included, for a batch and for each
    row alone (a single item takes other paths: W.T.dot, whole-row softmax)."""
    from runtime.nonlinearities import get_nonlinearity

    f = get_nonlinearity(nonlinearity)
    rng = np.random.default_rng(1)
    x, W = rng.standard_normal((6, 4)).astype(dtype), rng.standard_normal((4, 5)).astype(dtype)
    x[1, 0], x[2, 0], x[3, 1] = np.inf, -np.inf, np.nan  # rows of inf, -inf and NaN
    b = rng.standard_normal(5).astype(dtype)
    with np.errstate(all="ignore"):
        expected = f(x @ W + b)
        got = _numpy.dense(x, W, b, f)
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0, equal_nan=True)
    for row in range(len(x)):
        with np.errstate(all="ignore"):
            one = _numpy.dense(x[row:row + 1], W, b, f)
        assert one.shape == (1, 5) and one.dtype == expected.dtype
        np.testing.assert_allclose(one, expected[row:row + 1], rtol=1e-6, atol=0,
                                   equal_nan=True)


@pytest.mark.parametrize("nonlinearity", [
    None, {"name": "rectify"}, {"name": "leaky_rectify", "leakiness": 0.3},
    {"name": "softmax"}, {"name": "leaky_rectify", "leakiness": 1.5}, {"name": "tanh"}])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dense_one_matches_dense(nonlinearity, bias, dtype):
    """The same values as dense for each row alone, inf and NaN rows included, for W in
    Fortran and in C order; the argument is left alone."""
    from runtime.nonlinearities import get_nonlinearity

    f = None if nonlinearity is None else get_nonlinearity(nonlinearity)
    rng = np.random.default_rng(2)
    x, W = rng.standard_normal((5, 4)).astype(dtype), rng.standard_normal((4, 6)).astype(dtype)
    x[1, 0], x[2, 0], x[3, 1] = np.inf, -np.inf, np.nan
    b = rng.standard_normal(6).astype(dtype) if bias else None
    for weights in (np.asfortranarray(W), W):
        one = _numpy.dense_one(weights, b, f)
        for row in range(len(x)):
            item = x[row:row + 1].copy()
            with np.errstate(all="ignore"):
                got, expected = one(item), _numpy.dense(x[row:row + 1], W, b, f)
            assert got.shape == (1, 6) and got.dtype == expected.dtype
            # W's two orders sum in different orders: a few ulps
            np.testing.assert_allclose(got, expected, rtol=1e-5, equal_nan=True,
                                       atol=1e-6 if dtype == "float32" else 1e-14)
            np.testing.assert_array_equal(item, x[row:row + 1])


def test_dense_one_defers_while_the_flag_is_set():
    import contextvars

    flag = contextvars.ContextVar("flag", default=False)
    calls = []
    W = np.ones((3, 2), np.float32, order="F")
    one = _numpy.dense_one(W, defer=(flag, lambda *args: calls.append(args) or "deferred"))
    x = np.ones((1, 3), np.float32)
    np.testing.assert_array_equal(one(x), [[3, 3]])
    token = flag.set(True)
    try:
        assert one(x) == "deferred"
    finally:
        flag.reset(token)
    assert len(calls) == 1 and calls[0][0] is x and calls[0][1] is W


def test_dense_one_leaves_programs_to_dense():
    """A program nonlinearity may name axes: it must see dense's (1, units) row."""
    from runtime.program import Program

    program = Program({"inputs": [{"ndim": 2, "dtype": "float32"}], "code": [
        {"op": "softmax", "inputs": [0], "attrs": {"axis": 0}, "dtype": "float32"}],
        "output": 1}, "nonlinearity")
    assert _numpy.dense_one(np.ones((3, 2), np.float32), None, program) is None


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


def check(got, expected, dtype):
    assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
    assert got.dtype == np.dtype(dtype), f"dtype {got.dtype}, expected {dtype}"
    np.testing.assert_allclose(got, expected, **TOLERANCE[np.dtype(dtype).name])


class TestConv:
    @settings(max_examples=60, deadline=None)
    @given(case=conv_cases(), chunk_bytes=st.sampled_from([1, 64 * 2**20]))
    def test_matches_the_direct_loops(self, case, chunk_bytes):
        before = case["x"].copy()
        with mock.patch.object(_numpy, "CHUNK_BYTES", chunk_bytes):  # 1: one item per chunk
            got = _numpy.conv(**case)
        check(got, oracles.conv(**case), case["x"].dtype)
        np.testing.assert_array_equal(case["x"], before)

    def test_a_worked_example(self):
        x = np.arange(5, dtype=np.float32).reshape(1, 1, 5)
        y = _numpy.conv(x, np.array([[[1, 10]]], np.float32), np.array([0.5], np.float32),
                        stride=(2,), pad=((1, 1),))
        assert y.tolist() == [[[0.5 + 0 + 0, 0.5 + 1 + 20, 0.5 + 3 + 40]]]

    def test_the_nonlinearity_applies_last(self):
        x, W = arrays(0, "float64", (2, 3, 5, 4), (4, 3, 2, 2))
        np.testing.assert_allclose(_numpy.conv(x, W, nonlinearity=np.tanh),
                                   np.tanh(oracles.conv(x, W)))

    @pytest.mark.parametrize("x_shape, W_shape, groups, match", [
        ((1, 3, 5, 5), (2, 2, 3, 3), 1, r"need 2 input channels, got shape \(1, 3, 5, 5\)"),
        ((1, 4, 5, 5), (3, 2, 3, 3), 2, "groups=2 must divide the number of filters 3"),
        ((1, 2, 2, 5), (2, 2, 3, 3), 1, r"smaller than the dilated filter \(3, 3\)"),
        ((1, 2, 5), (2, 2, 3, 3), 1, "needs a 4-dimensional input"),
    ])
    def test_refuses_what_does_not_fit(self, x_shape, W_shape, groups, match):
        with pytest.raises(ValueError, match=match):
            _numpy.conv(np.zeros(x_shape), np.zeros(W_shape), groups=groups)

    def test_refuses_negative_padding_and_zero_stride(self):
        with pytest.raises(ValueError, match="stride must have one entry per spatial axis"):
            _numpy.conv(np.zeros((1, 1, 5)), np.zeros((1, 1, 2)), stride=(0,))
        with pytest.raises(ValueError, match="pad must"):
            _numpy.conv(np.zeros((1, 1, 5)), np.zeros((1, 1, 2)), pad=((-1, 0),))

    def test_output_shape(self):
        assert _numpy.conv_output_shape((28, 9), (3, 2), (1, 3), ((0, 0), (2, 1)), (1, 2)) == (
            26, 4)


class TestConvTranspose:
    @settings(max_examples=40, deadline=None)
    @given(case=conv_cases(), extra=st.data())
    def test_matches_the_scatter_loops(self, case, extra):
        # transpose the convolution of the case: x is its output, W its filters
        x, W, stride, crop = case["x"], case["W"], case["stride"], case["pad"]
        forward = _numpy.conv(x, W, None, stride, crop, None, case["groups"])
        grown = tuple(extra.draw(st.integers(0, s - 1)) for s in stride)
        out_shape = tuple(s + g if _numpy.conv_output_shape(
            (s + g,), (k,), (t,), (c,), (1,)) == (o,) else s for s, g, k, t, c, o in zip(
            x.shape[2:], grown, W.shape[2:], stride, crop, forward.shape[2:]))
        bias = extra.draw(st.sampled_from([None, (W.shape[1] * case["groups"],)]))
        b, = arrays(1, x.dtype, bias)
        got = _numpy.conv_transpose(forward, W, b, stride, crop, None, case["groups"],
                                    out_shape)
        expected = oracles.conv_transpose(forward, W, out_shape, b, stride, crop, case["groups"])
        check(got, expected, x.dtype)

    @settings(max_examples=20, deadline=None)
    @given(case=conv_cases())
    def test_is_the_adjoint_of_conv(self, case):
        """<conv(z, W), y> == <z, conv_transpose(y, W)> for every z and y."""
        z, W = (case[k].astype(np.float64) for k in ("x", "W"))
        geometry = (case["stride"], case["pad"], case["dilation"], case["groups"])
        y, = arrays(2, "float64", _numpy.conv(z, W, None, *geometry).shape)
        back = _numpy.conv_transpose(y, W, None, *geometry, output_shape=z.shape[2:])
        assert back.shape == z.shape
        np.testing.assert_allclose(np.vdot(_numpy.conv(z, W, None, *geometry), y),
                                   np.vdot(z, back), rtol=1e-9)

    def test_default_output_shape_is_the_smallest(self):
        y = _numpy.conv_transpose(np.ones((1, 1, 3)), np.ones((1, 2, 3)), stride=(2,),
                                  crop=((1, 0),))
        assert y.shape == (1, 2, 6)

    def test_refuses_an_output_shape_the_convolution_would_not_map_back(self):
        with pytest.raises(ValueError, match=r"spatial shape \(9,\)"):
            _numpy.conv_transpose(np.ones((1, 1, 3)), np.ones((1, 1, 3)), stride=(2,),
                                  output_shape=(9,))


class TestLocallyConnected:
    @settings(max_examples=30, deadline=None)
    @given(channelwise=st.booleans(), size=st.tuples(st.integers(1, 6), st.integers(1, 6)),
           kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
           stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
           pad=st.tuples(st.integers(0, 2), st.integers(0, 2)), seed=st.integers(0, 99),
           bias=st.sampled_from([None, "tied", "untied"]))
    def test_matches_the_direct_loops(self, channelwise, size, kernel, stride, pad, seed, bias):
        pads = tuple((p, p) for p in pad)
        out = tuple((s + 2 * p - k) // t + 1 for s, p, k, t in zip(size, pad, kernel, stride))
        if min(out) < 1:
            return
        channels, filters = 3, 3 if channelwise else 2
        W_shape = (filters,) + (() if channelwise else (channels,)) + kernel + out
        b_shape = {None: None, "tied": (filters,), "untied": (filters,) + out}[bias]
        x, W, b = arrays(seed, "float64", (2, channels) + size, W_shape, b_shape)
        got = _numpy.locally_connected(x, W, b, stride, pads, channelwise)
        check(got, oracles.locally_connected(x, W, b, stride, pads, channelwise), "float64")

    def test_refuses_weights_for_another_output_shape(self):
        with pytest.raises(ValueError, match=r"output of spatial shape \(4, 4\)"):
            _numpy.locally_connected(np.zeros((1, 2, 5, 5)), np.zeros((3, 2, 3, 3, 4, 4)))


class TestPool:
    @settings(max_examples=80, deadline=None)
    @given(case=pool_cases())
    def test_matches_theanos_perform(self, case):
        x = case[0]
        check(_numpy.pool(*case), oracles.pool(*case), x.dtype)

    @pytest.mark.parametrize("size, ws, stride, pad, ignore_border", [
        (size, ws, st, pd, ib) for size in range(1, 9) for ws in range(1, 4)
        for st in range(1, 5) for pd in range(3) for ib in (True, False)
        if pd < ws and (ib or not pd)])
    def test_output_length_follows_theano(self, size, ws, stride, pad, ignore_border):
        assert _numpy.pool_output_shape((size,), (ws,), (stride,), (pad,), ignore_border) == (
            oracles.pool_out_length(size, ws, stride, pad, ignore_border),)

    def test_pads_never_win_a_max_and_count_only_when_asked(self):
        x = -np.arange(1.0, 5.0).reshape(2, 2)  # all negative: a zero pad would win
        assert _numpy.pool(x, (2, 2), (2, 2), (1, 1)).tolist() == [[-1, -2], [-3, -4]]
        x = np.full((1, 3), 6.0)
        assert _numpy.pool(x, (1, 2), (1, 2), (0, 1), mode="average_inc_pad").tolist() == [
            [3, 6]]
        assert _numpy.pool(x, (1, 2), (1, 2), (0, 1), mode="average_exc_pad").tolist() == [
            [6, 6]]

    def test_partial_windows_average_over_what_they_cover(self):
        x = np.arange(5.0)
        assert _numpy.pool(x, (2,), ignore_border=False, mode="average_inc_pad").tolist() == [
            0.5, 2.5, 4.0]

    def test_too_small_an_input_gives_an_empty_output(self):
        assert _numpy.pool(np.ones((2, 1, 2)), (3,)).shape == (2, 1, 0)

    @pytest.mark.parametrize("kwargs, match", [
        (dict(pad=(2,)), "pad must be smaller than pool_size"),
        (dict(pad=(1,), ignore_border=False), "padding works only with ignore_border=True"),
        (dict(mode="sum"), "mode must be one of max, average_inc_pad, average_exc_pad"),
        (dict(stride=(0,)), "positive"),
    ])
    def test_refuses_what_theano_refuses(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            _numpy.pool(np.ones((1, 4)), (2,), **kwargs)

    def test_refuses_integer_and_empty_inputs(self):
        with pytest.raises(ValueError, match="needs a float input"):
            _numpy.pool(np.ones((1, 4), np.int64), (2,))
        with pytest.raises(ValueError, match="non-empty"):
            _numpy.pool(np.ones((1, 0)), (2,))


class TestSpatialPyramidPool:
    @settings(max_examples=30, deadline=None)
    @given(h=st.integers(4, 9), w=st.integers(4, 9), seed=st.integers(0, 99),
           dims=st.lists(st.integers(1, 4), min_size=1, max_size=3),
           mode=st.sampled_from(_numpy.POOL_MODES))
    def test_matches_lasagnes_definition(self, h, w, seed, dims, mode):
        x, = arrays(seed, "float32", (2, 3, h, w))
        check(_numpy.spatial_pyramid_pool(x, dims, mode),
              oracles.spatial_pyramid_pool(x, dims, mode), "float32")

    def test_levels_need_not_be_p_by_p(self):  # Lasagne's 'fast' quirk, reproduced
        assert _numpy.spatial_pyramid_pool(np.ones((1, 1, 5, 5)), [3]).shape == (1, 1, 16)

    def test_refuses_an_input_smaller_than_a_level(self):
        with pytest.raises(ValueError, match="smaller than the largest pool_dims entry 4"):
            _numpy.spatial_pyramid_pool(np.ones((1, 1, 3, 8)), [4, 1])

    @pytest.mark.parametrize("mode", ["max", "average_inc_pad"])
    @pytest.mark.parametrize("size", [(6, 6), (5, 7), (1, 1), (3, 2)])
    def test_kaiming_bins(self, mode, size):
        x, = arrays(0, "float32", (2, 3) + size)
        check(_numpy.spatial_pyramid_bins(x, [4, 3, 1], mode),
              oracles.spatial_pyramid_bins(x, [4, 3, 1], mode), "float32")


class TestFeatureKernels:
    @pytest.mark.parametrize("function", ["mean", "max", "min", "sum"])
    def test_global_pool(self, function):
        x, = arrays(0, "float32", (2, 3, 4, 5))
        check(_numpy.global_pool(x, function), oracles.global_pool(x, function), "float32")

    @pytest.mark.parametrize("mode", ["repeat", "dilate"])
    @pytest.mark.parametrize("scale", [(2,), (1, 3), (3, 1, 2)])
    def test_upscale(self, mode, scale):
        x, = arrays(0, "float32", (2, 2) + (3,) * len(scale))
        check(_numpy.upscale(x, scale, mode), oracles.upscale(x, scale, mode), "float32")

    @pytest.mark.parametrize("axis", [0, 1, 2, -1])
    @pytest.mark.parametrize("function", ["mean", "max", "min", "sum"])
    def test_feature_pool(self, axis, function):
        x, = arrays(0, "float64", (6, 6, 6))
        check(_numpy.feature_pool(x, 3, axis, function),
              oracles.feature_pool(x, 3, axis, function), "float64")

    @pytest.mark.parametrize("axis", [0, 1, 2])
    def test_feature_wta(self, axis):
        x, = arrays(0, "float32", (4, 6, 2))
        x[0, 0, 0] = x[1, 0, 0]  # a tie: the first one wins
        check(_numpy.feature_wta(x, 2, axis), oracles.feature_wta(x, 2, axis), "float32")

    def test_feature_kernels_refuse_indivisible_axes(self):
        with pytest.raises(ValueError, match="multiple of pool_size=4"):
            _numpy.feature_pool(np.ones((2, 6)), 4, 1, "max")
        with pytest.raises(ValueError, match="multiple of pool_size=4"):
            _numpy.feature_wta(np.ones((2, 6)), 4, 1)


class TestNormalization:
    @pytest.mark.parametrize("n", [1, 3, 5, 7])
    def test_local_response_norm(self, n):
        x, = arrays(n, "float32", (2, 5, 3, 2))
        check(_numpy.local_response_norm(x, 1e-1, 2.0, 0.75, n),
              oracles.local_response_norm(x, 1e-1, 2.0, 0.75, n), "float32")

    def test_local_response_norm_refuses_an_even_n(self):
        with pytest.raises(ValueError, match="positive odd"):
            _numpy.local_response_norm(np.ones((1, 2, 1, 1)), 1.0, 1.0, 1.0, 2)

    @pytest.mark.parametrize("axes", [(1,), (1, 2, 3), (0, 2), (2, 3)])
    def test_standardize(self, axes):
        x, = arrays(1, "float32", (2, 3, 4, 5))
        check(_numpy.standardize(x, axes, 1e-4), oracles.standardize(x, axes, 1e-4), "float32")

    def test_affine(self):
        x, scale, shift = arrays(2, "float32", (2, 3, 4), (1, 3, 1), (1, 3, 1))
        check(_numpy.affine(x, scale, shift), x.astype(np.float64) * scale + shift, "float32")
