"""Parity of the pooling, upscaling and feature-pooling layers over generated configurations."""
import numpy as np
import pytensor.tensor as T
from hypothesis import given, settings, strategies as st

from forge import layers as L

from .helpers import assert_parity
from .strategies import SETTINGS

POOL = {1: L.Pool1DLayer, 2: L.Pool2DLayer, 3: L.Pool3DLayer}
MAX_POOL = {1: L.MaxPool1DLayer, 2: L.MaxPool2DLayer, 3: L.MaxPool3DLayer}
UPSCALE = {1: L.Upscale1DLayer, 2: L.Upscale2DLayer, 3: L.Upscale3DLayer}
EXPORTABLE_MODES = ["max", "average_inc_pad", "average_exc_pad"]
POOL_FUNCTIONS = [T.mean, T.max, T.min, T.sum]


class TestPoolLayers:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        n = data.draw(st.sampled_from([1, 2, 2, 3]))
        max_side = {1: 12, 2: 8, 3: 5}[n]
        pool_size = tuple(data.draw(st.integers(1, 4)) for _ in range(n))
        stride = data.draw(st.sampled_from([None, "drawn"]))
        if stride == "drawn":
            stride = tuple(data.draw(st.integers(1, 5)) for _ in range(n))
        ignore_border = data.draw(st.booleans())
        pad = (tuple(data.draw(st.integers(0, p - 1)) for p in pool_size) if ignore_border
               else (0,) * n)
        spatial = [max(1, p - 2 * q) + data.draw(st.integers(0, max_side))
                   for p, q in zip(pool_size, pad)]
        l_in = L.InputLayer([None, data.draw(st.integers(1, 3))] + spatial)
        if data.draw(st.booleans()):
            layer = MAX_POOL[n](l_in, pool_size, stride=stride, pad=pad,
                                ignore_border=ignore_border)
        else:
            layer = POOL[n](l_in, pool_size, stride=stride, pad=pad,
                            ignore_border=ignore_border,
                            mode=data.draw(st.sampled_from(EXPORTABLE_MODES)))
        assert_parity(layer, bundle_path(), batch=data.draw(st.integers(1, 3)))


class TestGlobalPoolLayer:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        spatial = data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))
        layer = L.GlobalPoolLayer(L.InputLayer([None, data.draw(st.integers(1, 4))] + spatial),
                                  pool_function=data.draw(st.sampled_from(POOL_FUNCTIONS)))
        assert_parity(layer, bundle_path(), batch=data.draw(st.integers(1, 3)))


class TestUpscaleLayers:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        n = data.draw(st.sampled_from([1, 2, 3]))
        spatial = [data.draw(st.integers(1, 4)) for _ in range(n)]
        factor = tuple(data.draw(st.integers(1, 3)) for _ in range(n))
        layer = UPSCALE[n](L.InputLayer([None, data.draw(st.integers(1, 3))] + spatial),
                           scale_factor=factor,
                           mode=data.draw(st.sampled_from(["repeat", "dilate"])))
        assert_parity(layer, bundle_path(), batch=data.draw(st.integers(1, 3)))


class TestFeaturePoolLayers:
    @settings(**SETTINGS)
    @given(data=st.data(), wta=st.booleans())
    def test_parity(self, data, wta, bundle_path):
        ndim = data.draw(st.integers(2, 4))
        axis = data.draw(st.integers(1, ndim - 1))
        pool_size = data.draw(st.integers(1, 3))
        shape = [None] + [data.draw(st.integers(1, 3)) for _ in range(ndim - 1)]
        shape[axis] = pool_size * data.draw(st.integers(1, 3))
        if data.draw(st.booleans()):
            axis -= ndim  # negative axes count from the end
        l_in = L.InputLayer(shape)
        if wta:
            layer = L.FeatureWTALayer(l_in, pool_size, axis=axis)
        else:
            layer = L.FeaturePoolLayer(l_in, pool_size, axis=axis,
                                       pool_function=data.draw(st.sampled_from(POOL_FUNCTIONS)))
        assert_parity(layer, bundle_path(), batch=data.draw(st.integers(1, 3)))


class TestSpatialPyramidPoolingLayer:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        pool_dims = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
        spatial = [data.draw(st.integers(max(pool_dims), 10)) for _ in range(2)]
        layer = L.SpatialPyramidPoolingLayer(
            L.InputLayer([None, data.draw(st.integers(1, 3))] + spatial), pool_dims,
            mode=data.draw(st.sampled_from(EXPORTABLE_MODES)))
        assert_parity(layer, bundle_path(), batch=data.draw(st.integers(1, 3)))

    @settings(**SETTINGS)
    @given(data=st.data())
    def test_fast_parity_with_unknown_spatial_size(self, data, bundle_path):
        # forge keeps the first p x p windows of each level when the size is unknown at
        # build time; sizes with size % p > size // p give more windows than that
        pool_dims = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
        l_in = L.InputLayer([None, data.draw(st.integers(1, 3)), None, None])
        layer = L.SpatialPyramidPoolingLayer(
            l_in, pool_dims, mode=data.draw(st.sampled_from(EXPORTABLE_MODES)))
        rng, path = np.random.default_rng(data.draw(st.integers(0, 2**16))), bundle_path()
        for _ in range(3):
            shape = [data.draw(st.integers(1, 3)), l_in.shape[1]] + [
                data.draw(st.integers(max(pool_dims), 13)) for _ in range(2)]
            assert_parity(layer, path, feeds=[rng.standard_normal(shape).astype(np.float32)])

    @settings(**SETTINGS)
    @given(data=st.data())
    def test_kaiming_parity(self, data, bundle_path):
        # any spatial size, smaller than the number of bins too; None sizes take
        # several input sizes through the same bundle
        pool_dims = data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))
        fixed = data.draw(st.booleans())
        spatial = [data.draw(st.integers(1, 9)) if fixed else None for _ in range(2)]
        l_in = L.InputLayer([None, data.draw(st.integers(1, 3))] + spatial)
        layer = L.SpatialPyramidPoolingLayer(
            l_in, pool_dims, mode=data.draw(st.sampled_from(EXPORTABLE_MODES)),
            implementation="kaiming")
        rng, path = np.random.default_rng(data.draw(st.integers(0, 2**16))), bundle_path()
        for _ in range(1 if fixed else 3):
            shape = [data.draw(st.integers(1, 3)), l_in.shape[1]] + [
                s if s is not None else data.draw(st.integers(1, 9)) for s in spatial]
            assert_parity(layer, path,
                          feeds=[rng.standard_normal(shape).astype(np.float32)])


def test_conv_pool_stack(bundle_path):
    """A small convolutional network of several of these layers, end to end."""
    rng = np.random.RandomState(0)
    from forge import nonlinearities as nl

    net = L.InputLayer((None, 2, 9, 8))
    net = L.Conv2DLayer(net, 4, 3, pad="same", nonlinearity=nl.leaky_rectify)
    net = L.MaxPool2DLayer(net, 3, stride=2, pad=1)
    net = L.batch_norm(L.Conv2DLayer(net, 6, 2, stride=1, num_groups=2))
    net = L.Upscale2DLayer(net, 2)
    net = L.FeaturePoolLayer(net, 2)
    net = L.GlobalPoolLayer(net)
    net = L.DenseLayer(net, 5, nonlinearity=nl.softmax)
    for param in L.get_all_params(net):
        param.set_value(rng.normal(size=param.get_value().shape).astype(np.float32) * 0.5
                        + (1.0 if param.name and "inv_std" in param.name else 0.0))
    assert_parity(net, bundle_path(), batch=2)
