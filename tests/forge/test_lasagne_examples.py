"""Code in the style of Lasagne's own examples, run unchanged after the import switch.

Lasagne shipped ``examples/mnist.py`` (an MLP, a depth-parametrized "custom" MLP and a
small CNN, all trained with Nesterov momentum, the parameters saved with ``np.savez``)
and ``examples/recurrent.py`` (a bidirectional ``RecurrentLayer`` on the addition task,
masks, Adagrad, gradient clipping). The functions below use the same API calls the way
those scripts do, with ``import forge as lasagne`` and PyTensor standing in for Theano,
on small inputs: each must train (loss down on a fixed batch), round-trip its
parameters through ``np.savez`` and export with parity.
"""
import numpy as np
import pytest

import pytensor as theano
import pytensor.tensor as T

import forge as lasagne
import runtime
from forge import demo

MODE = "FAST_COMPILE"


def build_mlp(input_var=None):
    l_in = lasagne.layers.InputLayer(shape=(None, 1, 16, 16), input_var=input_var)
    l_in_drop = lasagne.layers.DropoutLayer(l_in, p=0.2)
    l_hid1 = lasagne.layers.DenseLayer(
        l_in_drop, num_units=64, nonlinearity=lasagne.nonlinearities.rectify,
        W=lasagne.init.GlorotUniform())
    l_hid1_drop = lasagne.layers.DropoutLayer(l_hid1, p=0.5)
    l_hid2 = lasagne.layers.DenseLayer(
        l_hid1_drop, num_units=64, nonlinearity=lasagne.nonlinearities.rectify)
    l_hid2_drop = lasagne.layers.DropoutLayer(l_hid2, p=0.5)
    return lasagne.layers.DenseLayer(
        l_hid2_drop, num_units=10, nonlinearity=lasagne.nonlinearities.softmax)


def build_custom_mlp(input_var=None, depth=3, width=48, drop_input=.2, drop_hidden=.5):
    network = lasagne.layers.InputLayer(shape=(None, 1, 16, 16), input_var=input_var)
    if drop_input:
        network = lasagne.layers.dropout(network, p=drop_input)
    nonlin = lasagne.nonlinearities.rectify
    for _ in range(depth):
        network = lasagne.layers.DenseLayer(network, width, nonlinearity=nonlin)
        if drop_hidden:
            network = lasagne.layers.dropout(network, p=drop_hidden)
    return lasagne.layers.DenseLayer(network, 10, nonlinearity=lasagne.nonlinearities.softmax)


def build_cnn(input_var=None):
    network = lasagne.layers.InputLayer(shape=(None, 1, 16, 16), input_var=input_var)
    network = lasagne.layers.Conv2DLayer(
        network, num_filters=16, filter_size=(3, 3),
        nonlinearity=lasagne.nonlinearities.rectify, W=lasagne.init.GlorotUniform())
    network = lasagne.layers.MaxPool2DLayer(network, pool_size=(2, 2))
    network = lasagne.layers.Conv2DLayer(
        network, num_filters=16, filter_size=(3, 3),
        nonlinearity=lasagne.nonlinearities.rectify)
    network = lasagne.layers.MaxPool2DLayer(network, pool_size=(2, 2))
    network = lasagne.layers.DenseLayer(
        lasagne.layers.dropout(network, p=.5), num_units=32,
        nonlinearity=lasagne.nonlinearities.rectify)
    return lasagne.layers.DenseLayer(
        lasagne.layers.dropout(network, p=.5), num_units=10,
        nonlinearity=lasagne.nonlinearities.softmax)


def _digits_batch(n=64):
    """``n`` of scikit-learn's 8x8 digits, zero-padded to 16x16, and their labels."""
    X, y, _, _ = demo.load_data()
    X = np.pad(X[:n].reshape(-1, 1, 8, 8), ((0, 0), (0, 0), (4, 4), (4, 4)))
    return X.astype(theano.config.floatX), y[:n].astype("int32")


