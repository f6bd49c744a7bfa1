"""Recurrent layers: a hidden state carried along the time axis.

Every layer here reads an input of shape ``(batch, time, *features)`` and returns the
hidden state at every step, ``(batch, time, *hidden)``, or only the last one,
``(batch, *hidden)``, with ``only_return_final=True``. The loop is a ``pytensor.scan``
over the time axis (or a Python loop unrolled into the graph with ``unroll_scan=True``),
so the layers train on every PyTensor backend, including JAX.

Options every layer shares:

``mask_input``
    A layer giving a ``(batch, time)`` mask. Where the mask is zero the step is skipped:
    the state is carried over unchanged (and reported again as the output of that step).
    Sequences of different lengths are padded to one length and masked.
``hid_init`` (and ``cell_init`` for the LSTM)
    The initial state: a value, array or initializer of shape ``(1, *hidden)`` (repeated
    over the batch; trained when ``learn_init=True``), a PyTensor expression of that
    shape, or a Layer giving one initial state per sequence, ``(batch, *hidden)``.
``backwards``
    Run the sequence from its end to its start. The outputs are put back in input
    order, so output step ``t`` is the state after reading inputs ``t..T-1``.
``gradient_steps``
    Truncate backpropagation through time to this many steps (``-1``: no truncation).
``grad_clipping``
    Clip the gradient flowing into each step's pre-activations to
    ``[-grad_clipping, grad_clipping]`` (``0``: no clipping). The forward pass is
    unchanged.
``unroll_scan``
    Unroll the loop into the graph (needs a fixed number of time steps).
``precompute_input``
    Compute the input's contribution for all steps at once before the loop (one large
    product) instead of inside every step. The result is the same.
"""
import numpy as np
import pytensor
import pytensor.tensor as T
from pytensor.gradient import grad_clip
from pytensor.raise_op import Assert

from .. import init, nonlinearities
from ..utils import int_types, unique
from .base import Layer, MergeLayer
from .dense import DenseLayer
from .helper import get_all_layers, get_all_params, get_output
from .input import InputLayer

__all__ = ["CustomRecurrentLayer", "RecurrentLayer", "Gate", "LSTMLayer", "GRULayer"]


def _loop(step, sequences, states, weights, n_steps, unroll, gradient_steps):
    """The states after every step, each stacked along a new first axis."""
    if not unroll:
        # n_steps: the declared number of steps, or None to take the input's
        return pytensor.scan(step, sequences=sequences, outputs_info=states,
                             non_sequences=weights, n_steps=n_steps,
                             truncate_gradient=gradient_steps, return_list=True,
                             return_updates=False)
    history = []
    for t in range(n_steps):
        states = step(*[seq[t] for seq in sequences], *states, *weights)
        history.append(states)
    return [T.stack(list(each), axis=0) for each in zip(*history)]


def _check_num_units(num_units):
    if not (isinstance(num_units, int_types) and not isinstance(num_units, bool)
            and num_units > 0):
        raise ValueError(f"num_units must be a positive int, got num_units={num_units!r}")


def _check_sequence(input_shape, layer_type):
    if len(input_shape) < 3:
        raise ValueError(f"{layer_type} needs an input of shape (batch, time, features...), "
                         f"at least 3 dimensions, got input shape {input_shape}")


def _num_inputs(input_shape, layer_type):
    features = input_shape[2:]
    if any(s is None for s in features):
        raise ValueError(f"{layer_type} needs fixed feature sizes (the axes after batch and "
                         f"time), got input shape {input_shape}")
    return int(np.prod(features))


