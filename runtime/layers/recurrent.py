"""Recurrent layers: vanilla (and custom dense) RNN, LSTM and GRU.

A layer reads ``(batch, time, *features)`` and returns the hidden state at every step,
``(batch, time, units)``, or only the last one, ``(batch, units)``. Its inputs are, in
this order: the sequence, then the ``(batch, time)`` mask when ``mask_input`` is set
(a zero skips the step and keeps the state), then the initial states given by layers
(``hid_init_input``, ``cell_init_input``); otherwise the initial state is the
``hid_init`` (``cell_init``) parameter of shape ``(1, units)``, repeated over the batch.

Each call projects the whole sequence onto the gates with one matrix product and hands
the step loop to a kernel (numba's when ``runtime.kernels.select_rnn`` says so).
"""
import numpy as np

from .. import kernels
from ..nonlinearities import get_nonlinearity
from .base import Layer, check, is_int, register

__all__ = ["CustomRecurrentLayer", "RecurrentLayer", "LSTMLayer", "GRULayer"]

_FLAGS = ("backwards", "only_return_final", "mask_input", "hid_init_input")


def _shape(array, shape, what):
    check(array is not None and array.shape == shape,
          f"{what} must have shape {shape}, got {None if array is None else array.shape}")
    return array


class _Recurrent(Layer):
    """The inputs, flags, initial states and output arrangement every kind shares."""

    num_inputs = None
    state_names = ("hid",)

    def __init__(self, name, inputs, num_units, flags, inits):
        super().__init__(name, inputs)
        check(is_int(num_units, 1), f"num_units must be a positive int, got {num_units!r}")
        for key, value in flags.items():
            check(isinstance(value, bool), f"{key} must be a bool, got {value!r}")
        self.units = num_units
        self.backwards = flags["backwards"]
        self.only_return_final = flags["only_return_final"]
        self.masked = flags["mask_input"]
        self.init_from_input = {s: flags[f"{s}_init_input"] for s in self.state_names}
        wanted = 1 + self.masked + sum(self.init_from_input.values())
        check(len(self.inputs) == wanted, f"takes {wanted} input(s) (sequence, mask, "
                                          f"initial states), got {len(self.inputs)}")
        self.inits = {}
        for state in self.state_names:
            init = inits[state]
            if self.init_from_input[state]:
                check(init is None, f"{state}_init is given by an input; the parameter "
                                    f"{state}_init must be null")
            else:
                self.inits[state] = _shape(init, (1, num_units), f"{state}_init")
        self.kernels = kernels.select_rnn()

    def _unpack(self, x, extra):
        """(time-major 3-D sequence, boolean (time, batch) mask or None, initial states)."""
        if x.ndim < 3:
            raise ValueError(f"needs an input of shape (batch, time, features...), got "
                             f"shape {x.shape}")
        batch, time = x.shape[:2]
        if time == 0:
            raise ValueError(f"needs at least one time step, got input shape {x.shape}")
        extra = list(extra)
        mask = None
        if self.masked:
            mask = extra.pop(0)
            if mask.shape != (batch, time):
                raise ValueError(f"the mask must have shape (batch, time) = "
                                 f"{(batch, time)}, got {mask.shape}")
            mask = np.ascontiguousarray((mask != 0).T)
        states = []
        for state in self.state_names:
            if self.init_from_input[state]:
                given = extra.pop(0)
                if given.shape != (batch, self.units):
                    raise ValueError(f"{state}_init must have shape (batch, units) = "
                                     f"{(batch, self.units)}, got {given.shape}")
                states.append(given.astype(x.dtype, copy=False))
            else:
                states.append(np.broadcast_to(self.inits[state], (batch, self.units)))
        sequence = np.swapaxes(x.reshape(batch, time, -1), 0, 1)
        return sequence, mask, states

    def _project(self, sequence, W, b):
        """``sequence @ W + b`` for every step at once, time-major and C-contiguous."""
        if sequence.shape[2] != W.shape[0]:
            raise ValueError(f"W_in has {W.shape[0]} rows, but each step of the input has "
                             f"{sequence.shape[2]} features")
        time, batch, features = sequence.shape
        flat = np.ascontiguousarray(sequence).reshape(time * batch, features)
        return kernels.dense(flat, W, b).reshape(time, batch, W.shape[1])

    def _arrange(self, out):
        """(time, batch, units) states in input order -> the layer's output."""
        if self.only_return_final:
            return out[0] if self.backwards else out[-1]
        return np.swapaxes(out, 0, 1)


