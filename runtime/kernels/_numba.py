"""Accelerated kernels (numba): the only module that imports numba, and only in :func:`load`.

Each public function validates and allocates like its twin in ``_numpy`` (the reference
these are tested against), then calls private kernels that write into ``out``. Inputs the
kernels do not cover (dtypes other than float32 and float64, more than 3 spatial axes)
go to the numpy twin; the kernels not listed in :data:`ACCELERATED` are the numpy ones.

Threads: the kernels run single-threaded on purpose. The matrix products go to numpy's
BLAS (OpenBLAS), which keeps its own thread pool; numba's ``parallel=True`` next to it
makes the two pools fight over the cores (on a 2-core machine, convolutions that take
0.1 ms took 20 ms). ``nogil=True`` still lets a server's threads run kernels side by side.
"""
import math
import threading

import numpy as np

from . import _numpy
from ._numpy import (
    affine, autocrop, conv_output_shape, conv_transpose, dense, feature_pool, feature_wta,
    global_pool, local_response_norm, locally_connected, pool_bounds, pool_output_shape,
    standardize, upscale,
)

__all__ = list(_numpy.__all__)

#: The public functions this module implements itself (the others are numpy's).
ACCELERATED = ("conv", "pool", "spatial_pyramid_pool")

#: The compile flags of every kernel, set here only. Never ``parallel=True`` (see above).
JIT_FLAGS = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy",
             "boundscheck": False}

#: The im2col buffer and matrix-product result of one chunk of the batch stay within
#: this many bytes, so that they are still in cache when the next step reads them.
CHUNK_BYTES = 4 * 2**20

_KERNELS = {}
_lock = threading.Lock()
_loaded = False


def _kernel(function):
    """Mark ``function`` for compilation by :func:`load` (with :data:`JIT_FLAGS`)."""
    _KERNELS[function.__name__] = function
    return function


def load():
    """Import numba and put the jitted kernels in place of the Python ones (once).

    Kernels compile on their first call for each signature, from numba's on-disk cache
    when it has them (``cache=True``); :func:`warm_cache` fills that cache.
    """
    global _loaded
    with _lock:
        if not _loaded:
            import numba

            for name, function in _KERNELS.items():
                globals()[name] = numba.njit(**JIT_FLAGS)(function)
            _loaded = True


def _supported(*arrays):
    dtypes = {a.dtype for a in arrays if a is not None}
    return len(dtypes) == 1 and dtypes.pop() in (np.float32, np.float64)


# -- convolution ---------------------------------------------------------------------


