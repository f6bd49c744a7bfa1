"""Recurrent step loops compiled with numba; ``_numpy_rnn`` is the reference they are
tested against, and the fallback.

In numpy, every step of a small recurrent layer costs a dozen array calls, and their
overhead, not the arithmetic, sets the speed. Here the whole loop over time, batch and
units is one compiled call. numba is imported in :func:`load` only, with the compile
flags of ``_numba`` (cached, single-threaded).

The public functions take the arguments of their ``_numpy_rnn`` twins. The activation
functions must be the runtime's named nonlinearities; each is passed to the kernel as a
code and up to two parameters. Anything the kernels do not cover (another function,
dtypes other than float32 and float64) goes to the numpy twin, and so do steps large
enough for BLAS to win (:data:`MAX_STEP_WORK`).
"""
import threading
import warnings

import numpy as np

from . import _numpy_rnn
from ._numba import JIT_FLAGS

__all__ = list(_numpy_rnn.__all__)

#: name -> (code, names of its parameters) of the functions the kernels compute.
CODES = {
    "linear": (0, ()), "rectify": (1, ()), "sigmoid": (2, ()),
    "ultra_fast_sigmoid": (2, ()), "tanh": (3, ()), "hard_sigmoid": (4, ()),
    "leaky_rectify": (5, ("leakiness",)), "scaled_tanh": (6, ("scale_in", "scale_out")),
    "elu": (7, ()), "selu": (8, ("scale", "scale_neg")), "softplus": (9, ()),
    "exp": (10, ()), "abs": (11, ()), "sqr": (12, ()),
}

#: Above this many multiply-adds per step in the hidden-to-hidden product (batch * units
#: * units), numpy's BLAS product beats the compiled scalar loop and the numpy twin runs.
#: Measured for an LSTM, 50 steps, on this project's 2-core machine: batch 1 x 32 units
#: 0.13 ms numba vs 0.86 ms numpy; batch 4 x 64 1.1 vs 1.3 ms; batch 8 x 64 2.2 vs 1.7 ms;
#: batch 32 x 64 25 vs 7.9 ms.
MAX_STEP_WORK = 16384

_KERNELS = {}
_lock = threading.Lock()
_loaded = False


def _kernel(function):
    _KERNELS[function.__name__] = function
    return function


def load():
    """Import numba and compile-on-first-call every kernel (once)."""
    global _loaded
    if _loaded:
        return
    with _lock:
        if not _loaded:
            import numba

            jitted = {}
            for name, function in _KERNELS.items():
                try:
                    jitted[name] = numba.njit(**JIT_FLAGS)(function)
                except RuntimeError as exc:  # no writable cache location
                    warnings.warn(f"numba cannot cache the recurrent kernels ({exc}); they "
                                  "compile at every start (set NUMBA_CACHE_DIR)",
                                  RuntimeWarning, stacklevel=2)
                    jitted[name] = numba.njit(**dict(JIT_FLAGS, cache=False))(function)
            globals().update(jitted)
            _loaded = True


def _encode(functions):
    """(codes, params) arrays for the kernels, or None if one function is not covered."""
    codes, params = np.zeros(len(functions), np.int64), np.zeros((len(functions), 2))
    for k, fn in enumerate(functions):
        entry = CODES.get(getattr(fn, "name", None))
        if entry is None:
            return None
        codes[k] = entry[0]
        for j, key in enumerate(entry[1]):
            params[k, j] = fn.params[key]
    return codes, params


def _prepare(functions, x, weights, states, mask):
    """The kernel's arguments, with the kernels loaded: contiguous arrays of one dtype, the
    mask as bools and the functions' (codes, params); or None where the numpy twin is the
    better (or the only) choice."""
    encoded = _encode(functions)
    if encoded is None:
        return None
    dtype, (batch, units) = x.dtype, states[0].shape
    if batch * units * units > MAX_STEP_WORK:
        return None
    if dtype not in (np.float32, np.float64) or any(
            w is not None and w.dtype != dtype for w in weights):
        return None
    states = [np.array(s, dtype, order="C") for s in states]  # fresh: the kernel updates them
    if mask is None:
        mask = np.ones(x.shape[:2], np.bool_)
    load()
    return np.ascontiguousarray(x), states, np.ascontiguousarray(mask, np.bool_), encoded


# -- kernels ---------------------------------------------------------------------------

@_kernel
def _act(code, p, v):
    """One activation, by code (see :data:`CODES`), of a scalar."""
    if code == 0:
        return v
    if code == 1:
        return v if v > 0 else v * 0
    if code == 2:
        e = np.exp(-abs(v))
        return 1 / (1 + e) if v >= 0 else e / (1 + e)
    if code == 3:
        return np.tanh(v)
    if code == 4:
        return min(max(v * 0.2 + 0.5, 0.0), 1.0)
    if code == 5:
        return v if v > 0 else v * p[0]
    if code == 6:
        return p[1] * np.tanh(p[0] * v)
    if code == 7:
        return v if v > 0 else np.expm1(v)
    if code == 8:
        return p[0] * (v if v > 0 else p[1] * np.expm1(v))
    if code == 9:
        return np.log1p(np.exp(-abs(v))) + max(v, 0)
    if code == 10:
        return np.exp(v)
    if code == 11:
        return abs(v)
    return v * v


@_kernel
def _matvec(h, W, acc):
    """``acc += h @ W`` for a state row ``h`` (units,) and ``W`` (units, columns)."""
    for k in range(W.shape[0]):
        hk = h[k]
        for j in range(W.shape[1]):
            acc[j] += hk * W[k, j]


