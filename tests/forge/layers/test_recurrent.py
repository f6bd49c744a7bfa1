"""Recurrent layers: shapes, errors, params and tags, numpy oracles, gradients, JAX."""
import os
import tempfile

import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

import forge
from forge import init, nonlinearities as nl
from forge.export import ExportError
from forge.layers import (Conv2DLayer, CustomRecurrentLayer, DenseLayer, Gate, GRULayer,
                          InputLayer, LSTMLayer, NonlinearityLayer, RecurrentLayer,
                          get_all_params, get_output)

FLOATX = pytensor.config.floatX


def data(*shape, seed=0):
    return np.random.RandomState(seed).normal(size=shape).astype(FLOATX)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def run_oracle(step, x, states, mask=None, backwards=False):
    """Apply ``step(x_t, states) -> states`` along axis 1; return the last state of every
    step in input order, (batch, time, units)."""
    outputs = [None] * x.shape[1]
    for t in (reversed(range(x.shape[1])) if backwards else range(x.shape[1])):
        new = step(x[:, t], states)
        if mask is not None:
            new = [np.where(mask[:, t, None] != 0, n, s) for n, s in zip(new, states)]
        states = new
        outputs[t] = states[-1]
    return np.stack(outputs, axis=1)


def compile_output(layer, inputs, **kwargs):
    return pytensor.function([lay.input_var for lay in inputs], get_output(layer, **kwargs))


class TestShapesAndParams:
    @pytest.mark.parametrize("cls", [RecurrentLayer, LSTMLayer, GRULayer])
    @pytest.mark.parametrize("final", [False, True])
    def test_output_shape(self, cls, final):
        layer = cls(InputLayer((None, 7, 2, 3)), num_units=5, only_return_final=final)
        assert layer.output_shape == ((None, 5) if final else (None, 7, 5))

    def test_lstm_params_and_tags(self):
        layer = LSTMLayer((None, 4, 3), 5, name="lstm")
        names = [p.name for p in layer.get_params(trainable=True)]
        assert "lstm.W_in_to_ingate" in names and "lstm.W_cell_to_outgate" in names
        assert "lstm.hid_init" not in names and "lstm.cell_init" not in names
        assert layer.W_in_to_cell.get_value().shape == (3, 5)
        assert layer.W_hid_to_forgetgate.get_value().shape == (5, 5)
        assert layer.b_outgate not in layer.get_params(regularizable=True)
        assert not hasattr(LSTMLayer((None, 4, 3), 5, peepholes=False), "W_cell_to_ingate")

    def test_learn_init_makes_initial_states_trainable(self):
        layer = LSTMLayer((None, 4, 3), 5, learn_init=True)
        trainable = layer.get_params(trainable=True)
        assert layer.hid_init in trainable and layer.cell_init in trainable
        assert layer.hid_init not in layer.get_params(regularizable=True)
        assert layer.hid_init.get_value().shape == (1, 5)

    def test_gru_params(self):
        layer = GRULayer((None, 4, 3), 2)
        assert layer.W_in_to_hidden_update.get_value().shape == (3, 2)
        assert layer.nonlinearity_hidden_update is nl.tanh
        assert layer.nonlinearity_resetgate is nl.sigmoid

    def test_custom_layer_collects_its_networks_params(self):
        in_to_hid = DenseLayer(InputLayer((None, 3)), 4, name="i2h")
        hid_to_hid = DenseLayer(InputLayer((None, 4)), 4, name="h2h")
        layer = CustomRecurrentLayer(InputLayer((None, 5, 3)), in_to_hid, hid_to_hid)
        names = {p.name for p in get_all_params(layer, trainable=True)}
        assert names == {"i2h.W", "i2h.b", "h2h.W", "h2h.b"}

    def test_initial_state_layers_and_mask_are_incomings(self):
        l_in, l_mask = InputLayer((None, 5, 3)), InputLayer((None, 5))
        l_hid, l_cell = InputLayer((None, 4)), InputLayer((None, 4))
        layer = LSTMLayer(l_in, 4, mask_input=l_mask, hid_init=l_hid, cell_init=l_cell)
        assert layer.input_layers == [l_in, l_mask, l_hid, l_cell]
        assert (layer.mask_incoming_index, layer.hid_init_incoming_index,
                layer.cell_init_incoming_index) == (1, 2, 3)
        assert layer.hid_init is l_hid


