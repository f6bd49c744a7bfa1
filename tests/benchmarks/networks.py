"""The benchmarked networks, their seeded weights, and the files each engine reads.

Both networks are described once, as plain data (:data:`NETWORKS`); every engine's
model is built from that description and the same arrays:

- a Forge bundle, from a hand-built manifest (``docs/bundle-format.md``) written with
  :func:`runtime.bundle.write_bundle`, so the benchmark does not depend on forge (or,
  with ``from_forge=True``, built with forge's layers and :func:`forge.export`);
- an ONNX graph built with ``onnx.helper`` (Conv, LeakyRelu, MaxPool, Flatten, Gemm,
  Relu, Softmax);
- a PyTorch ``state_dict`` for ``torch.nn`` modules (:func:`torch_module`).

Lasagne's ``Conv2DLayer`` has ``flip_filters=True``: the stored ``W`` is flipped on both
spatial axes before a cross-correlation (a true convolution). ONNX's ``Conv`` and
PyTorch's ``Conv2d`` are cross-correlations, so both get ``W[:, :, ::-1, ::-1]``.
Lasagne's ``DenseLayer`` stores ``W`` as (inputs, units): ONNX's ``Gemm`` takes it as it
is, PyTorch's ``Linear`` takes ``W.T``.

Examples
--------
>>> [layer["name"] for layer in NETWORKS["cnn"]]
['input', 'conv2d_1', 'conv2d_2', 'maxpool2d_1', 'dense_1', 'output']
>>> output_shapes("cnn")["maxpool2d_1"]
(None, 32, 11, 11)
>>> weights = make_weights("mlp", seed=0)
>>> weights["dense_1.W"].shape, weights["dense_1.W"].dtype
((784, 800), dtype('float32'))
"""
import collections
import math
import os

import numpy as np

__all__ = [
    "NETWORKS", "DESCRIPTIONS", "HIDDEN", "output_shapes", "make_weights", "make_inputs",
    "bundle_manifest", "write_runtime_bundle", "read_manifest", "forge_available", "forge_network",
    "write_forge_bundle", "onnx_model",
    "torch_module", "torch_state_dict", "write_all",
]

_LEAKY = {"name": "leaky_rectify", "leakiness": 0.01}

#: The networks as layer lists in topological order (each layer reads the previous one).
NETWORKS = {
    # The MNIST MLP of Lasagne's mnist.py example (dropout omitted: identity at inference).
    "mlp": [
        {"name": "input", "kind": "input", "shape": (None, 784)},
        {"name": "dense_1", "kind": "dense", "units": 800, "nonlinearity": {"name": "rectify"}},
        {"name": "dense_2", "kind": "dense", "units": 800, "nonlinearity": {"name": "rectify"}},
        {"name": "output", "kind": "dense", "units": 10, "nonlinearity": {"name": "softmax"}},
    ],
    # The CNN of Lasagne's README (dropout omitted: identity at inference).
    "cnn": [
        {"name": "input", "kind": "input", "shape": (None, 1, 28, 28)},
        {"name": "conv2d_1", "kind": "conv", "filters": 64, "size": 3, "nonlinearity": _LEAKY},
        {"name": "conv2d_2", "kind": "conv", "filters": 32, "size": 3, "nonlinearity": _LEAKY},
        {"name": "maxpool2d_1", "kind": "maxpool", "size": 3, "stride": 2},
        {"name": "dense_1", "kind": "dense", "units": 128, "nonlinearity": {"name": "rectify"}},
        {"name": "output", "kind": "dense", "units": 10, "nonlinearity": {"name": "softmax"}},
    ],
}

#: One line per network for the report.
DESCRIPTIONS = {
    "mlp": "MLP 784-800-800-10 (rectify, softmax)",
    "cnn": ("README CNN: (1, 28, 28) -> conv 64 3x3 leaky_rectify(0.01) -> conv 32 3x3 "
            "leaky_rectify -> max-pool 3 stride 2 -> dense 128 rectify -> dense 10 softmax"),
}

#: The last hidden layer, compared across engines next to the output.
HIDDEN = {"mlp": "dense_2", "cnn": "dense_1"}


