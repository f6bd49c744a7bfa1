"""Train the Lasagne README CNN on a GPU through PyTensor's JAX backend.

``python -m tests.benchmarks.gpu [--output FILE.json] [--epochs N]`` runs on a machine
whose JAX sees a GPU (``jax[cuda12]`` or ``jax[cuda13]`` installed) and reports:

- the JAX devices and library versions;
- the training step of the README CNN (forward, backward, Nesterov-momentum update) at
  batch 64 and 256: forge compiled with ``mode="JAX"`` next to PyTorch eager on the same
  GPU, same weights, same batch (the first losses must agree), compile time included;
- a real training run: the README network (with its dropout layers) on scikit-learn's
  digits scaled to 1x28x28, trained on the GPU for ``--epochs`` epochs at a fixed batch
  size, its held-out accuracy, and ``forge.export(..., check=True)`` of the GPU-trained
  weights (the runtime on the CPU against forge's compiled function).

Nothing here is run by ``make test``: CI has no GPU. The results go into
docs/benchmarks.md by hand, with the device that produced them.
"""
import argparse
import json
import sys
import time

import numpy as np

from .networks import forge_network, make_weights, torch_module, torch_state_dict
from .worker import repeat, summarize

LEARNING_RATE, MOMENTUM = 0.01, 0.9


def _step_batch(batch, seed=4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int32)
    return x, y


def forge_jax_step(weights, batch):
    """``(step, compile_s, first_loss)`` of the README CNN compiled for JAX."""
    import pytensor
    import pytensor.tensor as T

    import forge
    from forge import layers as L

    network = forge_network("cnn", weights)
    X, y = T.tensor4("X"), T.ivector("y")
    loss = forge.objectives.categorical_crossentropy(L.get_output(network, X), y).mean()
    params = L.get_all_params(network, trainable=True)
    updates = forge.updates.nesterov_momentum(loss, params, learning_rate=LEARNING_RATE,
                                              momentum=MOMENTUM)
    xb, yb = _step_batch(batch)
    start = time.perf_counter()
    train = pytensor.function([X, y], loss, updates=updates, mode="JAX")
    first = float(train(xb, yb))
    # the JAX function returns a device array at once (asynchronous dispatch): reading
    # the loss back waits for the step, as PyTorch's .item() does
    return (lambda: float(train(xb, yb))), time.perf_counter() - start, first