class TestErrors:
    @pytest.mark.parametrize("kwargs, error, message", [
        ({"num_units": 0}, ValueError, "num_units=0"),
        ({"num_units": 2, "gradient_steps": 0}, ValueError, "gradient_steps=0"),
        ({"num_units": 2, "grad_clipping": -1}, ValueError, "grad_clipping=-1"),
        ({"num_units": 2, "unroll_scan": True}, ValueError, "fixed number of time steps"),
        ({"num_units": 2, "mask_input": InputLayer((None, 3, 1))}, ValueError,
         r"\(batch, time\) mask"),
        ({"num_units": 2, "hid_init": InputLayer((None, 3))}, ValueError,
         "one initial state per sequence"),
        ({"num_units": 2, "hid_init": None}, ValueError, "got None"),
        ({"num_units": 2, "hid_init": np.zeros((2, 2), FLOATX)}, ValueError, r"\(1, 2\)"),
    ])
    def test_constructor_checks(self, kwargs, error, message):
        with pytest.raises(error, match=message):
            GRULayer((None, None, 3), **kwargs)

    @pytest.mark.parametrize("cls", [RecurrentLayer, LSTMLayer, GRULayer])
    def test_input_needs_a_time_axis(self, cls):
        with pytest.raises(ValueError, match="at least 3 dimensions"):
            cls((None, 3), 4)

    def test_feature_sizes_must_be_fixed(self):
        with pytest.raises(ValueError, match="fixed feature sizes"):
            LSTMLayer((None, 4, None), 2)

    def test_gradient_steps_and_unroll_exclude_each_other(self):
        with pytest.raises(ValueError, match="unroll_scan"):
            RecurrentLayer((None, 4, 3), 2, unroll_scan=True, gradient_steps=2)

    def test_peepholes_need_W_cell(self):
        with pytest.raises(ValueError, match="ingate's W_cell"):
            LSTMLayer((None, 4, 3), 2, ingate=Gate(W_cell=None))
        LSTMLayer((None, 4, 3), 2, ingate=Gate(W_cell=None), peepholes=False)

    def test_gates_must_be_Gates(self):
        with pytest.raises(TypeError, match="resetgate must be a Gate"):
            GRULayer((None, 4, 3), 2, resetgate=nl.sigmoid)

    def test_custom_networks_must_fit(self):
        l_in = InputLayer((None, 5, 3))
        with pytest.raises(ValueError, match="input_to_hidden network reads"):
            CustomRecurrentLayer(l_in, DenseLayer(InputLayer((None, 2)), 4),
                                 DenseLayer(InputLayer((None, 4)), 4))
        with pytest.raises(ValueError, match="must agree"):
            CustomRecurrentLayer(l_in, DenseLayer(InputLayer((None, 3)), 4),
                                 DenseLayer(InputLayer((None, 5)), 5))
        with pytest.raises(TypeError, match="must be a forge Layer"):
            CustomRecurrentLayer(l_in, "dense", DenseLayer(InputLayer((None, 4)), 4))


