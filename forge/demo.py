"""The main job: train an MLP on scikit-learn's digits, export it, serve it.

``make demo`` runs ``python -m forge.demo``. It

1. trains a 64-256-128-10 MLP with dropout on scikit-learn's bundled ``load_digits``
   (offline) with a tqdm progress bar showing loss and accuracy,
2. prints the held-out accuracy,
3. exports the network to ``out/digits.npz`` with the parity check against the runtime,
4. starts the prediction service on 127.0.0.1 and prints an example request.

``python -m forge.demo --no-serve`` stops after the export; ``--output PATH`` chooses
where the bundle goes (the example bundle shipped in ``service/models/`` is made this
way).
"""
import argparse
import json
import sys
import time

import numpy as np
import pytensor
import pytensor.tensor as T

import forge
from forge import layers as L

__all__ = ["load_data", "build_network", "compile_functions", "train", "main"]


def load_data(seed=0, test_fraction=0.25):
    """Digits as float32 in [0, 1], split into a shuffled train and held-out test set."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    order = np.random.RandomState(seed).permutation(len(X))
    n_test = int(len(X) * test_fraction)
    test, train_ = order[:n_test], order[n_test:]
    return X[train_], y[train_], X[test], y[test]


def build_network(num_inputs=64, num_classes=10):
    """The demo MLP: two rectified hidden layers with dropout, softmax output."""
    net = L.InputLayer((None, num_inputs), name="pixels")
    net = L.DenseLayer(net, num_units=256, name="hidden1")
    net = L.DropoutLayer(net, p=0.2)
    net = L.DenseLayer(net, num_units=128, name="hidden2")
    net = L.DropoutLayer(net, p=0.2)
    return L.DenseLayer(net, num_units=num_classes,
                        nonlinearity=forge.nonlinearities.softmax, name="probs")


def compile_functions(network, learning_rate=1e-3, l2=1e-4, mode=None):
    """(train_fn, eval_fn): train_fn(X, y) -> (loss, acc) and updates; eval_fn(X) -> probs."""
    X = L.get_all_layers(network)[0].input_var
    y = T.ivector("y")
    probs = L.get_output(network)
    loss = forge.objectives.categorical_crossentropy(probs, y).mean()
    loss = loss + l2 * forge.regularization.regularize_network_params(
        network, forge.regularization.l2)
    acc = forge.objectives.categorical_accuracy(probs, y).mean()
    params = L.get_all_params(network, trainable=True)
    updates = forge.updates.adam(loss, params, learning_rate=learning_rate)
    train_fn = pytensor.function([X, y], [loss, acc], updates=updates, mode=mode)
    test_probs = L.get_output(network, deterministic=True)
    eval_fn = pytensor.function([X], test_probs, mode=mode)
    return train_fn, eval_fn


def train(network, X, y, epochs=40, batch_size=32, seed=0, progress=True, mode=None):
    """Minibatch training with a progress bar; returns the eval function."""
    from tqdm import tqdm

    forge.random.set_rng(np.random.RandomState(seed))
    train_fn, eval_fn = compile_functions(network, mode=mode)
    rng = np.random.RandomState(seed)
    bar = tqdm(range(epochs), desc="training", unit="epoch", disable=not progress)
    for _ in bar:
        order = rng.permutation(len(X))
        losses, accs = [], []
        for start in range(0, len(X), batch_size):
            batch = order[start:start + batch_size]
            loss, acc = train_fn(X[batch], y[batch])
            losses.append(float(loss))
            accs.append(float(acc))
        bar.set_postfix(loss=f"{np.mean(losses):.4f}", acc=f"{np.mean(accs):.3f}")
    return eval_fn


def accuracy(eval_fn, X, y):
    return float(np.mean(np.argmax(eval_fn(X), axis=1) == y))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m forge.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--output", default="out/digits.npz", help="bundle path (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--mode", default=None,
                        help="PyTensor mode for training: NUMBA (PyTensor's default), JAX "
                             "(the GPU path), CVM, FAST_COMPILE (default: PyTensor's configured mode)")
    parser.add_argument("--no-serve", action="store_true", help="stop after the export")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    X_train, y_train, X_test, y_test = load_data()
    print(f"digits: {len(X_train)} training and {len(X_test)} held-out images of 8x8 pixels")
    network = build_network()
    started = time.perf_counter()
    eval_fn = train(network, X_train, y_train, epochs=args.epochs, mode=args.mode)
    acc = accuracy(eval_fn, X_test, y_test)
    print(f"held-out accuracy: {acc:.2%} ({time.perf_counter() - started:.1f} s including compilation)")

    import os
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    manifest = forge.export(network, args.output, metadata={
        "labels": [str(d) for d in range(10)],
        "description": "MLP on scikit-learn's 8x8 digits; input: 64 pixel values in [0, 1]",
        "held_out_accuracy": round(acc, 4),
    })
    parity = manifest["parity"]
    print(f"exported {args.output} ({os.path.getsize(args.output) / 1024:.0f} KiB); "
          f"parity with the runtime: max abs error {parity['max_abs_error']:.2g}")
    if args.no_serve:
        return 0

    example = {"instances": [[round(float(v), 3) for v in X_test[0]]]}
    print("\nServing on http://%s:%d (Ctrl-C to stop). Try:\n" % (args.host, args.port))
    print(f"  curl -s http://{args.host}:{args.port}/v1/models/digits:predict \\\n"
          f"       -H 'Content-Type: application/json' \\\n"
          f"       -d '{json.dumps(example)}'\n")
    print(f"  (the true label of that image is {y_test[0]}; the Open Inference Protocol "
          f"endpoint is POST /v2/models/digits/infer, the API docs are at /docs)\n")
    from service.cli import main as cli_main

    return cli_main(["serve", args.output, "--host", args.host, "--port", str(args.port)])


if __name__ == "__main__":
    sys.exit(main())
