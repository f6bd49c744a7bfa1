"""Normalization layers: outputs against numpy, BatchNorm's running averages, helpers."""
import doctest
import warnings

import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

import forge
from forge import layers as L
from forge.export import build_bundle
from forge.layers import normalization

FLOATX = pytensor.config.floatX


def random_array(*shape, seed=0, loc=0.0, scale=1.0):
    return np.random.RandomState(seed).normal(loc, scale, size=shape).astype(FLOATX)


def evaluate(layer, data, **kwargs):
    var = T.tensor(dtype=FLOATX, shape=(None,) * data.ndim)
    return pytensor.function([var], layer.get_output_for(var, **kwargs))(data)


def np_lrn(x, alpha, k, beta, n):
    sq = x.astype(np.float64) ** 2
    channels = x.shape[1]
    total = np.zeros_like(sq)
    for c in range(channels):
        lo, hi = max(0, c - n // 2), min(channels, c + n // 2 + 1)
        total[:, c] = sq[:, lo:hi].sum(axis=1)
    return x / (k + alpha * total) ** beta


class TestLocalResponseNormalization2DLayer:
    @pytest.mark.parametrize("alpha, k, beta, n", [
        (1e-4, 2, 0.75, 5), (0.5, 1, 1.0, 3), (0.1, 0.5, 0.5, 1), (1.0, 2.0, 0.75, 9)])
    def test_output_matches_numpy(self, alpha, k, beta, n):
        layer = L.LocalResponseNormalization2DLayer((None, 6, 3, 2), alpha=alpha, k=k,
                                                    beta=beta, n=n)
        assert (layer.alpha, layer.k, layer.beta, layer.n) == (alpha, k, beta, n)
        assert layer.output_shape == (None, 6, 3, 2)
        x = random_array(2, 6, 3, 2)
        np.testing.assert_allclose(evaluate(layer, x), np_lrn(x, alpha, k, beta, n),
                                   rtol=1e-5, atol=1e-6)

    def test_validation(self):
        with pytest.raises(NotImplementedError, match="odd n.*n=4"):
            L.LocalResponseNormalization2DLayer((None, 6, 3, 3), n=4)
        with pytest.raises(ValueError, match=r"4-dimensional input.*\(None, 6\)"):
            L.LocalResponseNormalization2DLayer((None, 6))


def np_batch_norm(x, axes, mean, inv_std, gamma, beta):
    shape = [1 if a in axes else s for a, s in enumerate(x.shape)]
    return ((x - mean.reshape(shape)) * (gamma * inv_std).reshape(shape)
            + beta.reshape(shape))


class TestBatchNormLayer:
    @pytest.mark.parametrize("shape, axes, normalised, param_shape", [
        ((None, 5), "auto", (0,), (5,)),
        ((None, 3, 4, 4), "auto", (0, 2, 3), (3,)),
        ((None, 3, 4), 0, (0,), (3, 4)),
        ((None, 3, 4), (0, -1), (0, 2), (3,)),
        ((2, 3, 4), (1, 2), (1, 2), (2,)),
    ])
    def test_axes_and_params(self, shape, axes, normalised, param_shape):
        layer = L.BatchNormLayer(shape, axes=axes)
        assert layer.axes == normalised
        for param in (layer.beta, layer.gamma, layer.mean, layer.inv_std):
            assert param.get_value().shape == param_shape
        assert layer.output_shape == shape

    def test_defaults_and_tags(self):
        layer = L.BatchNormLayer((None, 4), name="bn")
        assert (layer.epsilon, layer.alpha) == (1e-4, 0.1)
        assert [p.name for p in layer.get_params()] == ["bn.beta", "bn.gamma", "bn.mean",
                                                        "bn.inv_std"]
        assert layer.get_params(trainable=True) == [layer.beta, layer.gamma]
        assert layer.get_params(regularizable=True) == [layer.gamma]
        assert layer.get_params(trainable=False) == [layer.mean, layer.inv_std]
        values = [p.get_value() for p in layer.get_params()]
        np.testing.assert_array_equal(values, [[0] * 4, [1] * 4, [0] * 4, [1] * 4])
        without = L.BatchNormLayer((None, 4), beta=None, gamma=None)
        assert without.beta is None and without.gamma is None
        assert without.get_params() == [without.mean, without.inv_std]

    @pytest.mark.parametrize("axes, message", [
        ("bogus", "axes must be 'auto'"), (3, "axes=3 for a 3-dimensional input"),
        ((0, 0), "names an axis twice"), ((0, 1.5), r"axes=\(0, 1.5\)"),
        (1, r"specified input sizes.*\(None, 3, 4\)"),
    ])
    def test_validation(self, axes, message):
        with pytest.raises(ValueError, match=message):
            L.BatchNormLayer((None, 3, 4), axes=axes)

    def _layer(self, shape=(None, 3, 2, 2), **kwargs):
        layer = L.BatchNormLayer(shape, **kwargs)
        pshape = layer.mean.get_value().shape
        layer.beta.set_value(random_array(*pshape, seed=1))
        layer.gamma.set_value(random_array(*pshape, seed=2, loc=1))
        layer.mean.set_value(random_array(*pshape, seed=3))
        layer.inv_std.set_value(np.abs(random_array(*pshape, seed=4, loc=1)) + 0.1)
        return layer

    def _values(self, layer):
        return [p.get_value() for p in (layer.mean, layer.inv_std, layer.gamma, layer.beta)]

    def test_training_output_uses_batch_statistics(self):
        layer = self._layer(epsilon=1e-3)
        x = random_array(4, 3, 2, 2, seed=5, loc=2, scale=3)
        axes = (0, 2, 3)
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        _, _, gamma, beta = self._values(layer)
        expected = np_batch_norm(x, axes, mean, 1 / np.sqrt(var + 1e-3), gamma, beta)
        np.testing.assert_allclose(evaluate(layer, x), expected, rtol=1e-4, atol=1e-4)

    def test_deterministic_output_uses_averages(self):
        layer = self._layer()
        x = random_array(4, 3, 2, 2, seed=5)
        mean, inv_std, gamma, beta = self._values(layer)
        expected = np_batch_norm(x, (0, 2, 3), mean, inv_std, gamma, beta)
        np.testing.assert_allclose(evaluate(layer, x, deterministic=True), expected,
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(evaluate(layer, x, batch_norm_use_averages=True),
                                   expected, rtol=1e-5, atol=1e-5)

    def test_running_averages_follow_the_batches(self):
        l_in = L.InputLayer((None, 3, 2, 2))
        layer = L.BatchNormLayer(l_in, alpha=0.3, epsilon=1e-3)
        train = pytensor.function([l_in.input_var], L.get_output(layer))
        infer = pytensor.function([l_in.input_var], L.get_output(layer, deterministic=True))
        mean, inv_std = np.zeros(3), np.ones(3)
        for step in range(3):
            x = random_array(5, 3, 2, 2, seed=step, loc=step, scale=step + 1)
            train(x)
            batch_mean = x.mean(axis=(0, 2, 3))
            batch_inv_std = 1 / np.sqrt(x.var(axis=(0, 2, 3)) + 1e-3)
            mean = 0.7 * mean + 0.3 * batch_mean
            inv_std = 0.7 * inv_std + 0.3 * batch_inv_std
            np.testing.assert_allclose(layer.mean.get_value(), mean, rtol=1e-5)
            np.testing.assert_allclose(layer.inv_std.get_value(), inv_std, rtol=1e-5)
        before = [layer.mean.get_value(), layer.inv_std.get_value()]
        out = infer(random_array(5, 3, 2, 2, seed=9))
        np.testing.assert_array_equal(before, [layer.mean.get_value(),
                                               layer.inv_std.get_value()])
        expected = np_batch_norm(random_array(5, 3, 2, 2, seed=9), (0, 2, 3), before[0],
                                 before[1], np.ones(3), np.zeros(3))
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)

    @pytest.mark.parametrize("use, update, deterministic", [
        (None, False, False), (True, None, False), (False, True, True), (None, True, True)])
    def test_flags(self, use, update, deterministic):
        l_in = L.InputLayer((None, 2))
        layer = L.BatchNormLayer(l_in)
        kwargs = {"deterministic": deterministic}
        if use is not None:
            kwargs["batch_norm_use_averages"] = use
        if update is not None:
            kwargs["batch_norm_update_averages"] = update
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "unused keyword argument" warning
            fn = pytensor.function([l_in.input_var], L.get_output(layer, **kwargs))
        x = random_array(6, 2, loc=5)
        out = fn(x)
        uses_averages = deterministic if use is None else use
        updates = (not deterministic) if update is None else update
        if uses_averages:
            np.testing.assert_allclose(out, x, rtol=1e-6)  # mean 0, inv_std 1
        else:
            np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-4)
        moved = not np.allclose(layer.mean.get_value(), 0)
        assert moved == updates

    def test_explicit_updates_path(self):
        def network():
            forge.random.set_rng(np.random.RandomState(0))
            l_in = L.InputLayer((None, 4))
            bn = L.BatchNormLayer(L.DenseLayer(l_in, 3), alpha=0.5)
            return l_in, bn

        x = random_array(6, 4, loc=1)
        l_in, bn = network()
        pytensor.function([l_in.input_var], L.get_output(bn))(x)
        automatic = [bn.mean.get_value(), bn.inv_std.get_value()]

        l_in, bn = network()
        out, bn_input = L.get_output([bn, bn.input_layer], batch_norm_update_averages=False)
        updates = bn.get_averages_updates(bn_input)
        assert set(updates) == {bn.mean, bn.inv_std}
        pytensor.function([l_in.input_var], out, updates=updates)(x)
        np.testing.assert_allclose([bn.mean.get_value(), bn.inv_std.get_value()],
                                   automatic, rtol=1e-6)

    def test_expression_averages_cannot_be_updated(self):
        shared = pytensor.shared(np.zeros(2, dtype=FLOATX))
        layer = L.BatchNormLayer((None, 2), mean=shared * 1)
        with pytest.raises(ValueError, match="shared variables; mean is the expression"):
            layer.get_output_for(T.matrix())
        layer.get_output_for(T.matrix(), deterministic=True)  # fine without updates
        with pytest.raises(ValueError, match="mean is the expression"):
            layer.get_averages_updates(T.matrix())

    def test_single_feature(self):
        # parameters of size 1 are broadcastable; their updates must keep that type
        l_in = L.InputLayer((None, 1))
        layer = L.BatchNormLayer(l_in)
        pytensor.function([l_in.input_var], L.get_output(layer))(random_array(4, 1, loc=3))
        assert layer.mean.get_value()[0] == pytest.approx(0.3, abs=0.2)

    def test_trains_with_an_optimizer(self):
        l_in = L.InputLayer((None, 3))
        net = L.batch_norm(L.DenseLayer(l_in, 4))
        loss = L.get_output(net).sum()
        params = L.get_all_params(net, trainable=True)
        assert all(p not in params for p in (net.input_layer.mean, net.input_layer.inv_std))
        fn = pytensor.function([l_in.input_var], loss,
                               updates=forge.updates.sgd(loss, params, 0.1))
        fn(random_array(5, 3))
        assert not np.allclose(net.input_layer.mean.get_value(), 0)