class _Recurrent(MergeLayer):
    """What the recurrent layers share: incomings, flags, initial states and the loop.

    Subclasses set ``hidden_shape`` (the state's shape without the batch axis), call
    :meth:`_add_state` for every state, and implement :meth:`_sequences` (the time-major
    inputs the loop reads, and the weights it passes to every step) and :meth:`_step`
    (one step: new states from old ones).
    ``_state_names`` lists the states in loop order; the last one is the output.
    """

    _state_names = ("hid",)

    def __init__(self, incoming, state_inits, backwards, learn_init, gradient_steps,
                 grad_clipping, unroll_scan, precompute_input, mask_input,
                 only_return_final, **kwargs):
        incomings = [incoming]
        self.mask_incoming_index = -1
        if mask_input is not None:
            incomings.append(mask_input)
            self.mask_incoming_index = len(incomings) - 1
        self._init_incoming_index = {}
        for state, spec in state_inits.items():
            self._init_incoming_index[state] = -1
            if isinstance(spec, Layer):
                incomings.append(spec)
                self._init_incoming_index[state] = len(incomings) - 1
        super().__init__(incomings, **kwargs)
        input_shape = self.input_shapes[0]
        _check_sequence(input_shape, type(self).__name__)
        if mask_input is not None:
            mask_shape = self.input_shapes[self.mask_incoming_index]
            if len(mask_shape) != 2:
                raise ValueError(f"mask_input must give a (batch, time) mask, got shape "
                                 f"{mask_shape}")
        if not (isinstance(gradient_steps, int_types) and (gradient_steps == -1
                                                           or gradient_steps > 0)):
            raise ValueError(f"gradient_steps must be -1 (no truncation) or a positive "
                             f"int, got gradient_steps={gradient_steps!r}")
        if isinstance(grad_clipping, bool) or not (
                isinstance(grad_clipping, (int, float, np.number)) and grad_clipping >= 0):
            raise ValueError(f"grad_clipping must be a number >= 0 (0: no clipping), got "
                             f"grad_clipping={grad_clipping!r}")
        if unroll_scan and input_shape[1] is None:
            raise ValueError(f"unroll_scan=True needs a fixed number of time steps, got "
                             f"input shape {input_shape} (axis 1 is None)")
        if unroll_scan and gradient_steps != -1:
            raise ValueError(f"gradient_steps={gradient_steps} cannot be combined with "
                             f"unroll_scan=True; an unrolled loop is not truncated")
        self.backwards = bool(backwards)
        self.learn_init = bool(learn_init)
        self.gradient_steps = int(gradient_steps)
        self.grad_clipping = grad_clipping
        self.unroll_scan = bool(unroll_scan)
        self.precompute_input = bool(precompute_input)
        self.only_return_final = bool(only_return_final)

    @property
    def hid_init_incoming_index(self):
        """Index in ``input_layers`` of the layer giving ``hid_init`` (-1: none)."""
        return self._init_incoming_index["hid"]

    def _add_state(self, state, spec):
        """Register the initial value of ``state`` (a parameter unless given by a Layer)."""
        index = self._init_incoming_index[state]
        wanted = (None,) + tuple(self.hidden_shape)
        if index > 0:
            shape = self.input_shapes[index]
            if len(shape) != len(wanted) or any(
                    s is not None and s != w for s, w in zip(shape[1:], wanted[1:])):
                raise ValueError(f"a {state}_init layer must give one initial state per "
                                 f"sequence, shape (batch, {', '.join(map(str, wanted[1:]))})"
                                 f", got shape {shape}")
            setattr(self, f"{state}_init", spec)
            return
        if spec is None:
            raise ValueError(f"{state}_init must be a value, array, initializer, expression "
                             f"or Layer, got None")
        param = self.add_param(spec, (1,) + tuple(self.hidden_shape), name=f"{state}_init",
                               trainable=self.learn_init, regularizable=False)
        setattr(self, f"{state}_init", param)

    def get_output_shape_for(self, input_shapes):
        batch, time = input_shapes[0][:2]
        if self.only_return_final:
            return (batch,) + tuple(self.hidden_shape)
        return (batch, time) + tuple(self.hidden_shape)

    def _clip(self, x):
        if self.grad_clipping:
            return grad_clip(x, -self.grad_clipping, self.grad_clipping)
        return x

    def _initial_states(self, inputs, num_batch):
        states = []
        for state in self._state_names:
            index = self._init_incoming_index[state]
            if index > 0:
                states.append(inputs[index])
            else:
                # the (1, *hidden) parameter repeated over the batch, as a product with a
                # column of ones (Lasagne's way; its gradient sums over the batch)
                init = getattr(self, f"{state}_init")
                ones = T.ones((num_batch, 1), dtype=init.dtype)
                if init.ndim == 2:
                    states.append(T.dot(ones, init))
                else:
                    repeated = T.dot(ones, init.reshape((1, -1)))
                    states.append(repeated.reshape((-1,) + tuple(self.hidden_shape),
                                                   ndim=init.ndim))
        return states

    def get_output_for(self, inputs, **kwargs):
        # the declared sizes checked when the function runs: a loop of the declared
        # number of steps would otherwise drop or invent steps of a longer or shorter
        # input without an error
        input = T.specify_shape(inputs[0], self.input_shapes[0])
        if self.backwards:
            # reversed here rather than by the loop (scan's go_backwards): the same
            # result, and a gradient XLA compiles (it crashes on go_backwards's)
            input = input[:, ::-1]
        num_batch = input.shape[0]
        sequences, weights = self._sequences(input, **kwargs)
        num_inputs = len(sequences)
        masked = self.mask_incoming_index > 0
        if masked:
            mask = _mask_like(inputs[self.mask_incoming_index], input)
            mask = mask[:, ::-1] if self.backwards else mask
            pattern = [1, 0] + ["x"] * len(self.hidden_shape)
            sequences.append(mask.dimshuffle(*pattern))
        num_states = len(self._state_names)

        def step(*args):
            inputs_n, args = list(args[:num_inputs]), args[num_inputs:]
            mask_n, args = (args[0], args[1:]) if masked else (None, args)
            previous, step_weights = list(args[:num_states]), list(args[num_states:])
            new = self._step(inputs_n, previous, step_weights, **kwargs)
            if masked:
                new = [T.switch(mask_n, n, p) for n, p in zip(new, previous)]
            return [T.specify_shape(n, state_shape) for n in new]

        # the states' static shapes, the same outside and inside the loop (scan needs
        # them to agree; a size-1 axis could otherwise be known on one side only)
        state_shape = (self.input_shapes[0][0],) + tuple(self.hidden_shape)
        states = [T.specify_shape(s, state_shape)
                  for s in self._initial_states(inputs, num_batch)]
        outputs = _loop(step, sequences, states, weights, self.input_shapes[0][1],
                        self.unroll_scan, self.gradient_steps)
        hid = outputs[-1]
        if self.only_return_final:
            return hid[-1]
        hid = hid.dimshuffle(1, 0, *range(2, hid.ndim))
        return hid[:, ::-1] if self.backwards else hid

    def _sequences(self, input, **kwargs):
        raise NotImplementedError

    def _step(self, inputs_n, previous, weights, **kwargs):
        raise NotImplementedError