def torch_cuda_step(weights, batch):
    """``(step, setup_s, first_loss)`` of the same network in PyTorch eager on CUDA."""
    import torch
    import torch.nn.functional as F

    device = torch.device("cuda")
    module = torch_module("cnn")
    module.load_state_dict(torch_state_dict("cnn", weights), assign=True)
    logits = module[:-1].to(device)  # cross_entropy takes logits
    logits.train()
    optimizer = torch.optim.SGD(logits.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM,
                                nesterov=True)
    xb, yb = _step_batch(batch)
    xt = torch.from_numpy(xb).to(device)
    yt = torch.from_numpy(yb.astype(np.int64)).to(device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(logits(xt), yt)
        loss.backward()
        optimizer.step()
        return float(loss.detach())  # .item(): waits for the GPU, as forge's step does

    start = time.perf_counter()
    first = step()
    return step, time.perf_counter() - start, first


def digits_28(seed=0):
    """scikit-learn's digits as (N, 1, 28, 28): each pixel repeated 3x3, padded by 2."""
    from forge import demo

    X_train, y_train, X_test, y_test = demo.load_data(seed=seed)

    def grow(X):
        X = X.reshape(-1, 1, 8, 8)
        X = np.kron(X, np.ones((1, 1, 3, 3), dtype=X.dtype))
        return np.pad(X, ((0, 0), (0, 0), (2, 2), (2, 2))).astype(np.float32)

    return grow(X_train), y_train, grow(X_test), y_test


def train_readme_cnn(epochs, batch, path):
    """Train the README network on digits with ``mode="JAX"``; export it with a check."""
    import pytensor
    import pytensor.tensor as T

    import forge as lasagne
    from forge.nonlinearities import leaky_rectify, softmax

    X_train, y_train, X_test, y_test = digits_28()
    lasagne.random.set_rng(np.random.RandomState(0))
    input_var, target_var = T.tensor4("inputs"), T.ivector("targets")
    network = lasagne.layers.InputLayer((None, 1, 28, 28), input_var)
    network = lasagne.layers.Conv2DLayer(network, 64, (3, 3), nonlinearity=leaky_rectify)
    network = lasagne.layers.Conv2DLayer(network, 32, (3, 3), nonlinearity=leaky_rectify)
    network = lasagne.layers.Pool2DLayer(network, (3, 3), stride=2, mode="max")
    network = lasagne.layers.DenseLayer(lasagne.layers.dropout(network, 0.5), 128,
                                        nonlinearity=leaky_rectify,
                                        W=lasagne.init.Orthogonal())
    network = lasagne.layers.DenseLayer(lasagne.layers.dropout(network, 0.5), 10,
                                        nonlinearity=softmax)
    prediction = lasagne.layers.get_output(network)
    loss = lasagne.objectives.categorical_crossentropy(prediction, target_var).mean()
    loss = loss + 1e-4 * lasagne.regularization.regularize_network_params(
        network, lasagne.regularization.l2)
    params = lasagne.layers.get_all_params(network, trainable=True)
    updates = lasagne.updates.nesterov_momentum(loss, params, learning_rate=LEARNING_RATE,
                                                momentum=MOMENTUM)
    started = time.perf_counter()
    train_fn = pytensor.function([input_var, target_var], loss, updates=updates, mode="JAX")
    test_out = lasagne.layers.get_output(network, deterministic=True)
    predict_fn = pytensor.function([input_var], T.argmax(test_out, axis=1), mode="JAX")
    rng = np.random.RandomState(0)
    epoch_s = []
    for _ in range(epochs):
        order = rng.permutation(len(X_train))
        tick = time.perf_counter()
        for start in range(0, len(order) - batch + 1, batch):  # fixed batch: one compile
            chosen = order[start:start + batch]
            last = train_fn(X_train[chosen], y_train[chosen])
        epoch_s.append(time.perf_counter() - tick)
    train_s = time.perf_counter() - started
    accuracy = float(np.mean(predict_fn(X_test) == y_test))
    tick = time.perf_counter()
    manifest = lasagne.export(network, path, metadata={"trained_on": "GPU (JAX)"})
    return {"epochs": epochs, "batch": batch, "train_s_including_compile": train_s,
            "first_epoch_s": epoch_s[0], "later_epoch_s_median": float(np.median(epoch_s[1:]))
            if len(epoch_s) > 1 else None, "final_loss": float(last),
            "held_out_accuracy": accuracy, "export_s": time.perf_counter() - tick,
            "export_parity_max_rel_error": manifest.get("parity", {}).get("max_rel_error",
                                                                         manifest.get("parity"))}


def environment():
    import jax
    import pytensor

    info = {"python": sys.version.split()[0], "jax": jax.__version__,
            "pytensor": pytensor.__version__, "numpy": np.__version__,
            "devices": [str(d) for d in jax.devices()],
            "default_backend": jax.default_backend()}
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_cuda_device"] = (torch.cuda.get_device_name(0)
                                     if torch.cuda.is_available() else None)
    except ImportError:
        info["torch"] = None
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.gpu")
    parser.add_argument("--output", help="write the results as JSON here too")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="timing budget per engine and batch size")
    parser.add_argument("--bundle", default="/tmp/readme_cnn_gpu.npz")
    args = parser.parse_args(argv)
    results = {"environment": environment(), "steps": []}
    print(json.dumps(results["environment"]), flush=True)
    if results["environment"]["default_backend"] != "gpu":
        print("warning: JAX sees no GPU; the figures below are for", 
              results["environment"]["default_backend"], flush=True)
    weights = make_weights("cnn")
    for batch in (64, 256):
        engines = [("forge JAX", forge_jax_step)]
        if results["environment"].get("torch_cuda_device"):
            engines.append(("PyTorch eager CUDA", torch_cuda_step))
        for name, make in engines:
            step, compile_s, first = make(weights, batch)
            repeat(lambda i: step(), 1.0, 3)  # warm-up
            stats = summarize(repeat(lambda i: step(), args.seconds, 10))
            row = {"engine": name, "batch": batch, "compile_s": compile_s,
                   "first_loss": first, "step_ms_median": stats["median"] * 1e3,
                   "step_ms_p90": stats["p90"] * 1e3, "steps": stats["n"],
                   "samples_per_s": batch / stats["median"]}
            results["steps"].append(row)
            print(json.dumps(row), flush=True)
    results["training"] = train_readme_cnn(args.epochs, 64, args.bundle)
    print(json.dumps(results["training"]), flush=True)
    if args.output:
        with open(args.output, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
