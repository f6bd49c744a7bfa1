"""runtime.layers.recurrent and embedding: configuration checks, masks, variable sequence
length, batch 1, backwards and only_return_final, with each kernel implementation."""
import numpy as np
import pytest

from runtime import BundleError

from ..helpers import build_layer

TANH, SIGMOID, LINEAR = {"name": "tanh"}, {"name": "sigmoid"}, {"name": "linear"}
FLAGS = dict(backwards=False, only_return_final=False, mask_input=False, hid_init_input=False)


def arrays(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [(0.5 * rng.standard_normal(s)).astype("f4") for s in shapes]


def rnn_layer(features=3, units=2, inputs=("x",), **flags):
    W_in, W_hid, b, h0 = arrays((features, units), (units, units), (units,), (1, units))
    params = {"W_in_to_hid": W_in, "W_hid_to_hid": W_hid, "b": b,
              "hid_init": None if flags.get("hid_init_input") else h0}
    config = dict(FLAGS, num_units=units, nonlinearity=TANH, **flags)
    return build_layer("RecurrentLayer", config, params, inputs), params


def reference_rnn(x, params, mask=None, h0=None, backwards=False):
    h = np.broadcast_to(params["hid_init"], (x.shape[0], params["b"].size)) if h0 is None else h0
    out = np.zeros(x.shape[:2] + (params["b"].size,))
    for t in (reversed(range(x.shape[1])) if backwards else range(x.shape[1])):
        new = np.tanh(x[:, t].astype("f8") @ params["W_in_to_hid"] + params["b"]
                      + h @ params["W_hid_to_hid"])
        h = new if mask is None else np.where(mask[:, t, None] != 0, new, h)
        out[:, t] = h
    return out


@pytest.mark.usefixtures("kernel_backend")
class TestRecurrentLayer:
    @pytest.mark.parametrize("time", [1, 4, 9])
    def test_any_sequence_length(self, time):
        layer, params = rnn_layer()
        x, = arrays((2, time, 3))
        np.testing.assert_allclose(layer(x), reference_rnn(x, params), rtol=1e-5, atol=1e-6)

    def test_ragged_lengths_with_a_mask_keep_the_state(self):
        layer, params = rnn_layer(inputs=("x", "mask"), mask_input=True)
        x, = arrays((3, 5, 3))
        mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], "f4")
        out = layer(x, mask)
        np.testing.assert_allclose(out, reference_rnn(x, params, mask), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(out[1, 2:], np.repeat(out[1, 1:2], 3, axis=0))
        np.testing.assert_allclose(out[2], np.repeat(params["hid_init"], 5, axis=0))

    def test_backwards_and_only_return_final(self):
        x, = arrays((1, 4, 3))
        full, params = rnn_layer(backwards=True)
        final, _ = rnn_layer(backwards=True, only_return_final=True)
        want = reference_rnn(x, params, backwards=True)
        np.testing.assert_allclose(full(x), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(final(x), want[:, 0], rtol=1e-5, atol=1e-6)

    def test_hid_init_from_an_input(self):
        layer, params = rnn_layer(inputs=("x", "h0"), hid_init_input=True)
        x, h0 = arrays((2, 3, 3), (2, 2))
        np.testing.assert_allclose(layer(x, h0), reference_rnn(x, params, h0=h0), rtol=1e-5,
                                   atol=1e-6)
        with pytest.raises(ValueError, match=r"hid_init must have shape \(batch, \*state\)"):
            layer(x, h0[:1])

    def test_input_errors(self):
        layer, _ = rnn_layer(inputs=("x", "mask"), mask_input=True)
        x, = arrays((2, 3, 3))
        with pytest.raises(ValueError, match=r"mask must have shape \(batch, time\)"):
            layer(x, np.ones((2, 4), "f4"))
        with pytest.raises(ValueError, match="at least one time step"):
            layer(x[:, :0], np.ones((2, 0), "f4"))
        with pytest.raises(ValueError, match="W_in has 3 rows"):
            layer(np.ones((2, 3, 4), "f4"), np.ones((2, 3), "f4"))
        with pytest.raises(ValueError, match="batch, time, features"):
            layer(np.ones((2, 3), "f4"), np.ones((2, 3), "f4"))


class TestConfigurationChecks:
    def test_inputs_must_match_the_flags(self):
        with pytest.raises(BundleError, match=r"takes 2 input\(s\)"):
            rnn_layer(inputs=("x",), mask_input=True)

    def test_hid_init_null_only_when_given_by_an_input(self):
        with pytest.raises(BundleError, match="must be null"):
            rnn_layer(inputs=("x", "h0"), hid_init_input=True)[0].__class__.from_config(
                "r", dict(FLAGS, num_units=2, nonlinearity=TANH, hid_init_input=True),
                {"W_in_to_hid": np.ones((3, 2), "f4"), "W_hid_to_hid": np.ones((2, 2), "f4"),
                 "b": None, "hid_init": np.zeros((1, 2), "f4")}, ["x", "h0"])
        with pytest.raises(BundleError, match="hid_init must have shape"):
            build_layer("RecurrentLayer", dict(FLAGS, num_units=2, nonlinearity=TANH),
                        {"W_in_to_hid": np.ones((3, 2), "f4"),
                         "W_hid_to_hid": np.ones((2, 2), "f4"), "b": None, "hid_init": None})

    def test_flags_must_be_bools(self):
        with pytest.raises(BundleError, match="backwards must be a bool"):
            build_layer("GRULayer", dict(gru_config(2), backwards=1), gru_params(3, 2))

    def test_lstm_peephole_params_follow_the_flag(self):
        config, params = lstm_config(2, peepholes=False), lstm_params(3, 2, peepholes=True)
        with pytest.raises(BundleError, match="must be null"):
            build_layer("LSTMLayer", config, params)
        with pytest.raises(BundleError, match=r"W_hid_to_cell must have shape \(2, 2\)"):
            build_layer("LSTMLayer", lstm_config(2),
                        dict(lstm_params(3, 2), W_hid_to_cell=np.ones((3, 2), "f4")))


def gru_config(units):
    return dict(FLAGS, num_units=units, nonlinearity_resetgate=SIGMOID,
                nonlinearity_updategate=SIGMOID, nonlinearity_hidden_update=TANH)


def gru_params(features, units):
    params = {"hid_init": np.zeros((1, units), "f4")}
    for k, gate in enumerate(("resetgate", "updategate", "hidden_update")):
        params.update(zip((f"W_in_to_{gate}", f"W_hid_to_{gate}", f"b_{gate}"),
                          arrays((features, units), (units, units), (units,), seed=k)))
    return params


def lstm_config(units, peepholes=True):
    gates = {f"nonlinearity_{g}": SIGMOID for g in ("ingate", "forgetgate", "outgate")}
    return dict(FLAGS, num_units=units, nonlinearity=TANH, peepholes=peepholes,
                cell_init_input=False, nonlinearity_cell=TANH, **gates)


def lstm_params(features, units, peepholes=True):
    params = {"hid_init": np.zeros((1, units), "f4"), "cell_init": np.zeros((1, units), "f4")}
    for k, gate in enumerate(("ingate", "forgetgate", "cell", "outgate")):
        params.update(zip((f"W_in_to_{gate}", f"W_hid_to_{gate}", f"b_{gate}"),
                          arrays((features, units), (units, units), (units,), seed=k)))
    for k, gate in enumerate(("ingate", "forgetgate", "outgate")):
        params[f"W_cell_to_{gate}"] = arrays((units,), seed=10 + k)[0] if peepholes else None
    return params


@pytest.mark.usefixtures("kernel_backend")
class TestGatedLayers:
    def test_gru_batch_1_and_variable_length(self):
        layer = build_layer("GRULayer", gru_config(3), gru_params(2, 3))
        x, = arrays((1, 7, 2))
        out = layer(x)
        assert out.shape == (1, 7, 3) and out.dtype == np.float32
        # a prefix of the sequence gives a prefix of the outputs
        np.testing.assert_allclose(layer(x[:, :4]), out[:, :4], rtol=1e-6)

    def test_lstm_masked_steps_keep_state_and_cell(self):
        layer = build_layer("LSTMLayer", dict(lstm_config(2), mask_input=True,
                                              only_return_final=True),
                            lstm_params(3, 2), ["x", "mask"])
        x, = arrays((2, 5, 3))
        short = layer(x[:, :2], np.ones((2, 2), "f4"))
        padded = layer(x, np.array([[1, 1, 0, 0, 0]] * 2, "f4"))
        np.testing.assert_allclose(padded, short, rtol=1e-6)

    def test_lstm_flattens_trailing_features(self):
        layer = build_layer("LSTMLayer", lstm_config(2), lstm_params(6, 2))
        x, = arrays((2, 3, 2, 3))
        np.testing.assert_allclose(layer(x), layer(x.reshape(2, 3, 6)), rtol=1e-6)


def network_rnn_layer(**flags):
    """The general CustomRecurrentLayer form: input_to_hidden = Dense(3 -> 2) then
    NonlinearityLayer(sigmoid), hidden_to_hidden = two bias-free Dense(2 -> 2), the
    second with tanh (dense networks keep the oracle short)."""
    W1, b1, W2, W3, h0 = arrays((3, 2), (2,), (2, 2), (2, 2), (1, 2), seed=3)
    dense = dict(num_leading_axes=1, nonlinearity=LINEAR)
    config = dict(FLAGS, hidden_shape=[2], nonlinearity=TANH, **flags)
    config["input_to_hidden"] = [
        entry("in", "InputLayer", [], {"shape": [None, 3]}, {}, [None, 3]),
        entry("d", "DenseLayer", ["in"], dict(dense, num_units=2),
              {"W": "i.d.W", "b": "i.d.b"}, [None, 2]),
        entry("act", "NonlinearityLayer", ["d"], {"nonlinearity": SIGMOID}, {}, [None, 2])]
    config["hidden_to_hidden"] = [
        entry("in", "InputLayer", [], {"shape": [None, 2]}, {}, [None, 2]),
        entry("d1", "DenseLayer", ["in"], dict(dense, num_units=2),
              {"W": "h.d1.W", "b": None}, [None, 2]),
        entry("d2", "DenseLayer", ["d1"], dict(dense, num_units=2, nonlinearity=TANH),
              {"W": "h.d2.W", "b": None}, [None, 2])]
    params = {"i.d.W": W1, "i.d.b": b1, "h.d1.W": W2, "h.d2.W": W3,
              "hid_init": None if flags.get("hid_init_input") else h0}
    return config, params


def entry(name, type_name, inputs, config, params, shape):
    return {"name": name, "type": type_name, "inputs": inputs, "config": config,
            "params": params, "output_shape": shape}


def reference_network_rnn(x, p, mask=None, backwards=False):
    h = np.broadcast_to(p["hid_init"], (x.shape[0], 2))
    out = np.zeros(x.shape[:2] + (2,))
    for t in (reversed(range(x.shape[1])) if backwards else range(x.shape[1])):
        x_t = 1 / (1 + np.exp(-(x[:, t].astype("f8") @ p["i.d.W"] + p["i.d.b"])))
        new = np.tanh(x_t + np.tanh(h @ p["h.d1.W"] @ p["h.d2.W"]))
        h = new if mask is None else np.where(mask[:, t, None] != 0, new, h)
        out[:, t] = h
    return out


@pytest.mark.usefixtures("kernel_backend")
class TestNetworkRecurrence:
    """A CustomRecurrentLayer entry whose networks are nested layer entries."""

    @pytest.mark.parametrize("backwards", [False, True])
    def test_masked_steps_against_numpy(self, backwards):
        config, params = network_rnn_layer(mask_input=True, backwards=backwards)
        layer = build_layer("CustomRecurrentLayer", config, params, ("x", "mask"))
        x, = arrays((3, 5, 3), seed=4)
        mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], "f4")
        np.testing.assert_allclose(layer(x, mask), reference_network_rnn(
            x, params, mask, backwards), rtol=1e-5, atol=1e-6)
        assert layer.num_params == sum(a.size for a in params.values())

    def test_only_return_final_and_batch_1(self):
        config, params = network_rnn_layer(only_return_final=True)
        layer = build_layer("CustomRecurrentLayer", config, params)
        x, = arrays((1, 4, 3), seed=5)
        np.testing.assert_allclose(layer(x), reference_network_rnn(x, params)[:, -1],
                                   rtol=1e-5, atol=1e-6)

    def test_step_shape_is_checked(self):
        config, params = network_rnn_layer()
        layer = build_layer("CustomRecurrentLayer", config, params)
        with pytest.raises(ValueError, match=r"each step of the input must have shape \[3\]"):
            layer(np.zeros((2, 4, 5), "f4"))

    @pytest.mark.parametrize("change, message", [
        (lambda c, p: c["hidden_to_hidden"][1].update(type="Nope"),
         r"layer 'layer' \(CustomRecurrentLayer\): hidden_to_hidden layer 'd1': unknown "
         r"layer type 'Nope'"),
        (lambda c, p: c["input_to_hidden"][1]["config"].pop("num_units"),
         r"layer 'layer' \(CustomRecurrentLayer\): in input_to_hidden: layer 'd' "
         r"\(DenseLayer\): missing config key 'num_units'"),
        (lambda c, p: p.pop("h.d2.W"),
         r"hidden_to_hidden layer 'd2': parameter refers to 'h.d2.W', which is not a "
         r"parameter of the recurrent layer"),
        (lambda c, p: p.update({"spare": p["h.d2.W"]}), r"unexpected parameter 'spare'"),
        (lambda c, p: c["input_to_hidden"][2].update(inputs=["later"]),
         r"input_to_hidden layer 'act' reads 'later', which is not an earlier layer"),
        (lambda c, p: c["hidden_to_hidden"].insert(1, entry(
            "in2", "InputLayer", [], {"shape": [None, 2]}, {}, [None, 2])),
         r"hidden_to_hidden must have exactly one InputLayer, got 2"),
        (lambda c, p: c["hidden_to_hidden"][2].pop("output_shape"),
         r"hidden_to_hidden\[2\] must be a layer entry"),
        (lambda c, p: c.update(hidden_shape=[3]) or p.update(hid_init=np.zeros((1, 3), "f4")),
         r"input_to_hidden gives shape \[None, 2\], but the state has hidden_shape \[3\]"),
        (lambda c, p: c.pop("hidden_to_hidden"),
         r"hidden_to_hidden must be a non-empty list of layer entries, got None"),
        (lambda c, p: c["input_to_hidden"][2].update(inputs=[["d"]]),
         r"input_to_hidden layer 'act' reads \['d'\], which is not an earlier layer"),
        (lambda c, p: c["input_to_hidden"][1]["params"].update(W=["i.d.W"]),
         r"input_to_hidden layer 'd': parameter refers to \['i.d.W'\], which is not"),
    ])
    def test_nested_entries_are_validated(self, change, message):
        config, params = network_rnn_layer()
        change(config, params)
        with pytest.raises(BundleError, match=message):
            build_layer("CustomRecurrentLayer", config, params)

    def test_deeply_nested_networks_are_refused_without_recursion_error(self):
        config, params = network_rnn_layer()
        for _ in range(300):  # a manifest can nest this deep within json's limit
            outer, _ = network_rnn_layer()
            outer["input_to_hidden"] = [
                entry("in", "InputLayer", [], {"shape": [None, 3]}, {}, [None, 3]),
                entry("r", "CustomRecurrentLayer", ["in"], config, {}, [None, 2])]
            config = outer
        with pytest.raises(BundleError, match=r"^layer 'layer' \(CustomRecurrentLayer\): "
                                              r"in input_to_hidden: .*nested more than 16"):
            build_layer("CustomRecurrentLayer", config, params)


class TestEmbeddingLayer:
    def test_rows_of_W(self):
        W, = arrays((5, 3))
        layer = build_layer("EmbeddingLayer", {"input_size": 5, "output_size": 3}, {"W": W})
        tokens = np.array([[0, 4], [-1, 2]], "int32")
        np.testing.assert_array_equal(layer(tokens), W[tokens])

    def test_bad_indices_and_dtypes(self):
        W, = arrays((5, 3))
        layer = build_layer("EmbeddingLayer", {"input_size": 5, "output_size": 3}, {"W": W})
        with pytest.raises(ValueError, match=r"got index 5; indices must be in \[-5, 5\)"):
            layer(np.array([1, 5]))
        with pytest.raises(ValueError, match="integer indices"):
            layer(np.array([1.0]))
        with pytest.raises(BundleError, match=r"W must have shape \(4, 3\)"):
            build_layer("EmbeddingLayer", {"input_size": 4, "output_size": 3}, {"W": W})
