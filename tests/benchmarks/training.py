"""The training-step subprocess: ``python -m tests.benchmarks.training MODE FOLDER``.

Times one training step (forward, backward, Nesterov-momentum update) of the README CNN
on a batch of 64, from the weights saved in ``FOLDER/cnn.weights.npz``:

- ``MODE`` a PyTensor mode (``NUMBA``, ``CVM``, ``JAX``, ...): the network is built with
  forge's layers, the loss is ``categorical_crossentropy(prediction, y).mean()`` and the
  update ``nesterov_momentum(loss, params, learning_rate=0.01, momentum=0.9)``, compiled
  with ``pytensor.function(..., mode=MODE)``, exactly as in Lasagne's README;
- ``MODE`` ``torch``: the same network as ``torch.nn`` modules, logits into
  ``F.cross_entropy`` (the same loss), ``torch.optim.SGD(lr=0.01, momentum=0.9,
  nesterov=True)``, ``torch.set_num_threads(2)``.

Prints one JSON object on its last line: the compile time (building the function and
its first call), the step time, and the first loss, which the caller compares across
modes (same weights, same batch, so the same number).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

from .networks import make_inputs
from .worker import quietly, repeat, summarize

__all__ = ["BATCH", "forge_step", "torch_step", "main"]

BATCH = 64
LEARNING_RATE, MOMENTUM = 0.01, 0.9


def _batch():
    x = make_inputs("cnn", BATCH, seed=4)
    y = np.random.default_rng(5).integers(0, 10, BATCH).astype(np.int32)
    return x, y


def forge_step(mode, weights):
    """``(step, compile_s)`` for a forge training function compiled in ``mode``."""
    import pytensor
    import pytensor.tensor as T

    import forge
    from forge import layers as L

    from .networks import forge_network

    network = forge_network("cnn", weights)
    X, y = T.tensor4("X"), T.ivector("y")
    prediction = L.get_output(network, X)
    loss = forge.objectives.categorical_crossentropy(prediction, y).mean()
    params = L.get_all_params(network, trainable=True)
    updates = forge.updates.nesterov_momentum(loss, params, learning_rate=LEARNING_RATE,
                                              momentum=MOMENTUM)
    xb, yb = _batch()
    start = time.perf_counter()
    train = pytensor.function([X, y], loss, updates=updates, mode=mode)
    first = float(train(xb, yb))
    # mode="JAX" returns a device array at once (asynchronous dispatch): reading the
    # loss back waits for the step to finish, as the PyTorch step's float() does
    return (lambda: float(train(xb, yb))), time.perf_counter() - start, first


def torch_step(weights, threads=2):
    """``(step, setup_s, first_loss)`` for the PyTorch eager training step."""
    import torch
    import torch.nn.functional as F

    from .networks import torch_module, torch_state_dict

    torch.set_num_threads(threads)
    module = torch_module("cnn")
    module.load_state_dict(torch_state_dict("cnn", weights), assign=True)
    logits = module[:-1]  # drop the softmax: cross_entropy takes logits
    logits.train()
    optimizer = torch.optim.SGD(logits.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM,
                                nesterov=True)
    xb, yb = _batch()
    xt, yt = torch.from_numpy(xb), torch.from_numpy(yb.astype(np.int64))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(logits(xt), yt)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    start = time.perf_counter()
    first = step()
    return step, time.perf_counter() - start, first


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.training")
    parser.add_argument("mode", help="a PyTensor mode (NUMBA, CVM, JAX, ...) or 'torch'")
    parser.add_argument("folder")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--min-steps", type=int, default=5)
    parser.add_argument("--attempts", type=int, default=3,
                        help="re-measure while other processes keep the CPUs busy")
    args = parser.parse_args(argv)
    with np.load(os.path.join(args.folder, "cnn.weights.npz")) as stored:
        weights = dict(stored)
    try:
        if args.mode == "torch":
            step, compile_s, first = torch_step(weights)
        else:
            step, compile_s, first = forge_step(args.mode, weights)
        repeat(lambda i: step(), min(1.0, args.seconds / 4), 2)
        durations, foreign, tries = quietly(
            lambda: repeat(lambda i: step(), args.seconds, args.min_steps), args.attempts)
        result = {"compile_s": compile_s, "first_loss": first,
                  "step_ms": {k: (v * 1e3 if k != "n" else v)
                              for k, v in summarize(durations).items()}}
        result["step_ms"].update(foreign_cores=foreign, tries=tries)
    except Exception as exc:  # report any failure of a mode instead of a traceback
        result = {"error": f"{type(exc).__name__}: {str(exc)[:400]}"}
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
