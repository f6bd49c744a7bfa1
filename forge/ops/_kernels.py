"""Numpy forward and backward kernels behind the fused ops.

Every function takes plain numpy arrays and already-validated integer settings
(tuples with one entry per spatial axis; ``pad`` of a convolution is a tuple of
``(before, after)`` pairs). The ops' ``perform`` methods call them, and so do the
tests' JAX comparisons, so they are the reference the other backends must match.

Convolutions are computed by im2col. With unit strides (the common case) each
item's padded input is flattened, and every filter offset is then one constant shift
of the flat index: the im2col rows are contiguous runs copied a few items at a time
(:func:`_shifted_cols`), and the products also give a column for each position where a
window wraps around a row's end, which is dropped (2-5x faster than the general way on
the Lasagne README network). With other strides, a strided view of every window
(``sliding_window_view``, stepped by the stride and the dilation) is copied into a
matrix. Either way there is one matrix product per group (and per chunk). Pooling loops
over the offsets inside a window (9 for a 3x3 window) and combines one strided view
of the input per offset, so the work is a handful of whole-array numpy calls whatever
the batch size.
"""
import contextlib
import contextvars
import itertools

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

__all__ = [
    "conv_output_length", "pool_output_length", "corr", "corr_grad_inputs",
    "corr_grad_weights", "pool_span", "pool_counts", "pool_divisor", "pool_fill_value",
    "pool", "pool_grad", "max_pool_grad_grad",
]


# --------------------------------------------------------------------------- shapes

def conv_output_length(length, filter_size, stride, pad, dilation):
    """Output length of a convolution along one axis (``pad`` is a pair)."""
    extent = dilation * (filter_size - 1) + 1
    return (length + pad[0] + pad[1] - extent) // stride + 1


def pool_output_length(length, pool_size, stride, pad, ignore_border):
    """Output length of a pooling along one axis, by Theano's rule.

    With ``ignore_border`` only whole windows count. Without it the windows go on
    until they have covered every element: ``ceil(length / stride)`` of them when the
    stride is at least the window (no element is skipped), and otherwise just enough
    overlapping windows that the last one reaches the end, the last one possibly
    partial.
    """
    padded = length + 2 * pad
    if ignore_border:
        return max(0, (padded - pool_size) // stride + 1)
    if stride >= pool_size:
        return (padded - 1) // stride + 1
    return max(0, (padded - 1 - pool_size + stride) // stride) + 1


# ----------------------------------------------------------------- convolutions

#: The function the convolution kernels multiply matrices with (see
#: :func:`scipy_blas_products`).
_products = contextvars.ContextVar("forge_kernel_products", default=np.matmul)


@contextlib.contextmanager
def scipy_blas_products():
    """Within this context (in this thread), the convolution kernels multiply through
    scipy's BLAS instead of numpy's.

    numba-compiled code (PyTensor's default Numba backend) does its matrix products
    with scipy's BLAS, numpy with its own: two OpenBLAS libraries, each keeping a pool
    of worker threads that spin for a while after every call. The ops run inside
    Numba-compiled training functions with this context (``_numba.py``), so that one
    pool serves the whole step: on 2 cores, the README CNN's NUMBA training step took
    224 ms with the ops on numpy's BLAS and 88 ms on scipy's (while CVM, whose own
    products are numpy's, went from 116 to 205 ms on scipy's, so it keeps numpy's).
    """
    token = _products.set(_scipy_matmul)
    try:
        yield
    finally:
        _products.reset(token)


def _fortran_operand(m):
    """``m`` for a Fortran BLAS call without a copy when it lies in either order, as
    ``(array, transposed)``: the array to pass and whether BLAS must transpose it."""
    if m.flags.f_contiguous:
        return m, False
    if m.flags.c_contiguous:
        return m.T, True
    return np.asfortranarray(m), False


def _scipy_matmul(a, b):
    """``a @ b`` for 2-D float32 or float64 arrays of one dtype through scipy's BLAS
    (``numpy.matmul`` for anything else)."""
    from scipy.linalg import blas

    gemm = {"float32": blas.sgemm, "float64": blas.dgemm}.get(a.dtype.name)
    if (gemm is None or b.dtype != a.dtype or a.ndim != 2 or b.ndim != 2 or not a.size
            or not b.size):
        return np.matmul(a, b)
    # (a @ b).T = b.T @ a.T, which Fortran BLAS returns in its order: C order for a @ b
    (x, tx), (y, ty) = _fortran_operand(b.T), _fortran_operand(a.T)
    return gemm(1.0, x, y, trans_a=tx, trans_b=ty).T


def _matmul(a, b):
    """``a @ b`` with the current context's BLAS (numpy's unless
    :func:`scipy_blas_products`)."""
    return _products.get()(a, b)


#: With unit strides, the im2col matrix of one chunk of the batch stays within about
#: this many bytes, so that the matrix product reads it from cache (4 to 8 MiB measured
#: best for the README network's second convolution; one item is the least chunk).
CHUNK_BYTES = 6 * 2**20


def _spatial_slices(offsets, stride, out):
    """Slices picking ``offset + stride * j`` for ``j < out`` along each axis."""
    return tuple(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offsets, stride, out))


def _pad_spatial(x, pad):
    if not any(before or after for before, after in pad):
        return x
    return np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in pad])


