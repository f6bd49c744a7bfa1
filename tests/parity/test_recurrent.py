"""Parity of the recurrent layers over generated configurations: ragged masks, backwards,
only_return_final, precompute_input, unroll_scan, learn_init, initial states given by
layers, peepholes, gate nonlinearities and batch 1."""
import numpy as np
import pytest
import pytensor
import pytensor.tensor as T
from hypothesis import given, settings, strategies as st

import forge
from forge import init, layers as L, nonlinearities as nl

from .helpers import assert_parity
from .strategies import SETTINGS

# every example compiles a loop: fewer of them than for the feed-forward layers
RNN_SETTINGS = dict(SETTINGS, max_examples=12)

GATE_FUNCTIONS = [nl.sigmoid, nl.tanh, nl.rectify, nl.linear, nl.ultra_fast_sigmoid,
                  nl.LeakyRectify(0.2), nl.ScaledTanH(0.5, 1.5), nl.elu, nl.softplus,
                  T.tanh, T.sigmoid]
# For the gates that multiply a state (LSTM input/forget/output, GRU reset/update):
# bounded functions. An unbounded gate lets the state grow geometrically, and float32
# rounding (forge and the runtime sum in different orders) then exceeds 1e-5 * |y| after
# a few steps through cancellation, a property of float32 rather than of the export.
BOUNDED = [nl.sigmoid, nl.tanh, nl.ultra_fast_sigmoid, nl.ScaledTanH(0.5, 1.5), T.sigmoid]


def feeds_for(layer, extra, batch, time, rng):
    """Input data in the order of the network's InputLayers; ragged 0/1 masks."""
    feeds = []
    for lay in L.get_all_layers(layer):
        if not isinstance(lay, L.InputLayer):
            continue
        if lay is extra.get("mask"):
            lengths = rng.integers(0, time + 1, size=batch)
            feeds.append((np.arange(time)[None, :] < lengths[:, None]).astype(np.float32))
        else:
            free = (batch, time)  # a free axis 0 is the batch, a free axis 1 the time
            shape = tuple(free[k] if s is None else s for k, s in enumerate(lay.shape))
            feeds.append(rng.standard_normal(shape).astype(np.float32))
    return feeds


def check(layer, extra, batch, time, rng, bundle_path):
    assert_parity(layer, bundle_path(), feeds=feeds_for(layer, extra, batch, time, rng))


class Case:
    """One drawn configuration of a recurrent layer: the input layer, sizes, the flags
    every recurrent layer takes (``kwargs``) and the extra input layers by role (``mask``,
    and the states whose initial value a layer gives)."""

    def __init__(self, data):
        draw = self.draw = data.draw
        self.rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        # the gates' initializers (init.Normal) draw from forge's generator: seeded from
        # the example, so that a failing example fails again when hypothesis replays it
        forge.random.set_rng(np.random.RandomState(self.rng.integers(2**31)))
        self.time = draw(st.integers(1, 5))
        features = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))
        self.units = draw(st.integers(1, 4))
        self.batch = draw(st.integers(1, 3))
        self.fixed_batch = self.batch if self.batch == 1 and draw(st.booleans()) else None
        unroll = draw(st.booleans())
        self.l_in = L.InputLayer([self.fixed_batch,
                                  self.time if unroll or draw(st.booleans()) else None]
                                 + features)
        self.kwargs = dict(backwards=draw(st.booleans()), only_return_final=draw(st.booleans()),
                           unroll_scan=unroll, precompute_input=draw(st.booleans()),
                           learn_init=draw(st.booleans()))
        self.extra = {}
        if draw(st.booleans()):
            self.extra["mask"] = L.InputLayer((self.fixed_batch, self.l_in.shape[1]))
            self.kwargs["mask_input"] = self.extra["mask"]

    def initial_state(self, state):
        """A drawn initial value of ``state``: zero, an array, an expression, or a layer
        giving one per sequence."""
        kind = self.draw(st.sampled_from(["zero", "array", "layer", "expression"]))
        if kind == "layer":
            self.extra[state] = L.InputLayer((self.fixed_batch, self.units))
            return self.extra[state]
        value = (0.5 * self.rng.standard_normal((1, self.units))).astype(np.float32)
        return {"zero": init.Constant(0.0), "array": value,
                "expression": T.tanh(pytensor.shared(value))}[kind]

    def check(self, layer, bundle_path):
        check(layer, self.extra, self.batch, self.time, self.rng, bundle_path)