def output_shapes(net):
    """Each layer's output shape (batch axis None), by name."""
    shapes, shape = {}, None
    for layer in NETWORKS[net]:
        kind = layer["kind"]
        if kind == "input":
            shape = tuple(layer["shape"])
        elif kind == "dense":
            shape = (None, layer["units"])
        elif kind == "conv":  # 'valid', stride 1
            k = layer["size"]
            shape = (None, layer["filters"]) + tuple(s - k + 1 for s in shape[2:])
        elif kind == "maxpool":  # ignore_border=True, no padding
            k, stride = layer["size"], layer["stride"]
            shape = shape[:2] + tuple((s - k) // stride + 1 for s in shape[2:])
        shapes[layer["name"]] = shape
    return shapes


def _glorot_uniform(rng, shape):
    """Lasagne's GlorotUniform (gain 1): fans from the first two axes x receptive field."""
    receptive = math.prod(shape[2:])
    limit = math.sqrt(3.0) * math.sqrt(2.0 / ((shape[0] + shape[1]) * receptive))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def make_weights(net, seed=0):
    """Seeded float32 weights in Lasagne's layouts, keyed ``"<layer>.W"``, ``"<layer>.b"``.

    W is Glorot-uniform as in Lasagne; b is small and random rather than Lasagne's zeros,
    so that the comparison between engines also covers the biases.
    """
    rng = np.random.default_rng(seed)
    shapes, arrays, previous = output_shapes(net), {}, None
    for layer in NETWORKS[net]:
        name, kind = layer["name"], layer["kind"]
        if kind == "dense":
            fan_in = math.prod(shapes[previous][1:])
            arrays[f"{name}.W"] = _glorot_uniform(rng, (fan_in, layer["units"]))
            arrays[f"{name}.b"] = rng.uniform(-0.1, 0.1, layer["units"]).astype(np.float32)
        elif kind == "conv":
            k = layer["size"]
            shape = (layer["filters"], shapes[previous][1], k, k)
            arrays[f"{name}.W"] = _glorot_uniform(rng, shape)
            arrays[f"{name}.b"] = rng.uniform(-0.1, 0.1, layer["filters"]).astype(np.float32)
        previous = name
    return arrays


def make_inputs(net, batch, seed=1):
    """``batch`` inputs in [0, 1) (pixel intensities), float32, C-contiguous."""
    shape = (batch,) + output_shapes(net)["input"][1:]
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


# -- Forge bundle -----------------------------------------------------------------------

def _bundle_layer(layer, previous, shape):
    name, kind = layer["name"], layer["kind"]
    entry = {"name": name, "inputs": [] if previous is None else [previous], "params": {},
             "output_shape": list(shape)}
    if kind == "input":
        entry.update(type="InputLayer", config={"shape": list(layer["shape"])})
    elif kind == "dense":
        entry.update(type="DenseLayer",
                     config={"num_units": layer["units"], "num_leading_axes": 1,
                             "nonlinearity": dict(layer["nonlinearity"])},
                     params={"W": f"{name}.W", "b": f"{name}.b"})
    elif kind == "conv":
        k = layer["size"]
        entry.update(type="Conv2DLayer",
                     config={"num_filters": layer["filters"], "filter_size": [k, k],
                             "stride": [1, 1], "pad": [[0, 0], [0, 0]], "dilation": [1, 1],
                             "num_groups": 1, "untie_biases": False, "flip_filters": True,
                             "nonlinearity": dict(layer["nonlinearity"])},
                     params={"W": f"{name}.W", "b": f"{name}.b"})
    elif kind == "maxpool":
        k, stride = layer["size"], layer["stride"]
        entry.update(type="MaxPool2DLayer",
                     config={"pool_size": [k, k], "stride": [stride, stride], "pad": [0, 0],
                             "ignore_border": True, "mode": "max"})
    return entry


def bundle_manifest(net):
    """The manifest for ``net`` (without ``"arrays"``, which ``write_bundle`` fills in)."""
    shapes, layers, previous = output_shapes(net), [], None
    for layer in NETWORKS[net]:
        layers.append(_bundle_layer(layer, previous, shapes[layer["name"]]))
        previous = layer["name"]
    input_shape = list(shapes["input"])
    return {
        "format": "forge-bundle", "format_version": 1, "dtype": "float32",
        "created": {"by": "tests.benchmarks (hand-built manifest)"},
        "metadata": {"labels": [str(i) for i in range(10)], "benchmark": net},
        "inputs": [{"name": "input", "shape": input_shape, "dtype": "float32"}],
        "outputs": [{"name": "output", "shape": list(shapes["output"]), "dtype": "float32"}],
        "layers": layers,
    }


def write_runtime_bundle(net, weights, path):
    """Write ``net`` with ``weights`` through :func:`runtime.bundle.write_bundle`."""
    from runtime.bundle import write_bundle

    write_bundle(path, bundle_manifest(net), dict(weights))
    return path


def read_manifest(path):
    """The manifest of the bundle at ``path``."""
    from runtime.bundle import read_bundle

    return read_bundle(path, verify=False)[0]


def forge_available():
    """None if forge can build and export both networks, else the reason it cannot."""
    try:
        import forge  # noqa: F401
        from forge import export  # noqa: F401
        from forge.layers import Conv2DLayer, MaxPool2DLayer  # noqa: F401
    except Exception as exc:  # ImportError, or anything importing pytensor raises
        return f"forge cannot build the CNN: {type(exc).__name__}: {exc}"
    return None


def forge_network(net, weights):
    """``net`` built with forge's layers, each parameter initialised from ``weights``."""
    from forge import layers as L
    from forge import nonlinearities as nl

    def nonlinearity(spec):
        if spec["name"] == "leaky_rectify":
            return nl.LeakyRectify(spec["leakiness"])
        return getattr(nl, spec["name"])

    network = None
    for layer in NETWORKS[net]:
        name, kind = layer["name"], layer["kind"]
        if kind == "input":
            network = L.InputLayer(layer["shape"], name=name)
        elif kind == "dense":
            network = L.DenseLayer(network, num_units=layer["units"], name=name,
                                   W=weights[f"{name}.W"].copy(), b=weights[f"{name}.b"].copy(),
                                   nonlinearity=nonlinearity(layer["nonlinearity"]))
        elif kind == "conv":
            network = L.Conv2DLayer(network, num_filters=layer["filters"],
                                    filter_size=layer["size"], name=name,
                                    W=weights[f"{name}.W"].copy(), b=weights[f"{name}.b"].copy(),
                                    nonlinearity=nonlinearity(layer["nonlinearity"]))
        elif kind == "maxpool":
            network = L.MaxPool2DLayer(network, pool_size=layer["size"],
                                       stride=layer["stride"], name=name)
    return network


def write_forge_bundle(net, weights, path):
    """Build ``net`` with forge (:func:`forge_network`) and write it with ``forge.export``.

    The export runs its own parity check (forge's compiled function against the runtime).
    """
    import forge

    forge.export(forge_network(net, weights), path,
                 metadata={"labels": [str(i) for i in range(10)], "benchmark": net})
    return path


# -- ONNX -------------------------------------------------------------------------------

#: The ONNX opset the graphs are built for.
ONNX_OPSET = 17


def onnx_model(net, weights, extra_outputs=()):
    """The ONNX ``ModelProto`` of ``net``; ``extra_outputs`` names hidden layers to expose.

    Each layer's output tensor is named after the layer.
    """
    from onnx import TensorProto, helper, numpy_helper

    shapes, nodes, initializers = output_shapes(net), [], []
    previous = None

    def constant(key, array):
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name=key))
        return key

    def activation(spec, source, target):
        name = spec["name"]
        if name == "rectify":
            return helper.make_node("Relu", [source], [target])
        if name == "leaky_rectify":
            return helper.make_node("LeakyRelu", [source], [target], alpha=spec["leakiness"])
        if name == "softmax":
            return helper.make_node("Softmax", [source], [target], axis=-1)
        raise ValueError(f"no ONNX node for nonlinearity {name!r}")

    for layer in NETWORKS[net]:
        name, kind = layer["name"], layer["kind"]
        if kind == "dense":
            source = previous
            if len(shapes[previous]) > 2:
                source = f"{name}.flat"
                nodes.append(helper.make_node("Flatten", [previous], [source], axis=1))
            nodes.append(helper.make_node(
                "Gemm", [source, constant(f"{name}.W", weights[f"{name}.W"]),
                         constant(f"{name}.b", weights[f"{name}.b"])], [f"{name}.linear"]))
            nodes.append(activation(layer["nonlinearity"], f"{name}.linear", name))
        elif kind == "conv":
            k = layer["size"]
            flipped = weights[f"{name}.W"][:, :, ::-1, ::-1]  # flip_filters=True
            nodes.append(helper.make_node(
                "Conv", [previous, constant(f"{name}.W", flipped),
                         constant(f"{name}.b", weights[f"{name}.b"])], [f"{name}.linear"],
                kernel_shape=[k, k], strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1],
                group=1))
            nodes.append(activation(layer["nonlinearity"], f"{name}.linear", name))
        elif kind == "maxpool":
            k, stride = layer["size"], layer["stride"]
            nodes.append(helper.make_node("MaxPool", [previous], [name], kernel_shape=[k, k],
                                          strides=[stride, stride], pads=[0, 0, 0, 0]))
        previous = name

    def value_info(layer_name):
        shape = ["N" if s is None else s for s in shapes[layer_name]]
        return helper.make_tensor_value_info(layer_name, TensorProto.FLOAT, shape)

    graph = helper.make_graph(
        nodes, f"forge_benchmark_{net}", [value_info("input")],
        [value_info("output")] + [value_info(name) for name in extra_outputs],
        initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                              producer_name="forge-benchmarks")
    import onnx

    onnx.checker.check_model(model, full_check=True)
    return model