class TestAgainstNumpy:
    @pytest.mark.parametrize("backwards, masked, unroll, precompute, final", [
        (False, False, False, True, False),
        (True, True, False, False, False),
        (True, False, True, True, True),
        (False, True, True, False, True),
    ])
    def test_recurrent_layer(self, backwards, masked, unroll, precompute, final):
        W_in, W_hid, b = data(3, 4, seed=1), 0.5 * data(4, 4, seed=2), data(4, seed=3)
        h0 = data(1, 4, seed=4)
        l_in, l_mask = InputLayer((None, 5, 3)), InputLayer((None, 5))
        layer = RecurrentLayer(l_in, 4, W_in_to_hid=W_in, W_hid_to_hid=W_hid, b=b,
                               nonlinearity=nl.tanh, hid_init=h0, backwards=backwards,
                               unroll_scan=unroll, precompute_input=precompute,
                               mask_input=l_mask if masked else None,
                               only_return_final=final)
        x = data(2, 5, 3)
        mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], FLOATX) if masked else None
        got = compile_output(layer, [l_in, l_mask] if masked else [l_in])(
            *([x, mask] if masked else [x]))
        want = run_oracle(lambda x_t, s: [np.tanh(x_t @ W_in + b + s[0] @ W_hid)], x,
                          [np.repeat(h0, 2, axis=0)], mask, backwards)
        if final:
            want = want[:, 0] if backwards else want[:, -1]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    @pytest.mark.parametrize("peepholes", [True, False])
    def test_lstm(self, peepholes):
        gates = {name: Gate(W_in=data(3, 2, seed=k), W_hid=data(2, 2, seed=k + 10),
                            W_cell=data(2, seed=k + 20), b=data(2, seed=k + 30),
                            nonlinearity=fn)
                 for k, (name, fn) in enumerate([("ingate", nl.sigmoid),
                                                 ("forgetgate", nl.sigmoid),
                                                 ("cell", nl.tanh), ("outgate", nl.sigmoid)])}
        l_in, l_mask = InputLayer((None, 4, 3)), InputLayer((None, 4))
        l_hid = InputLayer((None, 2))
        layer = LSTMLayer(l_in, 2, peepholes=peepholes, mask_input=l_mask, hid_init=l_hid,
                          cell_init=data(1, 2, seed=50), **gates)
        x, mask, h0 = data(3, 4, 3), np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1] * 4], FLOATX), \
            data(3, 2, seed=60)

        def step(x_t, states):
            c, h = states
            g = {n: x_t @ gt.W_in + h @ gt.W_hid + gt.b for n, gt in gates.items()}
            if peepholes:
                g["ingate"] = g["ingate"] + c * gates["ingate"].W_cell
                g["forgetgate"] = g["forgetgate"] + c * gates["forgetgate"].W_cell
            c = sigmoid(g["forgetgate"]) * c + sigmoid(g["ingate"]) * np.tanh(g["cell"])
            o = g["outgate"] + (c * gates["outgate"].W_cell if peepholes else 0)
            return [c, sigmoid(o) * np.tanh(c)]

        got = compile_output(layer, [l_in, l_mask, l_hid])(x, mask, h0)
        want = run_oracle(step, x, [np.repeat(data(1, 2, seed=50), 3, axis=0), h0], mask)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    def test_gru(self):
        gates = {name: Gate(W_in=data(3, 2, seed=k), W_hid=data(2, 2, seed=k + 10),
                            W_cell=None, b=data(2, seed=k + 30), nonlinearity=fn)
                 for k, (name, fn) in enumerate([("resetgate", nl.sigmoid),
                                                 ("updategate", nl.sigmoid),
                                                 ("hidden_update", nl.tanh)])}
        l_in = InputLayer((None, 4, 3))
        layer = GRULayer(l_in, 2, backwards=True, **gates)
        x = data(2, 4, 3)

        def step(x_t, states):
            h = states[0]
            pre = {n: (x_t @ g.W_in + g.b, h @ g.W_hid) for n, g in gates.items()}
            r = sigmoid(sum(pre["resetgate"]))
            u = sigmoid(sum(pre["updategate"]))
            c = np.tanh(pre["hidden_update"][0] + r * pre["hidden_update"][1])
            return [(1 - u) * h + u * c]

        got = compile_output(layer, [l_in])(x)
        want = run_oracle(step, x, [np.zeros((2, 2), FLOATX)], backwards=True)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    def test_custom_layer_with_dense_networks_is_a_recurrent_layer(self):
        l_in = InputLayer((None, 4, 3))
        rnn = RecurrentLayer(l_in, 2, nonlinearity=nl.tanh, b=data(2))
        custom = CustomRecurrentLayer(
            l_in, DenseLayer(InputLayer((None, 3)), 2, W=rnn.W_in_to_hid, b=rnn.b,
                             nonlinearity=None),
            DenseLayer(InputLayer((None, 2)), 2, W=rnn.W_hid_to_hid, b=None,
                       nonlinearity=None), nonlinearity=nl.tanh, precompute_input=True)
        x = data(3, 4, 3)
        np.testing.assert_allclose(compile_output(custom, [l_in])(x),
                                   compile_output(rnn, [l_in])(x), rtol=1e-6)

    def test_hid_init_expression(self):
        w = pytensor.shared(data(1, 2))
        layer = GRULayer(InputLayer((None, 3, 1)), 2, hid_init=T.exp(w))
        assert w in layer.get_params()
        out = get_output(layer, data(1, 3, 1)).eval()
        assert out.shape == (1, 3, 2)


