"""Hand-built bundles and the one reference-comparison helper the runtime tests share."""
import copy
import os
import tempfile
import zipfile

import numpy as np

import runtime
from runtime.bundle import write_bundle

FLOAT_TOLERANCE = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-12, atol=1e-12)}


class BundleBuilder:
    """Build a manifest and its arrays by hand, one layer at a time.

    >>> b = BundleBuilder()
    >>> x = b.input("x", [None, 3])
    >>> b.layer("NonlinearityLayer", [x], {"nonlinearity": {"name": "tanh"}}, shape=[None, 3])
    'nonlinearitylayer_1'
    """

    def __init__(self, dtype="float32", metadata=None):
        self.dtype = dtype
        self.metadata = {} if metadata is None else metadata
        self.layers, self.inputs, self.arrays = [], [], {}
        self.outputs = None

    def input(self, name, shape, dtype=None):
        self.layers.append({"name": name, "type": "InputLayer", "inputs": [],
                            "config": {"shape": list(shape)}, "params": {},
                            "output_shape": list(shape)})
        self.inputs.append({"name": name, "shape": list(shape), "dtype": dtype or self.dtype})
        return name

    def layer(self, type_name, inputs, config=None, params=None, *, shape, name=None):
        """Add a layer; ``params`` values are arrays, None, or an existing array key."""
        name = name or f"{type_name.lower()}_{len(self.layers)}"
        keys = {}
        for pname, value in (params or {}).items():
            if value is None or isinstance(value, str):
                keys[pname] = value
            else:
                keys[pname] = f"{name}.{pname}"
                self.arrays[keys[pname]] = np.asarray(value)
        self.layers.append({"name": name, "type": type_name, "inputs": list(inputs),
                            "config": dict(config or {}), "params": keys,
                            "output_shape": list(shape)})
        return name

    def output(self, *names):
        self.outputs = list(names)
        return self

    def build(self):
        """(manifest, arrays), ready for :func:`write_bundle` (copies)."""
        by_name = {layer["name"]: layer for layer in self.layers}
        outputs = self.outputs or [self.layers[-1]["name"]]
        manifest = {
            "format": "forge-bundle", "format_version": 1,
            "created": {"by": "tests"}, "metadata": self.metadata, "dtype": self.dtype,
            "inputs": self.inputs,
            "outputs": [{"name": n, "shape": by_name[n]["output_shape"], "dtype": self.dtype}
                        for n in outputs],
            "layers": self.layers,
        }
        return copy.deepcopy(manifest), dict(self.arrays)

    def write(self, path):
        manifest, arrays = self.build()
        write_bundle(path, manifest, arrays)
        return path

    def load(self, **kwargs):
        """Write to a temporary file and load it back."""
        with tempfile.TemporaryDirectory() as folder:
            return runtime.load(self.write(os.path.join(folder, "model.npz")), **kwargs)


def mlp_builder(dtype="float32", seed=0):
    """input (None, 4) -> dense_1 (3, rectify) -> output (2, softmax).

    Returns ``(builder, params)``.
    """
    rng = np.random.default_rng(seed)
    params = {"W1": rng.standard_normal((4, 3)).astype(dtype),
              "b1": rng.standard_normal(3).astype(dtype),
              "W2": rng.standard_normal((3, 2)).astype(dtype),
              "b2": rng.standard_normal(2).astype(dtype)}
    b = BundleBuilder(dtype, metadata={"labels": ["no", "yes"]})
    x = b.input("input", [None, 4])
    h = b.layer("DenseLayer", [x], {"num_units": 3, "num_leading_axes": 1,
                                    "nonlinearity": {"name": "rectify"}},
                {"W": params["W1"], "b": params["b1"]}, shape=[None, 3], name="dense_1")
    b.layer("DenseLayer", [h], {"num_units": 2, "num_leading_axes": 1,
                                "nonlinearity": {"name": "softmax"}},
            {"W": params["W2"], "b": params["b2"]}, shape=[None, 2], name="output")
    return b, params


def mlp_reference(x, p):
    """The MLP in float64 numpy, written independently of the runtime."""
    h = np.asarray(x, np.float64) @ p["W1"].astype(np.float64) + p["b1"]
    h = h * (h > 0)
    z = h @ p["W2"].astype(np.float64) + p["b2"]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return h, e / e.sum(axis=1, keepdims=True)


