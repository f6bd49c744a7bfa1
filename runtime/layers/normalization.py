"""Normalization layers: batch normalization (folded), local response normalization and
standardization."""
from .. import kernels
from .base import Layer, check, is_int, is_number, register

__all__ = ["BatchNormLayer", "LocalResponseNormalization2DLayer", "StandardizationLayer"]


def _axes(axes):
    check(isinstance(axes, list) and all(is_int(a, 0) for a in axes)
          and len(set(axes)) == len(axes), f"axes must be a list of distinct ints >= 0, "
                                           f"got {axes!r}")
    return tuple(sorted(axes))


@register
class BatchNormLayer(Layer):
    """``x * scale + shift``: batch normalization with its statistics folded in at export
    (``scale = gamma * inv_std``, ``shift = beta - mean * scale``). ``scale`` and
    ``shift`` have the input's shape without ``axes`` and repeat along them."""

    config_keys = ("axes",)
    param_keys = ("scale", "shift")

    def __init__(self, name, inputs, axes, scale, shift):
        super().__init__(name, inputs)
        self.axes = _axes(axes)
        ndim = scale.ndim + len(self.axes)
        check(scale.shape == shift.shape and all(a < ndim for a in self.axes),
              f"scale and shift must have one shape, the input's without axes {axes}, got "
              f"{scale.shape} and {shift.shape}")
        sizes = iter(scale.shape)
        self.shape = tuple(1 if a in self.axes else next(sizes) for a in range(ndim))
        self.scale, self.shift = scale.reshape(self.shape), shift.reshape(self.shape)

    def __call__(self, x):
        if x.ndim != len(self.shape) or any(
                p != 1 and p != s for p, s in zip(self.shape, x.shape)):
            raise ValueError(f"scale and shift of shape {self.shape} (1 on the normalized "
                             f"axes {list(self.axes)}) do not fit an input of shape {x.shape}")
        return kernels.affine(x, self.scale, self.shift)


@register
class LocalResponseNormalization2DLayer(Layer):
    """``x / (k + alpha * sum of x**2 over n neighbouring channels) ** beta`` for a
    ``(batch, channels, rows, columns)`` input (Lasagne's formula; ``n`` odd)."""

    config_keys = ("alpha", "k", "beta", "n")

    def __init__(self, name, inputs, alpha, k, beta, n):
        super().__init__(name, inputs)
        check(all(is_number(v) for v in (alpha, k, beta)),
              f"alpha, k and beta must be numbers, got {alpha!r}, {k!r} and {beta!r}")
        check(is_int(n, 1) and n % 2 == 1, f"n must be a positive odd int, got {n!r}")
        self.alpha, self.k, self.beta, self.n = float(alpha), float(k), float(beta), n

    def __call__(self, x):
        if x.ndim != 4:
            raise ValueError(f"needs a 4-dimensional input (batch, channels, rows, columns), "
                             f"got shape {x.shape}")
        return kernels.local_response_norm(x, self.alpha, self.k, self.beta, self.n)


@register
class StandardizationLayer(Layer):
    """``(x - mean) / sqrt(var + epsilon)``, mean and variance over ``axes`` of each input."""

    config_keys = ("axes", "epsilon")

    def __init__(self, name, inputs, axes, epsilon):
        super().__init__(name, inputs)
        self.axes = _axes(axes)
        check(is_number(epsilon) and epsilon >= 0, f"epsilon must be a number >= 0, got "
                                                   f"{epsilon!r}")
        self.epsilon = float(epsilon)

    def __call__(self, x):
        if self.axes and self.axes[-1] >= x.ndim:
            raise ValueError(f"axes {list(self.axes)} do not exist in an input of shape "
                             f"{x.shape}")
        return kernels.standardize(x, self.axes, self.epsilon)
