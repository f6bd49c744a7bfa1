"""Reference step loops of the recurrent layers, in plain numpy: the fallback, and the
oracle ``_numba_rnn`` is tested against.

Every kernel takes the input's contribution already computed for all steps, ``x`` of
shape ``(time, batch, gates * units)`` (time-major, C-contiguous), the hidden-to-hidden
weights, the initial state(s) ``(batch, units)``, an optional boolean ``mask`` of shape
``(time, batch)`` (False: skip the step, keep the state) and ``backwards`` (run from the
last step to the first). It returns the hidden state after every step,
``(time, batch, units)``, in input order: ``out[t]`` is the state after reading input
``t`` (for ``backwards``, after reading ``t .. time-1``). Nonlinearities are callables.
They never write into their arguments.
"""
import numpy as np

__all__ = ["rnn", "lstm", "gru", "network_rnn"]


def _steps(length, backwards):
    return range(length - 1, -1, -1) if backwards else range(length)


def _keep(mask, t, new, old):
    """``new`` where the step ran, ``old`` where the mask skipped it."""
    if mask is None:
        return new
    return np.where(mask[t].reshape((-1,) + (1,) * (new.ndim - 1)), new, old)


def rnn(x, W_hid, b_hid, hid_fn, out_fn, h0, mask=None, backwards=False):
    """``h_t = out_fn(x_t + hid_fn(h_{t-1} @ W_hid + b_hid))``; ``b_hid`` may be None.

    >>> x = np.ones((3, 1, 1), np.float32)
    >>> W = np.ones((1, 1), np.float32)
    >>> h0 = np.zeros((1, 1), np.float32)
    >>> rnn(x, W, None, lambda v: v, lambda v: v, h0)[:, 0, 0]
    array([1., 2., 3.], dtype=float32)
    """
    out = np.empty(x.shape, x.dtype)
    h = h0
    for t in _steps(len(x), backwards):
        pre = h @ W_hid
        if b_hid is not None:
            pre += b_hid
        h = _keep(mask, t, out_fn(x[t] + hid_fn(pre)), h)
        out[t] = h
    return out


def lstm(x, W_hid, peepholes, fns, h0, c0, mask=None, backwards=False):
    """An LSTM: ``x`` and ``W_hid`` hold the gates in the order input, forget, cell,
    output (``4 * units`` columns). ``peepholes`` is ``(3, units)`` (the cell's weights
    into the input, forget and output gates) or None. ``fns`` is the five functions
    ``(ingate, forgetgate, cell, outgate, output)``.
    """
    ingate_fn, forgetgate_fn, cell_fn, outgate_fn, out_fn = fns
    units = W_hid.shape[0]
    out = np.empty(x.shape[:2] + (units,), x.dtype)
    h, c = h0, c0
    for t in _steps(len(x), backwards):
        gates = x[t] + h @ W_hid
        ingate, forgetgate, cell_in, outgate = (gates[:, k * units:(k + 1) * units]
                                                for k in range(4))
        if peepholes is not None:
            ingate = ingate + c * peepholes[0]
            forgetgate = forgetgate + c * peepholes[1]
        cell = forgetgate_fn(forgetgate) * c + ingate_fn(ingate) * cell_fn(cell_in)
        if peepholes is not None:
            outgate = outgate + cell * peepholes[2]
        hid = outgate_fn(outgate) * out_fn(cell)
        c, h = _keep(mask, t, cell, c), _keep(mask, t, hid, h)
        out[t] = h
    return out


def gru(x, W_hid, fns, h0, mask=None, backwards=False):
    """A GRU: ``x`` and ``W_hid`` hold the reset gate, the update gate and the candidate
    (``3 * units`` columns); ``fns`` is their three functions. The candidate reads
    ``x_c + reset * (h @ W_hid)_c``; ``h_t = (1 - update) * h_{t-1} + update * candidate``.
    """
    reset_fn, update_fn, candidate_fn = fns
    units = W_hid.shape[0]
    out = np.empty(x.shape[:2] + (units,), x.dtype)
    h = h0
    for t in _steps(len(x), backwards):
        hid_in = h @ W_hid
        xr, xu, xc = (x[t][:, k * units:(k + 1) * units] for k in range(3))
        hr, hu, hc = (hid_in[:, k * units:(k + 1) * units] for k in range(3))
        reset = reset_fn(xr + hr)
        update = update_fn(xu + hu)
        candidate = candidate_fn(xc + reset * hc)
        h = _keep(mask, t, (1 - update) * h + update * candidate, h)
        out[t] = h
    return out


def network_rnn(x, hid_fn, out_fn, h0, mask=None, backwards=False):
    """``h_t = out_fn(x_t + hid_fn(h_{t-1}))`` for a state of any shape: ``x`` is
    ``(time, batch, *state)``, ``h0`` ``(batch, *state)`` and ``hid_fn`` any callable
    from a state to one of the same shape (a CustomRecurrentLayer's hidden_to_hidden
    network).

    >>> x = np.ones((3, 1, 2, 2), np.float32)
    >>> network_rnn(x, lambda h: 2 * h, lambda v: v, np.zeros((1, 2, 2), np.float32))[:, 0, 0, 0]
    array([1., 3., 7.], dtype=float32)
    """
    out = np.empty(x.shape, x.dtype)
    h = h0
    for t in _steps(len(x), backwards):
        h = _keep(mask, t, out_fn(x[t] + hid_fn(h)), h)
        out[t] = h
    return out