def _rnn_flags(backwards, only_return_final, mask_input, hid_init_input):
    return dict(backwards=backwards, only_return_final=only_return_final,
                mask_input=mask_input, hid_init_input=hid_init_input)


@register
class CustomRecurrentLayer(_Recurrent):
    """``h_t = nonlinearity(input_fn(x_t @ W_in_to_hid + b_in_to_hid)
    + hidden_fn(h_{t-1} @ W_hid_to_hid + b_hid_to_hid))``: forge's CustomRecurrentLayer
    whose two networks are dense layers (``input_nonlinearity``, ``hidden_nonlinearity``
    are their activations)."""

    config_keys = ("num_units", "nonlinearity", "input_nonlinearity", "hidden_nonlinearity")\
        + _FLAGS
    param_keys = ("W_in_to_hid", "b_in_to_hid", "W_hid_to_hid", "b_hid_to_hid", "hid_init")
    optional_params = ("b_in_to_hid", "b_hid_to_hid", "hid_init")

    def __init__(self, name, inputs, num_units, nonlinearity, input_nonlinearity,
                 hidden_nonlinearity, backwards, only_return_final, mask_input,
                 hid_init_input, W_in_to_hid, b_in_to_hid, W_hid_to_hid, b_hid_to_hid,
                 hid_init):
        super().__init__(name, inputs, num_units,
                         _rnn_flags(backwards, only_return_final, mask_input, hid_init_input),
                         {"hid": hid_init})
        check(W_in_to_hid.ndim == 2 and W_in_to_hid.shape[1] == num_units,
              f"W_in_to_hid must have shape (inputs, {num_units}), got {W_in_to_hid.shape}")
        _shape(W_hid_to_hid, (num_units, num_units), "W_hid_to_hid")
        for key, b in (("b_in_to_hid", b_in_to_hid), ("b_hid_to_hid", b_hid_to_hid)):
            check(b is None or b.shape == (num_units,),
                  f"{key} must have shape ({num_units},), got {None if b is None else b.shape}")
        self.W_in, self.b_in, self.W_hid, self.b_hid = (W_in_to_hid, b_in_to_hid,
                                                        W_hid_to_hid, b_hid_to_hid)
        self.nonlinearity = get_nonlinearity(nonlinearity)
        self.input_nonlinearity = get_nonlinearity(input_nonlinearity)
        self.hidden_nonlinearity = get_nonlinearity(hidden_nonlinearity)

    def __call__(self, x, *extra):
        sequence, mask, (h0,) = self._unpack(x, extra)
        projected = self.input_nonlinearity(self._project(sequence, self.W_in, self.b_in))
        out = self.kernels.rnn(projected, self.W_hid, self.b_hid, self.hidden_nonlinearity,
                               self.nonlinearity, h0, mask, self.backwards)
        return self._arrange(out)


@register
class RecurrentLayer(CustomRecurrentLayer):
    """``h_t = nonlinearity(x_t @ W_in_to_hid + b + h_{t-1} @ W_hid_to_hid)``."""

    config_keys = ("num_units", "nonlinearity") + _FLAGS
    param_keys = ("W_in_to_hid", "W_hid_to_hid", "b", "hid_init")
    optional_params = ("b", "hid_init")

    def __init__(self, name, inputs, num_units, nonlinearity, backwards, only_return_final,
                 mask_input, hid_init_input, W_in_to_hid, W_hid_to_hid, b, hid_init):
        linear = {"name": "linear"}
        super().__init__(name, inputs, num_units, nonlinearity, linear, linear, backwards,
                         only_return_final, mask_input, hid_init_input, W_in_to_hid, b,
                         W_hid_to_hid, None, hid_init)


class _Gated(_Recurrent):
    """Per-gate parameters (``W_in_to_<gate>``, ``W_hid_to_<gate>``, ``b_<gate>``) and
    activations (``nonlinearity_<gate>``), stacked once at load time in the order of
    ``gate_names``."""

    gate_names = ()

    def _stack_gates(self, per_gate, num_units):
        W_in = [per_gate[f"W_in_to_{g}"] for g in self.gate_names]
        check(all(W.ndim == 2 and W.shape == (W_in[0].shape[0], num_units) for W in W_in),
              f"every W_in_to_<gate> must have shape (inputs, {num_units}), got "
              f"{[W.shape for W in W_in]}")
        for g in self.gate_names:
            _shape(per_gate[f"W_hid_to_{g}"], (num_units, num_units), f"W_hid_to_{g}")
            _shape(per_gate[f"b_{g}"], (num_units,), f"b_{g}")
        self.W_in = np.concatenate(W_in, axis=1)
        self.W_hid = np.concatenate([per_gate[f"W_hid_to_{g}"] for g in self.gate_names],
                                    axis=1)
        self.b = np.concatenate([per_gate[f"b_{g}"] for g in self.gate_names])
        self.gate_fns = tuple(get_nonlinearity(per_gate[f"nonlinearity_{g}"])
                              for g in self.gate_names)


