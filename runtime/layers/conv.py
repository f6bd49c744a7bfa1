"""Convolution layers: N-d, dilated, transposed and locally connected.

Every layer checks its configuration when built, reverses ``W`` along its filter axes
once when ``flip_filters`` is true (so that each call is a plain cross-correlation),
and leaves the arithmetic to the kernels (numpy's or numba's, as
``runtime.kernels.layer_kernels`` says).
"""
import numpy as np

from .. import kernels
from ..nonlinearities import get_nonlinearity
from .base import Layer, check, int_list, is_int, register

__all__ = ["Conv1DLayer", "Conv2DLayer", "Conv3DLayer", "DilatedConv2DLayer",
           "TransposedConv2DLayer", "TransposedConv3DLayer", "LocallyConnected2DLayer"]


def _pairs(value, length, what):
    """``value``, a list of ``length`` ``[before, after]`` pairs of ints >= 0, as tuples."""
    check(isinstance(value, list) and len(value) == length and all(
        isinstance(p, list) and len(p) == 2 and is_int(p[0], 0) and is_int(p[1], 0)
        for p in value), f"{what} must be a list of {length} [before, after] pairs of "
                         f"ints >= 0, got {value!r}")
    return tuple(tuple(p) for p in value)


def _flip(W, axes):
    """``W`` reversed along ``axes``, as a read-only contiguous copy."""
    W = np.ascontiguousarray(np.flip(W, axis=axes))
    W.flags.writeable = False
    return W


def _check_bias(b, num_filters, untie_biases, num_spatial):
    check(isinstance(untie_biases, bool), f"untie_biases must be a bool, got {untie_biases!r}")
    wanted = (f"(num_filters={num_filters}, *output_spatial)" if untie_biases
              else f"({num_filters},)")
    check(b is None or (b.shape[0] == num_filters and b.ndim == (
        1 + num_spatial if untie_biases else 1)), f"b must have shape {wanted}, got "
                                                  f"{None if b is None else b.shape}")


class _Convolution(Layer):
    """What every convolution layer shares: its config, its bias and its nonlinearity."""

    num_spatial = 2
    config_keys = ("num_filters", "filter_size", "stride", "pad", "dilation", "num_groups",
                   "untie_biases", "flip_filters", "nonlinearity")
    param_keys = ("W", "b")
    optional_params = ("b",)

    def __init__(self, name, inputs, num_filters, filter_size, stride, pad, dilation,
                 num_groups, untie_biases, flip_filters, nonlinearity, W, b):
        super().__init__(name, inputs)
        nd = self.num_spatial
        check(is_int(num_filters, 1), f"num_filters must be a positive int, got {num_filters!r}")
        self.filter_size = int_list(filter_size, nd, 1, "filter_size")
        self.stride = int_list(stride, nd, 1, "stride")
        self.pad = _pairs(pad, nd, "pad")
        self.dilation = int_list(dilation, nd, 1, "dilation")
        check(is_int(num_groups, 1) and num_filters % num_groups == 0,
              f"num_groups must be a positive int dividing num_filters={num_filters}, "
              f"got {num_groups!r}")
        check(isinstance(flip_filters, bool), f"flip_filters must be a bool, got {flip_filters!r}")
        W = self.convolution_weights(W)
        check(W.ndim == nd + 2 and W.shape[0] == num_filters and W.shape[2:] == self.filter_size,
              f"W must have shape (num_filters={num_filters}, channels // num_groups, "
              f"*filter_size={self.filter_size}) for this layer, got {W.shape}")
        _check_bias(b, num_filters, untie_biases, nd)
        self.W = _flip(W, tuple(range(2, nd + 2))) if flip_filters else W
        self.b, self.num_groups = b, num_groups
        self.nonlinearity = get_nonlinearity(nonlinearity)
        self.kernels = kernels.layer_kernels()

    def convolution_weights(self, W):
        """``W`` in the layout ``(num_filters, channels // num_groups, *filter_size)``."""
        return W

    def __call__(self, x):
        return self.kernels.conv(x, self.W, self.b, self.stride, self.pad, self.dilation,
                                 self.num_groups, self.nonlinearity)


@register
class Conv1DLayer(_Convolution):
    """``nonlinearity(cross_correlation(x, W) + b)`` over one spatial axis (Lasagne's
    convolution: ``W`` flipped first when ``flip_filters``)."""

    num_spatial = 1


@register
class Conv2DLayer(_Convolution):
    """:class:`Conv1DLayer` over two spatial axes."""

    num_spatial = 2


@register
class Conv3DLayer(_Convolution):
    """:class:`Conv1DLayer` over three spatial axes."""

    num_spatial = 3


@register
class DilatedConv2DLayer(_Convolution):
    """A 2-D convolution with dilated filters; ``W`` is stored as Lasagne holds it for this
    layer, ``(channels, num_filters, *filter_size)``, and transposed at load."""

    def convolution_weights(self, W):
        check(W.ndim == 4, f"W must have 4 axes (channels, num_filters, *filter_size), "
                           f"got shape {W.shape}")
        W = np.ascontiguousarray(W.transpose(1, 0, 2, 3))
        W.flags.writeable = False
        return W