@_kernel
def _valid_range(shift, stride, size, count):
    """The outputs ``l`` in ``range(count)`` whose input ``l * stride + shift`` is in
    ``range(size)``, as ``(lo, hi)``."""
    lo = max(0, (stride - 1 - shift) // stride)
    hi = min(count, (size - 1 - shift) // stride + 1)
    return lo, max(lo, hi)


@_kernel
def _im2col(x, first, count, channel, filter_size, stride, pad, dilation, out_shape, cols):
    """``cols[(c, a, b, e), (n, i, j, l)] = x[first + n, channel + c, i*s0 - p0 + a*d0,
    j*s1 - p1 + b*d1, l*s2 - p2 + e*d2]``, zero outside ``x`` (3 spatial axes)."""
    depth, height, width = x.shape[2], x.shape[3], x.shape[4]
    out_d, out_h, out_w = out_shape
    row = 0
    for c in range(cols.shape[0] // (filter_size[0] * filter_size[1] * filter_size[2])):
        for a in range(filter_size[0]):
            for b in range(filter_size[1]):
                for e in range(filter_size[2]):
                    shift = e * dilation[2] - pad[2]
                    lo, hi = _valid_range(shift, stride[2], width, out_w)
                    target = cols[row]
                    col = 0
                    for n in range(count):
                        for i in range(out_d):
                            z = i * stride[0] - pad[0] + a * dilation[0]
                            for j in range(out_h):
                                y = j * stride[1] - pad[1] + b * dilation[1]
                                if 0 <= z < depth and 0 <= y < height and lo < hi:
                                    target[col:col + lo] = 0
                                    target[col + lo:col + hi] = x[
                                        first + n, channel + c, z, y,
                                        lo * stride[2] + shift:(hi - 1) * stride[2] + shift + 1:
                                        stride[2]]
                                    target[col + hi:col + out_w] = 0
                                else:
                                    target[col:col + out_w] = 0
                                col += out_w
                    row += 1


@_kernel
def _im2col_wide(xp, first, count, channel, filter_size, dilation, stride_d, out_d,
                 padded_width, per_depth, span, cols):
    """im2col for unit strides on the last two axes. ``xp`` is the zero-padded input
    with flattened planes, ``(batch, channels, depth, height * padded_width)``, so the
    rows a filter offset (c, a, b, e) reads in one depth slice are one run of ``span``
    elements. Column ``(n, i, j, l)`` is ``(n * out_d + i) * per_depth + j * padded_width
    + l``; the columns with ``l >= out_w`` (windows wrapping around a row's end) are junk
    that is never read."""
    row = 0
    for c in range(cols.shape[0] // (filter_size[0] * filter_size[1] * filter_size[2])):
        for a in range(filter_size[0]):
            for b in range(filter_size[1]):
                for e in range(filter_size[2]):
                    offset = b * dilation[1] * padded_width + e * dilation[2]
                    target = cols[row]
                    for n in range(count):
                        for i in range(out_d):
                            source = xp[first + n, channel + c, i * stride_d + a * dilation[0]]
                            col = (n * out_d + i) * per_depth
                            target[col:col + span] = source[offset:offset + span]
                    row += 1


@_kernel
def _bias_activation(result, bias, first, filter0, leak, row_stride, out):
    """``out[first + n, filter0 + f, r, l] = g(result[f, (n * R + r) * row_stride + l]
    + bias[filter0 + f, r * out_w + l])`` (``bias`` of width 1: shared), where ``g(v) =
    v * leak`` for ``v < 0``: linear (leak 1), rectify (0) or leaky_rectify, in the same
    pass that lays the matrix product out as (batch, filters, rows, out_w)."""
    rows, out_w = out.shape[2], out.shape[3]
    tied = bias.shape[1] == 1
    for n in range(result.shape[1] // (rows * row_stride)):
        for f in range(result.shape[0]):
            shared = bias[filter0 + f, 0]
            for r in range(rows):
                source = result[f, (n * rows + r) * row_stride:]
                target = out[first + n, filter0 + f, r]
                if tied:
                    for l in range(out_w):
                        v = source[l] + shared
                        target[l] = v * leak if v < 0 else v
                else:
                    untied = bias[filter0 + f, r * out_w:]
                    for l in range(out_w):
                        v = source[l] + untied[l]
                        target[l] = v * leak if v < 0 else v


def _fused_leak(nonlinearity):
    """The slope for negative values when ``nonlinearity`` can run inside the conv's
    last pass (None, linear, rectify, leaky_rectify); None for any other function."""
    name = getattr(nonlinearity, "name", None)
    if nonlinearity is None or name == "linear":
        return 1.0
    if name == "rectify":
        return 0.0
    if name == "leaky_rectify":
        return float(nonlinearity.params["leakiness"])
    return None


def _lift(values, fill, nd):
    """``values`` (one per spatial axis) padded in front to 3 axes with ``fill``."""
    return (fill,) * (3 - nd) + tuple(values)


def conv(x, W, b=None, stride=None, pad=None, dilation=None, groups=1, nonlinearity=None):
    """:func:`_numpy.conv`, with an im2col kernel feeding numpy's matrix product and the
    bias and the nonlinearity (linear, rectify, leaky_rectify; others run after) applied
    while the result is laid out.

    With unit strides on the last two spatial axes (the common case), im2col copies
    whole runs of the padded input and the product computes ``out_h * padded_width``
    columns per output depth slice, of which the ``out_h * out_w`` valid ones are kept.
    """
    nd = W.ndim - 2
    if not _supported(x, W, b) or not 1 <= nd <= 3 or x.ndim != W.ndim:
        return _numpy.conv(x, W, b, stride, pad, dilation, groups, nonlinearity)
    load()
    stride, pad, dilation = _numpy.spatial_args(nd, stride, pad, dilation)
    spatial_out = _numpy.check_conv(x, W, b, groups, stride, pad, dilation)
    batch, filters, group_channels = x.shape[0], W.shape[0], W.shape[1]
    filter_size, stride, dilation, out_shape = (
        _lift(W.shape[2:], 1, nd), _lift(stride, 1, nd), _lift(dilation, 1, nd),
        _lift(spatial_out, 1, nd))
    pad = _lift(pad, (0, 0), nd)
    x5 = np.ascontiguousarray(x).reshape(x.shape[:2] + _lift(x.shape[2:], 1, nd))
    group_filters, dtype = filters // groups, x.dtype
    rows = group_channels * math.prod(filter_size)
    wide = stride[1] == stride[2] == 1
    if wide:
        if any(sum(pad, ())):
            x5 = np.pad(x5, ((0, 0), (0, 0)) + pad)
        padded_width = x5.shape[4]
        row_stride = padded_width if out_shape[1] > 1 else out_shape[2]
        xp = x5.reshape(x5.shape[:3] + (x5.shape[3] * x5.shape[4],))
    else:
        row_stride = out_shape[2]
    per_item = out_shape[0] * out_shape[1] * row_stride
    chunk = _numpy.chunk_size((rows + group_filters) * per_item * dtype.itemsize, batch,
                              CHUNK_BYTES)
    cols_buffer = np.zeros(rows * chunk * per_item, dtype)  # junk columns: zeros, not NaN
    result_buffer = np.empty(group_filters * chunk * per_item, dtype)
    weights = np.ascontiguousarray(W).reshape(groups, group_filters, rows)
    bias = np.zeros((filters, 1), dtype) if b is None else np.ascontiguousarray(b).reshape(
        filters, -1)
    leak = _fused_leak(nonlinearity)
    leak = dtype.type(1.0 if leak is None else leak)
    out = np.empty((batch, filters, out_shape[0] * out_shape[1], out_shape[2]), dtype)
    for start in range(0, batch, chunk):
        count = min(chunk, batch - start)
        cols = cols_buffer[:rows * count * per_item].reshape(rows, count * per_item)
        result = result_buffer[:group_filters * count * per_item].reshape(group_filters, -1)
        for g in range(groups):
            if wide:
                _im2col_wide(xp, start, count, g * group_channels, filter_size, dilation,
                             stride[0], out_shape[0], padded_width, out_shape[1] * row_stride,
                             (out_shape[1] - 1) * row_stride + out_shape[2], cols)
            else:
                _im2col(x5, start, count, g * group_channels, filter_size, stride,
                        tuple(a for a, _ in pad), dilation, out_shape, cols)
            np.matmul(weights[g], cols, out=result)
            _bias_activation(result, bias, start, g * group_filters, leak, row_stride, out)
    out = out.reshape((batch, filters) + spatial_out)
    return out if _fused_leak(nonlinearity) is not None else nonlinearity(out)


# -- pooling -------------------------------------------------------------------------


@_kernel
def _pool(x, bounds, average, out):
    """Pool ``x`` ``(items, depth, height, width)`` into ``out`` over the windows that
    ``bounds[axis] = (starts, stops, counts)`` give on each of the 3 axes: the max (NaN
    winning, as in ``np.max``), or the sum divided by the counts' product.

    Separable, so that the long loops vectorize: for each output row, the window's input
    rows are first combined column by column into ``line`` (with ``nans`` counting the
    NaNs of each column), then each output reduces its span of ``line``.
    """
    width = x.shape[3]
    line = np.empty(width, x.dtype)
    nans = np.empty(width, np.int64)
    for m in range(x.shape[0]):
        for i in range(out.shape[1]):
            for j in range(out.shape[2]):
                first = True
                for a in range(bounds[0, 0, i], bounds[0, 1, i]):
                    for b in range(bounds[1, 0, j], bounds[1, 1, j]):
                        row = x[m, a, b]
                        if first:
                            for w in range(width):
                                line[w] = row[w]
                                nans[w] = row[w] != row[w]
                            first = False
                        elif average:
                            for w in range(width):
                                line[w] += row[w]
                        else:
                            for w in range(width):
                                v, t = row[w], line[w]
                                line[w] = v if v > t else t
                                nans[w] += v != v
                target = out[m, i, j]
                for l in range(out.shape[3]):
                    start, stop = bounds[2, 0, l], bounds[2, 1, l]
                    best, bad = line[start], nans[start]
                    for c in range(start + 1, stop):
                        v = line[c]
                        if average:
                            best += v
                        else:
                            best = v if v > best else best
                            bad += nans[c]
                    if average:
                        target[l] = best / (bounds[0, 2, i] * bounds[1, 2, j] * bounds[2, 2, l])
                    else:
                        target[l] = best if bad == 0 else np.nan


def pool(x, pool_size, stride=None, pad=None, ignore_border=True, mode="max"):
    """:func:`_numpy.pool` (Theano's semantics) with a compiled window loop."""
    pool_size = tuple(pool_size)
    stride, pad = _numpy.check_pool(x, pool_size, stride, pad, ignore_border, mode)
    nd, lead = len(pool_size), x.ndim - len(pool_size)
    if not _supported(x) or not 1 <= nd <= 3:
        return _numpy.pool(x, pool_size, stride, pad, ignore_border, mode)
    load()
    size = x.shape[lead:]
    out_shape = pool_output_shape(size, pool_size, stride, pad, ignore_border)
    out = np.empty(x.shape[:lead] + out_shape, x.dtype)
    if out.size == 0:
        return out
    lifted = _lift(out_shape, 1, nd)
    bounds = np.zeros((3, 3, max(lifted)), np.int64)
    for axis, args in enumerate(zip(_lift(size, 1, nd), _lift(pool_size, 1, nd),
                                    _lift(stride, 1, nd), _lift(pad, 0, nd), lifted)):
        bounds[axis, :, :args[-1]] = pool_bounds(*args, mode)
    items = math.prod(x.shape[:lead])
    _pool(np.ascontiguousarray(x).reshape((items,) + _lift(size, 1, nd)), bounds,
          mode != "max", out.reshape((items,) + lifted))
    return out


def spatial_pyramid_pool(x, pool_dims, mode="max"):
    """:func:`_numpy.spatial_pyramid_pool` on the compiled :func:`pool`."""
    return _numpy.spatial_pyramid_pool(x, pool_dims, mode, pool=pool)


def warm_cache():
    """Compile every kernel signature once (float32 and float64 convolutions with unit and
    other strides, max and average pooling), filling numba's on-disk cache; return the
    seconds it took."""
    import time

    began = time.perf_counter()
    load()
    for dtype in (np.float32, np.float64):
        x = np.ones((1, 1, 3, 3), dtype)
        for stride in ((1, 1), (2, 2)):
            conv(x, np.ones((1, 1, 2, 2), dtype), np.ones(1, dtype), stride)
        for mode in ("max", "average_inc_pad"):
            pool(x, (2, 2), mode=mode)
    return time.perf_counter() - began