@_kernel
def _rnn(x, W_hid, b_hid, codes, params, h, mask, backwards, out):
    steps, batch, units = x.shape
    pre = np.empty(units, x.dtype)
    for s in range(steps):
        t = steps - 1 - s if backwards else s
        for i in range(batch):
            if mask[t, i]:
                pre[:] = b_hid
                _matvec(h[i], W_hid, pre)
                for j in range(units):
                    inner = _act(codes[0], params[0], pre[j])
                    h[i, j] = _act(codes[1], params[1], x[t, i, j] + inner)
            out[t, i] = h[i]


@_kernel
def _lstm(x, W_hid, peep, use_peep, codes, params, h, c, mask, backwards, out):
    steps, batch, units = x.shape[0], x.shape[1], W_hid.shape[0]
    gates = np.empty(4 * units, x.dtype)
    for s in range(steps):
        t = steps - 1 - s if backwards else s
        for i in range(batch):
            if mask[t, i]:
                gates[:] = x[t, i]
                _matvec(h[i], W_hid, gates)
                for j in range(units):
                    ingate, forgetgate = gates[j], gates[units + j]
                    cell_in, outgate = gates[2 * units + j], gates[3 * units + j]
                    if use_peep:
                        ingate += c[i, j] * peep[0, j]
                        forgetgate += c[i, j] * peep[1, j]
                    cell = (_act(codes[1], params[1], forgetgate) * c[i, j]
                            + _act(codes[0], params[0], ingate)
                            * _act(codes[2], params[2], cell_in))
                    if use_peep:
                        outgate += cell * peep[2, j]
                    c[i, j] = cell
                    h[i, j] = (_act(codes[3], params[3], outgate)
                               * _act(codes[4], params[4], cell))
            out[t, i] = h[i]


@_kernel
def _gru(x, W_hid, codes, params, h, mask, backwards, out):
    steps, batch, units = x.shape[0], x.shape[1], W_hid.shape[0]
    hid_in = np.empty(3 * units, x.dtype)
    for s in range(steps):
        t = steps - 1 - s if backwards else s
        for i in range(batch):
            if mask[t, i]:
                hid_in[:] = 0
                _matvec(h[i], W_hid, hid_in)
                for j in range(units):
                    reset = _act(codes[0], params[0], x[t, i, j] + hid_in[j])
                    update = _act(codes[1], params[1], x[t, i, units + j] + hid_in[units + j])
                    candidate = _act(codes[2], params[2],
                                     x[t, i, 2 * units + j] + reset * hid_in[2 * units + j])
                    h[i, j] = (1 - update) * h[i, j] + update * candidate
            out[t, i] = h[i]


# -- public functions ------------------------------------------------------------------

def rnn(x, W_hid, b_hid, hid_fn, out_fn, h0, mask=None, backwards=False):
    """:func:`_numpy_rnn.rnn`, one compiled loop."""
    prepared = _prepare((hid_fn, out_fn), x, (W_hid, b_hid), (h0,), mask)
    if prepared is None:
        return _numpy_rnn.rnn(x, W_hid, b_hid, hid_fn, out_fn, h0, mask, backwards)
    x, (h,), mask, encoded = prepared
    b = np.zeros(W_hid.shape[1], x.dtype) if b_hid is None else b_hid
    out = np.empty(x.shape, x.dtype)
    _rnn(x, np.ascontiguousarray(W_hid), b, *encoded, h, mask, backwards, out)
    return out


def lstm(x, W_hid, peepholes, fns, h0, c0, mask=None, backwards=False):
    """:func:`_numpy_rnn.lstm`, one compiled loop."""
    prepared = _prepare(fns, x, (W_hid, peepholes), (h0, c0), mask)
    if prepared is None:
        return _numpy_rnn.lstm(x, W_hid, peepholes, fns, h0, c0, mask, backwards)
    x, (h, c), mask, encoded = prepared
    units = W_hid.shape[0]
    peep = np.zeros((3, units), x.dtype) if peepholes is None else peepholes
    out = np.empty(x.shape[:2] + (units,), x.dtype)
    _lstm(x, np.ascontiguousarray(W_hid), np.ascontiguousarray(peep),
          peepholes is not None, *encoded, h, c, mask, backwards, out)
    return out


def gru(x, W_hid, fns, h0, mask=None, backwards=False):
    """:func:`_numpy_rnn.gru`, one compiled loop."""
    prepared = _prepare(fns, x, (W_hid,), (h0,), mask)
    if prepared is None:
        return _numpy_rnn.gru(x, W_hid, fns, h0, mask, backwards)
    x, (h,), mask, encoded = prepared
    out = np.empty(x.shape[:2] + (W_hid.shape[0],), x.dtype)
    _gru(x, np.ascontiguousarray(W_hid), *encoded, h, mask, backwards, out)
    return out


#: The step of a CustomRecurrentLayer with networks calls the network's own layers
#: (whose kernels numba may accelerate); the loop around it stays numpy.
network_rnn = _numpy_rnn.network_rnn


def warm_cache():
    """Compile every kernel for float32 and float64 (filling numba's on-disk cache);
    return the seconds it took."""
    import time

    from ..nonlinearities import get_nonlinearity

    began = time.perf_counter()
    load()
    tanh = get_nonlinearity({"name": "tanh"})
    for dtype in (np.float32, np.float64):
        x, h = np.ones((2, 1, 4), dtype), np.zeros((1, 1), dtype)
        W = np.ones((1, 4), dtype)
        rnn(x[:, :, :1], W[:, :1], None, tanh, tanh, h)
        lstm(x, W, np.ones((3, 1), dtype), (tanh,) * 5, h, h)
        gru(x[:, :, :3], W[:, :3], (tanh,) * 3, h)
    return time.perf_counter() - began