class CustomRecurrentLayer(_Recurrent):
    """A recurrent layer built from two feed-forward networks.

    At every step ``t``::

        hid_t = nonlinearity(input_to_hidden(x_t) + hidden_to_hidden(hid_{t-1}))

    where ``input_to_hidden`` and ``hidden_to_hidden`` are networks of forge layers
    (each with one ``InputLayer``), so the state may be a vector, an image (with
    convolutions as the two networks), or anything else of fixed shape.

    Parameters
    ----------
    incoming : Layer or tuple
        The input, ``(batch, time, *features)``.
    input_to_hidden : Layer
        Output layer of the network applied to one step's input; its ``InputLayer`` has
        shape ``(batch, *features)``.
    hidden_to_hidden : Layer
        Output layer of the network applied to the previous state; its ``InputLayer`` and
        its output have the state's shape ``(batch, *hidden)``.
    nonlinearity : callable or None
        Applied to the sum; ``None`` means linear.
    hid_init : value, array, initializer, expression or Layer
        Initial state (see the module's documentation).
    backwards, learn_init, gradient_steps, grad_clipping, unroll_scan, precompute_input,
    mask_input, only_return_final
        See the module's documentation.
    **kwargs
        Passed to :class:`MergeLayer` (``name``).

    Notes
    -----
    Exports with any networks made of exportable layers: one ``DenseLayer`` each as the
    runtime's dense step kernel, anything else as nested layer entries
    (``docs/bundle-format.md``).

    Examples
    --------
    >>> from forge.layers import InputLayer, DenseLayer, CustomRecurrentLayer
    >>> l_in = InputLayer((None, 7, 4))
    >>> in_to_hid = DenseLayer(InputLayer((None, 4)), 6, nonlinearity=None)
    >>> hid_to_hid = DenseLayer(InputLayer((None, 6)), 6, b=None, nonlinearity=None)
    >>> CustomRecurrentLayer(l_in, in_to_hid, hid_to_hid).output_shape
    (None, 7, 6)
    """

    def __init__(self, incoming, input_to_hidden, hidden_to_hidden,
                 nonlinearity=nonlinearities.rectify, hid_init=init.Constant(0.),
                 backwards=False, learn_init=False, gradient_steps=-1, grad_clipping=0,
                 unroll_scan=False, precompute_input=True, mask_input=None,
                 only_return_final=False, **kwargs):
        super().__init__(incoming, {"hid": hid_init}, backwards, learn_init, gradient_steps,
                         grad_clipping, unroll_scan, precompute_input, mask_input,
                         only_return_final, **kwargs)
        for what, net in (("input_to_hidden", input_to_hidden),
                          ("hidden_to_hidden", hidden_to_hidden)):
            if not isinstance(net, Layer):
                raise TypeError(f"{what} must be a forge Layer, got {net!r}")
            inputs = [lay for lay in get_all_layers(net) if isinstance(lay, InputLayer)]
            if len(inputs) != 1:
                raise ValueError(f"the {what} network must have exactly one InputLayer, "
                                 f"found {len(inputs)}")
        self.input_to_hidden = input_to_hidden
        self.hidden_to_hidden = hidden_to_hidden
        self.nonlinearity = nonlinearities.identity if nonlinearity is None else nonlinearity

        in_shape = self._net_input(input_to_hidden).shape
        hid_in_shape = self._net_input(hidden_to_hidden).shape
        self.hidden_shape = tuple(hidden_to_hidden.output_shape[1:])
        features = tuple(self.input_shapes[0][2:])
        if _differ(in_shape[1:], features):
            raise ValueError(f"the input_to_hidden network reads shape {in_shape}, but one "
                             f"step of the input has shape (batch, "
                             f"{', '.join(map(str, features))})")
        if _differ(input_to_hidden.output_shape[1:], self.hidden_shape):
            raise ValueError(f"input_to_hidden gives shape {input_to_hidden.output_shape} "
                             f"and hidden_to_hidden gives {hidden_to_hidden.output_shape}; "
                             f"they must agree after the batch axis")
        if _differ(hid_in_shape[1:], self.hidden_shape):
            raise ValueError(f"hidden_to_hidden must map the state to its own shape, but it "
                             f"reads {hid_in_shape} and gives {hidden_to_hidden.output_shape}")
        if any(s is None for s in self.hidden_shape):
            raise ValueError(f"the state needs a fixed shape, got hidden_to_hidden output "
                             f"shape {hidden_to_hidden.output_shape}")
        self._add_state("hid", hid_init)

    @staticmethod
    def _net_input(net):
        return next(lay for lay in get_all_layers(net) if isinstance(lay, InputLayer))

    def get_params(self, unwrap_shared=True, **tags):
        """This layer's parameters and those of its two networks."""
        params = super().get_params(unwrap_shared=unwrap_shared, **tags)
        params += get_all_params(self.input_to_hidden, unwrap_shared=unwrap_shared, **tags)
        params += get_all_params(self.hidden_to_hidden, unwrap_shared=unwrap_shared, **tags)
        return unique(params)

    def _sequences(self, input, **kwargs):
        sequence = input.dimshuffle(1, 0, *range(2, input.ndim))
        if self.precompute_input:
            # (time * batch, *features) through the network at once
            n_time, n_batch = sequence.shape[0], sequence.shape[1]
            flat = sequence.reshape((n_time * n_batch,) + tuple(sequence.shape[2:]),
                                    ndim=input.ndim - 1)
            projected = get_output(self.input_to_hidden, flat, **kwargs)
            sequence = projected.reshape((n_time, n_batch) + tuple(self.hidden_shape),
                                         ndim=len(self.hidden_shape) + 2)
        return [sequence], []

    def _step(self, inputs_n, previous, weights, **kwargs):
        input_n = inputs_n[0]
        if not self.precompute_input:
            input_n = get_output(self.input_to_hidden, input_n, **kwargs)
        hid_pre = input_n + get_output(self.hidden_to_hidden, previous[0], **kwargs)
        return [self.nonlinearity(self._clip(hid_pre))]