class TestBatchNormHelper:
    def test_structure(self):
        l_in = L.InputLayer((None, 3, 6, 6))
        conv = L.Conv2DLayer(l_in, 4, 3, name="conv",
                             nonlinearity=forge.nonlinearities.tanh)
        out = L.batch_norm(conv, epsilon=1e-3, alpha=0.2)
        assert [type(l).__name__ for l in L.get_all_layers(out)] == [
            "InputLayer", "Conv2DLayer", "BatchNormLayer", "NonlinearityLayer"]
        bn = out.input_layer
        assert conv.b is None and conv.get_params() == [conv.W]
        assert conv.nonlinearity is forge.nonlinearities.identity
        assert out.nonlinearity is forge.nonlinearities.tanh
        assert (bn.name, out.name) == ("conv_bn", "conv_bn_nonlin")
        assert (bn.epsilon, bn.alpha, bn.axes) == (1e-3, 0.2, (0, 2, 3))
        assert L.get_all_params(out, trainable=True) == [conv.W, bn.beta, bn.gamma]

    def test_names_and_layers_without_nonlinearity(self):
        l_in = L.InputLayer((None, 5))
        out = L.batch_norm(L.DenseLayer(l_in, 3), name="norm")
        assert (out.input_layer.name, out.name) == ("norm", "norm_nonlin")
        unnamed = L.batch_norm(L.DenseLayer(l_in, 3))
        assert unnamed.name is None and unnamed.input_layer.name is None
        plain = L.batch_norm(L.DropoutLayer(l_in))  # no nonlinearity, no bias
        assert isinstance(plain, L.BatchNormLayer)