class TestGradients:
    @pytest.mark.parametrize("cls, kwargs", [
        (RecurrentLayer, {"nonlinearity": nl.tanh}),
        (LSTMLayer, {"backwards": True}),
        (GRULayer, {"unroll_scan": True}),
    ])
    def test_verify_grad(self, cls, kwargs):
        forge.random.set_rng(np.random.RandomState(3))
        layer = cls((None, 3, 2), 2, **kwargs)
        pytensor.gradient.verify_grad(lambda x: layer.get_output_for([x]).sum(),
                                      [data(2, 3, 2).astype("float64").astype(FLOATX)],
                                      rng=np.random.RandomState(0), abs_tol=2e-3,
                                      rel_tol=2e-3)

    def test_gradient_steps_truncates(self):
        l_in = InputLayer((None, 4, 1))
        x = T.tensor3()
        grads = []
        for steps in (-1, 1):
            layer = RecurrentLayer(l_in, 1, W_in_to_hid=np.ones((1, 1), FLOATX),
                                   W_hid_to_hid=np.full((1, 1), 0.5, FLOATX),
                                   nonlinearity=None, gradient_steps=steps,
                                   only_return_final=True)
            out = get_output(layer, x).sum()
            grads.append(pytensor.function([x], T.grad(out, x))(np.ones((1, 4, 1), FLOATX)))
        np.testing.assert_allclose(grads[0][0, :, 0], [0.125, 0.25, 0.5, 1.0])
        np.testing.assert_allclose(grads[1][0, :, 0], [0, 0, 0, 1.0])

    def test_grad_clipping_clips_the_gradient_not_the_output(self):
        x = T.tensor3()
        outs, grads = [], []
        for clip in (0, 0.1):
            layer = RecurrentLayer(InputLayer((None, 4, 1)), 1, W_in_to_hid=np.ones((1, 1), FLOATX),
                                   W_hid_to_hid=np.full((1, 1), 0.5, FLOATX),
                                   nonlinearity=None, grad_clipping=clip)
            out = get_output(layer, x)
            fn = pytensor.function([x], [out, T.grad(100 * out.sum(), x)])
            o, g = fn(np.ones((1, 4, 1), FLOATX))
            outs.append(o), grads.append(g)
        np.testing.assert_allclose(outs[0], outs[1])
        assert np.abs(grads[0]).max() > 100
        assert np.abs(grads[1]).max() <= 0.1 + 1e-6


def _sum_task(n, seed):
    rng = np.random.RandomState(seed)
    x = rng.uniform(0, 1, size=(n, 6, 1)).astype(FLOATX)
    return x, x.sum(axis=(1, 2))[:, None].astype(FLOATX)


def _training_step(mode, grad_clipping, batch=None):
    forge.random.set_rng(np.random.RandomState(0))
    l_in = InputLayer((batch, 6, 1))
    l_lstm = LSTMLayer(l_in, 8, grad_clipping=grad_clipping, only_return_final=True,
                       learn_init=True)
    l_out = DenseLayer(l_lstm, 1, nonlinearity=None)
    y = T.matrix("y", dtype=FLOATX)
    loss = T.mean((get_output(l_out) - y) ** 2)
    params = get_all_params(l_out, trainable=True)
    updates = forge.updates.adam(loss, params, learning_rate=0.02)
    return pytensor.function([l_in.input_var, y], loss, updates=updates, mode=mode)


class TestTraining:
    def test_lstm_learns_to_sum_with_grad_clipping(self):
        train = _training_step(None, grad_clipping=5.0)
        x, y = _sum_task(64, 0)
        first = train(x, y)
        for _ in range(60):
            last = train(x, y)
        assert last < 0.2 * first, (first, last)

    @pytest.mark.parametrize("batch", [None, 32], ids=["open batch", "fixed batch"])
    def test_trains_on_the_jax_backend(self, batch):
        """JAX compiles once per batch size when the input layer leaves it open."""
        pytest.importorskip("jax", reason="jax not installed (the JAX backend)")
        train = _training_step("JAX", grad_clipping=5.0, batch=batch)
        x, y = _sum_task(32, 1)
        first = train(x, y)
        for _ in range(20):
            last = train(x, y)
        assert last < first
        if batch is None:
            assert np.isfinite(train(x[:5], y[:5]))


