"""Profile the Lasagne README CNN on the runtime: samples/s and the time each layer takes,
with the numpy, the numba and the ``auto`` kernels (numpy for small calls, numba for
large ones). A script, not a test:

    .venv/bin/python -m tests.runtime.profile_cnn [--batch 64] [--seconds 3]

The network (as in Lasagne's README and tests/benchmarks): input 1x28x28 -> conv 64 3x3
(leaky_rectify 0.01) -> conv 32 3x3 (leaky_rectify) -> max pool 3 stride 2 -> dense 128
(rectify) -> dense 10 (softmax), random float32 weights.

Each figure is the median and the best of repeated calls after a warm-up. Numbers taken
while other processes use the CPUs are meaningless on a 2-core machine, so the script
also prints how many cores other processes kept busy meanwhile (Linux only).
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np

import runtime
from tests.runtime.helpers import BundleBuilder


def readme_cnn(seed=0):
    rng = np.random.default_rng(seed)

    def weights(*shape):
        fan_in = np.prod(shape[1:]) if len(shape) > 2 else shape[0]
        return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)

    conv = {"stride": [1, 1], "pad": [[0, 0], [0, 0]], "dilation": [1, 1], "num_groups": 1,
            "untie_biases": False, "flip_filters": True,
            "nonlinearity": {"name": "leaky_rectify", "leakiness": 0.01}}
    b = BundleBuilder()
    b.input("input", [None, 1, 28, 28])
    b.layer("Conv2DLayer", ["input"], dict(conv, num_filters=64, filter_size=[3, 3]),
            {"W": weights(64, 1, 3, 3), "b": np.zeros(64, np.float32)},
            shape=[None, 64, 26, 26], name="conv1")
    b.layer("Conv2DLayer", ["conv1"], dict(conv, num_filters=32, filter_size=[3, 3]),
            {"W": weights(32, 64, 3, 3), "b": np.zeros(32, np.float32)},
            shape=[None, 32, 24, 24], name="conv2")
    b.layer("Pool2DLayer", ["conv2"], {"pool_size": [3, 3], "stride": [2, 2], "pad": [0, 0],
                                          "ignore_border": True, "mode": "max"},
            shape=[None, 32, 11, 11], name="pool")
    b.layer("DenseLayer", ["pool"], {"num_units": 128, "num_leading_axes": 1,
                                     "nonlinearity": {"name": "rectify"}},
            {"W": weights(32 * 11 * 11, 128), "b": np.zeros(128, np.float32)},
            shape=[None, 128], name="dense")
    b.layer("DenseLayer", ["dense"], {"num_units": 10, "num_leading_axes": 1,
                                      "nonlinearity": {"name": "softmax"}},
            {"W": weights(128, 10), "b": np.zeros(10, np.float32)}, shape=[None, 10],
            name="output")
    return b


def _busy_seconds():
    """CPU-seconds all processes have used (Linux), or None."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None
    return (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]) / os.sysconf("SC_CLK_TCK")


def timed(function, seconds, at_least=5):
    """(median, best) seconds of ``function()``, and the cores others kept busy meanwhile."""
    function()  # warm-up (and numba's first call)
    times, began, busy, own = [], time.perf_counter(), _busy_seconds(), time.process_time()
    while time.perf_counter() - began < seconds or len(times) < at_least:
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    wall = time.perf_counter() - began
    others = None if busy is None else max(
        0.0, _busy_seconds() - busy - (time.process_time() - own)) / wall
    return statistics.median(times), min(times), others


def profile(path, backend, batch, seconds):
    os.environ["FORGE_KERNELS"] = backend
    model = runtime.load(path)  # the layers pick their kernels now
    x = np.random.default_rng(1).standard_normal((batch, 1, 28, 28)).astype(np.float32)
    total = timed(lambda: model(x), seconds)
    values, layers = {"input": x}, {}
    for name, layer in model.layers.items():
        if name == "input":
            continue
        args = [values[source] for source in layer.inputs]
        layers[name] = timed(lambda: layer(*args), seconds / 4)
        values[name] = layer(*args)
    return total, layers


def _cores(others):
    return "unknown" if others is None else f"{others:.2f} cores busy"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--backends", default="numpy,numba,auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = readme_cnn().write(os.path.join(folder, "cnn.npz"))
        print(f"README CNN, batch {args.batch}, {os.cpu_count()} CPUs, OPENBLAS_CORETYPE="
              f"{os.environ.get('OPENBLAS_CORETYPE', '-')}")
        for backend in args.backends.split(","):
            (median, best, others), layers = profile(path, backend, args.batch, args.seconds)
            print(f"\n{backend}: {args.batch / median:,.0f} samples/s from the median batch "
                  f"({median * 1e3:.2f} ms), {args.batch / best:,.0f} from the best "
                  f"({best * 1e3:.2f} ms); other processes: {_cores(others)}")
            print(f"  {'layer':8s} {'median ms':>9s} {'best ms':>8s} {'share':>6s}  others")
            for name, (median_layer, best_layer, others) in layers.items():
                print(f"  {name:8s} {median_layer * 1e3:9.3f} {best_layer * 1e3:8.3f} "
                      f"{100 * median_layer / median:5.1f}%  {_cores(others)}")
            print(f"  {'sum':8s} {sum(v[0] for v in layers.values()) * 1e3:9.3f}")


if __name__ == "__main__":
    main()