class TestStandardizationLayer:
    @pytest.mark.parametrize("shape, axes, normalised", [
        ((None, 3, 4, 5), "auto", (2, 3)), ((None, 3, 4, 5), "features", (1, 2, 3)),
        ((None, 6), "features", (1,)), ((None, 3, 4), -1, (2,)), ((None, 3, 4), (0, 1), (0, 1)),
    ])
    def test_output_matches_numpy(self, shape, axes, normalised):
        layer = L.StandardizationLayer(shape, axes=axes, epsilon=1e-3)
        assert layer.axes == normalised and layer.output_shape == shape
        x = random_array(2, *shape[1:], loc=3, scale=2)
        mean = x.mean(axis=normalised, keepdims=True)
        var = x.var(axis=normalised, keepdims=True)
        np.testing.assert_allclose(evaluate(layer, x), (x - mean) / np.sqrt(var + 1e-3),
                                   rtol=1e-4, atol=1e-4)

    def test_validation(self):
        assert L.StandardizationLayer((None, 3, 4)).epsilon == 1e-4
        with pytest.raises(ValueError, match="'auto', 'features'.*axes='spatial'"):
            L.StandardizationLayer((None, 3, 4), axes="spatial")
        with pytest.raises(ValueError, match=r"axes=\(1, 5\) for a 3-dimensional"):
            L.StandardizationLayer((None, 3, 4), axes=(1, 5))


