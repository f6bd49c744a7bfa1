"""Lasagne's README convolutional network, as Lasagne code, trained on digits and exported.

The network of Lasagne's README: conv 64 3x3 leaky -> conv 32 3x3 leaky -> max-pool 3
stride 2 -> dropout -> dense 128 leaky (orthogonal init) -> dropout -> dense 10 softmax,
categorical cross-entropy with an L2 penalty, Nesterov momentum. The code below is the
README's with the imports switched, on scikit-learn's 8x8 digits as (N, 1, 8, 8). The
training function is compiled with the default (Numba) linker, as ``make demo`` uses it
(an epoch takes about 0.2 s there against 1.5 s in FAST_COMPILE), and with the JAX
backend, which forge documents for convolutional networks; both export with parity.
"""
import time

import numpy as np
import pytest

import pytensor as theano
import pytensor.tensor as T

import forge as lasagne
import runtime
from forge import demo
from forge.export import PARITY_RTOL as RTOL
from forge.nonlinearities import leaky_rectify, softmax  # README: from lasagne.nonlinearities

EPOCHS = 25


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Explicitly requested dtype:UserWarning")  # JAX without x64
@pytest.mark.parametrize("mode", ["NUMBA", "JAX"])
def test_readme_cnn_trains_exports_and_matches(tmp_path, mode):
    """NUMBA: PyTensor's default linker. JAX: the mode forge documents for conv nets (and
    the GPU path), with the fixed batch size docs/gpu.md asks for: the last partial
    batch of each epoch is dropped."""
    if mode == "JAX":
        pytest.importorskip("jax", reason="jax not installed (the JAX backend, [dev] extra)")
    X_train, y_train, X_test, y_test = demo.load_data()
    X_train, X_test = X_train.reshape(-1, 1, 8, 8), X_test.reshape(-1, 1, 8, 8)
    lasagne.random.set_rng(np.random.RandomState(0))
    started = time.perf_counter()

    input_var = T.tensor4("inputs")
    target_var = T.ivector("targets")

    # create a small convolutional neural network (Lasagne's README)
    network = lasagne.layers.InputLayer((None, 1, 8, 8), input_var)
    network = lasagne.layers.Conv2DLayer(network, 64, (3, 3), nonlinearity=leaky_rectify)
    network = lasagne.layers.Conv2DLayer(network, 32, (3, 3), nonlinearity=leaky_rectify)
    network = lasagne.layers.Pool2DLayer(network, (3, 3), stride=2, mode='max')
    network = lasagne.layers.DenseLayer(lasagne.layers.dropout(network, 0.5),
                                        128, nonlinearity=leaky_rectify,
                                        W=lasagne.init.Orthogonal())
    network = lasagne.layers.DenseLayer(lasagne.layers.dropout(network, 0.5),
                                        10, nonlinearity=softmax)

    # create loss function
    prediction = lasagne.layers.get_output(network)
    loss = lasagne.objectives.categorical_crossentropy(prediction, target_var)
    loss = loss.mean() + 1e-4 * lasagne.regularization.regularize_network_params(
        network, lasagne.regularization.l2)

    # create parameter update expressions
    params = lasagne.layers.get_all_params(network, trainable=True)
    updates = lasagne.updates.nesterov_momentum(loss, params, learning_rate=0.01,
                                                momentum=0.9)

    # compile training function that updates parameters and returns training loss
    train_fn = theano.function([input_var, target_var], loss, updates=updates, mode=mode)

    # train network
    rng = np.random.RandomState(0)
    for epoch in range(EPOCHS):
        order = rng.permutation(len(X_train))
        for start in range(0, len(X_train) - (31 if mode == "JAX" else 0), 32):
            batch = order[start:start + 32]
            train_fn(X_train[batch], y_train[batch])

    if mode == "JAX":  # the parameters were updated on the JAX backend, and live there
        import jax

        assert isinstance(params[0].get_value(borrow=True, return_internal_type=True),
                          jax.Array)

    # use trained network for predictions
    test_prediction = lasagne.layers.get_output(network, deterministic=True)
    predict_fn = theano.function([input_var], T.argmax(test_prediction, axis=1))
    accuracy = float(np.mean(predict_fn(X_test) == y_test))
    elapsed = time.perf_counter() - started
    assert accuracy >= 0.90, f"held-out accuracy {accuracy:.3f} < 0.90"
    # about 15 s here with a warm Numba cache, a minute when the kernels compile cold;
    # the bound only catches a pathological slowdown
    assert elapsed < 180, f"training took {elapsed:.0f} s"

    # export with the built-in parity check, then compare on the held-out set
    path = tmp_path / "readme_cnn.npz"
    manifest = lasagne.export(network, path, check=True,
                              metadata={"labels": [str(d) for d in range(10)]})
    assert manifest["parity"]["max_rel_error"] <= RTOL
    assert [layer["type"] for layer in manifest["layers"]] == [
        "InputLayer", "Conv2DLayer", "Conv2DLayer", "Pool2DLayer", "DropoutLayer",
        "DenseLayer", "DropoutLayer", "DenseLayer"]
    probs_fn = theano.function([input_var], test_prediction)
    expected = probs_fn(X_test)
    got = runtime.load(path)(X_test)
    rel = np.abs(got - expected) / np.maximum(1.0, np.abs(expected))
    assert rel.max() <= RTOL
    assert float(np.mean(got.argmax(axis=1) == y_test)) == pytest.approx(accuracy)