def _mask_like(mask, input):
    """``mask``, checked when the function runs to have ``input``'s (batch, time) shape:
    a transposed mask must not broadcast or truncate its way through the loop."""
    return Assert("mask_input must have the input's (batch, time) shape")(
        mask, T.all(T.eq(mask.shape, input.shape[:2])))


def _differ(shape, wanted):
    return len(shape) != len(wanted) or any(
        a is not None and b is not None and a != b for a, b in zip(shape, wanted))


class RecurrentLayer(CustomRecurrentLayer):
    """A vanilla recurrent layer: ``hid_t = nonlinearity(x_t W_in_to_hid + b +
    hid_{t-1} W_hid_to_hid)``.

    A :class:`CustomRecurrentLayer` whose two networks are dense layers; the features of
    each step (all axes after time) are flattened.

    Parameters
    ----------
    incoming : Layer or tuple
        The input, ``(batch, time, *features)``.
    num_units : int
        Size of the hidden state.
    W_in_to_hid : initializer, array, shared variable or expression
        ``(num_inputs, num_units)``, ``num_inputs`` the product of the feature sizes.
    W_hid_to_hid : initializer, array, shared variable or expression
        ``(num_units, num_units)``.
    b : initializer, array, shared variable, expression or None
        ``(num_units,)``; ``None`` for no bias.
    nonlinearity : callable or None
        Applied at every step; ``None`` means linear.
    hid_init, backwards, learn_init, gradient_steps, grad_clipping, unroll_scan,
    precompute_input, mask_input, only_return_final
        See the module's documentation.
    **kwargs
        Passed to :class:`MergeLayer` (``name``).

    Examples
    --------
    >>> from forge.layers import InputLayer, RecurrentLayer
    >>> l_in = InputLayer((None, None, 3))
    >>> l_rnn = RecurrentLayer(l_in, num_units=5, only_return_final=True)
    >>> l_rnn.output_shape
    (None, 5)
    >>> sorted(p.name for p in l_rnn.get_params(trainable=True))
    ['hidden_to_hidden.W', 'input_to_hidden.W', 'input_to_hidden.b']
    """

    def __init__(self, incoming, num_units, W_in_to_hid=init.Uniform(),
                 W_hid_to_hid=init.Uniform(), b=init.Constant(0.),
                 nonlinearity=nonlinearities.rectify, hid_init=init.Constant(0.),
                 backwards=False, learn_init=False, gradient_steps=-1, grad_clipping=0,
                 unroll_scan=False, precompute_input=True, mask_input=None,
                 only_return_final=False, **kwargs):
        input_shape = incoming if isinstance(incoming, tuple) else incoming.output_shape
        _check_num_units(num_units)
        _check_sequence(input_shape, "RecurrentLayer")
        name = kwargs.get("name")
        prefix = "" if name is None else f"{name}."
        features = tuple(input_shape[2:])
        _num_inputs(input_shape, "RecurrentLayer")
        in_to_hid = DenseLayer(InputLayer((None,) + features), num_units, W=W_in_to_hid,
                               b=b, nonlinearity=None, name=f"{prefix}input_to_hidden")
        hid_to_hid = DenseLayer(InputLayer((None, num_units)), num_units, W=W_hid_to_hid,
                                b=None, nonlinearity=None, name=f"{prefix}hidden_to_hidden")
        self.W_in_to_hid = in_to_hid.W
        self.W_hid_to_hid = hid_to_hid.W
        self.b = in_to_hid.b
        self.num_units = int(num_units)
        super().__init__(incoming, in_to_hid, hid_to_hid, nonlinearity=nonlinearity,
                         hid_init=hid_init, backwards=backwards, learn_init=learn_init,
                         gradient_steps=gradient_steps, grad_clipping=grad_clipping,
                         unroll_scan=unroll_scan, precompute_input=precompute_input,
                         mask_input=mask_input, only_return_final=only_return_final,
                         **kwargs)

    def _sequences(self, input, **kwargs):
        if not self.precompute_input:
            return super()._sequences(input, **kwargs)
        # the input network's product for all steps at once, as one matmul rather than
        # the DenseLayer's reshape to (time * batch, features) and back: the same step
        # time on JAX and NUMBA, about 10% less on the C backend (64 units, batch 64,
        # 20 steps: 1.35-1.45 against 1.55-1.68 ms)
        if input.ndim > 3:
            input = T.flatten(input, 3)
        projected = T.matmul(input.dimshuffle(1, 0, 2), self.W_in_to_hid)
        return [projected if self.b is None else projected + self.b], []


