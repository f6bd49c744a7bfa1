"""Parity of the convolution layers over generated configurations."""
import numpy as np
from hypothesis import given, settings, strategies as st

from forge import layers as L

from .helpers import assert_parity
from .strategies import SETTINGS, nonlinearities, parameter

CONV = {1: L.Conv1DLayer, 2: L.Conv2DLayer, 3: L.Conv3DLayer}
TRANSPOSED = {2: L.TransposedConv2DLayer, 3: L.TransposedConv3DLayer}


def pad_option(draw, filter_size):
    """'valid', 'full', 'same' (odd filters only), an int or a tuple; ints may exceed
    half the filter size."""
    options = ["valid", "full", "int", "tuple"]
    if all(f % 2 for f in filter_size):
        options.append("same")
    kind = draw(st.sampled_from(options))
    if kind == "int":
        return draw(st.integers(0, 4))
    if kind == "tuple":
        return tuple(draw(st.integers(0, 4)) for _ in filter_size)
    return kind


def pad_amounts(pad, filter_size):
    if pad == "valid":
        return [0] * len(filter_size)
    if pad == "full":
        return [f - 1 for f in filter_size]
    if pad == "same":
        return [f // 2 for f in filter_size]
    return list(pad) if isinstance(pad, tuple) else [pad] * len(filter_size)


def bias(draw, rng, shape):
    kind = draw(st.sampled_from([None, "random"]))
    return None if kind is None else (0.5 * rng.standard_normal(shape)).astype(np.float32)


class TestConvLayers:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        n = data.draw(st.sampled_from([1, 2, 2, 3]))
        max_side = {1: 9, 2: 7, 3: 4}[n]
        groups = data.draw(st.sampled_from([1, 1, 2, 3]))
        channels = groups * data.draw(st.integers(1, 2))
        num_filters = groups * data.draw(st.integers(1, 3))
        filter_size = tuple(data.draw(st.integers(1, 4 if n < 3 else 3)) for _ in range(n))
        stride = tuple(data.draw(st.integers(1, 5)) for _ in range(n))  # may exceed filters
        pad = pad_option(data.draw, filter_size)
        amounts = pad_amounts(pad, filter_size)
        spatial = [max(1, f - 2 * p) + data.draw(st.integers(0, max_side - 1))
                   for f, p in zip(filter_size, amounts)]
        untie = data.draw(st.booleans())
        l_in = L.InputLayer([None, channels] + spatial)
        layer = CONV[n](l_in, num_filters, filter_size, stride=stride, pad=pad,
                        num_groups=groups, untie_biases=untie,
                        flip_filters=data.draw(st.booleans()),
                        W=parameter(data.draw, (num_filters, channels // groups)
                                    + filter_size, rng),
                        b=None, nonlinearity=data.draw(nonlinearities(n + 2)))
        # biases added afterwards: their shape with untie_biases is the output's
        b = bias(data.draw, rng, (num_filters,) + (layer.output_shape[2:] if untie else ()))
        if b is not None:
            layer.b = layer.add_param(b, b.shape, name="b", regularizable=False)
        assert_parity(layer, bundle_path(), batch=data.draw(st.integers(1, 3)))


class TestTransposedConvLayers:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        n = data.draw(st.sampled_from([2, 2, 3]))
        groups = data.draw(st.sampled_from([1, 1, 2]))
        channels = groups * data.draw(st.integers(1, 2))
        num_filters = groups * data.draw(st.integers(1, 3))
        filter_size = tuple(data.draw(st.integers(1, 4 if n == 2 else 3)) for _ in range(n))
        stride = tuple(data.draw(st.integers(1, 4)) for _ in range(n))
        crop = pad_option(data.draw, filter_size)
        amounts = pad_amounts(crop, filter_size)
        spatial = []
        for f, s, c in zip(filter_size, stride, amounts):
            # the output (in - 1) * s - 2c + f must be positive: in - 1 >= need / s
            need = 2 * c - f + 1
            smallest_in = 1 + max(0, -(-need // s))
            spatial.append(smallest_in + data.draw(st.integers(0, 4 if n == 2 else 2)))
        output_size = None
        if data.draw(st.booleans()):
            output_size = tuple(L.conv_input_length(i, f, s, c) + data.draw(st.integers(0, s - 1))
                                for i, f, s, c in zip(spatial, filter_size, stride, amounts))
        untie = data.draw(st.booleans())
        l_in = L.InputLayer([None, channels] + spatial)
        layer = TRANSPOSED[n](l_in, num_filters, filter_size, stride=stride, crop=crop,
                              num_groups=groups, untie_biases=untie,
                              output_size=output_size, flip_filters=data.draw(st.booleans()),
                              W=parameter(data.draw, (channels, num_filters // groups)
                                          + filter_size, rng),
                              b=None, nonlinearity=data.draw(nonlinearities(n + 2)))
        b = bias(data.draw, rng, (num_filters,) + (layer.output_shape[2:] if untie else ()))
        if b is not None:
            layer.b = layer.add_param(b, b.shape, name="b", regularizable=False)
        assert_parity(layer, bundle_path(), batch=data.draw(st.integers(1, 3)))

    @settings(**SETTINGS)
    @given(data=st.data())
    def test_free_output_size_parity(self, data, bundle_path):
        # input axes of free size: the bundle stores the rule and the runtime sizes the
        # output per call; several input sizes run through the same bundle
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        n = data.draw(st.sampled_from([2, 2, 3]))
        channels, num_filters = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
        filter_size = tuple(data.draw(st.integers(1, 4 if n == 2 else 3)) for _ in range(n))
        stride = tuple(data.draw(st.integers(1, 3)) for _ in range(n))
        crop = pad_option(data.draw, filter_size)
        amounts = pad_amounts(crop, filter_size)
        free = [data.draw(st.booleans()) for _ in range(n - 1)] + [True]
        smallest = [1 + max(0, -(-(2 * c - f + 1) // s))
                    for f, s, c in zip(filter_size, stride, amounts)]
        l_in = L.InputLayer([None, channels] + [None if f else m + 1
                                                for f, m in zip(free, smallest)])
        layer = TRANSPOSED[n](l_in, num_filters, filter_size, stride=stride, crop=crop,
                              flip_filters=data.draw(st.booleans()),
                              W=parameter(data.draw, (channels, num_filters) + filter_size,
                                          rng),
                              b=bias(data.draw, rng, (num_filters,)),
                              nonlinearity=data.draw(nonlinearities(n + 2)))
        path = bundle_path()
        for _ in range(3):
            shape = [data.draw(st.integers(1, 2)), channels] + [
                s if s is not None else m + data.draw(st.integers(0, 3 if n == 2 else 2))
                for s, m in zip(l_in.shape[2:], smallest)]
            assert_parity(layer, path, feeds=[rng.standard_normal(shape).astype(np.float32)])

    def test_deconv_alias_exports_as_transposed(self, bundle_path):
        layer = L.Deconv2DLayer(L.InputLayer((None, 3, 4, 5)), 2, 3, stride=2, crop="same")
        assert_parity(layer, bundle_path())


class TestDilatedConv2DLayer:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        channels, num_filters = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
        filter_size = tuple(data.draw(st.integers(1, 3)) for _ in range(2))
        dilation = tuple(data.draw(st.integers(1, 3)) for _ in range(2))
        spatial = [(f - 1) * d + 1 + data.draw(st.integers(0, 4))
                   for f, d in zip(filter_size, dilation)]
        untie = data.draw(st.booleans())
        layer = L.DilatedConv2DLayer(
            L.InputLayer([None, channels] + spatial), num_filters, filter_size,
            dilation=dilation, untie_biases=untie,
            W=parameter(data.draw, (channels, num_filters) + filter_size, rng),
            nonlinearity=data.draw(nonlinearities(4)))
        if layer.b is not None:
            layer.b.set_value(rng.standard_normal(layer.b.get_value().shape)
                              .astype(np.float32))
        assert_parity(layer, bundle_path(), batch=data.draw(st.integers(1, 3)))


class TestLocallyConnected2DLayer:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        channelwise = data.draw(st.booleans())
        channels = data.draw(st.integers(1, 3))
        num_filters = channels if channelwise else data.draw(st.integers(1, 3))
        filter_size = tuple(data.draw(st.sampled_from([1, 3, 5])) for _ in range(2))
        spatial = [data.draw(st.integers(1, 5)) for _ in range(2)]
        untie = data.draw(st.booleans())
        layer = L.LocallyConnected2DLayer(
            L.InputLayer([None, channels] + spatial), num_filters, filter_size,
            channelwise=channelwise, untie_biases=untie,
            flip_filters=data.draw(st.booleans()),
            nonlinearity=data.draw(nonlinearities(4)),
            b=None if data.draw(st.booleans()) else
            (rng.standard_normal((num_filters,) + (tuple(spatial) if untie else ()))
             .astype(np.float32)))
        layer.W.set_value(rng.standard_normal(layer.W.get_value().shape).astype(np.float32))
        assert_parity(layer, bundle_path(), batch=data.draw(st.integers(1, 3)))