# -- PyTorch ----------------------------------------------------------------------------

def torch_module(net):
    """``torch.nn.Sequential`` of ``net`` (uninitialised weights: load a state dict).

    The modules are named after the layers (``conv2d_1``, ``conv2d_1_act``, ...).
    """
    import torch
    from torch import nn

    def activation(spec):
        name = spec["name"]
        if name == "rectify":
            return nn.ReLU()
        if name == "leaky_rectify":
            return nn.LeakyReLU(spec["leakiness"])
        if name == "softmax":
            return nn.Softmax(dim=-1)
        raise ValueError(f"no torch module for nonlinearity {name!r}")

    shapes, modules, previous = output_shapes(net), collections.OrderedDict(), None
    with torch.device("meta"):  # no time spent initialising weights we overwrite
        for layer in NETWORKS[net]:
            name, kind = layer["name"], layer["kind"]
            if kind == "dense":
                if len(shapes[previous]) > 2:
                    modules[f"{name}_flatten"] = nn.Flatten()
                fan_in = math.prod(shapes[previous][1:])
                modules[name] = nn.Linear(fan_in, layer["units"])
                modules[f"{name}_act"] = activation(layer["nonlinearity"])
            elif kind == "conv":
                modules[name] = nn.Conv2d(shapes[previous][1], layer["filters"],
                                          layer["size"])
                modules[f"{name}_act"] = activation(layer["nonlinearity"])
            elif kind == "maxpool":
                modules[name] = nn.MaxPool2d(layer["size"], layer["stride"])
            previous = name
    return nn.Sequential(modules)


