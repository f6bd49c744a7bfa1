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
* step: a later call, the steady cost of one training step;
* cpu: CPU seconds of compile + first (the C compiler's included), steadier than
  wall time on a busy host.

``--repeat N`` measures N times (each cold run with fresh directories) and prints the
fastest and the median. ``--breakdown`` (NUMBA only) prints where the first call's
compilation goes, node kind by node kind: the CPU seconds numba spends compiling each
node's function (with whatever shared helpers it happens to compile first) and the
graph function itself, which links in and optimises every node's code again.
``--net readme`` adds the README's dropout, orthogonal init and L2 penalty; ``--net
mlp`` measures the MNIST MLP (784-800-800-10, leaky rectify, no forge ops) for
comparison.

Modes: PyTensor's NUMBA (its default), CVM (C), FAST_COMPILE (Python VM, few
rewrites), JAX, and PYVM: fast_run's rewrites (stabilisation included) but no fusion,
on the Python VM without C thunks, so nothing at all is compiled.

Run from the repository root (not collected by pytest: no ``test_`` prefix)::

    .venv/bin/python tests/forge/ops/compile_times.py
    .venv/bin/python tests/forge/ops/compile_times.py --modes NUMBA JAX --size 8
    .venv/bin/python tests/forge/ops/compile_times.py --repeat 3   # a busy machine
    .venv/bin/python tests/forge/ops/compile_times.py --modes NUMBA --breakdown

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


def build_readme(size):
    """Lasagne's README network as it is: with dropout, orthogonal init and L2."""
    import pytensor.tensor as T

    from forge import init, layers as L
    from forge import nonlinearities, objectives, regularization, updates

    leaky = nonlinearities.leaky_rectify
    x, y = T.tensor4("x"), T.ivector("y")
    net = L.InputLayer((None, 1, size, size), x)
    net = L.Conv2DLayer(net, 64, (3, 3), nonlinearity=leaky)
    net = L.Conv2DLayer(net, 32, (3, 3), nonlinearity=leaky)
    net = L.Pool2DLayer(net, (3, 3), stride=2, mode="max")
    net = L.DenseLayer(L.dropout(net, 0.5), 128, nonlinearity=leaky, W=init.Orthogonal())
    net = L.DenseLayer(L.dropout(net, 0.5), 10, nonlinearity=nonlinearities.softmax)
    loss = objectives.categorical_crossentropy(L.get_output(net), y).mean()
    loss = loss + 1e-4 * regularization.regularize_network_params(net, regularization.l2)
    params = L.get_all_params(net, trainable=True)
    return [x, y], loss, updates.nesterov_momentum(loss, params, 0.01, 0.9)


def build_mlp(size):
    import pytensor.tensor as T

    from forge import layers as L
    from forge import nonlinearities, objectives, updates

    x, y = T.tensor4("x"), T.ivector("y")
    net = L.InputLayer((None, 1, size, size), x)
    net = L.DenseLayer(net, 800, nonlinearity=nonlinearities.leaky_rectify)
    net = L.DenseLayer(net, 800, nonlinearity=nonlinearities.leaky_rectify)
    net = L.DenseLayer(net, 10, nonlinearity=nonlinearities.softmax)
    loss = objectives.categorical_crossentropy(L.get_output(net), y).mean()
    params = L.get_all_params(net, trainable=True)
    return [x, y], loss, updates.nesterov_momentum(loss, params, 0.01, 0.9)


class CompileBreakdown:
    """Listen to numba's compile events; charge CPU time to the graph's nodes.

    PyTensor compiles a graph into one Python function that calls one jitted function
    per node; numba compiles each callee when it types the caller, so a callee's
    compile event nests inside the graph function's. A node's share is the inclusive
    time of the callee (PyTensor names it after the node's op: ``elemwise``,
    ``shape_i``, ``numba_ofg`` for an ``OpFromGraph`` such as the softmax...); the
    graph function's own share is what is left.
    """

    GRAPH = "numba_funcified_fgraph"

    def __init__(self):
        from numba.core import event

        self.stack = [["(outside the graph)", 0.0, 0.0]]
        self.totals = {}

        breakdown = self

        class Listener(event.Listener):
            def on_start(self, ev):
                dispatcher = ev.data["dispatcher"]
                name = getattr(dispatcher, "py_func", dispatcher).__name__
                breakdown.stack.append([name, time.process_time(), 0.0])

            def on_end(self, ev):
                breakdown.pop()

        event.register("numba:compile", Listener())

    def charge(self, name, seconds):
        count, total = self.totals.get(name, (0, 0.0))
        self.totals[name] = (count + 1, total + seconds)

    def pop(self):
        name, start, children = self.stack.pop()
        spent = time.process_time() - start
        parent = self.stack[-1]
        parent[2] += spent
        if name == self.GRAPH:
            self.charge("(graph function itself)", spent - children)
        elif parent[0] == self.GRAPH:
            self.charge(name, spent)


