"""Tests for forge.regularization against numpy.

The helpers only need ``layer.get_params(**tags)`` and ``forge.layers.get_all_params``;
`StubLayer` stands in for a layer where the test is about that contract, and real
``InputLayer``/``DenseLayer`` networks check the whole path.
"""
import doctest

import numpy as np
import pytensor
import pytest

import forge.layers
import forge.regularization
from forge.regularization import (
    apply_penalty, l1, l2, regularize_layer_params, regularize_layer_params_weighted,
    regularize_network_params,
)

FLOATX = pytensor.config.floatX


def evaluate(expression):
    if hasattr(expression, "eval"):
        return float(expression.eval())
    return float(expression)  # a plain number, e.g. the penalty of no tensors


def shared(rng, *shape, name=None):
    return pytensor.shared(rng.normal(size=shape).astype(FLOATX), name=name)


def np_l1(*arrays):
    return sum(np.abs(a.astype(np.float64)).sum() for a in arrays)


def np_l2(*arrays):
    return sum((a.astype(np.float64) ** 2).sum() for a in arrays)


class StubLayer:
    """Just enough of a layer: tagged parameters, filtered the way Lasagne does."""

    def __init__(self, **params_with_tags):
        self.params = params_with_tags  # {name: (shared variable, set of tags)}

    def get_params(self, unwrap_shared=True, **tags):
        wanted = {tag for tag, value in tags.items() if value}
        unwanted = {tag for tag, value in tags.items() if not value}
        return [param for param, param_tags in self.params.values()
                if wanted <= param_tags and not unwanted & param_tags]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def stubs(rng):
    """Two stub layers, each with a regularizable weight and an unregularized bias."""
    layers = []
    for i, shape in enumerate([(3, 4), (4, 2)]):
        W = shared(rng, *shape, name=f"W{i}")
        b = shared(rng, shape[1], name=f"b{i}")
        layers.append(StubLayer(W=(W, {"trainable", "regularizable"}),
                                b=(b, {"trainable"})))
    return layers


def values(layer, name):
    return layer.params[name][0].get_value()


@pytest.mark.parametrize("penalty, oracle", [(l1, np_l1), (l2, np_l2)])
def test_penalties_match_numpy(rng, penalty, oracle):
    x = rng.normal(size=(3, 5)).astype(FLOATX)
    result = penalty(pytensor.shared(x))
    assert result.ndim == 0 and result.dtype == FLOATX
    np.testing.assert_allclose(evaluate(result), oracle(x), rtol=1e-5)
    np.testing.assert_allclose(evaluate(penalty(x)), oracle(x), rtol=1e-5)


def test_apply_penalty_single_tensor_and_list(rng):
    a, b = shared(rng, 3), shared(rng, 2, 2)
    np.testing.assert_allclose(evaluate(apply_penalty(a, l2)),
                               np_l2(a.get_value()), rtol=1e-5)
    np.testing.assert_allclose(evaluate(apply_penalty([a, b], l1)),
                               np_l1(a.get_value(), b.get_value()), rtol=1e-5)
    np.testing.assert_allclose(evaluate(apply_penalty((x for x in [a, b]), l2)),
                               np_l2(a.get_value(), b.get_value()), rtol=1e-5)
    assert evaluate(apply_penalty([], l2)) == 0


def test_apply_penalty_passes_kwargs(rng):
    a, b = shared(rng, 3), shared(rng, 4)

    def lp(x, p):
        return (abs(x) ** p).sum()

    np.testing.assert_allclose(
        evaluate(apply_penalty([a, b], lp, p=3)),
        sum((np.abs(v.get_value().astype(np.float64)) ** 3).sum() for v in [a, b]),
        rtol=1e-5)


def test_regularize_layer_params_one_layer_and_list(stubs):
    first, second = stubs
    np.testing.assert_allclose(evaluate(regularize_layer_params(first, l2)),
                               np_l2(values(first, "W")), rtol=1e-5)
    np.testing.assert_allclose(evaluate(regularize_layer_params(stubs, l1)),
                               np_l1(values(first, "W"), values(second, "W")),
                               rtol=1e-5)