def _conv_recurrence(**kwargs):
    """A convolutional recurrence over (batch, 4, 1, 5, 5) images, 2-channel state."""
    l_in = InputLayer((None, 4, 1, 5, 5))
    in_to_hid = Conv2DLayer(InputLayer((None, 1, 5, 5)), 2, 3, pad="same",
                            W=init.Normal(0.3), nonlinearity=None)
    hid_to_hid = Conv2DLayer(InputLayer((None, 2, 5, 5)), 2, 3, pad="same",
                             W=init.Normal(0.3), b=None, nonlinearity=None)
    return l_in, CustomRecurrentLayer(l_in, in_to_hid, hid_to_hid, nonlinearity=nl.tanh,
                                      only_return_final=True, **kwargs)


class TestNetworkRecurrences:
    """CustomRecurrentLayer with networks other than one DenseLayer each: they train,
    export (as nested layer entries) and refuse layers the bundle format lacks."""

    def _train(self, l_in, l_rnn, x, y, steps):
        forge.random.set_rng(np.random.RandomState(0))
        l_out = DenseLayer(l_rnn, 1, nonlinearity=None)
        target = T.tensor(dtype=FLOATX, shape=(None, 1), name="y")
        loss = T.mean((get_output(l_out) - target) ** 2)
        updates = forge.updates.adam(loss, get_all_params(l_out, trainable=True),
                                     learning_rate=0.02)
        train = pytensor.function([l_in.input_var, target], loss, updates=updates,
                                  mode="FAST_COMPILE")
        first = train(x, y)
        for _ in range(steps):
            last = train(x, y)
        return first, last, l_out

    def test_conv_recurrence_learns_the_brightest_step(self):
        forge.random.set_rng(np.random.RandomState(0))
        l_in, l_rnn = _conv_recurrence()
        rng = np.random.RandomState(0)
        x = rng.uniform(0, 1, size=(32, 4, 1, 5, 5)).astype(FLOATX)
        y = x.mean(axis=(2, 3, 4)).max(axis=1)[:, None].astype(FLOATX)
        conv_params = get_all_params(l_rnn.hidden_to_hidden, trainable=True)
        before = [p.get_value().copy() for p in conv_params]
        first, last, l_out = self._train(l_in, l_rnn, x, y, 40)
        assert last < 0.2 * first, (first, last)
        assert all(not np.allclose(b, p.get_value()) for b, p in zip(before, conv_params))
        path = os.path.join(tempfile.mkdtemp(), "conv_rnn.npz")
        assert forge.export(l_out, path)["parity"]["max_rel_error"] <= 1e-5

    def test_dense_stack_with_nonlinearity_layer_learns_to_sum(self):
        forge.random.set_rng(np.random.RandomState(0))
        l_in = InputLayer((None, 6, 1))
        in_to_hid = DenseLayer(DenseLayer(InputLayer((None, 1)), 8, nonlinearity=nl.tanh),
                               8, nonlinearity=None)
        hid_to_hid = NonlinearityLayer(DenseLayer(InputLayer((None, 8)), 8, b=None,
                                                  nonlinearity=None), nl.linear)
        l_rnn = CustomRecurrentLayer(l_in, in_to_hid, hid_to_hid, nonlinearity=nl.tanh,
                                     only_return_final=True, grad_clipping=5.0)
        x, y = _sum_task(64, 0)
        first, last, l_out = self._train(l_in, l_rnn, x, y, 60)
        assert last < 0.2 * first, (first, last)
        path = os.path.join(tempfile.mkdtemp(), "stack_rnn.npz")
        entry = forge.export(l_out, path)["layers"][-2]
        assert [e["type"] for e in entry["config"]["input_to_hidden"]] == [
            "InputLayer", "DenseLayer", "DenseLayer"]

    def test_export_refuses_a_layer_the_format_lacks_naming_it(self):
        class Doubled(NonlinearityLayer):  # a subclass is a new type to the bundle format
            pass

        l_in = InputLayer((None, 3, 2))
        hid_to_hid = Doubled(DenseLayer(InputLayer((None, 4)), 4), nl.tanh, name="twice")
        layer = CustomRecurrentLayer(l_in, DenseLayer(InputLayer((None, 2)), 4), hid_to_hid,
                                     name="rnn")
        path = os.path.join(tempfile.mkdtemp(), "refused.npz")
        with pytest.raises(ExportError,
                           match=r"layer 'rnn' \(CustomRecurrentLayer\): in its "
                                 r"hidden_to_hidden network: layer 'twice' \(Doubled\) "
                                 r"cannot be exported"):
            forge.export(layer, path)
        assert not os.path.exists(path)


