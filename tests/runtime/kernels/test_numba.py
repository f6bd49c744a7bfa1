"""runtime.kernels._numba against the numpy reference, on the same generated cases."""
import pathlib
import subprocess
import sys
import textwrap
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.kernels import _numpy
from runtime.nonlinearities import get_nonlinearity

from .cases import TOLERANCE, arrays, conv_cases, direct_conv_cases, pool_cases

numba = pytest.importorskip("numba", reason="numba not installed (optional [fast] extra)")

from runtime.kernels import _numba  # noqa: E402  (after the skip)

FUSED = [None, {"name": "linear"}, {"name": "rectify"},
         {"name": "leaky_rectify", "leakiness": 0.2}]
NOT_FUSED = [{"name": "tanh"}, {"name": "softmax"}]


def check(got, expected):
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, **TOLERANCE[expected.dtype.name])


def same_bits_for_any_thread_count(monkeypatch, call):
    """``call()`` with its work split over 1, 2 and 3 threads gives equal bits (each item
    is summed in the same order whatever the split); returns the result."""
    results = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(_numba, "THREADS", threads)
        monkeypatch.setattr(_numba, "THREAD_MIN_WORK", 1)
        results.append(call())
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)
    return results[0]


def test_offers_every_kernel_the_numpy_module_offers():
    assert _numba.__all__ == _numpy.__all__
    for name in _numpy.__all__:
        assert callable(getattr(_numba, name))
    assert {name for name in _numpy.__all__
            if getattr(_numba, name) is not getattr(_numpy, name)} == set(_numba.ACCELERATED)