class Gate:
    """The parameters of one gate of an :class:`LSTMLayer` or :class:`GRULayer`.

    A gate computes ``nonlinearity(x_t W_in + hid_{t-1} W_hid (+ cell * W_cell) + b)``.

    Parameters
    ----------
    W_in : initializer, array, shared variable or expression
        Input weights, ``(num_inputs, num_units)``.
    W_hid : initializer, array, shared variable or expression
        Hidden-to-gate weights, ``(num_units, num_units)``.
    W_cell : initializer, array, shared variable, expression or None
        Peephole weights of an LSTM gate, ``(num_units,)`` (elementwise); ``None`` for a
        gate without them.
    b : initializer, array, shared variable or expression
        Bias, ``(num_units,)``.
    nonlinearity : callable or None
        The gate's activation; ``None`` means linear.

    Examples
    --------
    >>> from forge import nonlinearities
    >>> from forge.layers import Gate
    >>> Gate(W_cell=None, nonlinearity=nonlinearities.tanh).nonlinearity is nonlinearities.tanh
    True
    """

    def __init__(self, W_in=init.Normal(0.1), W_hid=init.Normal(0.1),
                 W_cell=init.Normal(0.1), b=init.Constant(0.),
                 nonlinearity=nonlinearities.sigmoid):
        self.W_in = W_in
        self.W_hid = W_hid
        self.W_cell = W_cell
        self.b = b
        self.nonlinearity = nonlinearities.identity if nonlinearity is None else nonlinearity

    def __repr__(self):
        return (f"Gate(W_in={self.W_in!r}, W_hid={self.W_hid!r}, W_cell={self.W_cell!r}, "
                f"b={self.b!r}, nonlinearity={self.nonlinearity!r})")