@pytest.mark.parametrize("cls", [LSTMLayer, GRULayer, RecurrentLayer])
def test_a_mask_not_shaped_like_the_input_is_an_error(cls):
    """A transposed (time, batch) mask is refused when the function runs, rather than
    reshaped into the (batch, time) it is not."""
    l_in, l_mask = InputLayer((None, None, 3)), InputLayer((None, None))
    layer = cls(l_in, 4, mask_input=l_mask)
    f = pytensor.function([l_in.input_var, l_mask.input_var], get_output(layer))
    x = data(3, 5, 3)
    assert f(x, np.ones((3, 5), FLOATX)).shape == (3, 5, 4)
    with pytest.raises(AssertionError, match=r"mask_input must have the input's "
                                             r"\(batch, time\) shape"):
        f(x, np.ones((5, 3), FLOATX))


@pytest.mark.parametrize("unroll_scan", [False, True], ids=["scan", "unrolled"])
@pytest.mark.parametrize("steps", [4, 6])
def test_an_input_with_other_than_the_declared_steps_is_an_error(unroll_scan, steps):
    """A loop of the declared 5 steps must not silently drop or invent steps."""
    l_in = InputLayer((None, 5, 3))
    layer = RecurrentLayer(l_in, 4, unroll_scan=unroll_scan)
    f = pytensor.function([l_in.input_var], get_output(layer))
    assert f(data(2, 5, 3)).shape == (2, 5, 4)
    # the wording differs between PyTensor's backends; both name the shape and the rule
    said = (rf"SpecifyShape: (Got shape \(2, {steps}, 3\)|dim 1 of input has shape "
            rf"{steps}), expected")
    with pytest.raises(AssertionError, match=said):
        f(data(2, steps, 3))


class TestJaxForward:
    @pytest.mark.parametrize("cls, kwargs", [
        (LSTMLayer, {"backwards": True}),
        (GRULayer, {"only_return_final": True}),
        (RecurrentLayer, {"unroll_scan": True, "nonlinearity": nl.tanh}),
    ])
    def test_matches_default_backend(self, cls, kwargs):
        pytest.importorskip("jax", reason="jax not installed (the JAX backend)")
        l_in, l_mask = InputLayer((None, 5, 3)), InputLayer((None, 5))
        layer = cls(l_in, 4, mask_input=l_mask, hid_init=init.Normal(0.5), **kwargs)
        x = data(3, 5, 3)
        mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], FLOATX)
        args = [l_in.input_var, l_mask.input_var]
        jax_out = pytensor.function(args, get_output(layer), mode="JAX")(x, mask)
        default_out = pytensor.function(args, get_output(layer))(x, mask)
        np.testing.assert_allclose(np.asarray(jax_out), default_out, rtol=1e-5, atol=1e-6)


def _dense_recurrence():
    l_in = InputLayer((None, None, 3))
    return l_in, CustomRecurrentLayer(
        l_in, DenseLayer(InputLayer((None, 3)), 4, nonlinearity=None),
        DenseLayer(InputLayer((None, 4)), 4, nonlinearity=None), learn_init=True)


@pytest.mark.parametrize("build", [_dense_recurrence, _conv_recurrence],
                         ids=["dense, batch and time open", "conv, batch open"])
def test_custom_recurrence_gradients_match_on_jax(build):
    """The precomputed input network reshapes by the input's run-time sizes; JAX gets
    the same output and gradients as FAST_COMPILE, at two batch sizes."""
    pytest.importorskip("jax", reason="jax not installed (the JAX backend)")
    forge.random.set_rng(np.random.RandomState(0))
    l_in, layer = build()
    out = get_output(layer)
    wrt = get_all_params(layer, trainable=True) + [l_in.input_var]
    outputs = [out] + T.grad((out ** 2).sum(), wrt)
    shape = (4, l_in.shape[1] or 5) + tuple(l_in.shape[2:])
    x = np.random.RandomState(1).uniform(-1, 1, shape).astype(FLOATX)
    fns = [pytensor.function([l_in.input_var], outputs, mode=mode)
           for mode in ("JAX", "FAST_COMPILE")]
    for batch in (x, x[:2]):
        jax_values, expected = ([np.asarray(v) for v in f(batch)] for f in fns)
        for got, want in zip(jax_values, expected):
            scale = max(1, np.abs(want).max())
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)
