"""Pooling layers: shapes, validation, outputs against numpy oracles, export configs."""
import doctest

import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

from forge import layers as L
from forge.export import ExportError, build_bundle
from forge.layers import pool

FLOATX = pytensor.config.floatX


def random_array(*shape, seed=0):
    return np.random.RandomState(seed).normal(size=shape).astype(FLOATX)


def evaluate(layer, data):
    var = T.tensor(dtype=FLOATX, shape=(None,) * data.ndim)
    return pytensor.function([var], layer.get_output_for(var))(data)


def np_pool(x, ps, st, pad, ignore_border, mode):
    """Theano's pooling, window by window: max and average_exc_pad see the real
    elements only, average_inc_pad divides by the window's size within the padded
    input (a partial window at the border counts what it covers)."""
    n = len(ps)
    spatial = x.shape[-n:]
    out_sp = [L.pool_output_length(spatial[i], ps[i], st[i], pad[i], ignore_border)
              for i in range(n)]
    out = np.zeros(x.shape[:-n] + tuple(out_sp))
    for o in np.ndindex(*out_sp):
        real, count = [], 1
        for i in range(n):
            start = o[i] * st[i]
            end = min(start + ps[i], spatial[i] + 2 * pad[i])
            count *= end - start
            real.append(slice(max(start, pad[i]) - pad[i],
                              min(end, spatial[i] + pad[i]) - pad[i]))
        region = x[(Ellipsis,) + tuple(real)].astype(np.float64)
        flat = region.reshape(region.shape[:-n] + (-1,))
        if mode == "max":
            value = flat.max(-1)
        elif mode == "sum":
            value = flat.sum(-1)
        elif mode == "average_exc_pad":
            value = flat.mean(-1)
        else:
            value = flat.sum(-1) / count
        out[(Ellipsis,) + o] = value
    return out