class TestConv:
    @settings(max_examples=60, deadline=None)
    @given(case=conv_cases(), nonlinearity=st.sampled_from(FUSED + NOT_FUSED),
           chunk_bytes=st.sampled_from([1, 4 * 2**20]))
    def test_matches_numpy(self, case, nonlinearity, chunk_bytes):
        f = None if nonlinearity is None else get_nonlinearity(nonlinearity)
        before = case["x"].copy()
        with mock.patch.object(_numba, "CHUNK_BYTES", chunk_bytes):  # 1: an item a chunk
            got = _numba.conv(**case, nonlinearity=f)
        check(got, _numpy.conv(**case, nonlinearity=f))
        np.testing.assert_array_equal(case["x"], before)

    @pytest.mark.parametrize("x_shape, W_shape, kwargs", [
        ((2, 8, 9, 7), (2, 8, 3, 3), dict(pad=((1, 2), (0, 1)))),  # rows along the last axis
        ((2, 1, 9, 7), (8, 1, 3, 3), dict(dilation=(2, 1))),  # every offset in the rows
        ((2, 3, 6, 6), (4, 3, 5, 5), {}),  # mostly junk columns: row by row
        ((2, 4, 9, 8), (3, 4, 3, 2), dict(stride=(2, 1))),  # strided: row by row
        ((1, 6, 5, 6, 7), (2, 6, 3, 2, 3), dict(pad=((1, 1), (0, 1), (2, 0)),
                                                dilation=(1, 2, 1))),  # 3-d, shifted
        ((3, 4, 11), (6, 2, 3), dict(groups=2, pad=((2, 2),))),  # 1-d, grouped
    ])
    def test_each_im2col_plan(self, x_shape, W_shape, kwargs):
        x, W, b = arrays(3, "float32", x_shape, W_shape, (W_shape[0],))
        f = get_nonlinearity({"name": "leaky_rectify", "leakiness": 0.1})
        check(_numba.conv(x, W, b, nonlinearity=f, **kwargs),
              _numpy.conv(x, W, b, nonlinearity=f, **kwargs))

    def test_takes_non_contiguous_inputs(self):
        x, W, b = arrays(0, "float32", (3, 4, 9, 8), (5, 4, 3, 3), (5,))
        view = x[:, :, ::2, ::-1]
        check(_numba.conv(view, W, b, pad=((1, 1), (0, 2))),
              _numpy.conv(view, W, b, pad=((1, 1), (0, 2))))

    def test_other_dtypes_and_ranks_go_to_numpy(self):
        x, W = np.ones((1, 2, 3)), np.ones((1, 2, 2), np.float32)  # mixed float64/float32
        check(_numba.conv(x, W), _numpy.conv(x, W))
        x, W = np.ones((1, 1, 2, 2, 2, 2)), np.ones((1, 1, 1, 1, 1, 2))  # 4 spatial axes
        check(_numba.conv(x, W), _numpy.conv(x, W))

    def test_refuses_what_numpy_refuses(self):
        with pytest.raises(ValueError, match="need 2 input channels"):
            _numba.conv(np.zeros((1, 3, 5, 5)), np.zeros((2, 2, 3, 3)))

    def test_scratch_buffers_are_kept_per_thread(self):
        """Reused from call to call (no fresh allocation of the im2col buffer), never
        shared between threads (a server calls one model from many)."""
        import threading

        first = _numba._scratch("test", 1000, np.float32)
        again = _numba._scratch("test", 800, np.float32)
        assert again.base is first.base and again.size == 800
        other = []
        thread = threading.Thread(target=lambda: other.append(
            _numba._scratch("test", 1000, np.float32)))
        thread.start()
        thread.join()
        assert not np.shares_memory(other[0], first)
        huge = (_numba.KEEP_BYTES // 4) + 1  # too large to keep: a fresh buffer each call
        assert not np.shares_memory(_numba._scratch("test", huge, np.float32),
                                    _numba._scratch("test", huge, np.float32))

    def test_threads_get_the_same_results(self):
        from concurrent.futures import ThreadPoolExecutor

        x, W, b = arrays(5, "float32", (8, 16, 12, 11), (8, 16, 3, 3), (8,))
        expected = _numpy.conv(x, W, b)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda i: _numba.conv(x[i % 8:], W, b), range(16)))
        for i, got in enumerate(results):
            check(got, expected[i % 8:])

    def test_empty_batch(self):
        y = _numba.conv(np.zeros((0, 2, 5, 5), np.float32), np.zeros((3, 2, 3, 3), np.float32))
        assert y.shape == (0, 3, 3, 3)