class TestInstanceAndLayerNorm:
    def test_instance_norm(self):
        l_in = L.InputLayer((None, 3, 6, 6))
        conv = L.Conv2DLayer(l_in, 4, 3, name="c")
        out = L.instance_norm(conv, epsilon=1e-3)
        names = [(type(l).__name__, l.name) for l in L.get_all_layers(out)][1:]
        assert names == [("Conv2DLayer", "c"), ("StandardizationLayer", "c_in"),
                         ("ScaleLayer", "c_in_scale"), ("BiasLayer", "c_in_bias"),
                         ("NonlinearityLayer", "c_in_nonlin")]
        std = out.input_layer.input_layer.input_layer
        assert std.axes == (2, 3) and std.epsilon == 1e-3 and conv.b is None
        assert out.input_layer.b.get_value().shape == (4,)

    @pytest.mark.parametrize("learn_scale, learn_bias, types", [
        (False, True, ["StandardizationLayer", "BiasLayer"]),
        (True, False, ["StandardizationLayer", "ScaleLayer"]),
        (False, False, ["StandardizationLayer"]),
    ])
    def test_instance_norm_options(self, learn_scale, learn_bias, types):
        conv = L.Conv2DLayer(L.InputLayer((None, 3, 6, 6)), 4, 3, nonlinearity=None)
        out = L.instance_norm(conv, learn_scale=learn_scale, learn_bias=learn_bias)
        assert [type(l).__name__ for l in L.get_all_layers(out)][2:] == \
            types + ["NonlinearityLayer"]

    def test_layer_norm(self):
        dense = L.DenseLayer(L.InputLayer((None, 5)), 4, name="d")
        out = L.layer_norm(dense)
        names = [(type(l).__name__, l.name) for l in L.get_all_layers(out)][1:]
        assert names == [("DenseLayer", "d"), ("StandardizationLayer", "d_ln"),
                         ("ScaleLayer", "d_ln_scale"), ("BiasLayer", "d_ln_bias"),
                         ("NonlinearityLayer", "d_ln_nonlin")]
        assert out.input_layer.input_layer.input_layer.axes == (1,)
        x = random_array(3, 5)
        fn = pytensor.function([out.input_layer.input_layer.input_layer.input_layer
                                .input_layer.input_var], L.get_output(out))
        h = x @ dense.W.get_value()
        expected = np.maximum((h - h.mean(1, keepdims=True))
                              / np.sqrt(h.var(1, keepdims=True) + 1e-4), 0)
        np.testing.assert_allclose(fn(x), expected, rtol=1e-4, atol=1e-4)


