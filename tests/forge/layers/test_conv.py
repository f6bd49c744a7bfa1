"""Convolution layers: shapes, validation, outputs against numpy oracles, export configs."""
import doctest
import itertools

import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

import forge
from forge import layers as L
from forge.export import ExportError, build_bundle
from forge.layers import conv

FLOATX = pytensor.config.floatX


def random_array(*shape, seed=0):
    return np.random.RandomState(seed).normal(size=shape).astype(FLOATX)


def evaluate(layer, data):
    var = T.tensor(dtype=FLOATX, shape=(None,) * data.ndim)
    return pytensor.function([var], layer.get_output_for(var))(data)


# -- numpy oracles -------------------------------------------------------------------

def np_corr(x, K, stride, pad, dilation, groups=1):
    """Grouped N-d cross-correlation; ``pad`` is a list of (before, after) pairs."""
    n = x.ndim - 2
    x = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [tuple(p) for p in pad])
    batch, channels = x.shape[:2]
    filters, fsize = K.shape[0], K.shape[2:]
    out_sp = [(x.shape[2 + i] - (fsize[i] - 1) * dilation[i] - 1) // stride[i] + 1
              for i in range(n)]
    out = np.zeros((batch, filters) + tuple(out_sp))
    cg, fg = channels // groups, filters // groups
    for o in np.ndindex(*out_sp):
        for u in np.ndindex(*fsize):
            pos = tuple(o[i] * stride[i] + u[i] * dilation[i] for i in range(n))
            xv = x[(slice(None), slice(None)) + pos]
            for g in range(groups):
                k = K[(slice(g * fg, (g + 1) * fg), slice(None)) + u]
                out[(slice(None), slice(g * fg, (g + 1) * fg)) + o] += (
                    xv[:, g * cg:(g + 1) * cg] @ k.T)
    return out


def np_corr_transpose(y, K, out_sp, stride, pad, dilation=None, groups=1):
    """The transpose of ``np_corr`` with filters ``K``, scattered by definition."""
    n = y.ndim - 2
    dilation = dilation or (1,) * n
    fsize = K.shape[2:]
    fg, cg = K.shape[0] // groups, K.shape[1]
    padded = [out_sp[i] + pad[i][0] + pad[i][1] for i in range(n)]
    res = np.zeros((y.shape[0], cg * groups) + tuple(padded))
    for o in np.ndindex(*y.shape[2:]):
        for u in np.ndindex(*fsize):
            pos = tuple(o[i] * stride[i] + u[i] * dilation[i] for i in range(n))
            if any(pos[i] >= padded[i] for i in range(n)):
                continue
            for g in range(groups):
                k = K[(slice(g * fg, (g + 1) * fg), slice(None)) + u]  # (fg, cg)
                res[(slice(None), slice(g * cg, (g + 1) * cg)) + pos] += (
                    y[(slice(None), slice(g * fg, (g + 1) * fg)) + o] @ k)
    crop = tuple(slice(p[0], p[0] + s) for p, s in zip(pad, out_sp))
    return res[(slice(None), slice(None)) + crop]


def flip(W, n, first=None):
    first = W.ndim - n if first is None else first
    index = [slice(None)] * W.ndim
    for axis in range(first, first + n):
        index[axis] = slice(None, None, -1)
    return W[tuple(index)]