def _windows(x, filter_size, stride, pad, dilation):
    """Return the view ``(B, C, *out, *filter_size)`` of every convolution window."""
    nd = len(filter_size)
    xp = _pad_spatial(x, pad)
    extent = tuple(d * (k - 1) + 1 for d, k in zip(dilation, filter_size))
    spatial_axes = tuple(range(2, 2 + nd))
    win = sliding_window_view(xp, extent, axis=spatial_axes)
    index = ((slice(None),) * 2 + tuple(slice(None, None, s) for s in stride)
             + tuple(slice(None, None, d) for d in dilation))
    return win[index]


def _check_positive_output(in_shape, out_shape, filter_size, pad, dilation):
    if any(n <= 0 for n in out_shape):
        raise ValueError(
            f"a convolution of spatial input shape {tuple(in_shape)} with filter size "
            f"{tuple(filter_size)}, pad {tuple(pad)} and dilation {tuple(dilation)} has "
            f"no output: the padded input must be at least as large as the dilated "
            f"filter, dilation * (filter_size - 1) + 1, on every axis"
        )


def _im2col(win, nd):
    """Copy a ``(B, C, *out, *fs)`` window view into a ``(B * P, C * K)`` matrix."""
    batch, channels = win.shape[:2]
    order = (0,) + tuple(range(2, 2 + nd)) + (1,) + tuple(range(2 + nd, 2 + 2 * nd))
    positions = int(np.prod(win.shape[2:2 + nd]))
    return np.ascontiguousarray(win.transpose(order)).reshape(batch * positions, -1)


def _positions_by_filters(dy):
    """``(B, F, *out)`` as a ``(B * P, F)`` matrix (a copy)."""
    return np.ascontiguousarray(np.moveaxis(dy, 1, -1)).reshape(-1, dy.shape[1])


def _shift_plan(padded, filter_size, dilation):
    """For unit strides over a padded input of spatial shape ``padded``: the output
    shape, each filter offset's shift of the flat index, and ``Q``, the number of flat
    positions from the first output to the last (junk ones in between included)."""
    flat = [int(np.prod(padded[i + 1:])) for i in range(len(padded))]
    out = tuple(n - d * (k - 1) for n, k, d in zip(padded, filter_size, dilation))
    shifts = [sum(o * d * f for o, d, f in zip(offset, dilation, flat))
              for offset in np.ndindex(*filter_size)]
    return out, shifts, sum((o - 1) * f for o, f in zip(out, flat)) + 1


def _shifted_cols(xf, shifts, span):
    """``cols[(c, k), (b, q)] = xf[b, c, shifts[k] + q]`` for ``q < span``: the im2col
    matrix of flattened items ``xf`` (B, C, L), one column per flat position."""
    batch, channels = xf.shape[:2]
    cols = np.empty((channels, len(shifts), batch, span), xf.dtype)
    for k, shift in enumerate(shifts):
        cols[:, k] = xf[:, :, shift:shift + span].transpose(1, 0, 2)
    return cols.reshape(channels * len(shifts), batch * span)