class _Gated(_Recurrent):
    """What the LSTM and the GRU share: per-gate parameters, stacked for the loop.

    The constructor takes ``num_units``, the gates (in ``_gate_names`` order) and then the
    arguments of :class:`_Recurrent`.
    """

    _gate_names = ()

    def __init__(self, incoming, num_units, gates, state_inits, *args, **kwargs):
        _check_num_units(num_units)
        super().__init__(incoming, state_inits, *args, **kwargs)
        self.num_units = int(num_units)
        self.hidden_shape = (self.num_units,)
        num_inputs = _num_inputs(self.input_shapes[0], type(self).__name__)
        for gate_name, gate in zip(self._gate_names, gates):
            if not isinstance(gate, Gate):
                raise TypeError(f"{gate_name} must be a Gate, got {gate!r}")
            setattr(self, f"W_in_to_{gate_name}", self.add_param(
                gate.W_in, (num_inputs, num_units), name=f"W_in_to_{gate_name}"))
            setattr(self, f"W_hid_to_{gate_name}", self.add_param(
                gate.W_hid, (num_units, num_units), name=f"W_hid_to_{gate_name}"))
            setattr(self, f"b_{gate_name}", self.add_param(
                gate.b, (num_units,), name=f"b_{gate_name}", regularizable=False))
            setattr(self, f"nonlinearity_{gate_name}", gate.nonlinearity)

    def _sequences(self, input, **kwargs):
        """Per gate: the input's pre-activations for every step (precompute_input), or
        the input once and the gates' input weights and biases for the step."""
        if input.ndim > 3:
            input = T.flatten(input, 3)
        sequence = input.dimshuffle(1, 0, 2)
        W_hid = [getattr(self, f"W_hid_to_{g}") for g in self._gate_names]
        W_in = [getattr(self, f"W_in_to_{g}") for g in self._gate_names]
        b = [getattr(self, f"b_{g}") for g in self._gate_names]
        # one product per gate: one product with the gates' weights stacked (Lasagne's
        # way), cut per gate in the step, trained slower (LSTM of 64 units, batch 64,
        # 20 steps: 2.1 -> 4.2 ms a step on JAX, 13.7 -> 14.3 ms on NUMBA), the cuts'
        # gradients costing more than the fewer products save; matmul rather than a
        # 3-D dot, which would reshape to (time * batch, features)
        if self.precompute_input:
            return [T.matmul(sequence, W) + bias for W, bias in zip(W_in, b)], W_hid
        return [sequence], W_hid + W_in + b

    def _gate_inputs(self, inputs_n, weights):
        """The input's pre-activation of every gate for one step."""
        if self.precompute_input:
            return inputs_n
        count = len(self._gate_names)
        W_in, b = weights[count:2 * count], weights[2 * count:3 * count]
        return [T.dot(inputs_n[0], W) + bias for W, bias in zip(W_in, b)]


