"""``FORGE_KERNELS=auto`` with numba installed: each call picks numpy or numba by its work.

A call whose work is below :data:`runtime.kernels.AUTO_MIN_WORK` runs numpy's kernel, a
larger one numba's, importing numba on the first such call (``runtime.kernels.select``,
which falls back to numpy with a warning when numba will not import); within
``runtime.kernels.numba_for_every_call`` every call runs numba's. Outside it the choice
depends on the call's shapes only, so it is the same in every process and every thread.
"""
import math

from . import _numpy
from ._numpy import (
    affine, autocrop, conv_output_shape, conv_transpose, dense, feature_pool, feature_wta,
    global_pool, local_response_norm, locally_connected, pool_bounds, pool_output_shape,
    spatial_pyramid_bins, standardize, upscale,
)

__all__ = list(_numpy.__all__)


def _kernels(work):
    """The kernel module for a call of ``work`` multiply-adds or comparisons (numba's,
    whatever the work, within ``runtime.kernels.numba_for_every_call``)."""
    from . import AUTO_MIN_WORK, _every_call, select

    return _numpy if work < AUTO_MIN_WORK and not _every_call.get() else select()


def conv_work(x, W):
    """A convolution's work: batch x input positions x filter weights (an upper bound
    of its multiply-adds, cheap to compute before the arguments are checked)."""
    return math.prod(x.shape[:1] + x.shape[2:]) * W.size


def conv(x, W, b=None, stride=None, pad=None, dilation=None, groups=1, nonlinearity=None):
    """:func:`_numpy.conv` or :func:`_numba.conv`, by :func:`conv_work`."""
    return _kernels(conv_work(x, W)).conv(x, W, b, stride, pad, dilation, groups,
                                          nonlinearity)


def pool(x, pool_size, stride=None, pad=None, ignore_border=True, mode="max"):
    """:func:`_numpy.pool` or :func:`_numba.pool`, by input elements x window size."""
    return _kernels(x.size * math.prod(pool_size)).pool(x, pool_size, stride, pad,
                                                         ignore_border, mode)


def spatial_pyramid_pool(x, pool_dims, mode="max"):
    """:func:`_numpy.spatial_pyramid_pool` or numba's, by input elements x levels."""
    return _kernels(x.size * len(pool_dims)).spatial_pyramid_pool(x, pool_dims, mode)