class TestRecurrentLayer:
    @settings(**RNN_SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        case = Case(data)
        layer = L.RecurrentLayer(
            case.l_in, case.units, W_in_to_hid=init.Normal(0.5), W_hid_to_hid=init.Normal(0.5),
            b=data.draw(st.sampled_from([None, init.Normal(0.5)])),
            nonlinearity=data.draw(st.sampled_from(GATE_FUNCTIONS)),
            hid_init=case.initial_state("hid"), **case.kwargs)
        case.check(layer, bundle_path)


class TestCustomRecurrentLayer:
    @settings(**RNN_SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        case = Case(data)
        functions = st.sampled_from(GATE_FUNCTIONS)
        in_to_hid = L.DenseLayer(L.InputLayer((None,) + case.l_in.shape[2:]), case.units,
                                 W=init.Normal(0.5), b=init.Normal(0.5),
                                 nonlinearity=data.draw(functions))
        hid_to_hid = L.DenseLayer(L.InputLayer((None, case.units)), case.units,
                                  W=init.Normal(0.5),
                                  b=data.draw(st.sampled_from([None, init.Normal(0.5)])),
                                  nonlinearity=data.draw(functions))
        layer = L.CustomRecurrentLayer(
            case.l_in, in_to_hid, hid_to_hid, nonlinearity=data.draw(functions),
            hid_init=case.initial_state("hid"), **case.kwargs)
        case.check(layer, bundle_path)


def gate(draw, peephole=True, functions=BOUNDED):
    return L.Gate(W_in=init.Normal(0.5), W_hid=init.Normal(0.5),
                  W_cell=init.Normal(0.5) if peephole else None, b=init.Normal(0.5),
                  nonlinearity=draw(st.sampled_from(functions)))


class TestLSTMLayer:
    @settings(**RNN_SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        case = Case(data)
        layer = L.LSTMLayer(
            case.l_in, case.units, ingate=gate(data.draw), forgetgate=gate(data.draw),
            cell=gate(data.draw, False, GATE_FUNCTIONS), outgate=gate(data.draw),
            nonlinearity=data.draw(st.sampled_from(GATE_FUNCTIONS)),
            peepholes=data.draw(st.booleans()), hid_init=case.initial_state("hid"),
            cell_init=case.initial_state("cell"), **case.kwargs)
        case.check(layer, bundle_path)


class TestGRULayer:
    @settings(**RNN_SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        case = Case(data)
        layer = L.GRULayer(
            case.l_in, case.units, resetgate=gate(data.draw, False),
            updategate=gate(data.draw, False),
            hidden_update=gate(data.draw, False, GATE_FUNCTIONS),
            hid_init=case.initial_state("hid"), **case.kwargs)
        case.check(layer, bundle_path)

    def test_stacked_layers_with_one_mask(self, bundle_path):
        """A bidirectional-style stack: forward and backward GRUs over one masked batch,
        concatenated, then an LSTM reading only the last step."""
        rng = np.random.default_rng(0)
        l_in, l_mask = L.InputLayer((None, None, 3)), L.InputLayer((None, None))
        fwd = L.GRULayer(l_in, 4, mask_input=l_mask)
        bwd = L.GRULayer(l_in, 4, mask_input=l_mask, backwards=True)
        out = L.LSTMLayer(L.ConcatLayer([fwd, bwd], axis=2), 2, mask_input=l_mask,
                          only_return_final=True)
        for batch, time in ((1, 1), (3, 6)):
            check(out, {"mask": l_mask}, batch, time, rng, bundle_path)


class TestCustomRecurrentLayerNetworks:
    """The general form: any feed-forward networks, stored as nested layer entries."""

    @settings(**RNN_SETTINGS)
    @given(data=st.data())
    def test_dense_stacks(self, data, bundle_path):
        """Dense stacks of depth 1-2 with NonlinearityLayer and BiasLayer steps."""
        case = Case(data)
        functions = st.sampled_from(GATE_FUNCTIONS)
        net = L.InputLayer((None,) + case.l_in.shape[2:])
        for _ in range(data.draw(st.integers(1, 2))):
            net = L.DenseLayer(net, data.draw(st.integers(1, 4)), W=init.Normal(0.5),
                               b=init.Normal(0.5), nonlinearity=data.draw(functions))
        in_to_hid = L.DenseLayer(net, case.units, W=init.Normal(0.5), nonlinearity=None)
        hid_to_hid = L.DenseLayer(L.InputLayer((None, case.units)), case.units,
                                  W=init.Normal(0.5), b=None,
                                  nonlinearity=data.draw(functions))
        if data.draw(st.booleans()):
            hid_to_hid = L.BiasLayer(hid_to_hid, b=init.Normal(0.5))
        hid_to_hid = L.NonlinearityLayer(hid_to_hid, data.draw(st.sampled_from(BOUNDED)))
        layer = L.CustomRecurrentLayer(
            case.l_in, in_to_hid, hid_to_hid, nonlinearity=data.draw(functions),
            hid_init=case.initial_state("hid"), **case.kwargs)
        case.check(layer, bundle_path)

    @settings(**RNN_SETTINGS)
    @given(data=st.data())
    def test_conv_recurrence(self, data, bundle_path):
        """Conv2D in both networks: the state is an image."""
        draw = data.draw
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        time, batch = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        channels, hidden = draw(st.integers(1, 2)), draw(st.integers(1, 3))
        height, width = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        size = draw(st.sampled_from([1, 3]))
        unroll = draw(st.booleans())
        l_in = L.InputLayer((None, time if unroll else None, channels, height, width))
        kwargs = dict(backwards=draw(st.booleans()), only_return_final=draw(st.booleans()),
                      unroll_scan=unroll, precompute_input=draw(st.booleans()))
        extra = {}
        if draw(st.booleans()):
            extra["mask"] = kwargs["mask_input"] = L.InputLayer((None, l_in.shape[1]))
        if draw(st.booleans()):
            extra["hid"] = kwargs["hid_init"] = L.InputLayer((None, hidden, height, width))
        else:
            kwargs["hid_init"] = (0.5 * rng.standard_normal((1, hidden, height, width))
                                  ).astype(np.float32)
        in_to_hid = L.Conv2DLayer(L.InputLayer((None, channels, height, width)), hidden, size,
                                  pad="same", W=init.Normal(0.3), b=init.Normal(0.3),
                                  nonlinearity=draw(st.sampled_from(GATE_FUNCTIONS)))
        hid_to_hid = L.Conv2DLayer(L.InputLayer((None, hidden, height, width)), hidden, size,
                                   pad="same", W=init.Normal(0.3),
                                   b=draw(st.sampled_from([None, init.Normal(0.3)])),
                                   nonlinearity=draw(st.sampled_from(BOUNDED)))
        layer = L.CustomRecurrentLayer(l_in, in_to_hid, hid_to_hid,
                                       nonlinearity=draw(st.sampled_from(GATE_FUNCTIONS)),
                                       **kwargs)
        check(layer, extra, batch, time, rng, bundle_path)

    @pytest.mark.parametrize("precompute", [True, False])
    def test_a_network_mixing_rows_follows_precompute_input(self, precompute, bundle_path):
        """input_to_hidden sees all steps' rows at once, or one step's: a layer that mixes
        rows (here: minus the mean over rows) gives different results, as in forge."""
        rng = np.random.default_rng(3)
        l_in = L.InputLayer((None, None, 3))
        centred = L.DenseLayer(L.InputLayer((None, 3)), 4,
                               nonlinearity=lambda a: a - a.mean(axis=0))
        hidden = L.NonlinearityLayer(L.DenseLayer(L.InputLayer((None, 4)), 4, b=None),
                                     forge.nonlinearities.tanh)
        layer = L.CustomRecurrentLayer(l_in, centred, hidden, precompute_input=precompute)
        check(layer, {}, 3, 5, rng, bundle_path)
        entry = forge.export(layer, bundle_path(), check=False)["layers"][-1]
        assert entry["config"]["precompute_input"] is precompute

    def test_dense_networks_keep_the_dense_form(self, bundle_path):
        """One DenseLayer each: the flat entry the numba step kernel runs."""
        rng = np.random.default_rng(1)
        l_in = L.InputLayer((None, None, 3))
        layer = L.CustomRecurrentLayer(l_in, L.DenseLayer(L.InputLayer((None, 3)), 4),
                                       L.DenseLayer(L.InputLayer((None, 4)), 4))
        check(layer, {}, 2, 5, rng, bundle_path)
        entry = forge.export(layer, bundle_path(), check=False)["layers"][-1]
        assert "input_nonlinearity" in entry["config"]
        assert "input_to_hidden" not in entry["config"]

    @settings(**RNN_SETTINGS)
    @given(data=st.data())
    def test_dense_networks_with_a_lowered_nonlinearity(self, data, bundle_path):
        """A user function in a DenseLayer of either network: lowered for the shape that
        DenseLayer gives, (rows, units), whatever form the recurrent layer is stored in."""
        case = Case(data)
        centre = lambda a: a - T.max(a, axis=-1, keepdims=True)  # noqa: E731
        which = data.draw(st.sampled_from(["input", "hidden", "both"]))
        in_to_hid = L.DenseLayer(L.InputLayer((None,) + case.l_in.shape[2:]), case.units,
                                 W=init.Normal(0.5), b=init.Normal(0.5),
                                 nonlinearity=centre if which != "hidden" else nl.tanh)
        hid_to_hid = L.DenseLayer(L.InputLayer((None, case.units)), case.units,
                                  W=init.Normal(0.5),
                                  nonlinearity=centre if which != "input" else nl.tanh)
        layer = L.CustomRecurrentLayer(case.l_in, in_to_hid, hid_to_hid,
                                       nonlinearity=nl.tanh,
                                       hid_init=case.initial_state("hid"), **case.kwargs)
        case.check(layer, bundle_path)
