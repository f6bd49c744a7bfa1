"""Recurrent layers: vanilla and custom RNNs, LSTM and GRU.

A layer reads ``(batch, time, *features)`` and returns the hidden state at every step,
``(batch, time, *state)``, or only the last one, ``(batch, *state)`` (the state is
``(units,)`` but for a CustomRecurrentLayer with networks). Its inputs are, in
this order: the sequence, then the ``(batch, time)`` mask when ``mask_input`` is set
(a zero skips the step and keeps the state), then the initial states given by layers
(``hid_init_input``, ``cell_init_input``); otherwise the initial state is the
``hid_init`` (``cell_init``) parameter of shape ``(1, *state)``, repeated over the batch.

Each call projects the whole sequence onto the gates with one matrix product (or its
``input_to_hidden`` network) and hands the step loop to a kernel (numba's when
``runtime.kernels.select_rnn`` says so).
"""
import threading
from types import MappingProxyType

import numpy as np

from .. import kernels
from ..errors import BundleError
from ..nonlinearities import get_nonlinearity
from .base import Layer, check, is_int, layer_class, register
from .input import InputLayer

__all__ = ["CustomRecurrentLayer", "RecurrentLayer", "LSTMLayer", "GRULayer"]

_FLAGS = ("backwards", "only_return_final", "mask_input", "hid_init_input")


def _units(num_units):
    """The state shape ``(num_units,)`` of the dense kinds."""
    check(is_int(num_units, 1), f"num_units must be a positive int, got {num_units!r}")
    return (num_units,)


def _shape(array, shape, what):
    check(array is not None and array.shape == shape,
          f"{what} must have shape {shape}, got {None if array is None else array.shape}")
    return array


