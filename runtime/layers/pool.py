"""Pooling layers: over trailing axes (Theano's semantics), global, across features,
spatial pyramids, and upscaling."""
import numpy as np

from .. import kernels
from ..kernels._numpy import POOL_MODES, REDUCTIONS
from .base import Layer, check, int_list, is_int, register

__all__ = ["Pool1DLayer", "Pool2DLayer", "Pool3DLayer", "MaxPool1DLayer", "MaxPool2DLayer",
           "MaxPool3DLayer", "GlobalPoolLayer", "Upscale1DLayer", "Upscale2DLayer",
           "Upscale3DLayer", "FeaturePoolLayer", "FeatureWTALayer",
           "SpatialPyramidPoolingLayer"]


def _choice(value, choices, what):
    check(value in choices, f"{what} must be one of {', '.join(choices)}, got {value!r}")
    return value


class _Pool(Layer):
    """Pool the trailing ``num_spatial`` axes: windows of ``pool_size`` every ``stride``,
    ``pad`` (symmetric) on each side; ``ignore_border=False`` keeps a last partial
    window. Theano's rules: pads never win a max; ``average_inc_pad`` counts them,
    ``average_exc_pad`` does not; padding needs ``ignore_border`` and ``pad < pool_size``.
    """

    num_spatial = 2
    modes = POOL_MODES
    config_keys = ("pool_size", "stride", "pad", "ignore_border", "mode")

    def __init__(self, name, inputs, pool_size, stride, pad, ignore_border, mode):
        super().__init__(name, inputs)
        nd = self.num_spatial
        self.pool_size = int_list(pool_size, nd, 1, "pool_size")
        self.stride = int_list(stride, nd, 1, "stride")
        self.pad = int_list(pad, nd, 0, "pad")
        check(isinstance(ignore_border, bool), f"ignore_border must be a bool, got "
                                               f"{ignore_border!r}")
        self.mode = _choice(mode, self.modes, "mode")
        check(all(p < s for p, s in zip(self.pad, self.pool_size)),
              f"pad must be smaller than pool_size on every axis, got pad={pad} and "
              f"pool_size={pool_size}")
        check(ignore_border or not any(self.pad),
              f"padding works only with ignore_border=True, got pad={pad}")
        self.ignore_border = ignore_border
        self.kernels = kernels.layer_kernels()

    def __call__(self, x):
        if x.ndim < self.num_spatial + 1:
            raise ValueError(f"needs at least {self.num_spatial + 1} axes, got shape {x.shape}")
        return self.kernels.pool(x, self.pool_size, self.stride, self.pad,
                                 self.ignore_border, self.mode)


@register
class Pool1DLayer(_Pool):
    """Pooling over the last axis."""

    num_spatial = 1


@register
class Pool2DLayer(_Pool):
    """Pooling over the last two axes."""

    num_spatial = 2


@register
class Pool3DLayer(_Pool):
    """Pooling over the last three axes."""

    num_spatial = 3


@register
class MaxPool1DLayer(Pool1DLayer):
    """:class:`Pool1DLayer` with ``mode`` ``max``."""

    modes = ("max",)


@register
class MaxPool2DLayer(Pool2DLayer):
    """:class:`Pool2DLayer` with ``mode`` ``max``."""

    modes = ("max",)


@register
class MaxPool3DLayer(Pool3DLayer):
    """:class:`Pool3DLayer` with ``mode`` ``max``."""

    modes = ("max",)


@register
class GlobalPoolLayer(Layer):
    """``pool_function`` (mean, max, min, sum) over all axes after the second."""

    config_keys = ("pool_function",)

    def __init__(self, name, inputs, pool_function):
        super().__init__(name, inputs)
        self.pool_function = _choice(pool_function, tuple(REDUCTIONS), "pool_function")

    def __call__(self, x):
        return kernels.global_pool(x, self.pool_function)


class _Upscale(Layer):
    """Upscale the spatial axes (after batch and channel) by ``scale_factor``: ``repeat``
    every element, or ``dilate`` (each element followed by zeros)."""

    num_spatial = 2
    config_keys = ("scale_factor", "mode")

    def __init__(self, name, inputs, scale_factor, mode):
        super().__init__(name, inputs)
        self.scale_factor = int_list(scale_factor, self.num_spatial, 1, "scale_factor")
        self.mode = _choice(mode, ("repeat", "dilate"), "mode")

    def __call__(self, x):
        if x.ndim != self.num_spatial + 2:
            raise ValueError(f"needs a {self.num_spatial + 2}-dimensional input, got shape "
                             f"{x.shape}")
        return kernels.upscale(x, self.scale_factor, self.mode)