class LSTMLayer(_Gated):
    """A long short-term memory layer (Hochreiter & Schmidhuber 1997, with forget gates).

    At every step, with ``g_t = x_t W_in + hid_{t-1} W_hid + b`` computed per gate::

        i_t = sigma_i(g_i + c_{t-1} * w_ci)          input gate
        f_t = sigma_f(g_f + c_{t-1} * w_cf)          forget gate
        c_t = f_t * c_{t-1} + i_t * sigma_c(g_c)     cell
        o_t = sigma_o(g_o + c_t * w_co)              output gate
        hid_t = o_t * nonlinearity(c_t)

    The peephole terms (``* w_c.``, elementwise) are present with ``peepholes=True``.
    The output is ``hid``; the cell is internal.

    Parameters
    ----------
    incoming : Layer or tuple
        The input, ``(batch, time, *features)``; the features are flattened.
    num_units : int
        Size of the hidden state and cell.
    ingate, forgetgate, cell, outgate : Gate
        The parameters and activations of each gate (``cell``'s ``W_cell`` is unused).
    nonlinearity : callable or None
        Applied to the cell to form the output; ``None`` means linear.
    cell_init, hid_init : value, array, initializer, expression or Layer
        Initial cell and hidden state (see the module's documentation).
    peepholes : bool
        Whether the gates see the cell (``W_cell`` of ``ingate``, ``forgetgate`` and
        ``outgate``).
    backwards, learn_init, gradient_steps, grad_clipping, unroll_scan, precompute_input,
    mask_input, only_return_final
        See the module's documentation.
    **kwargs
        Passed to :class:`MergeLayer` (``name``).

    Examples
    --------
    >>> from forge.layers import InputLayer, LSTMLayer
    >>> l_in = InputLayer((None, 10, 3))
    >>> l_lstm = LSTMLayer(l_in, num_units=8)
    >>> l_lstm.output_shape
    (None, 10, 8)
    >>> l_lstm.W_in_to_ingate.get_value().shape, l_lstm.W_cell_to_ingate.get_value().shape
    ((3, 8), (8,))
    """

    _gate_names = ("ingate", "forgetgate", "cell", "outgate")
    _state_names = ("cell", "hid")

    def __init__(self, incoming, num_units, ingate=Gate(), forgetgate=Gate(),
                 cell=Gate(W_cell=None, nonlinearity=nonlinearities.tanh), outgate=Gate(),
                 nonlinearity=nonlinearities.tanh, cell_init=init.Constant(0.),
                 hid_init=init.Constant(0.), backwards=False, learn_init=False,
                 peepholes=True, gradient_steps=-1, grad_clipping=0, unroll_scan=False,
                 precompute_input=True, mask_input=None, only_return_final=False, **kwargs):
        super().__init__(incoming, num_units, (ingate, forgetgate, cell, outgate),
                         {"hid": hid_init, "cell": cell_init}, backwards, learn_init,
                         gradient_steps, grad_clipping, unroll_scan, precompute_input,
                         mask_input, only_return_final, **kwargs)
        self.nonlinearity = nonlinearities.identity if nonlinearity is None else nonlinearity
        self.peepholes = bool(peepholes)
        if self.peepholes:
            for gate_name, gate in (("ingate", ingate), ("forgetgate", forgetgate),
                                    ("outgate", outgate)):
                if gate.W_cell is None:
                    raise ValueError(f"peepholes=True needs the {gate_name}'s W_cell, got "
                                     f"W_cell=None; give it one or pass peepholes=False")
                setattr(self, f"W_cell_to_{gate_name}", self.add_param(
                    gate.W_cell, (self.num_units,), name=f"W_cell_to_{gate_name}"))
        self._add_state("cell", cell_init)
        self._add_state("hid", hid_init)

    @property
    def cell_init_incoming_index(self):
        """Index in ``input_layers`` of the layer giving ``cell_init`` (-1: none)."""
        return self._init_incoming_index["cell"]

    def _sequences(self, input, **kwargs):
        sequences, weights = super()._sequences(input, **kwargs)
        if self.peepholes:
            weights = weights + [self.W_cell_to_ingate, self.W_cell_to_forgetgate,
                                 self.W_cell_to_outgate]
        return sequences, weights

    def _step(self, inputs_n, previous, weights, **kwargs):
        cell_previous, hid_previous = previous
        ingate, forgetgate, cell_input, outgate = [
            self._clip(x + T.dot(hid_previous, W))
            for x, W in zip(self._gate_inputs(inputs_n, weights), weights[:4])]
        if self.peepholes:
            w_ci, w_cf, w_co = weights[-3:]
            ingate = ingate + cell_previous * w_ci
            forgetgate = forgetgate + cell_previous * w_cf
        ingate = self.nonlinearity_ingate(ingate)
        forgetgate = self.nonlinearity_forgetgate(forgetgate)
        cell_input = self.nonlinearity_cell(cell_input)
        cell = forgetgate * cell_previous + ingate * cell_input
        if self.peepholes:
            outgate = outgate + cell * w_co
        outgate = self.nonlinearity_outgate(outgate)
        return [cell, outgate * self.nonlinearity(cell)]