def check_layer(type_name, config, params, input_shapes, reference, *, dtype="float32",
                declared=None, seed=0, data=None):
    """Run one layer of ``type_name`` through a real bundle and compare with ``reference``.

    ``input_shapes`` are the shapes of the random test inputs; the bundle declares them
    with a free first axis unless ``declared`` gives the declared shapes. ``reference``
    takes the inputs (already in ``dtype``) and returns the expected output, computed
    with numpy independently of the runtime. Checks shape and dtype first, then values.
    Returns the runtime's output.
    """
    rng = np.random.default_rng(seed)
    xs = data if data is not None else [
        rng.standard_normal(shape).astype(dtype) for shape in input_shapes]
    expected = np.asarray(reference(*xs))
    b = BundleBuilder(dtype)
    names = [b.input(f"in{i}", declared[i] if declared else [None] + list(x.shape[1:]))
             for i, x in enumerate(xs)]
    out_shape = [None] + list(expected.shape[1:]) if expected.ndim else []
    b.layer(type_name, names, config, params, shape=out_shape, name="layer")
    model = b.load()
    got = model.run(dict(zip(names, xs)))["layer"]
    assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
    assert got.dtype == np.dtype(dtype), f"dtype {got.dtype}, expected {dtype}"
    np.testing.assert_allclose(got, expected.astype(np.float64), **FLOAT_TOLERANCE[dtype])
    return got


def rewrite_zip(source, target, *, replace=None, drop=(), add=None, manifest=None):
    """Copy a bundle's zip member by member, tampering on the way (tests only)."""
    import json

    replace, add = dict(replace or {}), dict(add or {})
    if manifest is not None:
        replace["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            if info.filename in drop:
                continue
            dst.writestr(info.filename, replace.get(info.filename, src.read(info)))
        for name, data in add.items():
            dst.writestr(name, data)
    return target


def read_manifest(path):
    import json

    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("manifest.json"))


def _f64(function):
    def reference(x):
        with np.errstate(all="ignore"):
            return function(np.asarray(x, dtype=np.float64))
    return reference


#: name -> (bundle spec, float64 reference written from the function's definition)
REFERENCE_NONLINEARITIES = {
    "linear": ({"name": "linear"}, _f64(lambda x: x)),
    "rectify": ({"name": "rectify"}, _f64(lambda x: np.where(x > 0, x, 0.0))),
    "leaky_rectify": ({"name": "leaky_rectify", "leakiness": 0.1},
                      _f64(lambda x: np.where(x > 0, x, 0.1 * x))),
    "sigmoid": ({"name": "sigmoid"}, _f64(lambda x: 1 / (1 + np.exp(-x)))),
    "ultra_fast_sigmoid": ({"name": "ultra_fast_sigmoid"}, _f64(lambda x: 1 / (1 + np.exp(-x)))),
    "hard_sigmoid": ({"name": "hard_sigmoid"},
                     _f64(lambda x: np.minimum(1.0, np.maximum(0.0, 0.2 * x + 0.5)))),
    "tanh": ({"name": "tanh"}, _f64(np.tanh)),
    "scaled_tanh": ({"name": "scaled_tanh", "scale_in": 0.5, "scale_out": 2.4},
                    _f64(lambda x: 2.4 * np.tanh(0.5 * x))),
    "softmax": ({"name": "softmax"},
                _f64(lambda x: np.exp(x - x.max(-1, keepdims=True))
                     / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))),
    "elu": ({"name": "elu"}, _f64(lambda x: np.where(x > 0, x, np.exp(np.minimum(x, 0)) - 1))),
    "selu": ({"name": "selu", "scale": 1.0507, "scale_neg": 1.6733},
             _f64(lambda x: 1.0507 * np.where(x > 0, x, 1.6733 * (np.exp(np.minimum(x, 0)) - 1)))),
    "softplus": ({"name": "softplus"}, _f64(lambda x: np.logaddexp(0.0, x))),
    "exp": ({"name": "exp"}, _f64(np.exp)),
    "log": ({"name": "log"}, _f64(np.log)),
    "sqrt": ({"name": "sqrt"}, _f64(np.sqrt)),
    "abs": ({"name": "abs"}, _f64(np.abs)),
    "sqr": ({"name": "sqr"}, _f64(lambda x: x * x)),
}


def build_layer(type_name, config, params=None, inputs=("x",), name="layer"):
    """A layer built straight from its bundle entry, without a file."""
    from runtime.layers import layer_class

    return layer_class(type_name).from_config(name, config, dict(params or {}), list(inputs))


#: Nonlinearities that are finite on any real input (for random layer tests).
TOTAL_NONLINEARITIES = sorted(set(REFERENCE_NONLINEARITIES) - {"log", "sqrt"})