def _grid(flat, padded, out):
    """The ``(..., *out)`` view of ``flat`` (``(..., Q)`` flat positions of a grid of
    shape ``padded``) at the output positions; writable when ``flat`` is."""
    steps = [int(np.prod(padded[i + 1:])) * flat.itemsize for i in range(len(padded))]
    return as_strided(flat, flat.shape[:-1] + tuple(out), flat.strides[:-1] + tuple(steps))


def _chunks(batch, row_bytes):
    """``(start, stop)`` chunks of the batch whose rows of ``row_bytes`` each fit
    :data:`CHUNK_BYTES` (at least one item per chunk)."""
    step = max(1, CHUNK_BYTES // max(1, row_bytes))
    return [(start, min(batch, start + step)) for start in range(0, batch, step)]


def _shifted_corr(x, w, pad, dilation, num_groups):
    """:func:`corr` with unit strides, by :func:`_shifted_cols`."""
    xp = _pad_spatial(x, pad)
    padded, (batch, channels), num_filters = xp.shape[2:], xp.shape[:2], w.shape[0]
    out, shifts, span = _shift_plan(padded, w.shape[2:], dilation)
    _check_positive_output(x.shape[2:], out, w.shape[2:], pad, dilation)
    xf = xp.reshape(batch, channels, -1)
    cg, fg = channels // num_groups, num_filters // num_groups
    y = np.empty((batch, num_filters) + out, dtype=np.result_type(x, w))
    for start, stop in _chunks(batch, cg * len(shifts) * span * xp.itemsize):
        for g in range(num_groups):
            cols = _shifted_cols(xf[start:stop, g * cg:(g + 1) * cg], shifts, span)
            part = _matmul(w[g * fg:(g + 1) * fg].reshape(fg, -1), cols).reshape(fg, -1, span)
            y[start:stop, g * fg:(g + 1) * fg] = _grid(part, padded, out).swapaxes(0, 1)
    return y


def _widened(dy, padded, span):
    """``dy`` (B, F, *out) as ``(F, B * span)``: each output at its flat position in the
    padded input's grid, zero at the junk positions."""
    batch, filters = dy.shape[:2]
    wide = np.zeros((filters, batch, span), dy.dtype)
    _grid(wide, padded, dy.shape[2:])[...] = dy.swapaxes(0, 1)
    return wide.reshape(filters, batch * span)


def _shifted_corr_grad_weights(x, dy, filter_size, pad, dilation, num_groups):
    """:func:`corr_grad_weights` with unit strides, by :func:`_shifted_cols`."""
    xp = _pad_spatial(x, pad)
    padded, (batch, channels), num_filters = xp.shape[2:], xp.shape[:2], dy.shape[1]
    _, shifts, span = _shift_plan(padded, filter_size, dilation)
    xf = xp.reshape(batch, channels, -1)
    cg, fg = channels // num_groups, num_filters // num_groups
    dw = np.zeros((num_groups, fg, cg * len(shifts)), dtype=np.result_type(x, dy))
    for start, stop in _chunks(batch, cg * len(shifts) * span * xp.itemsize):
        for g in range(num_groups):
            cols = _shifted_cols(xf[start:stop, g * cg:(g + 1) * cg], shifts, span)
            dw[g] += _matmul(_widened(dy[start:stop, g * fg:(g + 1) * fg], padded, span), cols.T)
    return dw.reshape((num_filters, cg) + tuple(filter_size))


def _shifted_corr_grad_inputs(w, dy, input_size, pad, dilation, num_groups):
    """:func:`corr_grad_inputs` with unit strides: each window's contribution
    (``W.T @ dy`` with ``dy`` widened, see :func:`_widened`), added back shift by shift."""
    padded = tuple(n + a + b for n, (a, b) in zip(input_size, pad))
    _, shifts, span = _shift_plan(padded, w.shape[2:], dilation)
    (batch, num_filters), cg = dy.shape[:2], w.shape[1]
    fg = num_filters // num_groups
    dxp = np.zeros((batch, cg * num_groups, int(np.prod(padded))),
                   dtype=np.result_type(w, dy))
    for start, stop in _chunks(batch, cg * len(shifts) * span * dxp.itemsize):
        for g in range(num_groups):
            wide = _widened(dy[start:stop, g * fg:(g + 1) * fg], padded, span)
            parts = _matmul(w[g * fg:(g + 1) * fg].reshape(fg, -1).T, wide).reshape(
                cg, len(shifts), stop - start, span)
            target = dxp[start:stop, g * cg:(g + 1) * cg]
            for k, shift in enumerate(shifts):
                target[:, :, shift:shift + span] += parts[:, k].swapaxes(0, 1)
    crop = (slice(None), slice(None)) + tuple(
        slice(a, a + n) for (a, _), n in zip(pad, input_size))
    return np.ascontiguousarray(dxp.reshape(dxp.shape[:2] + padded)[crop])


def corr(x, w, stride, pad, dilation, num_groups):
    """Batched N-d cross-correlation: ``(B, C, *in), (F, C // g, *fs) -> (B, F, *out)``."""
    if all(s == 1 for s in stride):
        return _shifted_corr(x, w, pad, dilation, num_groups)
    nd = w.ndim - 2
    filter_size = w.shape[2:]
    out = tuple(conv_output_length(n, k, s, p, d) for n, k, s, p, d in
                zip(x.shape[2:], filter_size, stride, pad, dilation))
    _check_positive_output(x.shape[2:], out, filter_size, pad, dilation)
    win = _windows(x, filter_size, stride, pad, dilation)
    batch, channels = x.shape[:2]
    num_filters = w.shape[0]
    cg, fg = channels // num_groups, num_filters // num_groups
    y = np.empty((batch, num_filters) + out, dtype=np.result_type(x, w))
    for g in range(num_groups):
        cols = _im2col(win[:, g * cg:(g + 1) * cg], nd)
        part = _matmul(cols, w[g * fg:(g + 1) * fg].reshape(fg, -1).T)  # (B * P, Fg)
        y[:, g * fg:(g + 1) * fg] = np.moveaxis(part.reshape((batch,) + out + (fg,)), -1, 1)
    return y


def corr_grad_weights(x, dy, filter_size, stride, pad, dilation, num_groups):
    """Gradient of :func:`corr` with respect to the filters."""
    nd = len(filter_size)
    expected = tuple(conv_output_length(n, k, s, p, d) for n, k, s, p, d in
                     zip(x.shape[2:], filter_size, stride, pad, dilation))
    if expected != dy.shape[2:]:
        raise ValueError(
            f"the output gradient has spatial shape {dy.shape[2:]}, but a convolution "
            f"of an input of spatial shape {x.shape[2:]} with filter size "
            f"{tuple(filter_size)} gives {expected}"
        )
    if all(s == 1 for s in stride):
        return _shifted_corr_grad_weights(x, dy, filter_size, pad, dilation, num_groups)
    win = _windows(x, filter_size, stride, pad, dilation)
    channels, num_filters = x.shape[1], dy.shape[1]
    cg, fg = channels // num_groups, num_filters // num_groups
    dw = np.empty((num_filters, cg) + tuple(filter_size), dtype=np.result_type(x, dy))
    for g in range(num_groups):
        cols = _im2col(win[:, g * cg:(g + 1) * cg], nd)
        dy2 = _positions_by_filters(dy[:, g * fg:(g + 1) * fg])
        dw[g * fg:(g + 1) * fg] = _matmul(dy2.T, cols).reshape((fg, cg) + tuple(filter_size))
    return dw


def corr_grad_inputs(w, dy, input_size, stride, pad, dilation, num_groups):
    """Gradient of :func:`corr` with respect to its input (a transposed convolution).

    ``input_size`` is the spatial shape of the forward input, which the stride makes
    ambiguous.
    """
    filter_size = w.shape[2:]
    out = dy.shape[2:]
    expected = tuple(conv_output_length(n, k, s, p, d) for n, k, s, p, d in
                     zip(input_size, filter_size, stride, pad, dilation))
    if expected != tuple(out):
        raise ValueError(
            f"a convolution of an input of spatial shape {tuple(input_size)} with "
            f"filter size {tuple(filter_size)}, stride {tuple(stride)}, pad "
            f"{tuple(pad)} and dilation {tuple(dilation)} gives spatial shape "
            f"{expected}, but the output (gradient) has spatial shape {tuple(out)}"
        )
    if all(s == 1 for s in stride):
        return _shifted_corr_grad_inputs(w, dy, input_size, pad, dilation, num_groups)
    batch, num_filters = dy.shape[:2]
    cg = w.shape[1]
    fg = num_filters // num_groups
    padded = tuple(n + p[0] + p[1] for n, p in zip(input_size, pad))
    dxp = np.zeros((batch, cg * num_groups) + padded, dtype=np.result_type(w, dy))
    for g in range(num_groups):
        dy2 = _positions_by_filters(dy[:, g * fg:(g + 1) * fg])
        # Every window's contribution, (B, *out, Cg, *fs), then scattered back.
        cols = _matmul(dy2, w[g * fg:(g + 1) * fg].reshape(fg, -1)).reshape(
            (batch,) + tuple(out) + (cg,) + tuple(filter_size))
        target = dxp[:, g * cg:(g + 1) * cg]
        for k in itertools.product(*(range(n) for n in filter_size)):
            offsets = tuple(ki * d for ki, d in zip(k, dilation))
            sl = (slice(None), slice(None)) + _spatial_slices(offsets, stride, out)
            target[sl] += np.moveaxis(cols[(Ellipsis,) + k], -1, 1)
    crop = (slice(None), slice(None)) + tuple(
        slice(p[0], p[0] + n) for p, n in zip(pad, input_size))
    return np.ascontiguousarray(dxp[crop])


# ----------------------------------------------------------------------- pooling

def pool_span(out, pool_size, stride):
    """Extent of the padded input that the windows touch along each axis."""
    return tuple((n - 1) * s + k for n, s, k in zip(out, stride, pool_size))


def pool_counts(length, out, pool_size, stride, pad, mode):
    """The divisor of every output position along one axis for the average modes.

    ``average_inc_pad`` counts the window's positions inside the padded input,
    ``average_exc_pad`` only those inside the real input; a window cut short by
    ``ignore_border=False`` counts only what it covers in both modes.
    """
    starts = np.arange(out) * stride
    ends = starts + pool_size
    if mode == "average_inc_pad":
        return np.minimum(ends, length + 2 * pad) - starts
    return np.minimum(ends, length + pad) - np.maximum(starts, pad)


def pool_divisor(shape, out, pool_size, stride, pad, mode, dtype):
    """The broadcastable product of the per-axis counts, or None for max and sum."""
    if mode in ("max", "sum"):
        return None
    nd = len(pool_size)
    total = np.ones((), dtype=dtype)
    for axis in range(nd):
        counts = pool_counts(shape[axis], out[axis], pool_size[axis], stride[axis],
                             pad[axis], mode).astype(dtype)
        total = total[..., None] * counts
    return total


def pool_fill_value(mode, dtype):
    if mode != "max":
        return 0
    if np.issubdtype(dtype, np.floating):
        return -np.inf
    return np.iinfo(dtype).min


def _padded_span(x, span, pad, fill):
    """Copy ``x`` into an array whose last axes have extent ``span``, offset by pad.

    Positions beyond the real input (padding, or the part of a last partial window
    that sticks out) hold ``fill``; real elements that no window reaches are dropped.
    """
    nd = len(span)
    shape = x.shape[-nd:]
    if all(p == 0 for p in pad) and tuple(shape) == tuple(span):
        return x
    out = np.full(x.shape[:-nd] + tuple(span), fill, dtype=x.dtype)
    src = (Ellipsis,) + tuple(slice(0, min(n, s - p)) for n, s, p in zip(shape, span, pad))
    dst = (Ellipsis,) + tuple(slice(p, min(p + n, s)) for n, s, p in zip(shape, span, pad))
    out[dst] = x[src]
    return out


def _pool_out(shape, pool_size, stride, pad, ignore_border):
    return tuple(pool_output_length(n, k, s, p, ignore_border) for n, k, s, p in
                 zip(shape, pool_size, stride, pad))


def pool(x, pool_size, stride, pad, ignore_border, mode):
    """Pool the last ``len(pool_size)`` axes of ``x`` (Theano's semantics)."""
    nd = len(pool_size)
    shape = x.shape[-nd:]
    out = _pool_out(shape, pool_size, stride, pad, ignore_border)
    if any(n == 0 for n in out):
        return np.zeros(x.shape[:-nd] + out, dtype=x.dtype)
    span = pool_span(out, pool_size, stride)
    xp = _padded_span(x, span, pad, pool_fill_value(mode, x.dtype))
    reduce = np.maximum if mode == "max" else np.add
    acc = None
    for k in itertools.product(*(range(n) for n in pool_size)):
        view = xp[(Ellipsis,) + _spatial_slices(k, stride, out)]
        if acc is None:
            acc = view.copy()
        else:
            reduce(acc, view, out=acc)
    divisor = pool_divisor(shape, out, pool_size, stride, pad, mode, x.dtype)
    if divisor is not None:
        acc /= divisor
    return acc


def pool_grad(x, y, dy, pool_size, stride, pad, ignore_border, mode):
    """Gradient of :func:`pool` with respect to its input.

    For max pooling every element equal to its window's maximum receives that
    window's gradient (so ties share it in full, as in Theano); ``y`` is the forward
    output and is only used by the max mode.
    """
    nd = len(pool_size)
    shape = x.shape[-nd:]
    out = dy.shape[-nd:]
    if any(n == 0 for n in out):
        return np.zeros_like(x, dtype=dy.dtype)
    span = pool_span(out, pool_size, stride)
    dxp = np.zeros(x.shape[:-nd] + span, dtype=dy.dtype)
    if mode == "max":
        xp = _padded_span(x, span, pad, pool_fill_value(mode, x.dtype))
    else:
        divisor = pool_divisor(shape, out, pool_size, stride, pad, mode, dy.dtype)
        share = dy if divisor is None else dy / divisor
    for k in itertools.product(*(range(n) for n in pool_size)):
        sl = (Ellipsis,) + _spatial_slices(k, stride, out)
        if mode == "max":
            dxp[sl] += np.where(xp[sl] == y, dy, 0)
        else:
            dxp[sl] += share
    crop = (Ellipsis,) + tuple(slice(p, p + n) for p, n in zip(pad, shape))
    dx = np.zeros(x.shape, dtype=dy.dtype)
    # The span may stop short of the input's end (ignore_border drops elements).
    keep = (Ellipsis,) + tuple(slice(0, min(n, s - p)) for n, s, p in zip(shape, span, pad))
    dx[keep] = dxp[crop]
    return dx


def max_pool_grad_grad(x, y, ggx, pool_size, stride, pad, ignore_border):
    """Gradient of :func:`pool_grad` (max mode) with respect to its ``dy``.

    Every output position sums ``ggx`` over the elements of its window that equal the
    window's maximum: the transpose of the max pooling gradient.
    """
    nd = len(pool_size)
    out = y.shape[-nd:]
    if any(n == 0 for n in out):
        return np.zeros_like(y, dtype=ggx.dtype)
    span = pool_span(out, pool_size, stride)
    xp = _padded_span(x, span, pad, pool_fill_value("max", x.dtype))
    gp = _padded_span(ggx, span, pad, 0)
    acc = np.zeros(y.shape, dtype=ggx.dtype)
    for k in itertools.product(*(range(n) for n in pool_size)):
        sl = (Ellipsis,) + _spatial_slices(k, stride, out)
        acc += np.where(xp[sl] == y, gp[sl], 0)
    return acc

