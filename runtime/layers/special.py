"""Elementwise layers: nonlinearities, expressions, learned biases and scales."""
from ..nonlinearities import get_nonlinearity
from .base import Layer, check, is_int, register

__all__ = ["NonlinearityLayer", "ExpressionLayer", "BiasLayer", "ScaleLayer"]


@register
class NonlinearityLayer(Layer):
    """``nonlinearity(x)``."""

    config_keys = ("nonlinearity",)

    def __init__(self, name, inputs, nonlinearity):
        super().__init__(name, inputs)
        self.nonlinearity = get_nonlinearity(nonlinearity)

    def __call__(self, x):
        return self.nonlinearity(x)


@register
class ExpressionLayer(Layer):
    """``function(x)``, where a bundle can only name one of the nonlinearities."""

    config_keys = ("function",)

    def __init__(self, name, inputs, function):
        super().__init__(name, inputs)
        self.function = get_nonlinearity(function)

    def __call__(self, x):
        return self.function(x)


def _broadcastable(param, shared_axes, what):
    """``param`` with a size-1 axis inserted at each shared axis of the input."""
    ok = isinstance(shared_axes, list) and all(is_int(a, 0) for a in shared_axes)
    ndim = param.ndim + len(shared_axes) if ok else 0
    check(ok and len(set(shared_axes)) == len(shared_axes) and all(a < ndim for a in shared_axes),
          f"shared_axes must be a list of distinct axes (ints >= 0) of the input, which has "
          f"{what}'s {param.ndim} axes plus one per shared axis; got {shared_axes!r}")
    sizes = iter(param.shape)
    return param.reshape([1 if axis in shared_axes else next(sizes) for axis in range(ndim)])


def _check_fits(param, shared_axes, x, what):
    fits = x.ndim == param.ndim and all(
        axis in shared_axes or p == s for axis, (p, s) in enumerate(zip(param.shape, x.shape)))
    if not fits:
        raise ValueError(f"{what} of shape {param.shape} (1 on shared axes {shared_axes}) "
                         f"does not fit an input of shape {x.shape}")


@register
class BiasLayer(Layer):
    """``x + b``, with ``b`` repeated along ``shared_axes``."""

    config_keys = ("shared_axes",)
    param_keys = ("b",)

    def __init__(self, name, inputs, shared_axes, b):
        super().__init__(name, inputs)
        self.b = _broadcastable(b, shared_axes, "b")
        self.shared_axes = tuple(shared_axes)

    def __call__(self, x):
        _check_fits(self.b, self.shared_axes, x, "b")
        return x + self.b


@register
class ScaleLayer(Layer):
    """``x * scales``, with ``scales`` repeated along ``shared_axes``."""

    config_keys = ("shared_axes",)
    param_keys = ("scales",)

    def __init__(self, name, inputs, shared_axes, scales):
        super().__init__(name, inputs)
        self.scales = _broadcastable(scales, shared_axes, "scales")
        self.shared_axes = tuple(shared_axes)

    def __call__(self, x):
        _check_fits(self.scales, self.shared_axes, x, "scales")
        return x * self.scales