def resolve_pad(pad, fsize):
    if pad == "valid":
        return [(0, 0)] * len(fsize)
    if pad == "full":
        return [(f - 1, f - 1) for f in fsize]
    if pad == "same":
        return [(f // 2, f // 2) for f in fsize]
    pad = (pad,) * len(fsize) if isinstance(pad, int) else pad
    return [(p, p) for p in pad]


def np_locally_connected(x, W, flip_filters, channelwise):
    batch, channels, rows, cols = x.shape
    fh, fw = W.shape[1:3] if channelwise else W.shape[2:4]
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (fh // 2,) * 2, (fw // 2,) * 2])
    if flip_filters:
        W = flip(W, 2, 1 if channelwise else 2)
    out = np.zeros((batch, W.shape[0], rows, cols))
    for i, j in itertools.product(range(rows), range(cols)):
        patch = xp[:, :, i:i + fh, j:j + fw]  # (batch, channels, fh, fw)
        if channelwise:
            out[:, :, i, j] = np.einsum("bcuv,cuv->bc", patch, W[..., i, j])
        else:
            out[:, :, i, j] = np.einsum("bcuv,fcuv->bf", patch, W[..., i, j])
    return out


# -- shape arithmetic ----------------------------------------------------------------

class TestConvOutputLength:
    @pytest.mark.parametrize("args, expected", [
        ((10, 3, 1, "valid"), 8), ((10, 3, 1, "full"), 12), ((10, 3, 1, "same"), 10),
        ((10, 3, 1, 0), 8), ((10, 3, 1, 2), 12), ((10, 3, 2, "valid"), 4),
        ((10, 3, 2, "full"), 6), ((10, 3, 2, "same"), 5), ((10, 3, 3, 2), 4),
        ((10, 2, 5, 0), 2), ((7, 7, 1, 0), 1), ((None, 3, 1, 0), None),
    ])
    def test_values(self, args, expected):
        assert L.conv_output_length(*args) == expected

    def test_matches_the_oracle(self):
        x = np.zeros((1, 1, 9))
        for f, s, p in itertools.product([1, 2, 3, 4], [1, 2, 3, 5], [0, 1, 3]):
            if 9 + 2 * p < f:
                continue
            out = np_corr(x, np.zeros((1, 1, f)), (s,), [(p, p)], (1,))
            assert L.conv_output_length(9, f, s, p) == out.shape[-1]

    def test_symbolic_length(self):
        n = T.iscalar("n")
        assert L.conv_output_length(n, 3, 2, "same").eval({n: 9}) == 5

    @pytest.mark.parametrize("pad", ["half", 1.5, None])
    def test_bad_pad(self, pad):
        with pytest.raises(ValueError, match=f"pad={pad!r}"):
            L.conv_output_length(10, 3, 1, pad)


class TestConvInputLength:
    @pytest.mark.parametrize("pad", ["valid", "full", "same", 0, 1, 2])
    @pytest.mark.parametrize("stride", [1, 2, 3])
    def test_inverts_conv_output_length(self, pad, stride):
        for out in range(1, 6):
            length = L.conv_input_length(out, 3, stride, pad)
            assert L.conv_output_length(length, 3, stride, pad) == out
            if length > 1:
                assert L.conv_output_length(length - 1, 3, stride, pad) == out - 1

    def test_none_and_bad_pad(self):
        assert L.conv_input_length(None, 3, 1, 0) is None
        with pytest.raises(ValueError, match="pad='half'"):
            L.conv_input_length(5, 3, 1, "half")


# -- forward convolutions ------------------------------------------------------------

CONV_TYPES = {1: L.Conv1DLayer, 2: L.Conv2DLayer, 3: L.Conv3DLayer}


class TestConvLayers:
    @pytest.mark.parametrize("n", [1, 2, 3])
    @pytest.mark.parametrize("pad", ["valid", "full", "same", 0, 2, 4])
    @pytest.mark.parametrize("stride", [1, 2, 4])
    def test_output_shape(self, n, pad, stride):
        spatial = (9, 6, 5)[:n]
        fsize = (3, 1, 5)[:n]
        layer = CONV_TYPES[n]((None, 2) + spatial, num_filters=4, filter_size=fsize,
                              stride=stride, pad=pad)
        expected = tuple(L.conv_output_length(s, f, stride, pad)
                         for s, f in zip(spatial, fsize))
        assert layer.output_shape == (None, 4) + expected
        assert layer.W.get_value().shape == (4, 2) + fsize
        assert layer.pad == ((0,) * n if pad == "valid" else
                             pad if isinstance(pad, str) else (pad,) * n)

    def test_unknown_spatial_sizes(self):
        layer = L.Conv2DLayer((None, 3, None, 10), num_filters=2, filter_size=3)
        assert layer.output_shape == (None, 2, None, 8)
        out = evaluate(layer, random_array(2, 3, 7, 10))
        assert out.shape == (2, 2, 5, 8)

    @pytest.mark.parametrize("n, pad, stride, groups, flip_filters, untie", [
        (1, "valid", 1, 1, True, False),
        (1, "full", 2, 2, False, True),
        (1, 3, 3, 1, True, True),
        (2, "same", 1, 1, True, False),
        (2, "valid", (2, 3), 2, False, False),
        (2, (4, 1), 2, 1, True, True),
        (2, "full", 1, 2, True, True),
        (3, "same", 2, 1, False, False),
        (3, 1, 1, 2, True, True),
    ])
    def test_output_matches_numpy(self, n, pad, stride, groups, flip_filters, untie):
        spatial = (7, 6, 5)[:n]
        fsize = (3, 2, 3)[:n] if pad != "same" else (3, 5, 1)[:n]
        W = random_array(4, 4 // groups, *fsize, seed=1)
        layer = CONV_TYPES[n]((None, 4) + spatial, num_filters=4, filter_size=fsize,
                              stride=stride, pad=pad, num_groups=groups,
                              flip_filters=flip_filters, untie_biases=untie, W=W,
                              nonlinearity=None)
        b = random_array(*layer.b.get_value().shape, seed=2)
        layer.b.set_value(b)
        x = random_array(2, 4, *spatial, seed=3)
        K = flip(W, n) if flip_filters else W
        strides = stride if isinstance(stride, tuple) else (stride,) * n
        expected = np_corr(x, K, strides, resolve_pad(pad, fsize), (1,) * n, groups)
        expected += b[None] if untie else b.reshape((1, -1) + (1,) * n)
        out = evaluate(layer, x)
        assert out.shape == layer.get_output_shape_for((2, 4) + spatial)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)

    def test_flip_filters_is_a_true_convolution(self):
        # with flip_filters=True a 1-D convolution of an impulse reproduces the filter
        W = np.array([[[1.0, 2.0, 3.0]]], dtype=FLOATX)
        layer = L.Conv1DLayer((None, 1, 5), 1, 3, pad="full", W=W, b=None,
                              nonlinearity=None)
        x = np.array([[[0, 0, 1, 0, 0]]], dtype=FLOATX)
        np.testing.assert_allclose(evaluate(layer, x)[0, 0], [0, 0, 1, 2, 3, 0, 0])
        layer = L.Conv1DLayer((None, 1, 5), 1, 3, pad="full", W=W, b=None,
                              nonlinearity=None, flip_filters=False)
        np.testing.assert_allclose(evaluate(layer, x)[0, 0], [0, 0, 3, 2, 1, 0, 0])

    def test_nonlinearity_and_defaults(self, seeded):
        layer = L.Conv2DLayer((None, 3, 5, 5), num_filters=2, filter_size=3)
        assert layer.nonlinearity is forge.nonlinearities.rectify
        assert layer.flip_filters and not layer.untie_biases and layer.num_groups == 1
        assert layer.stride == (1, 1) and layer.pad == (0, 0) and layer.n == 2
        assert (layer.b.get_value() == 0).all()
        assert (evaluate(layer, random_array(2, 3, 5, 5)) >= 0).all()
        assert L.Conv2DLayer((None, 3, 5, 5), 2, 3, nonlinearity=None).nonlinearity \
            is forge.nonlinearities.identity

    def test_params_and_tags(self):
        layer = L.Conv2DLayer((None, 3, 5, 5), 2, 3, name="c")
        assert (layer.W.name, layer.b.name) == ("c.W", "c.b")
        assert layer.get_params(regularizable=True) == [layer.W]
        assert layer.get_params(trainable=True) == [layer.W, layer.b]
        no_bias = L.Conv2DLayer((None, 3, 5, 5), 2, 3, b=None)
        assert no_bias.b is None and no_bias.get_params() == [no_bias.W]
        untied = L.Conv2DLayer((None, 3, 5, 6), 2, 3, untie_biases=True)
        assert untied.b.get_value().shape == (2, 3, 4)

    def test_gradient_flows(self):
        layer = L.Conv2DLayer((None, 2, 5, 5), 3, 3, stride=2, pad=1, num_groups=1)
        x = T.tensor4()
        grads = T.grad(layer.get_output_for(x).sum(), [layer.W, layer.b])
        values = pytensor.function([x], grads)(random_array(2, 2, 5, 5))
        assert values[0].shape == (3, 2, 3, 3) and np.isfinite(values[0]).all()

    @pytest.mark.parametrize("kwargs, error, message", [
        (dict(num_filters=0), ValueError, "num_filters=0"),
        (dict(num_filters=2.0), ValueError, "num_filters=2.0"),
        (dict(filter_size=(3, 0)), ValueError, r"filter_size=\(3, 0\)"),
        (dict(filter_size=(3, 3, 3)), ValueError, r"tuple of 2 ints.*filter_size"),
        (dict(stride=0), ValueError, "stride=0"),
        (dict(pad=-1), ValueError, "pad=-1"),
        (dict(pad="half"), ValueError, "pad='half'"),
        (dict(filter_size=(2, 3), pad="same"), NotImplementedError, r"odd filter sizes.*\(2, 3\)"),
        (dict(num_groups=2), ValueError, "divisible by num_groups, got 3 channels"),
        (dict(num_groups=0), ValueError, "num_groups=0"),
        (dict(filter_size=9), ValueError, r"empty output.*\(None, 4, -1, -1\)"),
        (dict(convolution=lambda *a: None), ValueError, "custom convolution"),
    ])
    def test_validation(self, kwargs, error, message):
        args = dict(num_filters=4, filter_size=3)
        args.update(kwargs)
        with pytest.raises(error, match=message):
            L.Conv2DLayer((None, 3, 7, 7), **args)

    def test_num_filters_divisible_by_groups(self):
        with pytest.raises(ValueError, match="num_filters=3 and num_groups=2"):
            L.Conv2DLayer((None, 4, 7, 7), 3, 3, num_groups=2)

    def test_rank_and_channels(self):
        with pytest.raises(ValueError, match=r"4-dimensional input.*\(None, 3, 7\)"):
            L.Conv2DLayer((None, 3, 7), 2, 3)
        with pytest.raises(ValueError, match=r"3-dimensional input"):
            L.Conv1DLayer((None, 3, 7, 7), 2, 3)
        with pytest.raises(ValueError, match=r"fixed number of input channels"):
            L.Conv2DLayer((None, None, 7, 7), 2, 3)
        with pytest.raises(ValueError, match=r"untie_biases=True needs fixed output sizes"):
            L.Conv2DLayer((None, 3, None, 7), 2, 3, untie_biases=True)

    def test_base_layer(self):
        base = conv.BaseConvLayer((None, 3, 7, 7, 7), 2, 3)
        assert base.n == 3 and base.output_shape == (None, 2, 5, 5, 5)
        with pytest.raises(NotImplementedError, match="convolve"):
            base.get_output_for(T.tensor5())
        with pytest.raises(ValueError, match=r"5-dimensional input"):
            conv.BaseConvLayer((None, 3, 7, 7), 2, 3, n=3)
        with pytest.raises(ValueError, match=r"3 or more dimensions"):
            conv.BaseConvLayer((None, 3), 2, 3)


# -- transposed convolutions ---------------------------------------------------------

class TestTransposedConvLayers:
    def test_aliases(self):
        assert L.Deconv2DLayer is L.TransposedConv2DLayer
        assert L.Deconv3DLayer is L.TransposedConv3DLayer

    @pytest.mark.parametrize("crop", ["valid", "full", "same", 0, 1, 2])
    @pytest.mark.parametrize("stride", [1, 2, 3])
    def test_output_shape_inverts_conv(self, crop, stride):
        layer = L.TransposedConv2DLayer((None, 5, 4, 6), num_filters=2, filter_size=(3, 5),
                                        stride=stride, crop=crop)
        out = layer.output_shape
        assert out[:2] == (None, 2)
        forward = L.Conv2DLayer((None, 2) + out[2:], 5, (3, 5), stride=stride, pad=crop)
        assert forward.output_shape[2:] == (4, 6)
        assert layer.W.get_value().shape == (5, 2, 3, 5)
        assert not hasattr(layer, "pad")
        assert layer.crop == ((0, 0) if crop == "valid" else crop if isinstance(crop, str)
                              else (crop, crop))

    def test_output_size(self):
        layer = L.TransposedConv2DLayer((None, 5, 4, 4), 2, 3, stride=3, output_size=(13, 14))
        assert layer.output_shape == (None, 2, 13, 14)
        with pytest.raises(ValueError, match=r"output_size=\(15, 12\).*lengths? 12 to 14"):
            L.TransposedConv2DLayer((None, 5, 4, 4), 2, 3, stride=3, output_size=(15, 12))
        with pytest.raises(ValueError, match=r"output_size=0"):
            L.TransposedConv2DLayer((None, 5, 4, 4), 2, 3, output_size=0)

    @pytest.mark.parametrize("n, crop, stride, groups, flip_filters, untie, output_size", [
        (2, "valid", 1, 1, False, False, None),
        (2, "same", 2, 1, True, True, None),
        (2, "full", (2, 3), 2, False, False, None),
        (2, (1, 2), 3, 1, False, True, (11, 7)),
        (3, 1, 2, 2, True, False, None),
        (3, "valid", (1, 2, 1), 1, False, True, (6, 8, 3)),
    ])
    def test_output_matches_numpy(self, n, crop, stride, groups, flip_filters, untie,
                                  output_size):
        spatial = (4, 3, 3)[:n]
        fsize = (3, 3, 1)[:n]
        cls = {2: L.TransposedConv2DLayer, 3: L.TransposedConv3DLayer}[n]
        W = random_array(4, 6 // groups, *fsize, seed=1)
        layer = cls((None, 4) + spatial, num_filters=6, filter_size=fsize, stride=stride,
                    crop=crop, num_groups=groups, flip_filters=flip_filters,
                    untie_biases=untie, W=W, output_size=output_size, nonlinearity=None)
        b = random_array(*layer.b.get_value().shape, seed=2)
        layer.b.set_value(b)
        x = random_array(2, 4, *spatial, seed=3)
        strides = stride if isinstance(stride, tuple) else (stride,) * n
        K = W if flip_filters else flip(W, n)
        out_sp = layer.output_shape[2:]
        expected = np_corr_transpose(x, K, out_sp, strides, resolve_pad(crop, fsize),
                                     groups=groups)
        expected += b[None] if untie else b.reshape((1, -1) + (1,) * n)
        out = evaluate(layer, x)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)

    @pytest.mark.parametrize("flip_filters", [True, False])
    def test_is_the_transpose_of_conv2d(self, flip_filters):
        # <conv(x), y> == <x, conv_transpose(y)> for a shared W, when the transposed
        # layer's flip_filters is the opposite of the convolution's (the defaults)
        W = random_array(3, 2, 3, 3, seed=1)
        fwd = L.Conv2DLayer((None, 2, 7, 6), 3, 3, stride=2, pad=1, W=W, b=None,
                            nonlinearity=None, flip_filters=flip_filters)
        bwd = L.TransposedConv2DLayer((None, 3) + fwd.output_shape[2:], 2, 3, stride=2,
                                      crop=1, W=W, b=None, nonlinearity=None,
                                      output_size=(7, 6), flip_filters=not flip_filters)
        x, y = random_array(1, 2, 7, 6, seed=2), random_array(1, 3, 4, 3, seed=3)
        lhs = float((evaluate(fwd, x).astype(np.float64) * y).sum())
        rhs = float((x.astype(np.float64) * evaluate(bwd, y)).sum())
        assert lhs == pytest.approx(rhs, rel=1e-4)

    def test_unknown_spatial_sizes(self):
        layer = L.TransposedConv2DLayer((None, 3, None, 4), 2, 3, stride=2, crop="same")
        assert layer.output_shape == (None, 2, None, 7)
        assert evaluate(layer, random_array(1, 3, 5, 4)).shape == (1, 2, 9, 7)

    def test_symbolic_output_size(self):
        size = T.ivector("size")
        layer = L.TransposedConv2DLayer((None, 3, 4, 4), 2, 3, stride=2, output_size=size)
        assert layer.output_shape == (None, 2, None, None)
        x = T.tensor4()
        fn = pytensor.function([x, size], layer.get_output_for(x))
        assert fn(random_array(1, 3, 4, 4), np.array([10, 9], "int32")).shape == (1, 2, 10, 9)

    def test_validation(self):
        with pytest.raises(NotImplementedError, match="crop='same' requires odd"):
            L.TransposedConv2DLayer((None, 3, 4, 4), 2, 2, crop="same")
        with pytest.raises(ValueError, match="crop=-1"):
            L.TransposedConv2DLayer((None, 3, 4, 4), 2, 3, crop=-1)
        with pytest.raises(ValueError, match=r"empty output.*crop=\(3, 3\)"):
            L.TransposedConv2DLayer((None, 3, 1, 1), 2, 3, crop=3)


# -- dilated convolution -------------------------------------------------------------

class TestDilatedConv2DLayer:
    @pytest.mark.parametrize("dilation", [1, 2, (3, 1), (1, 4)])
    def test_shape_and_output(self, dilation):
        W = random_array(3, 4, 3, 2, seed=1)  # (channels, num_filters, rows, cols)
        layer = L.DilatedConv2DLayer((None, 3, 9, 8), num_filters=4, filter_size=(3, 2),
                                     dilation=dilation, W=W, nonlinearity=None)
        d = dilation if isinstance(dilation, tuple) else (dilation,) * 2
        assert layer.dilation == d
        assert layer.output_shape == (None, 4, 9 - 2 * d[0], 8 - d[1])
        x = random_array(2, 3, 9, 8, seed=2)
        expected = np_corr(x, W.transpose(1, 0, 2, 3), (1, 1), [(0, 0)] * 2, d)
        np.testing.assert_allclose(evaluate(layer, x), expected, rtol=1e-5, atol=1e-5)

    def test_lasagne_restrictions(self):
        layer = L.DilatedConv2DLayer((None, 3, 9, 9), 4, 3, dilation=2, pad="valid")
        assert not hasattr(layer, "stride") and layer.flip_filters is False
        with pytest.raises(NotImplementedError, match=r"requires pad=0.*got pad=1"):
            L.DilatedConv2DLayer((None, 3, 9, 9), 4, 3, pad=1)
        with pytest.raises(NotImplementedError, match="got pad='same'"):
            L.DilatedConv2DLayer((None, 3, 9, 9), 4, 3, pad="same")
        with pytest.raises(NotImplementedError, match="requires flip_filters=False"):
            L.DilatedConv2DLayer((None, 3, 9, 9), 4, 3, flip_filters=True)
        with pytest.raises(NotImplementedError, match="num_groups=1 only"):
            L.DilatedConv2DLayer((None, 4, 9, 9), 4, 3, num_groups=2)
        with pytest.raises(ValueError, match=r"dilation=\(0, 1\)"):
            L.DilatedConv2DLayer((None, 3, 9, 9), 4, 3, dilation=(0, 1))
        with pytest.raises(ValueError, match=r"empty output.*dilation=\(5, 5\)"):
            L.DilatedConv2DLayer((None, 3, 9, 9), 4, 3, dilation=5)


# -- locally connected ---------------------------------------------------------------

class TestLocallyConnected2DLayer:
    @pytest.mark.parametrize("channelwise", [False, True])
    @pytest.mark.parametrize("flip_filters", [True, False])
    @pytest.mark.parametrize("fsize", [(3, 3), (3, 5), (1, 3)])
    def test_output_matches_numpy(self, channelwise, flip_filters, fsize):
        shape = (None, 3, 5, 4)
        layer = L.LocallyConnected2DLayer(shape, num_filters=3, filter_size=fsize,
                                          channelwise=channelwise,
                                          flip_filters=flip_filters, nonlinearity=None,
                                          untie_biases=channelwise)
        W = random_array(*layer.W.get_value().shape, seed=1)
        layer.W.set_value(W)
        b = random_array(*layer.b.get_value().shape, seed=2)
        layer.b.set_value(b)
        assert layer.output_shape == (None, 3, 5, 4)
        expected_W = (3,) + fsize + (5, 4) if channelwise else (3, 3) + fsize + (5, 4)
        assert W.shape == expected_W
        x = random_array(2, 3, 5, 4, seed=3)
        expected = np_locally_connected(x, W, flip_filters, channelwise)
        expected += b[None] if channelwise else b.reshape(1, -1, 1, 1)
        np.testing.assert_allclose(evaluate(layer, x), expected, rtol=1e-5, atol=1e-5)

    def test_lasagne_restrictions(self):
        shape = (None, 2, 4, 4)
        for pad in ("valid", "full", 1):
            with pytest.raises(NotImplementedError, match="requires pad='same'"):
                L.LocallyConnected2DLayer(shape, 2, 3, pad=pad)
        with pytest.raises(NotImplementedError, match=r"requires stride=1 / \(1, 1\)"):
            L.LocallyConnected2DLayer(shape, 2, 3, stride=2)
        with pytest.raises(ValueError, match="num_filters and the number of input channels"):
            L.LocallyConnected2DLayer(shape, 4, 3, channelwise=True)
        with pytest.raises(ValueError, match="requires a fixed input shape"):
            L.LocallyConnected2DLayer((None, 2, None, 4), 4, 3)
        with pytest.raises(NotImplementedError, match="odd filter sizes"):
            L.LocallyConnected2DLayer(shape, 2, 2)


# -- export configs ------------------------------------------------------------------

def _config(layer):
    manifest = build_bundle(layer)[0]
    entry = manifest["layers"][-1]
    return entry["type"], entry["config"], entry["params"]


class TestExportConfig:
    def test_conv2d(self):
        l_in = L.InputLayer((None, 4, 9, 9))
        layer = L.Conv2DLayer(l_in, 6, (3, 5), stride=(1, 2), pad="same", num_groups=2,
                              untie_biases=True, nonlinearity=forge.nonlinearities.tanh)
        kind, config, params = _config(layer)
        assert kind == "Conv2DLayer"
        assert config == {"num_filters": 6, "filter_size": [3, 5], "stride": [1, 2],
                          "pad": [[1, 1], [2, 2]], "dilation": [1, 1], "num_groups": 2,
                          "untie_biases": True, "flip_filters": True,
                          "nonlinearity": {"name": "tanh"}}
        assert set(params) == {"W", "b"}

    @pytest.mark.parametrize("pad, pairs", [
        ("valid", [[0, 0]]), ("full", [[4, 4]]), ("same", [[2, 2]]), (3, [[3, 3]])])
    def test_conv1d_pads(self, pad, pairs):
        layer = L.Conv1DLayer(L.InputLayer((None, 1, 9)), 2, 5, pad=pad, b=None)
        kind, config, params = _config(layer)
        assert config["pad"] == pairs and params["b"] is None

    def test_transposed_dilated_and_local(self):
        l_in = L.InputLayer((None, 4, 5, 5))
        _, config, _ = _config(L.Deconv2DLayer(l_in, 2, 3, stride=2, crop="full"))
        assert config["crop"] == [[2, 2], [2, 2]] and config["output_size"] == [7, 7]
        assert config["flip_filters"] is False and "pad" not in config
        kind, config, _ = _config(L.DilatedConv2DLayer(l_in, 2, 2, dilation=(2, 1)))
        assert (config["dilation"], config["stride"], config["pad"]) == \
            ([2, 1], [1, 1], [[0, 0], [0, 0]])
        kind, config, _ = _config(L.LocallyConnected2DLayer(l_in, 4, 3, channelwise=True))
        assert config["pad"] == [[1, 1], [1, 1]] and config["channelwise"] is True
        assert "num_groups" not in config

    def test_transposed_free_output_size_is_null(self):
        layer = L.TransposedConv2DLayer(L.InputLayer((None, 4, None, 5)), 2, 3)
        assert _config(layer)[1]["output_size"] == [None, 7]

    def test_transposed_refuses_a_symbolic_output_size(self):
        layer = L.TransposedConv2DLayer(L.InputLayer((None, 4, None, 5)), 2, 3,
                                        output_size=T.ivector("size"))
        with pytest.raises(ExportError, match="symbolic output_size cannot be exported"):
            build_bundle(layer)


def test_docstring_examples():
    result = doctest.testmod(conv, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