@register
class Upscale1DLayer(_Upscale):
    """Upscaling of one spatial axis."""

    num_spatial = 1


@register
class Upscale2DLayer(_Upscale):
    """Upscaling of two spatial axes."""

    num_spatial = 2


@register
class Upscale3DLayer(_Upscale):
    """Upscaling of three spatial axes."""

    num_spatial = 3


@register
class FeaturePoolLayer(Layer):
    """``pool_function`` over consecutive groups of ``pool_size`` features along ``axis``
    (maxout); the axis' size must be a multiple of ``pool_size``."""

    config_keys = ("pool_size", "axis", "pool_function")

    def __init__(self, name, inputs, pool_size, axis, pool_function):
        super().__init__(name, inputs)
        check(is_int(pool_size, 1) and is_int(axis),
              f"pool_size must be a positive int and axis an int, got {pool_size!r} and "
              f"{axis!r}")
        self.pool_size, self.axis = pool_size, axis
        self.pool_function = _choice(pool_function, tuple(REDUCTIONS), "pool_function")

    def __call__(self, x):
        return kernels.feature_pool(x, self.pool_size, self.axis, self.pool_function)


@register
class FeatureWTALayer(Layer):
    """Winner take all: in each group of ``pool_size`` features along ``axis``, keep the
    first largest value and zero the others."""

    config_keys = ("pool_size", "axis")

    def __init__(self, name, inputs, pool_size, axis):
        super().__init__(name, inputs)
        check(is_int(pool_size, 1) and is_int(axis),
              f"pool_size must be a positive int and axis an int, got {pool_size!r} and "
              f"{axis!r}")
        self.pool_size, self.axis = pool_size, axis

    def __call__(self, x):
        return kernels.feature_wta(x, self.pool_size, self.axis)


@register
class SpatialPyramidPoolingLayer(Layer):
    """Lasagne's spatial pyramid, pooled level by level for each ``p`` in ``pool_dims``,
    flattened and concatenated: ``(batch, channels, features)``. ``implementation``
    ``fast`` (the default when a bundle leaves it out) pools windows ``ceil(size / p)``
    every ``size // p`` (ignoring borders); ``kaiming`` pools He et al.'s ``p`` x ``p``
    bins, of any input size."""

    config_keys = ("pool_dims", "mode", "implementation", "first_bins_only")
    optional_config = ("implementation", "first_bins_only")

    def __init__(self, name, inputs, pool_dims, mode, implementation="fast",
                 first_bins_only=False):
        super().__init__(name, inputs)
        check(isinstance(pool_dims, list) and pool_dims, f"pool_dims must be a non-empty "
                                                         f"list, got {pool_dims!r}")
        self.pool_dims = int_list(pool_dims, len(pool_dims), 1, "pool_dims")
        self.mode = _choice(mode, POOL_MODES, "mode")
        self.implementation = _choice(implementation, ("fast", "kaiming"), "implementation")
        check(isinstance(first_bins_only, bool), f"first_bins_only must be true or false, "
                                                 f"got {first_bins_only!r}")
        self.first_bins_only = first_bins_only
        self.kernels = kernels.layer_kernels()

    def __call__(self, x):
        if self.implementation == "kaiming":
            return kernels.spatial_pyramid_bins(x, self.pool_dims, self.mode)
        if not self.first_bins_only:
            return self.kernels.spatial_pyramid_pool(x, self.pool_dims, self.mode)
        # exported with an unknown spatial size: each level keeps its first p x p windows
        levels = []
        for p in self.pool_dims:
            level = self.kernels.spatial_pyramid_pool(x, [p], self.mode)
            rows, cols = ((s - -(-s // p)) // (s // p) + 1 for s in x.shape[2:])
            level = level.reshape(x.shape[:2] + (rows, cols))[:, :, :p, :p]
            levels.append(level.reshape(x.shape[:2] + (p * p,)))
        return np.concatenate(levels, axis=2)
