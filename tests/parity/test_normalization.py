"""Parity of the normalization layers; BatchNorm after a few training steps."""
import numpy as np
import pytensor
from hypothesis import given, settings, strategies as st

from forge import layers as L

from .helpers import assert_parity
from .strategies import SETTINGS, nonlinearities

# whole small networks (each example compiles a training function too): fewer examples
NETWORK_SETTINGS = dict(SETTINGS, max_examples=15)


def train_running_averages(layer, input_layer, rng, steps=3):
    """Run a few training passes so that mean and inv_std are far from 0 and 1."""
    train = pytensor.function([input_layer.input_var], L.get_output(layer))
    shape = tuple(4 if s is None else s for s in input_layer.shape)
    for _ in range(steps):
        loc, scale = rng.uniform(-2, 2), rng.uniform(0.3, 3)
        train((loc + scale * rng.standard_normal(shape)).astype(np.float32))


class TestBatchNormLayer:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        ndim = data.draw(st.integers(2, 4))
        shape = [None] + [data.draw(st.integers(1, 4)) for _ in range(ndim - 1)]
        axes = data.draw(st.sampled_from(["auto", "batch_and_last", "batch_only"]))
        axes = {"auto": "auto", "batch_only": 0,
                "batch_and_last": (0, ndim - 1)}[axes]
        l_in = L.InputLayer(shape)
        kwargs = {}
        for name in ("beta", "gamma"):
            if data.draw(st.booleans()):
                kwargs[name] = None
        layer = L.BatchNormLayer(l_in, axes=axes, alpha=data.draw(st.sampled_from([0.1, 0.5])),
                                 epsilon=data.draw(st.sampled_from([1e-4, 1e-2])), **kwargs)
        for param in (layer.beta, layer.gamma):
            if param is not None:
                size = param.get_value().shape
                param.set_value((1 + 0.5 * rng.standard_normal(size)).astype(np.float32))
        train_running_averages(layer, l_in, rng)
        assert not np.allclose(layer.mean.get_value(), 0)
        assert_parity(layer, bundle_path(), batch=data.draw(st.integers(1, 3)))

    @settings(**NETWORK_SETTINGS)
    @given(data=st.data())
    def test_batch_norm_helper(self, data, bundle_path):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        l_in = L.InputLayer((None, 2, 5, 4))
        if data.draw(st.booleans()):
            inner = L.Conv2DLayer(l_in, 3, 3, pad=data.draw(st.sampled_from([0, "same"])),
                                  nonlinearity=data.draw(nonlinearities(4)))
        else:
            inner = L.DenseLayer(l_in, 3, nonlinearity=data.draw(nonlinearities(2)))
        net = L.batch_norm(inner)
        train_running_averages(net, l_in, rng)
        assert_parity(net, bundle_path(), batch=data.draw(st.integers(1, 3)))


class TestLocalResponseNormalization2DLayer:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        layer = L.LocalResponseNormalization2DLayer(
            L.InputLayer([None, data.draw(st.integers(1, 7)), data.draw(st.integers(1, 4)),
                          data.draw(st.integers(1, 4))]),
            alpha=data.draw(st.sampled_from([1e-4, 0.1, 1.0])),
            k=data.draw(st.sampled_from([0.5, 1, 2])),
            beta=data.draw(st.sampled_from([0.5, 0.75, 1.0])),
            n=data.draw(st.sampled_from([1, 3, 5, 9])))
        assert_parity(layer, bundle_path(), batch=data.draw(st.integers(1, 3)),
                      scale=data.draw(st.sampled_from([1.0, 5.0])))


class TestStandardizationLayer:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        ndim = data.draw(st.integers(2, 4))
        shape = [None] + [data.draw(st.integers(1, 4)) for _ in range(ndim - 1)]
        options = ["features", (1,), (ndim - 1,)] + (["auto"] if ndim > 2 else [])
        layer = L.StandardizationLayer(L.InputLayer(shape),
                                       axes=data.draw(st.sampled_from(options)),
                                       epsilon=data.draw(st.sampled_from([1e-4, 1e-2])))
        assert_parity(layer, bundle_path(), batch=data.draw(st.integers(1, 3)))

    @settings(**NETWORK_SETTINGS)
    @given(data=st.data(), helper=st.sampled_from(["instance", "layer"]))
    def test_instance_and_layer_norm(self, data, helper, bundle_path):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        l_in = L.InputLayer((None, 2, 4, 3))
        inner = L.Conv2DLayer(l_in, 3, 3, pad="same",
                              nonlinearity=data.draw(nonlinearities(4)))
        if helper == "instance":
            net = L.instance_norm(inner, learn_scale=data.draw(st.booleans()),
                                  learn_bias=data.draw(st.booleans()))
        else:
            net = L.layer_norm(inner)
        for param in L.get_all_params(net):
            size = param.get_value().shape
            param.set_value((1 + 0.5 * rng.standard_normal(size)).astype(np.float32))
        assert_parity(net, bundle_path(), batch=data.draw(st.integers(1, 3)))
