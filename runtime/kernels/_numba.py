"""Accelerated kernels (numba): the only module that imports numba, and only in :func:`load`.

Each public function validates and allocates like its twin in ``_numpy`` (the reference
these are tested against), then calls private kernels that write into ``out``. Inputs the
kernels do not cover (dtypes other than float32 and float64, more than 3 spatial axes)
go to the numpy twin; the kernels not listed in :data:`ACCELERATED` are the numpy ones.

Threads: the kernels are compiled single-threaded on purpose. The matrix products go to
numpy's BLAS (OpenBLAS), which keeps its own thread pool; numba's ``parallel=True`` next
to it makes the two pools fight over the cores (on a 2-core machine, convolutions that
take 0.1 ms took 20 ms). ``nogil=True`` lets a server's threads run kernels side by side,
and lets the kernels that call no BLAS (the direct convolution :func:`_conv_direct`, the
direct dense product :func:`dense`, pooling) split a large batch over a small pool of
Python threads, one per core (:data:`THREADS`).
"""
import math
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import _numpy
from ._numpy import (
    affine, autocrop, conv_output_shape, conv_transpose, dense_one, feature_pool,
    feature_wta, global_pool, local_response_norm, locally_connected, pool_bounds,
    pool_output_shape, spatial_pyramid_bins, standardize, upscale,
)

__all__ = list(_numpy.__all__)

#: The public functions this module implements itself (the others are numpy's).
ACCELERATED = ("dense", "conv", "pool", "spatial_pyramid_pool")

#: The compile flags of every kernel, set here only. Never ``parallel=True`` (see above).
JIT_FLAGS = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy",
             "boundscheck": False}

#: The im2col buffer and matrix-product results of one chunk of the batch stay within
#: this many bytes, so that they are still in cache when the next step reads them
#: (measured on the README CNN: 4 to 64 MiB within noise of each other, 2 MiB slower).
CHUNK_BYTES = 8 * 2**20

#: Scratch buffers up to this size stay allocated in the thread that used them, for its
#: next call (no fresh multi-MiB allocation per call).
KEEP_BYTES = 2 * CHUNK_BYTES

#: The direct convolution's tile: :data:`TILE_FILTERS` filters by :data:`TILE_LANES`
#: float32 output positions, held in 3 x 8 of AVX-512's 32 vector registers (or twice as
#: many halves on AVX2) while the channels and filter taps are summed. Measured on the
#: README CNN's second convolution (one thread, Sapphire Rapids): 13.5 ms with 32 lanes
#: (16 registers), 12.1 with 48, 18.4 with 64 (32 sums no longer fit the registers).
TILE_FILTERS, TILE_LANES = 8, 48

#: The kernels that call no BLAS (the direct convolution and dense product, pooling)
#: split a batch over this many threads (the cores this process may use), giving each
#: thread at least :data:`THREAD_MIN_WORK` multiply-adds (or comparisons). Handing work
#: to a pool thread and waiting for it costs about 0.1 ms on a 2-core VM. The README
#: CNN's first convolution (27 million multiply-adds, but bound by its 11 MB output:
#: 1.5 ms on one thread) takes 1.1-1.2 ms on two; at 2**24 it stayed on one.
THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
    os.cpu_count() or 1)
THREAD_MIN_WORK = 2**22

#: The direct dense product (:func:`dense`) sums the features in chunks of this many, so
#: that a tile's weights (chunk x :data:`TILE_LANES` floats, 48 KiB) come from memory
#: once for all the blocks of items a thread owns (the README CNN's dense layer at batch
#: 64: 0.70 ms with chunks of 256 or 384, 0.78 with 128, 0.91 with 64).
DENSE_CHUNK = 256

_KERNELS = {}
_lock = threading.Lock()
_loaded = False
_local = threading.local()
_executor = None


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
    if _loaded:
        return
    with _lock:
        if not _loaded:
            import numba

            globals()["_conv_tile"] = _tile_intrinsic()
            for name, function in _KERNELS.items():
                try:
                    globals()[name] = numba.njit(**JIT_FLAGS)(function)
                except RuntimeError as exc:  # no writable cache location (read-only install)
                    warnings.warn(f"numba cannot cache the runtime's kernels ({exc}); they "
                                  "compile at every start (set NUMBA_CACHE_DIR to a writable "
                                  "folder)", RuntimeWarning, stacklevel=2)
                    globals()[name] = numba.njit(**dict(JIT_FLAGS, cache=False))(function)
            _loaded = True


