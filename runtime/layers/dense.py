"""Fully connected layers."""
import math

import numpy as np

from .. import kernels
from ..nonlinearities import get_nonlinearity
from .base import Layer, check, is_int, register

__all__ = ["DenseLayer", "NINLayer"]


def _check_weights(W, b, num_units, bias_shape):
    check(is_int(num_units, 1), f"num_units must be a positive int, got {num_units!r}")
    check(W.ndim == 2 and W.shape[1] == num_units,
          f"W must have shape (inputs, {num_units}), got {W.shape}")
    check(b is None or b.shape == bias_shape,
          f"b must have shape {bias_shape}, got {None if b is None else b.shape}")


@register
class DenseLayer(Layer):
    """``nonlinearity(x.reshape(x.shape[:n] + (-1,)) @ W + b)`` for ``n = num_leading_axes``.

    The first ``num_leading_axes`` axes are kept; the others are flattened into the
    ``W.shape[0]`` features each item is multiplied with.

    A single item's product (a matrix-vector product) reads a copy of ``W`` stored
    transposed (``W.T`` contiguous), which numpy's BLAS multiplies 1.2 to 2 times faster
    than ``W`` itself; batches read ``W`` (from the copy they run up to 1.3 times
    slower). The copy doubles the memory of the layer's weights, except for a
    memory-mapped ``W`` (``runtime.load(mmap=True)``), which is used as it is. Large
    float32 batches run numba's direct product instead of OpenBLAS's once convolution or
    pooling kernels have loaded numba in the process (``runtime.kernels.dense_kernels``).
    """

    config_keys = ("num_units", "num_leading_axes", "nonlinearity")
    param_keys = ("W", "b")
    optional_params = ("b",)

    def __init__(self, name, inputs, num_units, num_leading_axes, nonlinearity, W, b):
        super().__init__(name, inputs)
        _check_weights(W, b, num_units, (num_units,))
        check(is_int(num_leading_axes, 1),
              f"num_leading_axes must be a positive int, got {num_leading_axes!r}")
        self.num_leading_axes = num_leading_axes
        self.nonlinearity = get_nonlinearity(nonlinearity)
        self.W, self.b = W, b
        self._W_one_item = W if isinstance(W, np.memmap) else _transposed_copy(W)
        self.kernels = kernels.dense_kernels()
        # a single item's whole computation, for the shape (1, features) only
        self._one = (self.kernels.dense_one(self._W_one_item, b, self.nonlinearity)
                     if num_leading_axes == 1 else None)
        self._one_shape = (1, W.shape[0]) if self._one is not None else None

    def __call__(self, x):
        if x.shape == self._one_shape:
            return self._one(x)
        lead = self.num_leading_axes
        if x.ndim == 2 and lead == 1 and x.shape[1] == self.W.shape[0]:  # (items, features)
            return self.kernels.dense(x, self._W_one_item if x.shape[0] == 1 else self.W,
                                      self.b, self.nonlinearity)
        if x.ndim <= lead:
            raise ValueError(f"got num_leading_axes={lead} for a {x.ndim}-dimensional input")
        rows, features = x.shape[:lead], math.prod(x.shape[lead:])
        if features != self.W.shape[0]:
            raise ValueError(f"W has {self.W.shape[0]} rows, but each item of the input "
                             f"(shape {x.shape}) has {features} features")
        items = math.prod(rows)
        y = self.kernels.dense(x.reshape(items, features),
                               self._W_one_item if items == 1 else self.W, self.b,
                               self.nonlinearity)
        return y.reshape(rows + (self.W.shape[1],))


def _transposed_copy(W):
    """``W``'s values in Fortran order (``W.T`` contiguous), read-only."""
    W = np.asfortranarray(W)
    W.flags.writeable = False
    return W


@register
class NINLayer(Layer):
    """A dense layer applied at every position: channels (axis 1) x ``W`` -> units.

    With ``untie_biases`` each position has its own bias, ``b`` of shape
    ``(num_units, *spatial)``; otherwise ``b`` is ``(num_units,)``.
    """

    config_keys = ("num_units", "untie_biases", "nonlinearity")
    param_keys = ("W", "b")
    optional_params = ("b",)

    def __init__(self, name, inputs, num_units, untie_biases, nonlinearity, W, b):
        super().__init__(name, inputs)
        check(isinstance(untie_biases, bool), f"untie_biases must be a bool, got {untie_biases!r}")
        bias_shape = (num_units,) + (b.shape[1:] if untie_biases and b is not None else ())
        _check_weights(W, b, num_units, bias_shape)
        self.untie_biases = untie_biases
        self.nonlinearity = get_nonlinearity(nonlinearity)
        self.W, self.b = W, b
        self.kernels = kernels.dense_kernels()

    def __call__(self, x):
        if x.ndim < 2:
            raise ValueError(f"needs an input with a channel axis (axis 1), got shape {x.shape}")
        if x.shape[1] != self.W.shape[0]:
            raise ValueError(f"W has {self.W.shape[0]} rows, but the input (shape {x.shape}) "
                             f"has {x.shape[1]} channels")
        channels_last = np.moveaxis(x, 1, -1)
        positions = channels_last.shape[:-1]
        y = self.kernels.dense(channels_last.reshape(math.prod(positions), x.shape[1]), self.W)
        y = np.moveaxis(y.reshape(positions + (self.W.shape[1],)), -1, 1)
        if self.b is not None:
            if self.untie_biases and self.b.shape[1:] != x.shape[2:]:
                raise ValueError(f"untied biases of shape {self.b.shape} do not fit an "
                                 f"input of shape {x.shape}")
            bias = self.b if self.untie_biases else self.b.reshape((-1,) + (1,) * (x.ndim - 2))
            y = y + bias
        return self.nonlinearity(y)
