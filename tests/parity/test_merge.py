"""Parity of ConcatLayer, ElemwiseSumLayer and ElemwiseMergeLayer (with cropping)."""
import numpy as np
import pytensor.tensor as T
from hypothesis import given, settings, strategies as st

from forge import layers as L

from .helpers import assert_parity
from .strategies import SETTINGS

CROPS = st.sampled_from([None, "lower", "upper", "center"])


def inputs_for(data, n, ndim, vary_axis=None, cropping=None):
    base = data.draw(st.lists(st.integers(1, 5), min_size=ndim - 1, max_size=ndim - 1))
    layers = []
    for _ in range(n):
        shape = list(base)
        for axis in range(1, ndim):
            if axis == vary_axis or (cropping and cropping[axis] is not None):
                shape[axis - 1] = data.draw(st.integers(1, 5))
        layers.append(L.InputLayer([None] + shape))
    return layers


class TestConcatLayer:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        ndim = data.draw(st.integers(2, 4))
        axis = data.draw(st.integers(1, ndim - 1))
        cropping = None
        if data.draw(st.booleans()):
            cropping = [None] + [None if a == axis else data.draw(CROPS) for a in range(1, ndim)]
        ins = inputs_for(data, data.draw(st.integers(1, 3)), ndim, axis, cropping)
        layer = L.ConcatLayer(ins, axis=axis if data.draw(st.booleans()) else axis - ndim,
                              cropping=cropping)
        assert_parity(layer, bundle_path())


class TestElemwiseSumLayer:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        ndim = data.draw(st.integers(2, 4))
        n = data.draw(st.integers(1, 3))
        cropping = None
        if data.draw(st.booleans()):
            cropping = [None] + [data.draw(CROPS) for _ in range(1, ndim)]
        ins = inputs_for(data, n, ndim, cropping=cropping)
        coeffs = data.draw(st.sampled_from([1, 0.5, [1.5] * n, [float(i) - 1 for i in range(n)]]))
        layer = L.ElemwiseSumLayer(ins, coeffs=coeffs, cropping=cropping)
        assert_parity(layer, bundle_path())


class TestElemwiseMergeLayer:
    @settings(**SETTINGS)
    @given(data=st.data(), fn=st.sampled_from([T.add, T.sub, T.mul, T.maximum, T.minimum]))
    def test_parity(self, data, fn, bundle_path):
        ndim = data.draw(st.integers(2, 4))
        cropping = None
        if data.draw(st.booleans()):
            cropping = [None] + [data.draw(CROPS) for _ in range(1, ndim)]
        ins = inputs_for(data, data.draw(st.integers(2, 3)), ndim, cropping=cropping)
        layer = L.ElemwiseMergeLayer(ins, merge_function=fn, cropping=cropping)
        assert_parity(layer, bundle_path())

    def test_true_div(self, bundle_path):
        ins = [L.InputLayer((None, 4)), L.InputLayer((None, 4))]
        layer = L.ElemwiseMergeLayer(ins, merge_function=T.true_div)
        feeds = [np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32),
                 np.random.default_rng(1).uniform(0.5, 2.0, (3, 4)).astype(np.float32)]
        assert_parity(layer, bundle_path(), feeds=feeds)