def _gate_keys(gates):
    return tuple(f"{kind}_{g}" for g in gates for kind in ("W_in_to", "W_hid_to", "b"))


_LSTM_GATES = ("ingate", "forgetgate", "cell", "outgate")
_GRU_GATES = ("resetgate", "updategate", "hidden_update")


@register
class LSTMLayer(_Gated):
    """An LSTM with optional peepholes (``W_cell_to_ingate``, ``W_cell_to_forgetgate``,
    ``W_cell_to_outgate``, elementwise); the output is ``outgate * nonlinearity(cell)``."""

    gate_names = _LSTM_GATES
    state_names = ("hid", "cell")
    config_keys = (("num_units", "nonlinearity", "peepholes")
                   + tuple(f"nonlinearity_{g}" for g in _LSTM_GATES) + _FLAGS
                   + ("cell_init_input",))
    param_keys = (_gate_keys(_LSTM_GATES) + ("W_cell_to_ingate", "W_cell_to_forgetgate",
                                             "W_cell_to_outgate", "hid_init", "cell_init"))
    optional_params = ("W_cell_to_ingate", "W_cell_to_forgetgate", "W_cell_to_outgate",
                       "hid_init", "cell_init")

    def __init__(self, name, inputs, num_units, nonlinearity, peepholes, backwards,
                 only_return_final, mask_input, hid_init_input, cell_init_input,
                 hid_init, cell_init, **gates):
        flags = _rnn_flags(backwards, only_return_final, mask_input, hid_init_input)
        super().__init__(name, inputs, num_units, dict(flags, cell_init_input=cell_init_input),
                         {"hid": hid_init, "cell": cell_init})
        self._stack_gates(gates, num_units)
        self.nonlinearity = get_nonlinearity(nonlinearity)
        check(isinstance(peepholes, bool), f"peepholes must be a bool, got {peepholes!r}")
        self.peepholes = None
        cell_weights = [gates[f"W_cell_to_{g}"] for g in ("ingate", "forgetgate", "outgate")]
        if peepholes:
            for g, w in zip(("ingate", "forgetgate", "outgate"), cell_weights):
                _shape(w, (num_units,), f"W_cell_to_{g}")
            self.peepholes = np.stack(cell_weights)
        else:
            check(all(w is None for w in cell_weights),
                  "peepholes is false, so the W_cell_to_<gate> parameters must be null")

    def __call__(self, x, *extra):
        sequence, mask, (h0, c0) = self._unpack(x, extra)
        projected = self._project(sequence, self.W_in, self.b)
        out = self.kernels.lstm(projected, self.W_hid, self.peepholes,
                                self.gate_fns + (self.nonlinearity,), h0, c0, mask,
                                self.backwards)
        return self._arrange(out)


@register
class GRULayer(_Gated):
    """A GRU: reset gate, update gate and candidate (``hidden_update``)."""

    gate_names = _GRU_GATES
    config_keys = (("num_units",) + tuple(f"nonlinearity_{g}" for g in _GRU_GATES)
                   + _FLAGS)
    param_keys = _gate_keys(_GRU_GATES) + ("hid_init",)
    optional_params = ("hid_init",)

    def __init__(self, name, inputs, num_units, backwards, only_return_final, mask_input,
                 hid_init_input, hid_init, **gates):
        super().__init__(name, inputs, num_units,
                         _rnn_flags(backwards, only_return_final, mask_input, hid_init_input),
                         {"hid": hid_init})
        self._stack_gates(gates, num_units)

    def __call__(self, x, *extra):
        sequence, mask, (h0,) = self._unpack(x, extra)
        projected = self._project(sequence, self.W_in, self.b)
        out = self.kernels.gru(projected, self.W_hid, self.gate_fns, h0, mask,
                               self.backwards)
        return self._arrange(out)