class _Recurrent(Layer):
    """The inputs, flags, initial states and output arrangement every kind shares."""

    num_inputs = None
    state_names = ("hid",)

    def __init__(self, name, inputs, state_shape, flags, inits):
        super().__init__(name, inputs)
        for key, value in flags.items():
            check(isinstance(value, bool), f"{key} must be a bool, got {value!r}")
        self.state_shape = state_shape
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
                self.inits[state] = _shape(init, (1,) + state_shape, f"{state}_init")
        self.kernels = kernels.select_rnn()

    def _unpack(self, x, extra):
        """(time-major sequence, boolean (time, batch) mask or None, initial states)."""
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
                if given.shape != (batch,) + self.state_shape:
                    raise ValueError(f"{state}_init must have shape (batch, *state) = "
                                     f"{(batch,) + self.state_shape}, got {given.shape}")
                states.append(given.astype(x.dtype, copy=False))
            else:
                states.append(np.broadcast_to(self.inits[state],
                                              (batch,) + self.state_shape))
        return np.swapaxes(x, 0, 1), mask, states

    def _project(self, sequence, W, b):
        """``sequence @ W + b`` for every step at once (each step's features flattened),
        time-major and C-contiguous."""
        time, batch = sequence.shape[:2]
        flat = np.ascontiguousarray(sequence).reshape(time * batch, -1)
        if flat.shape[1] != W.shape[0]:
            raise ValueError(f"W_in has {W.shape[0]} rows, but each step of the input has "
                             f"{flat.shape[1]} features")
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
    are their activations).

    A bundle entry whose config holds ``input_to_hidden`` is the general form instead,
    any two networks: see :class:`NetworkRecurrentLayer`.
    """

    config_keys = ("num_units", "nonlinearity", "input_nonlinearity", "hidden_nonlinearity")\
        + _FLAGS
    param_keys = ("W_in_to_hid", "b_in_to_hid", "W_hid_to_hid", "b_hid_to_hid", "hid_init")
    optional_params = ("b_in_to_hid", "b_hid_to_hid", "hid_init")

    def __init__(self, name, inputs, num_units, nonlinearity, input_nonlinearity,
                 hidden_nonlinearity, backwards, only_return_final, mask_input,
                 hid_init_input, W_in_to_hid, b_in_to_hid, W_hid_to_hid, b_hid_to_hid,
                 hid_init):
        super().__init__(name, inputs, _units(num_units),
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

    @classmethod
    def from_config(cls, name, config, params, inputs):
        if cls is CustomRecurrentLayer and "input_to_hidden" in config:
            return NetworkRecurrentLayer.from_config(name, config, params, inputs)
        return super().from_config(name, config, params, inputs)


_NETWORKS = ("input_to_hidden", "hidden_to_hidden")
_MAX_NESTING = 16  # networks holding recurrent layers holding networks ...
_NESTING = threading.local()
_ENTRY_KEYS = {"name": str, "type": str, "inputs": list, "config": dict, "params": dict,
               "output_shape": list}


class _Network:
    """One network of a :class:`NetworkRecurrentLayer`, built from its nested layer
    entries (one InputLayer; each entry reads earlier ones; the last is the output).
    A nested entry's ``params`` name parameters of the recurrent layer."""

    def __init__(self, what, entries, params):
        check(isinstance(entries, list) and entries,
              f"{what} must be a non-empty list of layer entries, got {entries!r:.80}")
        self.what, self.layers, self.param_names = what, {}, set()
        for i, entry in enumerate(entries):
            check(isinstance(entry, dict) and all(
                isinstance(entry.get(k), kind) for k, kind in _ENTRY_KEYS.items()),
                f"{what}[{i}] must be a layer entry with keys {', '.join(_ENTRY_KEYS)} "
                f"(types {', '.join(t.__name__ for t in _ENTRY_KEYS.values())}), "
                f"got {entry!r:.80}")
            name, refs = entry["name"], entry["params"]
            where = f"{what} layer {name!r}"
            check(name not in self.layers, f"{where} is defined twice")
            for source in entry["inputs"]:
                check(isinstance(source, str) and source in self.layers,
                      f"{where} reads {source!r:.60}, which is not an earlier layer of {what}")
            for key in refs.values():
                check(key is None or (isinstance(key, str) and key in params),
                      f"{where}: parameter refers to "
                      f"{key!r:.60}, which is not a parameter of the recurrent layer")
            try:
                cls = layer_class(entry["type"])
            except BundleError as exc:
                raise BundleError(f"{where}: {exc}") from None
            try:
                self.layers[name] = cls.from_config(
                    name, entry["config"],
                    {p: None if k is None else params[k] for p, k in refs.items()},
                    entry["inputs"])
            except BundleError as exc:
                raise BundleError(f"in {what}: {exc}") from None
            self.param_names.update(k for k in refs.values() if k is not None)
            self.output_shape = tuple(entry["output_shape"])
        starts = [n for n, lay in self.layers.items() if isinstance(lay, InputLayer)]
        check(len(starts) == 1, f"{what} must have exactly one InputLayer, got "
                                f"{len(starts)}")
        self.input_name = starts[0]
        self.input_shape = self.layers[self.input_name].shape

    def __call__(self, x):
        values = {self.input_name: x}
        for name, layer in self.layers.items():
            if name != self.input_name:
                values[name] = np.asarray(layer(*[values[s] for s in layer.inputs]))
        out = values[name]
        if out.ndim != len(self.output_shape) or any(
                d is not None and d != s for d, s in zip(self.output_shape[1:], out.shape[1:])):
            raise ValueError(f"{self.what} computed shape {out.shape} from {x.shape}, but "
                             f"its last layer declares {list(self.output_shape)}")
        return out


