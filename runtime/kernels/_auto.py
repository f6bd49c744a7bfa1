"""``FORGE_KERNELS=auto`` with numba installed: each call picks numpy or numba by its work.

A call whose work is below :data:`runtime.kernels.AUTO_MIN_WORK` (pooling:
:data:`runtime.kernels.AUTO_MIN_POOL_WORK`) runs numpy's kernel, a larger one numba's,
importing numba on the first such call (``runtime.kernels.select``, which falls back
to numpy with a warning when numba will not import); within
``runtime.kernels.numba_for_every_call`` every call runs numba's. Outside it the choice
depends on the call's shapes only, so it is the same in every process and every thread;
dense products, which never import numba, also depend on whether numba's kernels run in
the process (:func:`dense`).
"""
import math
import sys

import numpy as np

from . import _numpy
from ._numpy import (
    affine, autocrop, conv_output_shape, conv_transpose, feature_pool, feature_wta,
    global_pool, local_response_norm, locally_connected, pool_bounds, pool_output_shape,
    spatial_pyramid_bins, standardize, upscale,
)

__all__ = list(_numpy.__all__)

#: ``runtime.kernels``, whose thresholds are read at every call (and may be changed).
_settings = sys.modules[__name__.rpartition(".")[0]]


def _kernels(work, pooling=False):
    """The kernel module for a call of ``work`` multiply-adds (or, ``pooling``,
    comparisons): numba's from ``AUTO_MIN_WORK`` (``AUTO_MIN_POOL_WORK``) up, and
    whatever the work within ``runtime.kernels.numba_for_every_call``."""
    least = _settings.AUTO_MIN_POOL_WORK if pooling else _settings.AUTO_MIN_WORK
    return _numpy if work < least and not _settings._every_call.get() else _settings.select()


def conv_work(x, W):
    """A convolution's work: batch x input positions x filter weights (an upper bound
    of its multiply-adds, cheap to compute before the arguments are checked)."""
    return math.prod(x.shape[:1] + x.shape[2:]) * W.size


def dense(x, W, b=None, nonlinearity=None):
    """:func:`_numba.dense` once this process runs numba's kernels, for a call of
    ``AUTO_MIN_WORK`` multiply-adds (items x weights) or more (any call within
    ``runtime.kernels.numba_for_every_call``); :func:`_numpy.dense` otherwise.

    Unlike convolution and pooling, a dense product never imports numba: by itself
    numpy's OpenBLAS product is the faster (0.5 against 0.86 ms for 64 x 784 x 800 on a
    2-core Sapphire Rapids VM). But OpenBLAS's worker threads keep spinning after each
    product, taking the cores from the convolution and pooling kernels' threads (the
    README CNN at batch 64 ran 19 ms a batch with its dense layer on OpenBLAS, 13 with
    it on numba). So an MLP alone stays on OpenBLAS, and large products run on numba
    in a process whose convolutions or pooling already do; the two sum in different
    orders, so such a product's last bits depend on which ran.
    """
    if x.shape[0] * W.size >= _settings.AUTO_MIN_WORK or _settings._every_call.get():
        from . import _numba

        if _numba.loaded():
            if x.shape[0] < _numba.TILE_FILTERS and _settings._every_call.get():
                # Model.warm_up's batch of 1: compile (or load) the direct product that
                # large batches will run
                _numba.dense(np.zeros((_numba.TILE_FILTERS, x.shape[1]), x.dtype), W)
            return _numba.dense(x, W, b, nonlinearity)
    return _numpy.dense(x, W, b, nonlinearity)


def dense_one(W, b=None, nonlinearity=None):
    """:func:`_numpy.dense_one` where :func:`dense` would run numpy's product for a single
    item, so never for ``W`` of :data:`AUTO_MIN_WORK` weights or more (None: every call
    goes through :func:`dense`); within ``numba_for_every_call`` its calls go to
    :func:`dense`, which warms numba's direct product up."""
    if W.size >= _settings.AUTO_MIN_WORK:
        return None
    return _numpy.dense_one(W, b, nonlinearity, defer=(_settings._every_call, dense))


def conv(x, W, b=None, stride=None, pad=None, dilation=None, groups=1, nonlinearity=None):
    """:func:`_numpy.conv` or :func:`_numba.conv`, by :func:`conv_work`."""
    return _kernels(conv_work(x, W)).conv(x, W, b, stride, pad, dilation, groups,
                                          nonlinearity)


def pool(x, pool_size, stride=None, pad=None, ignore_border=True, mode="max"):
    """:func:`_numpy.pool` or :func:`_numba.pool`, by input elements x window size."""
    return _kernels(x.size * math.prod(pool_size), pooling=True).pool(
        x, pool_size, stride, pad, ignore_border, mode)


def spatial_pyramid_pool(x, pool_dims, mode="max"):
    """:func:`_numpy.spatial_pyramid_pool` or numba's, by input elements x levels."""
    return _kernels(x.size * len(pool_dims), pooling=True).spatial_pyramid_pool(
        x, pool_dims, mode)