def np_spp(x, pool_dims, mode, implementation):
    levels = []
    rows, cols = x.shape[2:]
    reduce = {"max": np.max, "sum": np.sum}.get(mode, np.mean)
    for d in pool_dims:
        if implementation == "fast":
            ws = (-(-rows // d), -(-cols // d))
            st = (rows // d, cols // d)
            pooled = np_pool(x, ws, st, (0, 0), True, mode)
            levels.append(pooled.reshape(x.shape[:2] + (-1,)))
            continue
        for i in range(d):
            for j in range(d):
                region = x[:, :, (i * rows) // d:-(-(i + 1) * rows // d),
                           (j * cols) // d:-(-(j + 1) * cols // d)]
                levels.append(reduce(region, axis=(2, 3))[:, :, None])
    return np.concatenate(levels, axis=2)


MODES = ["max", "average_inc_pad", "average_exc_pad", "sum"]
POOL_TYPES = {1: L.Pool1DLayer, 2: L.Pool2DLayer, 3: L.Pool3DLayer}
MAX_POOL_TYPES = {1: L.MaxPool1DLayer, 2: L.MaxPool2DLayer, 3: L.MaxPool3DLayer}


class TestPoolOutputLength:
    @pytest.mark.parametrize("args, expected", [
        ((7, 2, 2, 0, True), 3), ((7, 2, 2, 0, False), 4), ((7, 3, 2, 1, True), 4),
        ((7, 3, 1, 0, False), 5), ((7, 2, 5, 0, False), 2), ((7, 2, 5, 0, True), 2),
        ((2, 3, 1, 0, False), 1), ((2, 3, 1, 0, True), 0), ((None, 2, 2, 0, True), None),
    ])
    def test_values(self, args, expected):
        assert L.pool_output_length(*args) == expected

    def test_padding_needs_ignore_border(self):
        with pytest.raises(ValueError, match="ignore_border=True"):
            L.pool_output_length(7, 3, 1, 1, False)


class TestPoolLayers:
    @pytest.mark.parametrize("n", [1, 2, 3])
    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("ps, st, pad, ignore_border", [
        (2, None, 0, True), (3, 2, 1, True), (2, 3, 0, False), (3, 1, 0, False),
        (3, 4, 2, True), (1, 2, 0, True),
    ])
    def test_output_matches_numpy(self, n, mode, ps, st, pad, ignore_border):
        spatial = (7, 6, 5)[:n]
        layer = POOL_TYPES[n]((None, 2) + spatial, pool_size=ps, stride=st, pad=pad,
                              ignore_border=ignore_border, mode=mode)
        tup = (ps,) * n
        assert layer.pool_size == tup and layer.pad == (pad,) * n
        assert layer.stride == (tup if st is None else (st,) * n)
        x = random_array(3, 2, *spatial)
        expected = np_pool(x, tup, layer.stride, layer.pad, ignore_border, mode)
        assert layer.output_shape == (None, 2) + expected.shape[2:]
        np.testing.assert_allclose(evaluate(layer, x), expected, rtol=1e-5, atol=1e-6)

    def test_non_square(self):
        layer = L.Pool2DLayer((None, 1, 9, 5), pool_size=(3, 2), stride=(2, 1),
                              pad=(1, 0), mode="average_inc_pad")
        x = random_array(1, 1, 9, 5)
        expected = np_pool(x, (3, 2), (2, 1), (1, 0), True, "average_inc_pad")
        assert layer.output_shape == (None, 1, 5, 4)
        np.testing.assert_allclose(evaluate(layer, x), expected, rtol=1e-5, atol=1e-6)

    def test_max_never_picks_the_padding(self):
        layer = L.MaxPool2DLayer((None, 1, 2, 2), pool_size=2, stride=1, pad=1)
        x = -np.ones((1, 1, 2, 2), dtype=FLOATX)
        assert (evaluate(layer, x) == -1).all()

    def test_unknown_spatial_size(self):
        layer = L.MaxPool2DLayer((None, 3, None, 8), 2)
        assert layer.output_shape == (None, 3, None, 4)
        assert evaluate(layer, random_array(1, 3, 5, 8)).shape == (1, 3, 2, 4)

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_max_pool_classes(self, n):
        cls = MAX_POOL_TYPES[n]
        layer = cls((None, 2) + (6,) * n, pool_size=2, stride=1)
        assert isinstance(layer, POOL_TYPES[n]) and layer.mode == "max"
        assert layer.output_shape == (None, 2) + (5,) * n
        with pytest.raises(TypeError):
            cls((None, 2) + (6,) * n, 2, mode="sum")

    @pytest.mark.parametrize("kwargs, message", [
        (dict(pool_size=0), "pool_size=0"),
        (dict(pool_size=(2, 2, 2)), r"tuple of 2 ints.*pool_size"),
        (dict(stride=(0, 1)), r"stride=\(0, 1\)"),
        (dict(pad=-1), "pad=-1"),
        (dict(pad=2), r"smaller than the pool size.*pad=\(2, 2\)"),
        (dict(pad=1, ignore_border=False), "padding works only with ignore_border=True"),
        (dict(mode="mean"), "mode='mean'"),
        (dict(pool_size=9), r"empty output.*\(None, 3, 0, 0\)"),
    ])
    def test_validation(self, kwargs, message):
        args = dict(pool_size=2)
        args.update(kwargs)
        with pytest.raises(ValueError, match=message):
            L.Pool2DLayer((None, 3, 6, 6), **args)

    def test_rank(self):
        with pytest.raises(ValueError, match=r"4-dimensional input.*\(None, 3, 6\)"):
            L.Pool2DLayer((None, 3, 6), 2)
        with pytest.raises(ValueError, match=r"3-dimensional input"):
            L.MaxPool1DLayer((None, 3, 6, 6), 2)

    def test_gradient(self):
        layer = L.Pool2DLayer((None, 1, 4, 4), 2, mode="average_exc_pad")
        x = T.tensor4()
        grad = pytensor.function([x], T.grad(layer.get_output_for(x).sum(), x))
        np.testing.assert_allclose(grad(random_array(1, 1, 4, 4)), 0.25)


class TestGlobalPoolLayer:
    @pytest.mark.parametrize("fn, ref", [(T.mean, np.mean), (T.max, np.max),
                                         (T.min, np.min), (T.sum, np.sum)])
    @pytest.mark.parametrize("shape", [(2, 3, 4), (2, 3, 4, 5), (1, 3, 2, 3, 2)])
    def test_output(self, fn, ref, shape):
        layer = L.GlobalPoolLayer((None,) + shape[1:], pool_function=fn)
        assert layer.output_shape == (None, 3)
        x = random_array(*shape)
        expected = ref(x.reshape(shape[0], 3, -1), axis=2)
        np.testing.assert_allclose(evaluate(layer, x), expected, rtol=1e-5, atol=1e-5)

    def test_default_and_validation(self):
        assert L.GlobalPoolLayer((None, 3, 4)).pool_function is T.mean
        with pytest.raises(ValueError, match=r"3 or more dimensions.*\(None, 3\)"):
            L.GlobalPoolLayer((None, 3))
        with pytest.raises(ValueError, match="pool_function=3"):
            L.GlobalPoolLayer((None, 3, 4), pool_function=3)


class TestUpscaleLayers:
    @pytest.mark.parametrize("n, factor", [(1, 3), (2, (2, 3)), (2, (1, 2)), (3, 2),
                                           (3, (1, 1, 3)), (2, 1)])
    @pytest.mark.parametrize("mode", ["repeat", "dilate"])
    def test_output(self, n, factor, mode):
        cls = {1: L.Upscale1DLayer, 2: L.Upscale2DLayer, 3: L.Upscale3DLayer}[n]
        spatial = (3, 2, 4)[:n]
        layer = cls((None, 2) + spatial, scale_factor=factor, mode=mode)
        f = factor if isinstance(factor, tuple) else (factor,) * n
        assert layer.scale_factor == f
        assert layer.output_shape == (None, 2) + tuple(s * k for s, k in zip(spatial, f))
        x = random_array(2, 2, *spatial)
        if mode == "repeat":
            expected = x
            for axis, k in enumerate(f, start=2):
                expected = np.repeat(expected, k, axis=axis)
        else:
            expected = np.zeros((2, 2) + tuple(s * k for s, k in zip(spatial, f)))
            expected[(slice(None),) * 2 + tuple(slice(None, None, k) for k in f)] = x
        np.testing.assert_array_equal(evaluate(layer, x), expected)

    def test_unknown_size(self):
        layer = L.Upscale2DLayer((None, 2, None, 3), 2, mode="dilate")
        assert layer.output_shape == (None, 2, None, 6)
        assert evaluate(layer, random_array(1, 2, 5, 3)).shape == (1, 2, 10, 6)

    def test_validation(self):
        with pytest.raises(ValueError, match=r"scale_factor=\(0, 2\)"):
            L.Upscale2DLayer((None, 2, 3, 3), (0, 2))
        with pytest.raises(ValueError, match="mode='nearest'"):
            L.Upscale2DLayer((None, 2, 3, 3), 2, mode="nearest")
        with pytest.raises(ValueError, match=r"5-dimensional input"):
            L.Upscale3DLayer((None, 2, 3, 3), 2)


class TestFeaturePoolLayer:
    @pytest.mark.parametrize("fn, ref", [(T.max, np.max), (T.mean, np.mean),
                                         (T.min, np.min), (T.sum, np.sum)])
    @pytest.mark.parametrize("axis", [1, 2, -1])
    def test_output(self, fn, ref, axis):
        shape = (2, 6, 6, 3)
        layer = L.FeaturePoolLayer((None,) + shape[1:], pool_size=3, axis=axis,
                                   pool_function=fn)
        a = axis % 4
        out_shape = list(shape)
        out_shape[a] //= 3
        assert layer.output_shape == (None,) + tuple(out_shape[1:])
        x = random_array(*shape)
        grouped = x.reshape(shape[:a] + (shape[a] // 3, 3) + shape[a + 1:])
        np.testing.assert_allclose(evaluate(layer, x), ref(grouped, axis=a + 1),
                                   rtol=1e-5, atol=1e-5)

    def test_validation(self):
        assert L.FeaturePoolLayer((None, 4), 2).pool_function is T.max
        with pytest.raises(ValueError, match=r"\(5\) is not a multiple.*pool_size=2"):
            L.FeaturePoolLayer((None, 5), 2)
        with pytest.raises(ValueError, match="axis=2 for a 2-dimensional input"):
            L.FeaturePoolLayer((None, 4), 2, axis=2)
        with pytest.raises(ValueError, match="pool_size=0"):
            L.FeaturePoolLayer((None, 4), 0)


class TestFeatureWTALayer:
    @pytest.mark.parametrize("axis", [1, 2, -1])
    def test_output(self, axis):
        shape = (2, 4, 6, 4)
        layer = L.FeatureWTALayer((None,) + shape[1:], pool_size=2, axis=axis)
        assert layer.output_shape == (None,) + shape[1:]
        x = random_array(*shape)
        a = axis % 4
        grouped = x.reshape(shape[:a] + (shape[a] // 2, 2) + shape[a + 1:])
        keep = grouped == grouped.max(axis=a + 1, keepdims=True)
        expected = (grouped * keep).reshape(shape)
        np.testing.assert_array_equal(evaluate(layer, x), expected)

    def test_ties_keep_the_first(self):
        layer = L.FeatureWTALayer((None, 4), pool_size=4)
        out = evaluate(layer, np.array([[1, 3, 3, 2]], dtype=FLOATX))
        np.testing.assert_array_equal(out, [[0, 3, 0, 0]])

    def test_validation(self):
        with pytest.raises(ValueError, match=r"\(6\) is not a multiple.*pool_size=4"):
            L.FeatureWTALayer((None, 6), 4)


class TestSpatialPyramidPoolingLayer:
    @pytest.mark.parametrize("size", [(8, 8), (9, 7), (12, 5), (6, 6)])
    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("implementation", ["fast", "kaiming"])
    def test_output_matches_numpy(self, size, mode, implementation):
        dims = [4, 2, 1]
        layer = L.SpatialPyramidPoolingLayer((None, 3) + size, dims, mode=mode,
                                             implementation=implementation)
        x = random_array(2, 3, *size)
        expected = np_spp(x, dims, mode, implementation)
        assert layer.output_shape == (None, 3, expected.shape[2])
        np.testing.assert_allclose(evaluate(layer, x), expected, rtol=1e-5, atol=1e-5)

    def test_bin_counts(self):
        assert L.SpatialPyramidPoolingLayer((None, 2, 8, 8)).output_shape == (None, 2, 21)
        # 6 = 1 * 4 + 2: the fast windows (2, stride 1) give 5 bins per axis at d=4
        assert L.SpatialPyramidPoolingLayer((None, 2, 6, 6), [4]).output_shape == (None, 2, 25)
        assert L.SpatialPyramidPoolingLayer(
            (None, 2, 6, 6), [4], implementation="kaiming").output_shape == (None, 2, 16)

    @pytest.mark.parametrize("implementation", ["fast", "kaiming"])
    def test_unknown_spatial_sizes(self, implementation):
        layer = L.SpatialPyramidPoolingLayer((None, 3, None, None), [3, 2, 1],
                                             implementation=implementation)
        assert layer.output_shape == (None, 3, 14)
        for size in [(9, 12), (7, 8)]:
            x = random_array(2, 3, *size)
            expected = np_spp(x, [3, 2, 1], "max", implementation)
            np.testing.assert_allclose(evaluate(layer, x), expected, rtol=1e-6)

    def test_validation(self):
        with pytest.raises(ValueError, match=r"Expected 4 input dimensions"):
            L.SpatialPyramidPoolingLayer((None, 3, 8))
        with pytest.raises(ValueError, match=r"pool_dims=\[2, 0\]"):
            L.SpatialPyramidPoolingLayer((None, 3, 8, 8), [2, 0])
        with pytest.raises(ValueError, match="implementation='slow'"):
            L.SpatialPyramidPoolingLayer((None, 3, 8, 8), implementation="slow")
        with pytest.raises(ValueError, match=r"size 3 on spatial axis 1.*\[4, 2, 1\]"):
            L.SpatialPyramidPoolingLayer((None, 3, 8, 3))
        with pytest.raises(ValueError, match="mode='avg'"):
            L.SpatialPyramidPoolingLayer((None, 3, 8, 8), mode="avg")


def _config(layer):
    entry = build_bundle(layer)[0]["layers"][-1]
    return entry["type"], entry["config"]


class TestExportConfig:
    def test_pool(self):
        layer = L.MaxPool2DLayer(L.InputLayer((None, 3, 8, 8)), 3, stride=2, pad=(1, 0))
        assert _config(layer) == ("MaxPool2DLayer", {
            "pool_size": [3, 3], "stride": [2, 2], "pad": [1, 0], "ignore_border": True,
            "mode": "max"})
        layer = L.Pool1DLayer(L.InputLayer((None, 3, 8)), 3, ignore_border=False,
                              mode="average_exc_pad")
        assert _config(layer)[1]["mode"] == "average_exc_pad"

    def test_sum_mode_is_refused(self):
        layer = L.Pool2DLayer(L.InputLayer((None, 3, 8, 8)), 2, mode="sum")
        with pytest.raises(ExportError, match="pooling mode 'sum' cannot be exported"):
            build_bundle(layer)

    @pytest.mark.parametrize("fn, name", [(T.mean, "mean"), (T.max, "max"),
                                          (T.min, "min"), (T.sum, "sum")])
    def test_pool_functions(self, fn, name):
        l_in = L.InputLayer((None, 4, 3))
        assert _config(L.GlobalPoolLayer(l_in, fn)) == ("GlobalPoolLayer",
                                                        {"pool_function": name})
        assert _config(L.FeaturePoolLayer(l_in, 2, axis=-2, pool_function=fn))[1] == {
            "pool_size": 2, "axis": 1, "pool_function": name}

    def test_other_pool_functions_are_refused(self):
        layer = L.GlobalPoolLayer(L.InputLayer((None, 4, 3)), T.prod)
        with pytest.raises(ExportError, match=r"pool_function 'prod'.*T\.mean, T\.max"):
            build_bundle(layer)

    def test_upscale_wta_spp(self):
        l_in = L.InputLayer((None, 4, 8, 8))
        assert _config(L.Upscale2DLayer(l_in, (2, 3), mode="dilate"))[1] == {
            "scale_factor": [2, 3], "mode": "dilate"}
        assert _config(L.FeatureWTALayer(l_in, 2))[1] == {"pool_size": 2, "axis": 1}
        assert _config(L.SpatialPyramidPoolingLayer(l_in, [2, 1]))[1] == {
            "pool_dims": [2, 1], "mode": "max", "implementation": "fast",
            "first_bins_only": False}
        assert _config(L.SpatialPyramidPoolingLayer(l_in, implementation="kaiming"))[1] == {
            "pool_dims": [4, 2, 1], "mode": "max", "implementation": "kaiming",
            "first_bins_only": False}
        # an unknown spatial size: forge keeps the first p x p windows of each level
        free = L.InputLayer((None, 4, None, 8))
        assert _config(L.SpatialPyramidPoolingLayer(free, [2, 1]))[1]["first_bins_only"]


def test_docstring_examples():
    result = doctest.testmod(pool, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