class _TransposedConvolution(Layer):
    """The transpose of a convolution (its gradient with respect to its input).

    ``W`` is ``(channels, num_filters // num_groups, *filter_size)``, the filters of the
    convolution being transposed. As in Lasagne, the layer slides ``W`` itself over the
    stride-dilated input (a cross-correlation) when ``flip_filters`` is false, and ``W``
    flipped when true; as the transpose of a convolution that is the other way round,
    so the flip happens at load when ``flip_filters`` is *false*.
    """

    num_spatial = 2
    config_keys = ("num_filters", "filter_size", "stride", "crop", "output_size", "num_groups",
                   "untie_biases", "flip_filters", "nonlinearity")
    param_keys = ("W", "b")
    optional_params = ("b",)

    def __init__(self, name, inputs, num_filters, filter_size, stride, crop, output_size,
                 num_groups, untie_biases, flip_filters, nonlinearity, W, b):
        super().__init__(name, inputs)
        nd = self.num_spatial
        self.filter_size = int_list(filter_size, nd, 1, "filter_size")
        self.stride = int_list(stride, nd, 1, "stride")
        self.crop = _pairs(crop, nd, "crop")
        check(isinstance(output_size, list) and len(output_size) == nd and all(
            s is None or is_int(s, 1) for s in output_size),
            f"output_size must be a list of {nd} positive ints (or nulls), got {output_size!r}")
        check(is_int(num_filters, 1) and is_int(num_groups, 1) and num_filters % num_groups == 0,
              f"num_filters and num_groups must be positive ints, num_groups dividing "
              f"num_filters; got {num_filters!r} and {num_groups!r}")
        check(W.ndim == nd + 2 and W.shape[1] * num_groups == num_filters and (
            W.shape[0] % num_groups == 0) and W.shape[2:] == self.filter_size,
            f"W must have shape (channels, num_filters // num_groups = "
            f"{num_filters // num_groups}, *filter_size={self.filter_size}), channels a "
            f"multiple of num_groups={num_groups}; got {W.shape}")
        check(isinstance(flip_filters, bool), f"flip_filters must be a bool, got {flip_filters!r}")
        _check_bias(b, num_filters, untie_biases, nd)
        self.output_size = tuple(output_size)
        self.W = W if flip_filters else _flip(W, tuple(range(2, nd + 2)))
        self.b, self.num_groups = b, num_groups
        self.nonlinearity = get_nonlinearity(nonlinearity)

    def __call__(self, x):
        shape = None
        if x.ndim == self.num_spatial + 2:  # a null entry: the smallest size that fits
            smallest = [(i - 1) * s + k - a - b for i, s, k, (a, b)
                        in zip(x.shape[2:], self.stride, self.filter_size, self.crop)]
            shape = tuple(m if s is None else s for m, s in zip(smallest, self.output_size))
        return kernels.conv_transpose(x, self.W, self.b, self.stride, self.crop, None,
                                      self.num_groups, shape, self.nonlinearity)


@register
class TransposedConv2DLayer(_TransposedConvolution):
    """A transposed 2-D convolution (``Deconv2DLayer`` is the same class)."""

    num_spatial = 2


@register
class TransposedConv3DLayer(_TransposedConvolution):
    """A transposed 3-D convolution (``Deconv3DLayer`` is the same class)."""

    num_spatial = 3


@register
class LocallyConnected2DLayer(Layer):
    """A 2-D convolution whose filters differ at every output position.

    ``W`` is ``(num_filters, channels, *filter_size, *output_spatial)``; with
    ``channelwise``, ``(num_filters, *filter_size, *output_spatial)`` and output channel
    ``f`` reads input channel ``f`` only. ``flip_filters`` flips the filter axes.
    """

    config_keys = ("num_filters", "filter_size", "stride", "pad", "channelwise",
                   "untie_biases", "flip_filters", "nonlinearity")
    param_keys = ("W", "b")
    optional_params = ("b",)

    def __init__(self, name, inputs, num_filters, filter_size, stride, pad, channelwise,
                 untie_biases, flip_filters, nonlinearity, W, b):
        super().__init__(name, inputs)
        check(is_int(num_filters, 1), f"num_filters must be a positive int, got {num_filters!r}")
        self.filter_size = int_list(filter_size, 2, 1, "filter_size")
        self.stride = int_list(stride, 2, 1, "stride")
        self.pad = _pairs(pad, 2, "pad")
        check(isinstance(channelwise, bool) and isinstance(flip_filters, bool),
              f"channelwise and flip_filters must be bools, got {channelwise!r} and "
              f"{flip_filters!r}")
        lead = 1 if channelwise else 2
        check(W.ndim == lead + 4 and W.shape[0] == num_filters
              and W.shape[lead:lead + 2] == self.filter_size,
              f"W must have shape (num_filters={num_filters}, "
              f"{'' if channelwise else 'channels, '}*filter_size={self.filter_size}, "
              f"*output_spatial), got {W.shape}")
        _check_bias(b, num_filters, untie_biases, 2)
        self.W = _flip(W, (lead, lead + 1)) if flip_filters else W
        self.b, self.channelwise = b, channelwise
        self.nonlinearity = get_nonlinearity(nonlinearity)

    def __call__(self, x):
        return kernels.locally_connected(x, self.W, self.b, self.stride, self.pad,
                                         self.channelwise, self.nonlinearity)