def loaded():
    """Whether :func:`load` has run: numba imported and the kernels in place."""
    return _loaded


def _scratch(name, size, dtype):
    """A 1-D buffer of ``size`` items of ``dtype`` for this thread's ``name`` use, kept
    for the thread's next call when it is at most :data:`KEEP_BYTES` (so threads never
    share one, and a server's threads each hold their own)."""
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    key, dtype = (name, np.dtype(dtype).str), np.dtype(dtype)
    buffer = buffers.get(key)
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, dtype)
        if size * dtype.itemsize <= KEEP_BYTES:
            buffers[key] = buffer
    return buffer[:size]


def _supported(*arrays):
    dtypes = {a.dtype for a in arrays if a is not None}
    return len(dtypes) == 1 and dtypes.pop() in (np.float32, np.float64)


# -- convolution ---------------------------------------------------------------------


@_kernel
def _u(value):
    """``value`` (an int >= 0) as an unsigned index."""
    return np.uint64(value)


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
    j*s1 - p1 + b*d1, l*s2 - p2 + e*d2]``, zero outside ``x`` (3 spatial axes).

    The inner loops index with unsigned ints (``_u``): numba then leaves out its
    negative-index wraparound and LLVM vectorizes them (12 times faster)."""
    depth, height, width = x.shape[2], x.shape[3], x.shape[4]
    out_d, out_h, out_w = out_shape
    row = 0
    for c in range(cols.shape[0] // (filter_size[0] * filter_size[1] * filter_size[2])):
        for a in range(filter_size[0]):
            for b in range(filter_size[1]):
                for e in range(filter_size[2]):
                    shift = e * dilation[2] - pad[2]
                    lo, hi = _valid_range(shift, stride[2], width, out_w)
                    target, col = cols[row], 0
                    for n in range(count):
                        for i in range(out_d):
                            z = i * stride[0] - pad[0] + a * dilation[0]
                            for j in range(out_h):
                                y = j * stride[1] - pad[1] + b * dilation[1]
                                start = _u(col)
                                if 0 <= z < depth and 0 <= y < height:
                                    source = x[first + n, channel + c, z, y]
                                    base, step = _u(lo * stride[2] + shift), _u(stride[2])
                                    for l in range(_u(lo)):
                                        target[start + l] = 0
                                    for l in range(_u(hi - lo)):
                                        target[start + _u(lo) + l] = source[base + l * step]
                                    for l in range(_u(hi), _u(out_w)):
                                        target[start + l] = 0
                                else:
                                    for l in range(_u(out_w)):
                                        target[start + l] = 0
                                col += out_w
                    row += 1


@_kernel
def _im2col_shifted(xp, first, count, channel, offsets, cols):
    """``cols[(c, r), n * V + t] = xp[first + n, channel + c, t + offsets[r]]``, zero past
    the item's end, for ``xp`` of shape ``(batch, channels, V)``: the padded input with
    each item's volume flattened. With unit strides every filter offset is a constant
    shift of this flat index, so each row is one run copied per item."""
    volume = xp.shape[2]
    for c in range(cols.shape[0] // offsets.shape[0]):
        for r in range(offsets.shape[0]):
            shift = offsets[r]
            for n in range(count):  # views from index 0: no wraparound checks, vectorized
                source = xp[first + n, channel + c, shift:]
                target = cols[c * offsets.shape[0] + r, n * volume:(n + 1) * volume]
                for t in range(volume - shift):
                    target[t] = source[t]
                for t in range(volume - shift, volume):
                    target[t] = 0


@_kernel
def _sum_bias_activation(results, shifts, bias, first, filter0, leak, volume, plane, row,
                         out):
    """``out[first + n, filter0 + f, i, j, l] = g(sum_s results[s, f, n * volume + i * plane
    + j * row + l + shifts[s]] + bias[filter0 + f, k + l])``, ``k`` being ``(i * out_h +
    j) * out_w`` for untied biases and 0 for a bias row repeated along every output row,
    and ``g(v) = v * leak`` for ``v < 0``: linear (leak 1), rectify (0) or leaky_rectify.
    One pass from the matrix products' columns (some of them junk) to the output's
    layout."""
    out_d, out_h, out_w = out.shape[2], out.shape[3], out.shape[4]
    untied = bias.shape[1] > out_w
    for n in range(results.shape[2] // volume):
        for f in range(results.shape[1]):
            for i in range(out_d):
                for j in range(out_h):
                    base = n * volume + i * plane + j * row
                    target = out[first + n, filter0 + f, i, j]
                    source = results[0, f, base + shifts[0]:]
                    bias_row = bias[filter0 + f, (i * out_h + j) * out_w if untied else 0:]
                    if results.shape[0] == 1:
                        for l in range(out_w):
                            v = source[l] + bias_row[l]
                            target[l] = v * leak if v < 0 else v
                        continue
                    for l in range(out_w):
                        target[l] = source[l] + bias_row[l]
                    for s in range(1, results.shape[0]):
                        source = results[s, f, base + shifts[s]:]
                        for l in range(out_w):
                            target[l] += source[l]
                    for l in range(out_w):
                        v = target[l]
                        target[l] = v * leak if v < 0 else v


def _tile_intrinsic():
    """The direct convolution's inner loop, ``_conv_tile``, as a numba intrinsic that
    writes LLVM vector code (imported numba is needed, so :func:`load` calls this).

    ``_conv_tile(x, x0, x_step, offsets, w, w0, channels, out, out0, out_step)`` sets, for
    ``f < TILE_FILTERS`` and ``p < TILE_LANES``::

        out[out0 + f * out_step + p] = sum over c < channels, t < len(offsets) of
            w[w0 + (c * len(offsets) + t) * TILE_FILTERS + f] * x[x0 + c * x_step + offsets[t] + p]

    The 8 x 48 sums stay in 24 vector registers for the whole loop; each step loads three
    vectors of inputs, broadcasts 8 weights and does 24 vector multiply-adds. numba's
    own loops leave such sums in memory or unvectorized (5-36 GFLOP/s measured against
    100-160 for OpenBLAS), which is why this one is written as vectors. LLVM lowers the
    16-lane vectors to whatever the CPU has (AVX-512, AVX2, NEON halves).
    """
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    filters, vectors, lanes = TILE_FILTERS, TILE_LANES // 16, 16

    @intrinsic
    def _conv_tile(typingctx, x, x0, x_step, offsets, w, w0, channels, out, out0, out_step):
        if not all(isinstance(a, types.Array) and a.dtype == types.float32
                   for a in (x, w, out)) or not isinstance(offsets, types.Array):
            return None
        signature = types.void(x, x0, x_step, offsets, w, w0, channels, out, out0, out_step)

        def codegen(context, builder, sig, args):
            x, x0, x_step, offsets, w, w0, channels, out, out0, out_step = args
            arrays = {i: cgutils.create_struct_proxy(sig.args[i])(context, builder,
                                                                  value=args[i])
                      for i in (0, 3, 4, 7)}
            xp, tp, wp, op = (arrays[i].data for i in (0, 3, 4, 7))
            taps = arrays[3].nitems
            i64, f32 = ir.IntType(64), ir.FloatType()
            vec = ir.VectorType(f32, lanes)
            vec_ptr = vec.as_pointer()
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vec, [vec, vec, vec]), "llvm.fma.v16f32")

            def const(value):
                return ir.Constant(i64, value)

            def broadcast(scalar):
                one = builder.insert_element(ir.Constant(vec, ir.Undefined), scalar,
                                             ir.Constant(ir.IntType(32), 0))
                mask = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
                return builder.shuffle_vector(one, one, mask)

            def vector_at(pointer, index):  # unaligned: inputs start at any position
                return builder.bitcast(builder.gep(pointer, [index]), vec_ptr)

            # allocas in the entry block: LLVM promotes them to registers
            sums = [[cgutils.alloca_once(builder, vec) for _ in range(vectors)]
                    for _ in range(filters)]
            for row in sums:
                for slot in row:
                    builder.store(ir.Constant(vec, [0.0] * lanes), slot)
            with cgutils.for_range(builder, channels) as channel:
                c = channel.index
                x_c = builder.add(x0, builder.mul(c, x_step))
                w_c = builder.add(w0, builder.mul(builder.mul(c, taps), const(filters)))
                with cgutils.for_range(builder, taps) as tap:
                    t = tap.index
                    start = builder.add(x_c, builder.load(builder.gep(tp, [t])))
                    inputs = [builder.load(vector_at(xp, builder.add(start, const(v * lanes))),
                                           align=4) for v in range(vectors)]
                    w_t = builder.add(w_c, builder.mul(t, const(filters)))
                    for f in range(filters):
                        weight = broadcast(builder.load(builder.gep(
                            wp, [builder.add(w_t, const(f))])))
                        for v in range(vectors):
                            total = builder.load(sums[f][v])
                            builder.store(builder.call(fma, [weight, inputs[v], total]),
                                          sums[f][v])
            for f in range(filters):
                row = builder.add(out0, builder.mul(const(f), out_step))
                for v in range(vectors):
                    builder.store(builder.load(sums[f][v]),
                                  vector_at(op, builder.add(row, const(v * lanes))), align=4)
            return context.get_dummy_value()

        return signature, codegen

    return _conv_tile


def _conv_tile(*args):
    raise RuntimeError("_conv_tile exists only compiled, after load()")


@_kernel
def _touch(values, start, stop):
    """Read ``values[start:stop]`` in order, one value per 64-byte cache line, and return
    their sum (the caller stores it, so that the loop is not optimized away).

    Brings an item's input into the L2 cache before the direct tiles read it: each tile
    reads every channel's few rows at once, more streams than the hardware prefetcher
    follows. Measured on a 2-core Sapphire Rapids VM: the README CNN's second
    convolution went from 12.1 to 11.3 ms on one thread, the whole CNN at batch 64 from
    10.7-10.9 to 9.8-10.1 ms a batch."""
    total = values[start]
    for i in range(start, stop, 64 // values.itemsize):
        total += values[i]
    return total


@_kernel
def _conv_direct(x3, first, count, channel, offsets, packed, group_filters, span, scratch,
                 bias, filter0, leak, plane, row, out):
    """The unit-stride convolution of items ``first .. first + count - 1`` of ``x3``
    (``(batch, channels, volume)``: the padded input, each item's volume flattened) with
    the channels from ``channel`` and the weights ``packed`` (``(blocks, channels, taps,
    TILE_FILTERS)``, zero filters filling the last block), written to ``out`` from filter
    ``filter0`` (``group_filters`` of them) with the bias and leak of
    :func:`_sum_bias_activation`.

    Each item's result goes through ``scratch`` (``(1, blocks * TILE_FILTERS, volume)``)
    a tile of filters by :data:`TILE_LANES` flat positions at a time; the last tile of a
    row of tiles ends at ``span`` and so overlaps the one before (it computes a few sums
    twice, reads nothing outside the item). The junk positions that wrap around a row's
    end are computed and left out by the last pass."""
    volume, blocks = x3.shape[2], packed.shape[0]
    channels, taps, filters = packed.shape[1], packed.shape[2], packed.shape[3]
    xs, ws, ss = x3.reshape(x3.size), packed.reshape(packed.size), scratch.reshape(scratch.size)
    shifts = np.zeros(1, np.int64)
    # the group's filters of the scratch, typed C-contiguous (a 2-D slice would not be,
    # and the last pass's loops would not vectorize: the README CNN's first convolution
    # took 2.47 ms on one thread, 1.53 with this view)
    results = ss[:group_filters * volume].reshape(1, group_filters, volume)
    for n in range(first, first + count):
        x0 = (n * x3.shape[1] + channel) * volume
        ss[0] = _touch(xs, x0, x0 + channels * volume)  # overwritten by the first tile
        for k in range(blocks):
            w0, s0 = k * channels * taps * filters, k * filters * volume
            for p in range(0, span, TILE_LANES):
                p = min(p, span - TILE_LANES)
                _conv_tile(xs, x0 + p, volume, offsets, ws, w0, channels, ss, s0 + p, volume)
        _sum_bias_activation(results, shifts, bias, n, filter0, leak, volume, plane, row, out)


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


def _tap_offsets(filter_size, padded, dilation):
    """Each filter tap's shift in an item's flattened padded volume (unit strides)."""
    steps = (dilation[0] * padded[1] * padded[2], dilation[1] * padded[2], dilation[2])
    return np.array([a * steps[0] + b * steps[1] + e * steps[2]
                     for a in range(filter_size[0]) for b in range(filter_size[1])
                     for e in range(filter_size[2])], np.int64)


def _shifted_plan(W6, padded, dilation):
    """For unit strides: the im2col row offsets into each item's flattened padded input,
    the column shifts and the weights for each shift, as ``(offsets, shifts, weights)``,
    ``weights`` of shape ``(groups, shifts, filters, rows)``; ``W6`` is ``(groups,
    filters, channels, *filter_size)``.

    The rows hold every filter offset (no shift), or only those along the last axis:
    then one matrix product with the weights of every offset along the other axes
    stacked (taller, so the BLAS runs about 10% faster than one product per offset)
    gives a block of results per offset, and the last pass sums each block read shifted
    by its offset. That is a third of the im2col traffic for 3x3 filters, worth it when
    the extra results (``2 * filters`` per column) cost less than the rows it saves
    (``channels * filter_width``)."""
    groups, filters, channels, depth, height, width = W6.shape
    steps = (dilation[0] * padded[1] * padded[2], dilation[1] * padded[2], dilation[2])
    if 2 * filters < channels * width and depth * height > 1:
        offsets = [e * steps[2] for e in range(width)]
        shifts = [a * steps[0] + b * steps[1] for a in range(depth) for b in range(height)]
        weights = W6.transpose(0, 3, 4, 1, 2, 5).reshape(groups, depth * height, filters, -1)
    else:
        offsets = _tap_offsets(W6.shape[3:], padded, dilation)
        shifts, weights = [0], W6.reshape(groups, 1, filters, -1)
    return np.array(offsets, np.int64), np.array(shifts, np.int64), np.ascontiguousarray(
        weights)


def _direct_pays(dtype, group_filters, span):
    """Whether the direct convolution (:func:`_conv_direct`) takes a unit-stride call:
    float32, at least a tile of positions, and filters that fill their tiles at least
    four fifths (a last tile mostly of zero filters wastes its multiply-adds)."""
    tiles = -(-group_filters // TILE_FILTERS)
    return (dtype == np.float32 and span >= TILE_LANES
            and 5 * group_filters >= 4 * tiles * TILE_FILTERS)


def _threads_for(work, items):
    """How many threads share a call of ``work`` multiply-adds over ``items`` items."""
    return max(1, min(THREADS, items, work // THREAD_MIN_WORK))


def _run_split(function, items, threads):
    """Call ``function(first, count)`` over ``range(items)`` cut into ``threads`` runs,
    the first in this thread and the others in the module's pool (its errors raised)."""
    global _executor
    if threads == 1:
        function(0, items)
        return
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(THREADS - 1, thread_name_prefix="forge-conv")
    cuts = [items * i // threads for i in range(threads + 1)]
    futures = [_executor.submit(function, cuts[i], cuts[i + 1] - cuts[i])
               for i in range(1, threads)]
    try:
        function(0, cuts[1])
    finally:
        for future in futures:
            future.result()


def _conv_direct_all(x3, W6, offsets, span, bias, leak, plane, row, out):
    """The whole unit-stride convolution by :func:`_conv_direct` (``offsets``: every
    filter tap's shift in the flat padded input), the batch split over threads, each
    with its own scratch buffer."""
    groups, group_filters, group_channels = W6.shape[:3]
    tiles = -(-group_filters // TILE_FILTERS)
    packed = np.zeros((groups, tiles * TILE_FILTERS, group_channels, len(offsets)), W6.dtype)
    packed[:, :group_filters] = W6.reshape(packed[:, :group_filters].shape)
    packed = np.ascontiguousarray(packed.reshape(
        groups, tiles, TILE_FILTERS, group_channels, len(offsets)).transpose(0, 1, 3, 4, 2))
    volume = x3.shape[2]

    def run(first, count):
        scratch = _scratch("direct", tiles * TILE_FILTERS * volume, x3.dtype).reshape(
            1, tiles * TILE_FILTERS, volume)
        for g in range(groups):
            _conv_direct(x3, first, count, g * group_channels, offsets, packed[g],
                         group_filters, span, scratch, bias, g * group_filters, leak, plane,
                         row, out)

    _run_split(run, x3.shape[0], _threads_for(x3.shape[0] * span * W6.size, x3.shape[0]))


def conv(x, W, b=None, stride=None, pad=None, dilation=None, groups=1, nonlinearity=None):
    """:func:`_numpy.conv`, compiled, with the bias and the nonlinearity (linear, rectify,
    leaky_rectify; others run after) applied while the sums are laid out as the output.

    With unit strides, each item's padded volume is flattened, so that every filter tap
    is a constant shift of the flat index, and a sum is computed for every input
    position, of which the valid ones are kept (unless the junk positions, windows
    wrapping around a row's end, would outnumber them). For float32 and enough filters
    (:func:`_direct_pays`) the direct kernel :func:`_conv_direct` sums the taps in
    vector registers, the batch split over :data:`THREADS` threads: about twice the
    speed of the matrix products on a 2-core Zen 5 whose OpenBLAS is held to its AVX2
    kernels. Otherwise im2col copies feed numpy's matrix products: whole runs of the
    flat input with unit strides (see :func:`_shifted_plan`), row by row with others.
    """
    nd = W.ndim - 2
    if not _supported(x, W, b) or not 1 <= nd <= 3 or x.ndim != W.ndim:
        return _numpy.conv(x, W, b, stride, pad, dilation, groups, nonlinearity)
    load()
    stride, pad, dilation = _numpy.spatial_args(nd, stride, pad, dilation)
    spatial_out = _numpy.check_conv(x, W, b, groups, stride, pad, dilation)
    batch, filters, dtype = x.shape[0], W.shape[0], x.dtype
    group_filters, group_channels = filters // groups, W.shape[1]
    stride, dilation, out_shape = (_lift(stride, 1, nd), _lift(dilation, 1, nd),
                                   _lift(spatial_out, 1, nd))
    pad = _lift(pad, (0, 0), nd)
    x5 = np.ascontiguousarray(x).reshape(x.shape[:2] + _lift(x.shape[2:], 1, nd))
    W6 = np.ascontiguousarray(W).reshape((groups, group_filters, group_channels)
                                         + _lift(W.shape[2:], 1, nd))
    padded = tuple(s + a + b for s, (a, b) in zip(x5.shape[2:], pad))
    shifted = stride == (1, 1, 1) and math.prod(padded) <= 2 * math.prod(out_shape)
    bias = np.zeros((filters, out_shape[2]), dtype) if b is None else np.ascontiguousarray(
        np.broadcast_to(b.reshape(filters, -1), (filters, max(out_shape[2], b[0].size))))
    leak = _fused_leak(nonlinearity)
    leak = dtype.type(1.0 if leak is None else leak)
    out = np.empty((batch, filters) + out_shape, dtype)
    if shifted:
        if any(sum(pad, ())):
            x5 = np.pad(x5, ((0, 0), (0, 0)) + pad)
        x5 = x5.reshape(x5.shape[:2] + (math.prod(padded),))
        volume, plane, row = math.prod(padded), padded[1] * padded[2], padded[2]
    else:
        volume, plane, row = math.prod(out_shape), out_shape[1] * out_shape[2], out_shape[2]
    span = (out_shape[0] - 1) * plane + (out_shape[1] - 1) * row + out_shape[2]
    if shifted and batch and _direct_pays(dtype, group_filters, span):
        _conv_direct_all(x5, W6, _tap_offsets(W6.shape[3:], padded, dilation), span, bias,
                         leak, plane, row, out)
    else:
        _conv_products(x5, W6, bias, leak, stride, pad, dilation, shifted, padded, volume,
                       plane, row, span, out)
    out = out.reshape((batch, filters) + spatial_out)
    return out if _fused_leak(nonlinearity) is not None else nonlinearity(out)


def _conv_products(x5, W6, bias, leak, stride, pad, dilation, shifted, padded, volume, plane,
                   row, span, out):
    """:func:`conv`'s im2col and matrix products, a chunk of the batch at a time."""
    batch, dtype = x5.shape[0], x5.dtype
    groups, group_filters, group_channels = W6.shape[:3]
    out_shape = out.shape[2:]
    if shifted:
        offsets, shifts, weights = _shifted_plan(W6, padded, dilation)
    else:
        shifts, weights = np.zeros(1, np.int64), W6.reshape(groups, 1, group_filters, -1)
    rows = weights.shape[3]
    chunk = _numpy.chunk_size((rows + len(shifts) * group_filters) * volume * dtype.itemsize,
                              batch, CHUNK_BYTES)
    cols_buffer = _scratch("cols", rows * chunk * volume, dtype)
    results_buffer = _scratch("results", len(shifts) * group_filters * chunk * volume, dtype)
    for start in range(0, batch, chunk):
        count = min(chunk, batch - start)
        cols = cols_buffer[:rows * count * volume].reshape(rows, -1)
        results = results_buffer[:len(shifts) * group_filters * count * volume].reshape(
            len(shifts), group_filters, -1)
        columns = (count - 1) * volume + span  # the rest are junk: not computed, not read
        width = min(count * volume, columns + int(shifts[-1]))  # read by the last shift
        for g in range(groups):
            if shifted:
                _im2col_shifted(x5, start, count, g * group_channels, offsets, cols)
            else:
                _im2col(x5, start, count, g * group_channels, W6.shape[3:], stride,
                        tuple(a for a, _ in pad), dilation, out_shape, cols)
            np.matmul(weights[g].reshape(-1, rows), cols[:, :width],
                      out=results.reshape(-1, count * volume)[:, :width])
            _sum_bias_activation(results, shifts, bias, start, g * group_filters, leak, volume,
                                 plane, row, out)


# -- dense ---------------------------------------------------------------------------


@_kernel
def _block_row(block, items):
    """The first item of block ``block`` of :data:`TILE_FILTERS` items: the last block
    ends at the last item, so it may start inside the block before it."""
    return min(block * TILE_FILTERS, items - TILE_FILTERS)


@_kernel
def _pack_items(x, block0, packed):
    """``packed[b, c, f] = x[_block_row(block0 + b) + f, c]``: blocks of
    :data:`TILE_FILTERS` items of ``x`` (``(items, features)``) laid out feature by
    feature with the block's items side by side, as the direct tile reads the operand it
    broadcasts."""
    for b in range(packed.shape[0]):
        row = _block_row(block0 + b, x.shape[0])
        source, target = x[row:row + TILE_FILTERS], packed[b]
        for c in range(x.shape[1]):
            for f in range(TILE_FILTERS):
                target[c, f] = source[f, c]


@_kernel
def _dense_direct(x, block0, W, packed, tile, chunk, out):
    """``out[r, u] = sum_c x[r, c] * W[c, u]`` for the items of ``packed.shape[0]``
    blocks from block ``block0`` (:func:`_block_row`; the last block writes only the
    items past the block before it).

    For each chunk of ``chunk`` features and each tile of :data:`TILE_LANES` units, the
    direct tile (:func:`_conv_tile`, the units as its lanes and the items as its filters)
    sums the chunk into ``tile`` for one block after the other, while that tile's weights
    stay in cache; ``tile`` is then added to ``out`` (copied for the first chunk). As the
    last block, the last tile of units ends at the last unit and writes only its new
    units."""
    items, (features, units) = x.shape[0], W.shape
    _pack_items(x, block0, packed)
    ws, ps, ts = W.reshape(W.size), packed.reshape(packed.size), tile.reshape(tile.size)
    offsets = np.zeros(1, np.int64)
    for c0 in range(0, features, chunk):
        count = min(chunk, features - c0)
        for start in range(0, units, TILE_LANES):
            p = min(start, units - TILE_LANES)
            for b in range(packed.shape[0]):
                _conv_tile(ws, c0 * units + p, units, offsets, ps,
                           (b * features + c0) * TILE_FILTERS, count, ts, 0, TILE_LANES)
                nominal = (block0 + b) * TILE_FILTERS
                row = _block_row(block0 + b, items)
                for f in range(nominal - row, TILE_FILTERS):
                    target, source = out[row + f, p:], tile[f]
                    if c0 == 0:
                        for l in range(start - p, TILE_LANES):
                            target[l] = source[l]
                    else:
                        for l in range(start - p, TILE_LANES):
                            target[l] += source[l]


def _frozen(a):
    """``a`` as a C-contiguous, read-only array (a view where it can be). numba compiles a
    signature for read-only arrays and another for writable ones; freezing a kernel's
    operands makes every call take one (a model's weights are read-only, a copy is not),
    so that ``Model.warm_up`` compiles what large calls run."""
    a = np.ascontiguousarray(a).view()
    a.flags.writeable = False
    return a


def _dense_pays(x, W):
    """Whether the direct dense product takes ``x @ W``: float32, 2-D, at least a tile
    of units, and items that fill their blocks at least four fifths (as filters must
    for the convolution, :func:`_direct_pays`)."""
    blocks = -(-x.shape[0] // TILE_FILTERS)
    return (x.dtype == W.dtype == np.float32 and x.ndim == W.ndim == 2
            and W.shape[1] >= TILE_LANES and x.shape[0] >= TILE_FILTERS
            and 5 * x.shape[0] >= 4 * blocks * TILE_FILTERS)


def dense(x, W, b=None, nonlinearity=None):
    """:func:`_numpy.dense` without BLAS where the direct tile covers it (float32, at
    least :data:`TILE_FILTERS` items filling their blocks, at least :data:`TILE_LANES`
    units): the items split over :data:`THREADS` threads by blocks.

    numpy's matrix products run on OpenBLAS, whose worker threads keep spinning for a
    while after every product they share. Between two calls of a convolutional network
    those spinning threads take cores from the convolution and pooling kernels' threads
    (measured on the README CNN at batch 64, 2 cores: 19 ms a batch with the dense layer
    on OpenBLAS against 13 ms with it here). Other calls, and the bias and nonlinearity,
    are numpy's.
    """
    if not _dense_pays(x, W):
        return _numpy.dense(x, W, b, nonlinearity)
    load()
    items, features = x.shape
    x, W = _frozen(x), _frozen(W)
    y = np.empty((items, W.shape[1]), np.float32)
    blocks = -(-items // TILE_FILTERS)

    def run(first, count):
        packed = _scratch("dense", count * features * TILE_FILTERS, np.float32)
        tile = _scratch("tile", TILE_FILTERS * TILE_LANES, np.float32)
        _dense_direct(x, first, W, packed.reshape(count, features, TILE_FILTERS),
                      tile.reshape(TILE_FILTERS, TILE_LANES), DENSE_CHUNK, y)

    _run_split(run, blocks, _threads_for(items * W.size, blocks))
    if b is not None:
        y += b
    return _numpy._activate(y, nonlinearity)


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
    nans = np.empty(width, np.int32)
    for m in range(x.shape[0]):
        for i in range(out.shape[1]):
            for j in range(out.shape[2]):
                first = x[m, bounds[0, 0, i], bounds[1, 0, j]]
                for w in range(width):
                    line[w] = first[w]
                    nans[w] = first[w] != first[w]
                for a in range(bounds[0, 0, i], bounds[0, 1, i]):
                    for b in range(bounds[1, 0, j], bounds[1, 1, j]):
                        if a == bounds[0, 0, i] and b == bounds[1, 0, j]:
                            continue
                        row = x[m, a, b]
                        if average:
                            for w in range(width):
                                line[w] += row[w]
                        else:
                            for w in range(width):
                                v, t = row[w], line[w]
                                line[w] = v if v > t else t
                                nans[w] += v != v
                target = out[m, i, j]
                for l in range(_u(out.shape[3])):  # unsigned: see _im2col
                    start, stop = _u(bounds[2, 0, l]), _u(bounds[2, 1, l])
                    best, bad = line[start], nans[start]
                    for c in range(start + _u(1), stop):
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
    """:func:`_numpy.pool` (Theano's semantics) with a compiled window loop, the planes
    (items x channels) split over :data:`THREADS` threads."""
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
    planes = np.ascontiguousarray(x).reshape((items,) + _lift(size, 1, nd))
    targets = out.reshape((items,) + lifted)

    def run(first, count):
        _pool(planes[first:first + count], bounds, mode != "max",
              targets[first:first + count])

    _run_split(run, items, _threads_for(x.size * math.prod(pool_size), items))
    return out


def spatial_pyramid_pool(x, pool_dims, mode="max"):
    """:func:`_numpy.spatial_pyramid_pool` on the compiled :func:`pool`."""
    return _numpy.spatial_pyramid_pool(x, pool_dims, mode, pool=pool)


def warm_cache():
    """Compile every kernel signature once (float32 and float64 convolutions with unit and
    other strides, the direct dense product, max and average pooling), filling numba's
    on-disk cache; return the seconds it took."""
    import time

    began = time.perf_counter()
    load()
    for dtype in (np.float32, np.float64):
        x = np.ones((1, 1, 4, 4), dtype)
        for stride in ((1, 1), (2, 2)):
            conv(x, np.ones((1, 1, 2, 2), dtype), np.ones(1, dtype), stride)
        conv(np.ones((1, 1, 8, 8), dtype), np.ones((TILE_FILTERS, 1, 2, 2), dtype))  # direct
        for mode in ("max", "average_inc_pad"):
            pool(x, (2, 2), mode=mode)
    dense(np.ones((TILE_FILTERS, 1), np.float32), np.ones((1, TILE_LANES), np.float32))
    return time.perf_counter() - began