def torch_state_dict(net, weights):
    """``weights`` in PyTorch's layouts, as CPU tensors keyed for :func:`torch_module`."""
    import torch

    state = {}
    for layer in NETWORKS[net]:
        name, kind = layer["name"], layer["kind"]
        if kind == "dense":
            W = weights[f"{name}.W"].T
        elif kind == "conv":
            W = weights[f"{name}.W"][:, :, ::-1, ::-1]  # flip_filters=True
        else:
            continue
        state[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(W))
        state[f"{name}.bias"] = torch.from_numpy(weights[f"{name}.b"].copy())
    return state


def torch_hidden(module, layer_name):
    """The prefix of ``module`` that ends with ``layer_name``'s activation."""
    names = list(module._modules)
    return module[: names.index(f"{layer_name}_act") + 1]


# -- all files --------------------------------------------------------------------------

def files(folder, net):
    """The paths of ``net``'s files in ``folder``, by engine family."""
    return {kind: os.path.join(folder, f"{net}.{ext}") for kind, ext in
            (("bundle", "npz"), ("onnx", "onnx"), ("torch", "pt"),
             ("inputs", "inputs.npy"), ("reference", "reference.npy"))}


def write_all(folder, net, weights, from_forge=False):
    """Write the bundle, the ONNX graph and the PyTorch state dict of ``net``."""
    import torch

    paths = files(folder, net)
    writer = write_forge_bundle if from_forge else write_runtime_bundle
    writer(net, weights, paths["bundle"])
    with open(paths["onnx"], "wb") as f:
        f.write(onnx_model(net, weights).SerializeToString())
    torch.save(torch_state_dict(net, weights), paths["torch"])
    return paths
