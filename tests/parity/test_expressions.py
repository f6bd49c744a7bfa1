"""The seed post's four parameter-expression examples: train, export, parity.

Each network trains a few steps of SGD (so the exported arrays are the trained values
of the expressions, not their initial values), exports with forge's own parity check
and is compared again with the shared helper.
"""
import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

import forge
import runtime
from forge import layers as L

from .helpers import assert_parity


def tied_autoencoder():
    l_in = L.InputLayer((None, 12))
    l_hid = L.DenseLayer(l_in, num_units=5)
    return l_in, L.DenseLayer(l_hid, num_units=12, W=l_hid.W.T, nonlinearity=None)


def factorized():
    l_in = L.InputLayer((None, 12))
    w1 = pytensor.shared(forge.init.GlorotUniform()((12, 3)), name="w1")
    w2 = pytensor.shared(forge.init.GlorotUniform()((3, 12)), name="w2")
    return l_in, L.DenseLayer(l_in, num_units=12, W=T.dot(w1, w2), nonlinearity=None)


def positive():
    l_in = L.InputLayer((None, 12))
    w = pytensor.shared(forge.init.Normal(0.1, -1.0)((12, 12)), name="w")
    return l_in, L.DenseLayer(l_in, num_units=12, W=T.exp(w), nonlinearity=None)


def positive_semidefinite():
    l_in = L.InputLayer((None, 12))
    w = pytensor.shared(forge.init.Normal(0.1)((12, 12)), name="w")
    return l_in, L.DenseLayer(l_in, num_units=12, W=T.dot(w, w.T), nonlinearity=None)


@pytest.mark.parametrize("build", [tied_autoencoder, factorized, positive,
                                   positive_semidefinite])
def test_train_export_parity(build, bundle_path):
    forge.random.set_rng(np.random.RandomState(0))
    l_in, l_out = build()
    X = np.random.default_rng(0).standard_normal((32, 12)).astype(np.float32)
    loss = forge.objectives.squared_error(L.get_output(l_out), l_in.input_var).mean()
    params = L.get_all_params(l_out, trainable=True)
    assert params and all(isinstance(p, pytensor.compile.SharedVariable) for p in params)
    step = pytensor.function([l_in.input_var], loss,
                             updates=forge.updates.sgd(loss, params, learning_rate=0.05))
    losses = [float(step(X)) for _ in range(15)]
    assert losses[-1] < losses[0]
    path = bundle_path()
    manifest = forge.export(l_out, path)
    assert manifest["parity"]["max_rel_error"] <= 1e-5
    assert_parity(l_out, bundle_path())
    # the exported W is the value of the expression, i.e. what forge computes with
    W = runtime.load(path).manifest["layers"][-1]["params"]["W"]
    expected = pytensor.function([], l_out.W)()
    with np.load(path, allow_pickle=False) as f:
        np.testing.assert_allclose(f[W], expected, rtol=1e-6)


def test_shared_weights_stored_once(bundle_path):
    l_in = L.InputLayer((None, 6))
    l_a = L.DenseLayer(l_in, num_units=4, name="a")
    l_b = L.DenseLayer(l_in, num_units=4, W=l_a.W, b=l_a.b, name="b")
    l_sum = L.ElemwiseSumLayer([l_a, l_b])
    path = bundle_path()
    manifest = forge.export(l_sum, path)
    by_name = {lay["name"]: lay for lay in manifest["layers"]}
    assert by_name["a"]["params"] == by_name["b"]["params"]
    assert len(manifest["arrays"]) == 2
    assert_parity(l_sum, bundle_path())