def test_regularize_layer_params_tags(stubs):
    first = stubs[0]
    everything = regularize_layer_params(first, l2, tags={})
    np.testing.assert_allclose(evaluate(everything),
                               np_l2(values(first, "W"), values(first, "b")), rtol=1e-5)
    biases_only = regularize_layer_params(first, l2, tags={"regularizable": False})
    np.testing.assert_allclose(evaluate(biases_only), np_l2(values(first, "b")),
                               rtol=1e-5)


def test_regularize_layer_params_rejects_non_layers(stubs):
    with pytest.raises(TypeError, match="got 3"):
        regularize_layer_params([stubs[0], 3], l2)


def test_regularize_layer_params_weighted(stubs):
    first, second = stubs
    penalty = regularize_layer_params_weighted({first: 0.1, second: 0.5}, l2)
    assert penalty.dtype == FLOATX
    expected = 0.1 * np_l2(values(first, "W")) + 0.5 * np_l2(values(second, "W"))
    np.testing.assert_allclose(evaluate(penalty), expected, rtol=1e-5)
    with_biases = regularize_layer_params_weighted({first: 2.0}, l1, tags={})
    np.testing.assert_allclose(evaluate(with_biases),
                               2.0 * np_l1(values(first, "W"), values(first, "b")),
                               rtol=1e-5)


def test_regularize_layer_params_weighted_needs_a_dict(stubs):
    with pytest.raises(TypeError, match="needs a dict .* got list"):
        regularize_layer_params_weighted(stubs, l2)


def test_regularize_network_params_delegates_to_get_all_params(stubs, monkeypatch):
    calls = []

    def fake_get_all_params(layer, **tags):
        calls.append((layer, tags))
        return [p for stub in stubs for p in stub.get_params(**tags)]

    monkeypatch.setattr(forge.layers, "get_all_params", fake_get_all_params,
                        raising=False)
    penalty = regularize_network_params(stubs[1], l1, tags={"trainable": True})
    assert calls == [(stubs[1], {"trainable": True})]
    np.testing.assert_allclose(
        evaluate(penalty),
        np_l1(*(values(s, name) for s in stubs for name in ("W", "b"))), rtol=1e-5)


# --- with real layers -------------------------------------------------------------

@pytest.fixture
def network():
    from forge.layers import DenseLayer, InputLayer

    l_in = InputLayer((None, 3))
    l_hid = DenseLayer(l_in, num_units=4)
    l_out = DenseLayer(l_hid, num_units=2)
    return l_in, l_hid, l_out


def test_real_network(network):
    _, l_hid, l_out = network
    W_hid, W_out = l_hid.W.get_value(), l_out.W.get_value()
    np.testing.assert_allclose(evaluate(regularize_network_params(l_out, l2)),
                               np_l2(W_hid, W_out), rtol=1e-5)
    np.testing.assert_allclose(evaluate(regularize_layer_params(l_out, l1)),
                               np_l1(W_out), rtol=1e-5)
    np.testing.assert_allclose(evaluate(regularize_layer_params([l_hid, l_out], l1)),
                               np_l1(W_hid, W_out), rtol=1e-5)
    np.testing.assert_allclose(
        evaluate(regularize_layer_params_weighted({l_hid: 0.1, l_out: 0.2}, l2)),
        0.1 * np_l2(W_hid) + 0.2 * np_l2(W_out), rtol=1e-5)
    all_params = regularize_network_params(l_out, l2, tags={})
    np.testing.assert_allclose(
        evaluate(all_params),
        np_l2(W_hid, W_out, l_hid.b.get_value(), l_out.b.get_value()), rtol=1e-5)


def test_penalty_gradient_trains_only_weights(network):
    """The usual training setup: the penalty's gradient reaches W, not b."""
    _, l_hid, l_out = network
    penalty = regularize_network_params(l_out, l2)
    grads = pytensor.grad(penalty, [l_hid.W, l_hid.b], disconnected_inputs="ignore")
    got_W, got_b = pytensor.function([], grads)()
    np.testing.assert_allclose(got_W, 2 * l_hid.W.get_value(), rtol=1e-5)
    np.testing.assert_array_equal(got_b, 0)


def test_docstring_examples():
    result = doctest.testmod(forge.regularization, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