@pytest.mark.parametrize("build", [build_mlp, build_custom_mlp, build_cnn])
def test_mnist_example_networks_train_save_and_export(build, tmp_path):
    lasagne.random.set_rng(np.random.RandomState(0))
    input_var = T.tensor4('inputs')
    target_var = T.ivector('targets')
    network = build(input_var)

    prediction = lasagne.layers.get_output(network)
    loss = lasagne.objectives.categorical_crossentropy(prediction, target_var).mean()
    params = lasagne.layers.get_all_params(network, trainable=True)
    updates = lasagne.updates.nesterov_momentum(loss, params, learning_rate=0.1,
                                                momentum=0.9)
    test_prediction = lasagne.layers.get_output(network, deterministic=True)
    test_loss = lasagne.objectives.categorical_crossentropy(test_prediction,
                                                            target_var).mean()
    test_acc = T.mean(T.eq(T.argmax(test_prediction, axis=1), target_var),
                      dtype=theano.config.floatX)
    train_fn = theano.function([input_var, target_var], loss, updates=updates, mode=MODE)
    val_fn = theano.function([input_var, target_var], [test_loss, test_acc], mode=MODE)

    X, y = _digits_batch()
    before, _ = val_fn(X, y)
    for _ in range(50):
        train_fn(X, y)
    after, acc = val_fn(X, y)
    assert after < 0.8 * before, (before, after)
    assert 0 <= acc <= 1

    # the examples' way of saving and restoring the parameters
    np.savez(tmp_path / "model.npz", *lasagne.layers.get_all_param_values(network))
    with np.load(tmp_path / "model.npz") as f:
        param_values = [f['arr_%d' % i] for i in range(len(f.files))]
    lasagne.random.set_rng(np.random.RandomState(1))
    restored = build(input_var)
    lasagne.layers.set_all_param_values(restored, param_values)
    predict = theano.function([input_var], [
        test_prediction, lasagne.layers.get_output(restored, deterministic=True)], mode=MODE)
    original, reloaded = predict(X)
    np.testing.assert_array_equal(original, reloaded)

    report = lasagne.export(network, str(tmp_path / "bundle.npz"))
    assert report["parity"]["max_rel_error"] <= 1e-5
    np.testing.assert_allclose(runtime.load(str(tmp_path / "bundle.npz"))(X), original,
                               rtol=1e-5, atol=1e-6)


def _addition_task(n, max_length=12, min_length=6, seed=0):
    """Lasagne's recurrent example's task: sum the two marked values of a sequence."""
    rng = np.random.RandomState(seed)
    X = np.concatenate([rng.uniform(size=(n, max_length, 1)),
                        np.zeros((n, max_length, 1))], axis=-1)
    mask = np.zeros((n, max_length))
    y = np.zeros((n,))
    for i in range(n):
        length = rng.randint(min_length, max_length)
        mask[i, :length] = 1
        X[i, length:, 0] = 0
        first, second = rng.choice(length, 2, replace=False)
        X[i, [first, second], 1] = 1
        y[i] = X[i, first, 0] + X[i, second, 0]
    floatx = theano.config.floatX
    return X.astype(floatx), y.astype(floatx), mask.astype(floatx)


def test_recurrent_example_trains_and_exports(tmp_path):
    lasagne.random.set_rng(np.random.RandomState(0))
    N_HIDDEN, GRAD_CLIP, MAX_LENGTH = 16, 100, 12
    l_in = lasagne.layers.InputLayer(shape=(None, MAX_LENGTH, 2))
    l_mask = lasagne.layers.InputLayer(shape=(None, MAX_LENGTH))
    l_forward = lasagne.layers.RecurrentLayer(
        l_in, N_HIDDEN, mask_input=l_mask, grad_clipping=GRAD_CLIP,
        W_in_to_hid=lasagne.init.HeUniform(), W_hid_to_hid=lasagne.init.HeUniform(),
        nonlinearity=lasagne.nonlinearities.tanh, only_return_final=True)
    l_backward = lasagne.layers.RecurrentLayer(
        l_in, N_HIDDEN, mask_input=l_mask, grad_clipping=GRAD_CLIP,
        W_in_to_hid=lasagne.init.HeUniform(), W_hid_to_hid=lasagne.init.HeUniform(),
        nonlinearity=lasagne.nonlinearities.tanh, only_return_final=True, backwards=True)
    l_concat = lasagne.layers.ConcatLayer([l_forward, l_backward])
    l_out = lasagne.layers.DenseLayer(l_concat, num_units=1,
                                      nonlinearity=lasagne.nonlinearities.tanh)

    target_values = T.vector('target_output')
    network_output = lasagne.layers.get_output(l_out)
    predicted_values = network_output.flatten()
    cost = T.mean((predicted_values - target_values) ** 2)
    all_params = lasagne.layers.get_all_params(l_out)
    grads = lasagne.updates.total_norm_constraint(T.grad(cost, all_params), 10.0)
    updates = lasagne.updates.adagrad(grads, all_params, 0.05)
    train = theano.function([l_in.input_var, target_values, l_mask.input_var],
                            cost, updates=updates, mode=MODE)
    compute_cost = theano.function([l_in.input_var, target_values, l_mask.input_var],
                                   cost, mode=MODE)

    X, y, mask = _addition_task(64)
    before = compute_cost(X, y, mask)
    for _ in range(40):
        train(X, y, mask)
    after = compute_cost(X, y, mask)
    assert after < 0.5 * before, (before, after)

    path = str(tmp_path / "addition.npz")
    assert lasagne.export(l_out, path)["parity"]["max_rel_error"] <= 1e-5
    model = runtime.load(path)
    # the example names no layer: tell the sequence (3-D) from the mask (2-D) by rank
    got = model.run({spec.name: X if len(spec.shape) == 3 else mask
                     for spec in model.inputs})
    expected = theano.function([l_in.input_var, l_mask.input_var], network_output,
                               mode=MODE)(X, mask)
    np.testing.assert_allclose(next(iter(got.values())), expected, rtol=1e-5, atol=1e-6)