def cpu_seconds():
    """CPU time of this process and its finished children (the C backend's compiler)."""
    return sum(os.times()[:4])


def measure(mode, size, net, breakdown=False):
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
    built_by = net
    if net == "cnn":
        try:
            inputs, loss, updates = build_with_layers(size)
            built_by = "layers"
        except ImportError:
            net = "direct"
    if net == "direct":
        inputs, loss, updates = build_direct(size)
        built_by = "ops"
    elif net == "mlp":
        inputs, loss, updates = build_mlp(size)
    elif net == "readme":
        inputs, loss, updates = build_readme(size)
    listener = CompileBreakdown() if breakdown else None
    built = time.perf_counter()
    cpu_start = cpu_seconds()
    fn = pytensor.function(inputs, loss, updates=updates, mode=mode)
    compiled = time.perf_counter()
    rng = np.random.default_rng(0)
    data = (rng.random((64, 1, size, size), dtype=np.float32),
            rng.integers(0, 10, 64).astype(np.int32))
    first_loss = float(fn(*data))  # float() waits for JAX's asynchronous result
    first = time.perf_counter()
    cpu = cpu_seconds() - cpu_start
    steps = 5
    for _ in range(steps):
        float(fn(*data))
    done = time.perf_counter()
    print(json.dumps(dict(
        built_by=built_by, import_s=imported - start, build_s=built - imported,
        compile_s=compiled - built, first_s=first - compiled,
        total_s=first - built, step_s=(done - first) / steps, cpu_s=cpu, loss=first_loss,
        nodes=len(fn.maker.fgraph.apply_nodes),
        breakdown=listener.totals if listener else None)))


def run_child(mode, args, cache):
    env = dict(os.environ)
    extra = env.get("PYTENSOR_FLAGS", "")
    env["PYTENSOR_FLAGS"] = ",".join(f for f in (extra, f"base_compiledir={cache}") if f)
    env["NUMBA_CACHE_DIR"] = os.path.join(cache, "numba-own")
    env["JAX_COMPILATION_CACHE_DIR"] = os.path.join(cache, "jax")
    cmd = [sys.executable, __file__, "--child", mode, "--size", str(args.size),
           "--net", args.net]
    if args.breakdown:
        cmd.append("--breakdown")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def print_breakdown(results):
    """The per-node-kind compile CPU seconds of the fastest cold run."""
    totals = min(results, key=lambda r: r["cpu_s"])["breakdown"]
    rows = sorted(totals.items(), key=lambda item: -item[1][1])
    total = sum(seconds for _, seconds in totals.values())
    print(f"  where the cold compile goes (CPU s; total {total:.1f}):")
    for name, (count, seconds) in rows:
        print(f"  {seconds:7.2f}  {count:3d} x {name}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", nargs="+", default=MODES)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--net", choices=["cnn", "readme", "direct", "mlp"], default="cnn",
                        help="cnn: from forge.layers; readme: with dropout and L2; "
                             "direct: from forge.ops; mlp: 784-800-800-10")
    parser.add_argument("--direct", action="store_const", const="direct", dest="net",
                        help="same as --net direct")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure this many times; print the fastest and the median")
    parser.add_argument("--breakdown", action="store_true",
                        help="NUMBA: where the first call's compile time goes")
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        measure(args.child, args.size, args.net, args.breakdown)
        return
    print(f"{'mode':<13}{'run':<6}{'of':<7}{'import':>7}{'build':>7}{'compile':>8}"
          f"{'first':>7}{'total':>7}{'cpu':>7}{'step':>7}  loss")
    for mode in args.modes:
        results = {"cold": [], "warm": []}
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="forge-compile-times-") as cache:
                for run in results:
                    results[run].append(run_child(mode, args, cache))
        for run, rs in results.items():
            rs.sort(key=lambda r: r["total_s"])
            shown = [("best", rs[0])]
            if len(rs) > 1:
                shown.append(("median", rs[len(rs) // 2]))
            for label, r in shown:
                print(f"{mode:<13}{run:<6}{label:<7}{r['import_s']:7.2f}{r['build_s']:7.2f}"
                      f"{r['compile_s']:8.2f}{r['first_s']:7.2f}{r['total_s']:7.2f}"
                      f"{r['cpu_s']:7.2f}{r['step_s']:7.3f}  {r['loss']:.4f} "
                      f"({r['built_by']}, {r['nodes']} nodes)", flush=True)
        if args.breakdown and mode == "NUMBA":
            print_breakdown(results["cold"])


if __name__ == "__main__":
    main()