class NetworkRecurrentLayer(_Recurrent):
    """The general form of a ``CustomRecurrentLayer`` bundle entry:
    ``h_t = nonlinearity(input_to_hidden(x_t) + hidden_to_hidden(h_{t-1}))`` for any two
    feed-forward networks given as nested layer entries, the state of shape
    ``hidden_shape`` (e.g. ``[channels, height, width]`` for a convolutional recurrence).

    ``input_to_hidden`` runs once on all steps (as ``(time * batch, *features)``), or
    step by step when ``precompute_input`` is false (the same result unless one of its
    layers mixes rows); the step loop calls ``hidden_to_hidden`` on the state.
    """

    bundle_type = "CustomRecurrentLayer"
    config_keys = ("hidden_shape", "nonlinearity", "precompute_input") + _NETWORKS + _FLAGS
    optional_config = ("precompute_input",)
    param_keys = ("hid_init",)
    optional_params = ("hid_init",)

    def __init__(self, name, inputs, hidden_shape, nonlinearity, input_to_hidden,
                 hidden_to_hidden, backwards, only_return_final, mask_input, hid_init_input,
                 hid_init, precompute_input=True):
        check(isinstance(hidden_shape, list) and hidden_shape
              and all(is_int(s, 1) for s in hidden_shape),
              f"hidden_shape must be a non-empty list of positive ints, got {hidden_shape!r}")
        super().__init__(name, inputs, tuple(hidden_shape),
                         _rnn_flags(backwards, only_return_final, mask_input, hid_init_input),
                         {"hid": hid_init})
        for net, shape, what in ((input_to_hidden, input_to_hidden.output_shape, "gives"),
                                 (hidden_to_hidden, hidden_to_hidden.output_shape, "gives"),
                                 (hidden_to_hidden, hidden_to_hidden.input_shape, "reads")):
            check(list(shape[1:]) == hidden_shape,
                  f"{net.what} {what} shape {list(shape)}, but the state has hidden_shape "
                  f"{hidden_shape}")
        self.input_to_hidden, self.hidden_to_hidden = input_to_hidden, hidden_to_hidden
        self.nonlinearity = get_nonlinearity(nonlinearity)
        check(isinstance(precompute_input, bool), f"precompute_input must be true or "
                                                  f"false, got {precompute_input!r}")
        self.precompute_input = precompute_input

    @classmethod
    def from_config(cls, name, config, params, inputs):
        """Build both networks from their nested entries, then the layer."""
        networks, depth = {}, getattr(_NESTING, "depth", 0)
        check(depth < _MAX_NESTING, f"layer {name!r} ({cls.bundle_type}): networks nested "
                                    f"more than {_MAX_NESTING} deep")
        _NESTING.depth = depth + 1  # per thread: loads may run in parallel
        try:
            for key in _NETWORKS:
                try:
                    networks[key] = _Network(key, config.get(key), params)
                except BundleError as exc:
                    raise BundleError(f"layer {name!r} ({cls.bundle_type}): {exc}") from None
        finally:
            _NESTING.depth = depth
        used = networks[_NETWORKS[0]].param_names | networks[_NETWORKS[1]].param_names
        own = {key: value for key, value in params.items() if key not in used}
        layer = super().from_config(name, dict(config, **networks), own, inputs)
        layer.params = MappingProxyType({k: v for k, v in params.items() if v is not None})
        return layer

    def __call__(self, x, *extra):
        sequence, mask, (h0,) = self._unpack(x, extra)
        wanted = self.input_to_hidden.input_shape[1:]
        if sequence.ndim != len(wanted) + 2 or any(
                w is not None and w != s for w, s in zip(wanted, sequence.shape[2:])):
            raise ValueError(f"each step of the input must have shape {list(wanted)}, got "
                             f"input shape {x.shape}")
        time, batch = sequence.shape[:2]
        if self.precompute_input or not time:
            flat = np.ascontiguousarray(sequence).reshape((time * batch,) + sequence.shape[2:])
            projected = self.input_to_hidden(flat).reshape((time, batch) + self.state_shape)
        else:
            projected = np.stack([self.input_to_hidden(np.ascontiguousarray(step))
                                  for step in sequence]).reshape((time, batch)
                                                                 + self.state_shape)
        out = self.kernels.network_rnn(projected, self.hidden_to_hidden, self.nonlinearity,
                                       h0, mask, self.backwards)
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
        super().__init__(name, inputs, _units(num_units),
                         dict(flags, cell_init_input=cell_init_input),
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
        super().__init__(name, inputs, _units(num_units),
                         _rnn_flags(backwards, only_return_final, mask_input, hid_init_input),
                         {"hid": hid_init})
        self._stack_gates(gates, num_units)

    def __call__(self, x, *extra):
        sequence, mask, (h0,) = self._unpack(x, extra)
        projected = self._project(sequence, self.W_in, self.b)
        out = self.kernels.gru(projected, self.W_hid, self.gate_fns, h0, mask,
                               self.backwards)
        return self._arrange(out)
