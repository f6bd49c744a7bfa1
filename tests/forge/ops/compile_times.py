"""Compile and first-step times of a small convolutional network's training function.

The network is Lasagne's README example without dropout, on MNIST-shaped input:
Conv2D 64 3x3 leaky -> Conv2D 32 3x3 leaky -> MaxPool 3x3 stride 2 -> Dense 128 leaky
-> Dense 10 softmax, categorical cross-entropy, Nesterov momentum, batch 64. It is
built from ``forge.layers`` when they import, else from ``forge.ops`` directly
(``--direct`` forces the latter).

Every measurement runs in a fresh interpreter. "cold" gives it an empty PyTensor
``base_compiledir`` (which also holds PyTensor's Numba cache), ``NUMBA_CACHE_DIR``
and JAX compilation cache; "warm" runs again with the same directories, as a second
run of a training script would. Times are wall-clock seconds:

* build: building the graph (layers, loss, updates; includes the gradient);
* compile: ``pytensor.function(...)`` (rewrites and, for C and JAX, linking);
  the mode is also made PyTensor's default, as ``PYTENSOR_FLAGS=mode=...`` would, so
  that inner graphs (PyTensor's softmax is an ``OpFromGraph``) use it too;
* first: the first call (Numba compiles here, JAX traces and compiles here);
* total: compile + first, the wait before training starts;
* step: a later call, the steady cost of one training step.

Modes: PyTensor's NUMBA (its default), CVM (C), FAST_COMPILE (Python VM, few
rewrites), JAX, and PYVM: fast_run's rewrites (stabilisation included) but no fusion,
on the Python VM without C thunks, so nothing at all is compiled.

Run from the repository root (not collected by pytest: no ``test_`` prefix)::

    .venv/bin/python tests/forge/ops/compile_times.py
    .venv/bin/python tests/forge/ops/compile_times.py --modes NUMBA JAX --size 8
    .venv/bin/python tests/forge/ops/compile_times.py --repeat 3   # a busy machine

``--size 8`` uses digits-shaped input (1, 8, 8); the pooling then sees 4x4 maps.
Other settings pass through the environment: ``PYTENSOR_FLAGS`` (the cache
directory is appended to it), ``NUMBA_OPT`` and so on.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

MODES = ["NUMBA", "CVM", "FAST_COMPILE", "JAX", "PYVM"]


def make_mode(name):
    """A PyTensor mode by name; "PYVM" is all of fast_run's rewrites but fusion, run
    by the Python VM without C thunks: nothing is compiled, and without fusion every
    elementwise node keeps its numpy ufunc ``perform``."""
    if name != "PYVM":
        return name
    from pytensor.compile.mode import Mode
    from pytensor.graph.rewriting.db import RewriteDatabaseQuery
    from pytensor.link.vm import VMLinker

    return Mode(VMLinker(use_cloop=False, c_thunks=False),
                RewriteDatabaseQuery(include=["fast_run"], exclude=["fusion"]))


def build_with_layers(size):
    import pytensor.tensor as T

    from forge import layers as L
    from forge import nonlinearities, objectives, updates

    x, y = T.tensor4("x"), T.ivector("y")
    net = L.InputLayer((None, 1, size, size), x)
    net = L.Conv2DLayer(net, 64, (3, 3), nonlinearity=nonlinearities.leaky_rectify)
    net = L.Conv2DLayer(net, 32, (3, 3), nonlinearity=nonlinearities.leaky_rectify)
    net = L.Pool2DLayer(net, (3, 3), stride=2, mode="max")
    net = L.DenseLayer(net, 128, nonlinearity=nonlinearities.leaky_rectify)
    net = L.DenseLayer(net, 10, nonlinearity=nonlinearities.softmax)
    loss = objectives.categorical_crossentropy(L.get_output(net), y).mean()
    params = L.get_all_params(net, trainable=True)
    return [x, y], loss, updates.nesterov_momentum(loss, params, 0.01, 0.9)


def build_direct(size):
    import numpy as np
    import pytensor
    import pytensor.tensor as T

    from forge import nonlinearities, objectives, ops, updates

    rng = np.random.default_rng(0)

    def param(*shape):
        return pytensor.shared((0.1 * rng.standard_normal(shape)).astype("float32"))

    leaky = nonlinearities.leaky_rectify
    x, y = T.tensor4("x"), T.ivector("y")
    w1, b1, w2, b2 = param(64, 1, 3, 3), param(64), param(32, 64, 3, 3), param(32)
    side = ops.pool_output_shape((size - 4,) * 2, (3, 3), (2, 2))
    w3, b3, w4, b4 = param(32 * side[0] * side[1], 128), param(128), param(128, 10), param(10)
    h = leaky(ops.conv(x, w1, (1, 1), 0, (1, 1)) + b1.dimshuffle("x", 0, "x", "x"))
    h = leaky(ops.conv(h, w2, (1, 1), 0, (1, 1)) + b2.dimshuffle("x", 0, "x", "x"))
    h = ops.pool(h, (3, 3), (2, 2)).flatten(2)
    h = leaky(T.dot(h, w3) + b3)
    prediction = nonlinearities.softmax(T.dot(h, w4) + b4)
    loss = objectives.categorical_crossentropy(prediction, y).mean()
    params = [w1, b1, w2, b2, w3, b3, w4, b4]
    return [x, y], loss, updates.nesterov_momentum(loss, params, 0.01, 0.9)


def measure(mode, size, direct):
    """Run in the child: build, compile, call; print one JSON line."""
    start = time.perf_counter()
    import numpy as np
    import pytensor

    import forge

    imported = time.perf_counter()
    # As PYTENSOR_FLAGS=mode=... would: inner graphs (PyTensor's softmax is an
    # OpFromGraph) are compiled in the default mode, not the one passed to function.
    mode = pytensor.config.mode = make_mode(mode)
    forge.random.set_rng(np.random.RandomState(0))  # the same weights on every run
    built_by = "ops"
    if not direct:
        try:
            inputs, loss, updates = build_with_layers(size)
            built_by = "layers"
        except ImportError:
            direct = True
    if direct:
        inputs, loss, updates = build_direct(size)
    built = time.perf_counter()
    fn = pytensor.function(inputs, loss, updates=updates, mode=mode)
    compiled = time.perf_counter()
    rng = np.random.default_rng(0)
    data = (rng.random((64, 1, size, size), dtype=np.float32),
            rng.integers(0, 10, 64).astype(np.int32))
    first_loss = float(fn(*data))  # float() waits for JAX's asynchronous result
    first = time.perf_counter()
    steps = 5
    for _ in range(steps):
        float(fn(*data))
    done = time.perf_counter()
    print(json.dumps(dict(
        built_by=built_by, import_s=imported - start, build_s=built - imported,
        compile_s=compiled - built, first_s=first - compiled,
        total_s=first - built, step_s=(done - first) / steps, loss=first_loss)))


def run_child(mode, size, direct, cache):
    env = dict(os.environ)
    extra = env.get("PYTENSOR_FLAGS", "")
    env["PYTENSOR_FLAGS"] = ",".join(f for f in (extra, f"base_compiledir={cache}") if f)
    env["NUMBA_CACHE_DIR"] = os.path.join(cache, "numba-own")
    env["JAX_COMPILATION_CACHE_DIR"] = os.path.join(cache, "jax")
    cmd = [sys.executable, __file__, "--child", mode, "--size", str(size)]
    if direct:
        cmd.append("--direct")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", nargs="+", default=MODES)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--direct", action="store_true")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure this many times, print the fastest (noisy hosts)")
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        measure(args.child, args.size, args.direct)
        return
    print(f"{'mode':<13}{'run':<6}{'import':>8}{'build':>8}{'compile':>9}{'first':>8}"
          f"{'total':>8}{'step':>8}  loss")
    for mode in args.modes:
        best = {}
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="forge-compile-times-") as cache:
                for run in ("cold", "warm"):
                    r = run_child(mode, args.size, args.direct, cache)
                    if run not in best or r["total_s"] < best[run]["total_s"]:
                        best[run] = r
        for run, r in best.items():
            print(f"{mode:<13}{run:<6}{r['import_s']:8.2f}{r['build_s']:8.2f}"
                  f"{r['compile_s']:9.2f}{r['first_s']:8.2f}{r['total_s']:8.2f}"
                  f"{r['step_s']:8.3f}  {r['loss']:.4f} ({r['built_by']})", flush=True)


if __name__ == "__main__":
    main()
