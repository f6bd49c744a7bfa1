"""Profile the Lasagne README CNN on the runtime: samples/s and the time each layer takes,
with the numpy and the numba kernels. A script, not a test:

    .venv/bin/python -m tests.runtime.profile_cnn [--batch 64] [--seconds 3]

The network: input 1x28x28 -> conv 64 3x3 (rectify) -> conv 32 3x3 (rectify) -> max
pool 3 stride 2 -> dense 128 (rectify) -> dense 10 (softmax), random float32 weights.
Timings are medians over repeated calls after a warm-up; numbers from a busy machine are
meaningless, so the script prints the load average next to them.
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
            "untie_biases": False, "flip_filters": True, "nonlinearity": {"name": "rectify"}}
    b = BundleBuilder()
    b.input("input", [None, 1, 28, 28])
    b.layer("Conv2DLayer", ["input"], dict(conv, num_filters=64, filter_size=[3, 3]),
            {"W": weights(64, 1, 3, 3), "b": np.zeros(64, np.float32)},
            shape=[None, 64, 26, 26], name="conv1")
    b.layer("Conv2DLayer", ["conv1"], dict(conv, num_filters=32, filter_size=[3, 3]),
            {"W": weights(32, 64, 3, 3), "b": np.zeros(32, np.float32)},
            shape=[None, 32, 24, 24], name="conv2")
    b.layer("MaxPool2DLayer", ["conv2"], {"pool_size": [3, 3], "stride": [2, 2], "pad": [0, 0],
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


def median_seconds(function, seconds, at_least=5):
    function()  # warm-up (and numba's first call)
    times, began = [], time.perf_counter()
    while time.perf_counter() - began < seconds or len(times) < at_least:
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def profile(path, backend, batch, seconds):
    os.environ["FORGE_KERNELS"] = backend
    model = runtime.load(path)  # the layers pick their kernels now
    x = np.random.default_rng(1).standard_normal((batch, 1, 28, 28)).astype(np.float32)
    total = median_seconds(lambda: model(x), seconds)
    values, layers = {"input": x}, {}
    for name, layer in model.layers.items():
        if name == "input":
            continue
        args = [values[source] for source in layer.inputs]
        layers[name] = median_seconds(lambda: layer(*args), seconds / 5)
        values[name] = layer(*args)
    return total, layers


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--backends", default="numpy,numba")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = readme_cnn().write(os.path.join(folder, "cnn.npz"))
        print(f"README CNN, batch {args.batch}, {os.cpu_count()} CPUs, OPENBLAS_CORETYPE="
              f"{os.environ.get('OPENBLAS_CORETYPE', '-')}, load average "
              f"{os.getloadavg()[0]:.2f}")
        for backend in args.backends.split(","):
            total, layers = profile(path, backend, args.batch, args.seconds)
            print(f"\n{backend}: {args.batch / total:,.0f} samples/s ({total * 1e3:.2f} ms "
                  f"per batch; layers sum to {sum(layers.values()) * 1e3:.2f} ms)")
            for name, seconds in layers.items():
                print(f"  {name:8s} {seconds * 1e3:7.3f} ms  {100 * seconds / total:5.1f} %")
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