class TestDirectConv:
    """The direct kernel (float32, unit strides, filters filling tiles of 8): against
    numpy, with the batch split over 1 to 3 threads."""

    @pytest.fixture
    def direct_calls(self, monkeypatch):
        calls = []
        real = _numba._conv_direct_all
        monkeypatch.setattr(_numba, "_conv_direct_all",
                            lambda *args: calls.append(args[0].shape) or real(*args))
        monkeypatch.setattr(_numba, "THREAD_MIN_WORK", 1)  # split even the small cases
        return calls

    @settings(max_examples=60, deadline=None,  # the fixture's list is cleared per example
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(case=direct_conv_cases(), nonlinearity=st.sampled_from(FUSED + NOT_FUSED),
           threads=st.integers(1, 3))
    def test_matches_numpy(self, direct_calls, case, nonlinearity, threads):
        f = None if nonlinearity is None else get_nonlinearity(nonlinearity)
        direct_calls.clear()
        with mock.patch.object(_numba, "THREADS", threads):
            got = _numba.conv(**case, nonlinearity=f)
        check(got, _numpy.conv(**case, nonlinearity=f))
        padded = [1, 1] + [s + a + b for s, (a, b) in zip(case["x"].shape[2:], case["pad"])]
        out = [1, 1] + list(got.shape[2:])
        span = (out[-3] - 1) * padded[-2] * padded[-1] + (out[-2] - 1) * padded[-1] + out[-1]
        mostly_junk = np.prod(padded) > 2 * np.prod(out)  # then im2col, row by row
        assert bool(direct_calls) is (span >= _numba.TILE_LANES and not mostly_junk)

    @pytest.mark.parametrize("width", [_numba.TILE_LANES + extra for extra in (0, 1, 15)]
                             + [2 * _numba.TILE_LANES + extra for extra in (-1, 0, 1)])
    def test_the_last_tile_of_a_row_overlaps(self, direct_calls, width):
        """Spans of one tile, just over one (the last tile starts one position after
        the first) and just under two."""
        x, W, b = arrays(width, "float32", (2, 3, width + 2), (8, 3, 3), (8,))
        check(_numba.conv(x, W, b), _numpy.conv(x, W, b))
        assert direct_calls

    @pytest.mark.parametrize("filters, direct", [(8, True), (7, True), (6, False),
                                                 (12, False), (13, True), (16, True)])
    def test_filters_fill_four_fifths_of_their_tiles(self, direct_calls, filters, direct):
        x, W = arrays(filters, "float32", (2, 3, 9, 9), (filters, 3, 3, 3))
        check(_numba.conv(x, W), _numpy.conv(x, W))
        assert bool(direct_calls) is direct

    def test_short_spans_and_float64_go_to_the_products(self, direct_calls):
        x, W = arrays(1, "float32", (2, 3, 5, 5), (8, 3, 3, 3))  # span 2 * 5 + 3 < 48
        check(_numba.conv(x, W), _numpy.conv(x, W))
        x, W = arrays(1, "float64", (2, 3, 9, 9), (8, 3, 3, 3))
        check(_numba.conv(x, W), _numpy.conv(x, W))
        assert not direct_calls

    def test_threads_split_the_batch_with_the_same_results(self, monkeypatch):
        x, W, b = arrays(2, "float32", (7, 16, 12, 12), (16, 16, 3, 3), (16,))
        same_bits_for_any_thread_count(monkeypatch, lambda: _numba.conv(x, W, b))
        assert _numba._threads_for(10**12, 7) == 3 and _numba._threads_for(10**12, 2) == 2
        monkeypatch.setattr(_numba, "THREAD_MIN_WORK", 2**24)
        assert _numba._threads_for(2**24 * 2 - 1, 64) == 1  # too little work to share

    def test_the_readme_cnn_at_batch_64_uses_two_cores_throughout(self, monkeypatch):
        """At the shipped THREAD_MIN_WORK, on 2 cores: its first convolution (64 x 26 x 26
        positions x 576 weights, bound by its output) and its pooling (32 x 24 x 24 x 9
        comparisons an item) split too, not only the second convolution."""
        monkeypatch.setattr(_numba, "THREADS", 2)
        for work in (64 * 26 * 26 * 576, 64 * 24 * 24 * 64 * 32 * 9, 64 * 32 * 24 * 24 * 9):
            assert _numba._threads_for(work, 64) == 2
        assert _numba._threads_for(64 * 32 * 24 * 24 * 9 // 4, 16) == 1  # batch 16's pool

    def test_an_error_in_a_pool_thread_reaches_the_caller(self):
        def fail_past_the_first(first, count):
            if first:
                raise ValueError(f"item {first}")

        with pytest.raises(ValueError, match="item 2"):
            _numba._run_split(fail_past_the_first, 4, 2)


class TestDirectDense:
    """The direct dense product (float32, items filling blocks of 8, at least a tile of
    units): against numpy, with the items split over 1 to 3 threads."""

    @pytest.fixture
    def direct_calls(self, monkeypatch):
        calls = []
        real = _numba._dense_direct
        monkeypatch.setattr(_numba, "_dense_direct",
                            lambda *args: calls.append(args[1]) or real(*args))
        monkeypatch.setattr(_numba, "THREAD_MIN_WORK", 1)  # split even the small cases
        return calls

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(items=st.integers(1, 70), features=st.integers(1, 300),
           units=st.sampled_from([1, 10, 47, 48, 49, 95, 96, 97, 130]),
           bias=st.booleans(), nonlinearity=st.sampled_from(FUSED + NOT_FUSED),
           dtype=st.sampled_from(["float32", "float32", "float64"]), chunk=st.sampled_from(
               [1, 7, _numba.DENSE_CHUNK]), threads=st.integers(1, 3), seed=st.integers(0, 99))
    def test_matches_numpy(self, direct_calls, items, features, units, bias, nonlinearity,
                           dtype, chunk, threads, seed):
        x, W, b = arrays(seed, dtype, (items, features), (features, units),
                         (units,) if bias else None)
        f = None if nonlinearity is None else get_nonlinearity(nonlinearity)
        direct_calls.clear()
        with mock.patch.multiple(_numba, THREADS=threads, DENSE_CHUNK=chunk):
            got = _numba.dense(x, W, b, f)
        check(got, _numpy.dense(x, W, b, f))
        blocks = -(-items // 8)
        takes = (dtype == "float32" and units >= _numba.TILE_LANES and items >= 8
                 and 5 * items >= 4 * 8 * blocks)
        assert bool(direct_calls) is takes
        if takes:  # one call a thread, each from the first block of its share
            assert direct_calls == [blocks * i // min(threads, blocks)
                                    for i in range(min(threads, blocks))]

    @pytest.mark.parametrize("items, direct", [(8, True), (9, False), (13, True), (16, True),
                                               (17, False), (33, True), (64, True)])
    def test_items_fill_four_fifths_of_their_blocks(self, direct_calls, items, direct):
        x, W = arrays(items, "float32", (items, 20), (20, 50))
        check(_numba.dense(x, W), _numpy.dense(x, W))
        assert bool(direct_calls) is direct

    def test_threads_split_the_items_with_the_same_results(self, monkeypatch):
        """Also: the last block (which starts inside the one before it) changes none of
        the rows before it."""
        x, W, b = arrays(3, "float32", (61, 300), (300, 100), (100,))
        check(same_bits_for_any_thread_count(monkeypatch, lambda: _numba.dense(x, W, b)),
              _numpy.dense(x, W, b))

    def test_takes_non_contiguous_inputs_and_leaves_them_alone(self):
        x, W = arrays(4, "float32", (40, 100), (100, 60))
        x_view, W_view = x[:, ::2], W[::2, ::-1][:, :50]
        before = x.copy(), W.copy()
        check(_numba.dense(x_view, W_view), _numpy.dense(x_view, W_view))
        np.testing.assert_array_equal(x, before[0])
        np.testing.assert_array_equal(W, before[1])


class TestPool:
    @settings(max_examples=80, deadline=None)
    @given(case=pool_cases(), threads=st.integers(1, 3))
    def test_matches_numpy(self, case, threads):
        """With the planes split over 1 to 3 threads, even for small inputs."""
        with mock.patch.multiple(_numba, THREADS=threads, THREAD_MIN_WORK=1):
            got = _numba.pool(*case)
        check(got, _numpy.pool(*case))

    def test_threads_split_the_planes_with_the_same_results(self, monkeypatch):
        x, = arrays(6, "float32", (5, 3, 24, 24))
        for mode in _numpy.POOL_MODES:
            check(same_bits_for_any_thread_count(
                monkeypatch, lambda: _numba.pool(x, (3, 3), (2, 2), mode=mode)),
                _numpy.pool(x, (3, 3), (2, 2), mode=mode))

    @pytest.mark.parametrize("where", [(0, 0, 0), (0, 1, 1), (1, 2, 2), (1, 0, 3)])
    @pytest.mark.parametrize("mode", _numpy.POOL_MODES)
    def test_nan_wins_as_in_numpy(self, where, mode):
        x = np.arange(24.0, dtype=np.float32).reshape(2, 3, 4)
        x[where] = np.nan
        for args in [((2, 2), (1, 1)), ((3, 2), (2, 2)), ((1, 3), (1, 1))]:
            np.testing.assert_array_equal(_numba.pool(x, *args, mode=mode),
                                          _numpy.pool(x, *args, mode=mode))

    @settings(max_examples=15, deadline=None)
    @given(h=st.integers(4, 9), w=st.integers(4, 9), seed=st.integers(0, 99),
           dims=st.lists(st.integers(1, 4), min_size=1, max_size=3),
           mode=st.sampled_from(_numpy.POOL_MODES))
    def test_spatial_pyramid_pool(self, h, w, seed, dims, mode):
        x, = arrays(seed, "float32", (2, 3, h, w))
        check(_numba.spatial_pyramid_pool(x, dims, mode),
              _numpy.spatial_pyramid_pool(x, dims, mode))


class TestCompilation:
    def test_every_kernel_is_compiled_with_the_one_set_of_flags(self):
        _numba.load()
        kernels = [getattr(_numba, name) for name in _numba._KERNELS]
        assert kernels and all(isinstance(k, numba.core.dispatcher.Dispatcher) for k in kernels)
        flags = {k: v for k, v in _numba.JIT_FLAGS.items() if k != "cache"}
        for kernel in kernels:
            assert kernel.targetoptions == dict(flags, nopython=True)
            assert type(kernel._cache).__name__ == "FunctionCache"  # cache=True
        assert _numba.JIT_FLAGS["cache"] is True
        assert not _numba.JIT_FLAGS.get("parallel", False)

    def test_compiles_without_a_cache_where_none_can_be_written(self, monkeypatch):
        real_njit, calls = numba.njit, []

        def njit(*args, **flags):  # what numba raises when no cache folder is writable
            if args or "cache" not in flags:  # numba's own modules, imported meanwhile
                return real_njit(*args, **flags)  # (numba.typed on numba 0.68)
            calls.append(flags["cache"])
            if flags["cache"]:
                raise RuntimeError("cannot cache function: no locator available")
            return real_njit(**flags)

        monkeypatch.setattr(numba, "njit", njit)
        monkeypatch.setattr(_numba, "_loaded", False)
        for name, function in _numba._KERNELS.items():
            monkeypatch.setattr(_numba, name, function)
        with pytest.warns(RuntimeWarning, match="set NUMBA_CACHE_DIR"):
            _numba.load()
        assert calls == [True, False] * len(_numba._KERNELS)
        x = np.ones((1, 1, 4, 4), np.float32)
        check(_numba.pool(x, (2, 2)), _numpy.pool(x, (2, 2)))

    def test_warm_cache_compiles_every_kernel(self):
        assert _numba.warm_cache() >= 0
        # called only by other kernels, compiled into them
        inlined = {"_valid_range", "_u", "_block_row", "_pack_items", "_touch"}
        for name in set(_numba._KERNELS) - inlined:
            assert getattr(_numba, name).signatures, f"{name} has no compiled signature"

    def test_no_numba_thread_pool_starts(self):
        """Single-threaded kernels on purpose: numba's threads (``parallel=True``) next to
        OpenBLAS's make the two pools fight over the cores (0.1 ms calls became 20 ms on
        a 2-core machine). numba starts its pool on the first parallel call, and
        ``numba.threading_layer()`` raises until then."""
        script = textwrap.dedent("""
            import numpy as np, numba
            from runtime.kernels import _numba
            _numba.warm_cache()
            x = np.ones((2, 3, 8, 8), np.float32)
            _numba.pool(_numba.conv(x, np.ones((4, 3, 3, 3), np.float32)), (2, 2))
            try:
                numba.threading_layer()
            except ValueError:
                print("no thread pool")
            else:
                print("thread pool started")
        """)
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                timeout=120, cwd=pathlib.Path(__file__).resolve().parents[3])
        assert result.stdout.strip() == "no thread pool", result.stderr