class TestExportConfig:
    def test_batch_norm_is_folded(self):
        l_in = L.InputLayer((None, 3, 4))
        bn = L.BatchNormLayer(l_in, axes=(0, 2))
        for param, seed in ((bn.beta, 1), (bn.gamma, 2), (bn.mean, 3)):
            param.set_value(random_array(3, seed=seed))
        bn.inv_std.set_value(np.array([0.5, 2.0, 4.0], dtype=FLOATX))
        manifest, arrays = build_bundle(bn)[:2]
        entry = manifest["layers"][-1]
        assert entry["type"] == "BatchNormLayer" and entry["config"] == {"axes": [0, 2]}
        scale, shift = arrays[entry["params"]["scale"]], arrays[entry["params"]["shift"]]
        gamma, beta = bn.gamma.get_value(), bn.beta.get_value()
        np.testing.assert_allclose(scale, gamma * bn.inv_std.get_value(), rtol=1e-6)
        np.testing.assert_allclose(shift, beta - bn.mean.get_value() * scale, rtol=1e-6)
        assert scale.dtype == shift.dtype == np.dtype(FLOATX)

    def test_batch_norm_without_gamma_and_beta(self):
        bn = L.BatchNormLayer(L.InputLayer((None, 2)), beta=None, gamma=None)
        bn.mean.set_value(np.array([1.0, -2.0], dtype=FLOATX))
        bn.inv_std.set_value(np.array([3.0, 0.5], dtype=FLOATX))
        manifest, arrays = build_bundle(bn)[:2]
        params = manifest["layers"][-1]["params"]
        np.testing.assert_allclose(arrays[params["scale"]], [3.0, 0.5])
        np.testing.assert_allclose(arrays[params["shift"]], [-3.0, 1.0])

    def test_batch_norm_over_every_axis_has_0d_params(self):
        bn = L.BatchNormLayer(L.InputLayer((None, 3)), axes=(0, 1))
        manifest, arrays = build_bundle(bn)[:2]
        params = manifest["layers"][-1]["params"]
        assert arrays[params["scale"]].shape == arrays[params["shift"]].shape == ()

    def test_lrn_and_standardization(self):
        l_in = L.InputLayer((None, 4, 3, 3))
        entry = build_bundle(L.LocalResponseNormalization2DLayer(l_in))[0]["layers"][-1]
        assert entry["config"] == {"alpha": 1e-4, "k": 2.0, "beta": 0.75, "n": 5}
        entry = build_bundle(L.StandardizationLayer(l_in, "features"))[0]["layers"][-1]
        assert entry["config"] == {"axes": [1, 2, 3], "epsilon": 1e-4}


def test_docstring_examples():
    result = doctest.testmod(normalization, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