class GRULayer(_Gated):
    """A gated recurrent unit layer (Cho et al. 2014).

    At every step, with ``gi = x_t W_in + b`` and ``gh = hid_{t-1} W_hid`` per gate::

        r_t = sigma_r(gi_r + gh_r)                   reset gate
        u_t = sigma_u(gi_u + gh_u)                   update gate
        c_t = sigma_c(gi_c + r_t * gh_c)             candidate (hidden_update)
        hid_t = (1 - u_t) * hid_{t-1} + u_t * c_t

    Parameters
    ----------
    incoming : Layer or tuple
        The input, ``(batch, time, *features)``; the features are flattened.
    num_units : int
        Size of the hidden state.
    resetgate, updategate, hidden_update : Gate
        Parameters and activations of each gate (``W_cell`` is unused).
    hid_init, backwards, learn_init, gradient_steps, grad_clipping, unroll_scan,
    precompute_input, mask_input, only_return_final
        See the module's documentation.
    **kwargs
        Passed to :class:`MergeLayer` (``name``).

    Examples
    --------
    >>> from forge.layers import InputLayer, GRULayer
    >>> l_in = InputLayer((None, 10, 3))
    >>> GRULayer(l_in, num_units=8, only_return_final=True).output_shape
    (None, 8)
    """

    _gate_names = ("resetgate", "updategate", "hidden_update")

    def __init__(self, incoming, num_units, resetgate=Gate(W_cell=None),
                 updategate=Gate(W_cell=None),
                 hidden_update=Gate(W_cell=None, nonlinearity=nonlinearities.tanh),
                 hid_init=init.Constant(0.), backwards=False, learn_init=False,
                 gradient_steps=-1, grad_clipping=0, unroll_scan=False,
                 precompute_input=True, mask_input=None, only_return_final=False, **kwargs):
        super().__init__(incoming, num_units, (resetgate, updategate, hidden_update),
                         {"hid": hid_init}, backwards, learn_init, gradient_steps,
                         grad_clipping, unroll_scan, precompute_input, mask_input,
                         only_return_final, **kwargs)
        self._add_state("hid", hid_init)

    def _step(self, inputs_n, previous, weights, **kwargs):
        hid_previous = previous[0]
        x_reset, x_update, x_candidate = [
            self._clip(x) for x in self._gate_inputs(inputs_n, weights)]
        h_reset, h_update, h_candidate = [
            self._clip(T.dot(hid_previous, W)) for W in weights[:3]]
        resetgate = self.nonlinearity_resetgate(x_reset + h_reset)
        updategate = self.nonlinearity_updategate(x_update + h_update)
        candidate = x_candidate + resetgate * h_candidate
        candidate = self.nonlinearity_hidden_update(self._clip(candidate))
        return [(1 - updategate) * hid_previous + updategate * candidate]

