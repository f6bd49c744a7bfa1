"""Export a forge network to a numpy-only bundle.

:func:`export` walks the layer graph, evaluates every parameter (shared variable or
PyTensor expression) to a plain array, describes each layer by its type name and the
constructor arguments that matter at inference, and writes one ``.npz`` file through
:func:`runtime.bundle.write_bundle`. The format is specified in ``docs/bundle-format.md``.

With ``check=True`` (the default) the bundle is loaded back with :mod:`runtime` and run
next to forge's compiled deterministic function on the same random input; the measured
error is stored in the manifest, and the export fails if it is above
``1e-5 * max(1, |y|)``.
"""
import datetime
import hashlib
import json
import os
import platform
import re
import tempfile

import numpy as np
import pytensor
import pytensor.tensor as T
from pytensor.graph.replace import clone_replace
from pytensor.graph.traversal import graph_inputs

from . import nonlinearities as nl
from .layers import get_all_layers, get_output
from . import layers as L

__all__ = ["export", "ExportError", "ParityError", "PARITY_RTOL"]

#: Parity rule: ``|runtime - forge| <= PARITY_RTOL * max(1, |forge|)`` elementwise.
PARITY_RTOL = 1e-5


class ExportError(ValueError):
    """A network (or part of it) that cannot be written to a bundle."""


class ParityError(AssertionError):
    """The runtime's outputs differ from forge's beyond the parity tolerance."""


# -- names ---------------------------------------------------------------------------

_NAME_OK = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")


def _base_name(layer):
    """``DenseLayer`` -> ``dense``, ``ElemwiseSumLayer`` -> ``elemwise_sum``."""
    stem = type(layer).__name__
    if stem.endswith("Layer") and stem != "Layer":
        stem = stem[: -len("Layer")]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", stem).lower()


def _sanitize(name):
    name = re.sub(r"[^A-Za-z0-9_.:-]", "_", str(name))
    return name if _NAME_OK.match(name) else "_" + name


def _assign_names(layers, outputs):
    """A unique, bundle-safe name for every layer.

    User-given names are kept (made safe and unique if needed). An unnamed single input
    is called ``input`` and an unnamed single output ``output``; other unnamed layers
    get ``<type>_<k>``.
    """
    names, taken = {}, set()

    def claim(layer, wanted):
        name, k = wanted, 1
        while name in taken:
            k += 1
            name = f"{wanted}_{k}"
        taken.add(name)
        names[layer] = name

    for layer in layers:  # user names first, so they win over made-up ones
        if layer.name:
            claim(layer, _sanitize(layer.name))
    inputs = [lay for lay in layers if isinstance(lay, L.InputLayer)]
    counters = {}
    for layer in layers:
        if layer in names:
            continue
        if len(inputs) == 1 and layer is inputs[0] and "input" not in taken:
            claim(layer, "input")
        elif len(outputs) == 1 and layer is outputs[0] and "output" not in taken:
            claim(layer, "output")
        else:
            base = _base_name(layer)
            counters[base] = counters.get(base, 0) + 1
            claim(layer, f"{base}_{counters[base]}")
    return names


# -- callables by name ---------------------------------------------------------------

def _named_functions():
    """(callable, spec) pairs for functions stored by name."""
    return [
        (None, {"name": "linear"}),
        (nl.linear, {"name": "linear"}),
        (nl.identity, {"name": "linear"}),
        (nl.rectify, {"name": "rectify"}),
        (nl.sigmoid, {"name": "sigmoid"}),
        (nl.ultra_fast_sigmoid, {"name": "ultra_fast_sigmoid"}),
        (nl.tanh, {"name": "tanh"}),
        (nl.softmax, {"name": "softmax"}),
        (nl.elu, {"name": "elu"}),
        (nl.softplus, {"name": "softplus"}),
        (T.sigmoid, {"name": "sigmoid"}),
        (T.tanh, {"name": "tanh"}),
        (T.softplus, {"name": "softplus"}),
        (T.exp, {"name": "exp"}),
        (T.log, {"name": "log"}),
        (T.sqrt, {"name": "sqrt"}),
        (T.abs, {"name": "abs"}),
        (T.sqr, {"name": "sqr"}),
    ]


def _describe_callable(fn):
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _lowered(fn, shapes, what, where):
    """``{"name": "program", "program": ...}``: ``fn`` lowered (see forge/lowering.py)."""
    from .lowering import LoweringError, lower

    try:
        return {"name": "program", "program": lower(fn, shapes, what=what)}
    except LoweringError as exc:
        raise ExportError(f"{where}: {exc}") from None


def nonlinearity_spec(fn, where, shape=None, what="nonlinearity"):
    """The bundle's description of a nonlinearity, or :class:`ExportError`.

    ``where`` names the layer for the error message. A callable that is not a named
    built-in is lowered to a program for inputs of ``shape`` (the shape it is applied
    to); without a shape it is refused.
    """
    for known, spec in _named_functions():
        if fn is known:
            return dict(spec)
    if isinstance(fn, nl.LeakyRectify):
        return {"name": "leaky_rectify", "leakiness": float(fn.leakiness)}
    if isinstance(fn, nl.ScaledTanH):
        return {"name": "scaled_tanh", "scale_in": float(fn.scale_in),
                "scale_out": float(fn.scale_out)}
    if isinstance(fn, nl.SELU):
        return {"name": "selu", "scale": float(fn.scale), "scale_neg": float(fn.scale_neg)}
    if shape is not None:
        return _lowered(fn, [shape], what, where)
    raise ExportError(
        f"{where}: the callable {_describe_callable(fn)!r} cannot be exported; it is "
        "neither a forge.nonlinearities function nor one of T.sigmoid, T.tanh, "
        "T.softplus, T.exp, T.log, T.sqrt, T.abs, T.sqr, and this layer does not say the "
        "shape it is applied to, which lowering it needs (see docs/lowering.md)")


_MERGE_FUNCTIONS = [
    (T.add, "add"), (T.sub, "sub"), (T.mul, "mul"), (T.true_div, "true_div"),
    (T.maximum, "maximum"), (T.minimum, "minimum"),
]


def _function_name(fn, table, argument, where):
    """The bundle name of ``fn`` in ``table`` ((callable, name) pairs), or ExportError."""
    for known, name in table:
        if fn is known:
            return name
    names = ", ".join(f"T.{n}" for _, n in table)
    raise ExportError(f"{where}: {argument} {_describe_callable(fn)!r} cannot be "
                      f"exported; supported values are {names}")


def _merge_spec(fn, where, shape):
    """A merge function's name, or a two-input program for any other callable."""
    for known, name in _MERGE_FUNCTIONS:
        if fn is known:
            return name
    return _lowered(fn, [shape, shape], "merge_function", where)


# -- per-type descriptions -----------------------------------------------------------
# Each describer returns (config, params) for one layer; params maps a parameter name
# to its PyTensor variable or expression (or None for an absent parameter).

def _normalised_shared_axes(layer):
    ndim = len(layer.input_shape)
    axes = layer.shared_axes
    if axes == "auto":
        axes = (0,) + tuple(range(2, ndim))
    elif isinstance(axes, int):
        axes = (axes,)
    return [int(a) % ndim for a in axes]


def _cropping(layer):
    cropping = getattr(layer, "cropping", None)
    return None if cropping is None else [c for c in cropping]


def _slice_spec(s):
    if isinstance(s, slice):
        return {"start": s.start, "stop": s.stop, "step": s.step}
    return int(s)


def _describe_input(layer, where):
    return {"shape": list(layer.shape)}, {}


def _describe_dense(layer, where):
    axes = layer.num_leading_axes
    if axes < 0:
        axes += len(layer.input_shape)
    return ({"num_units": int(layer.num_units), "num_leading_axes": int(axes),
             "nonlinearity": nonlinearity_spec(layer.nonlinearity, where,
                                               layer.output_shape)},
            {"W": layer.W, "b": layer.b})


def _describe_nin(layer, where):
    return ({"num_units": int(layer.num_units), "untie_biases": bool(layer.untie_biases),
             "nonlinearity": nonlinearity_spec(layer.nonlinearity, where,
                                               layer.output_shape)},
            {"W": layer.W, "b": layer.b})


def _describe_nonlinearity(layer, where):
    return {"nonlinearity": nonlinearity_spec(layer.nonlinearity, where,
                                              layer.output_shape)}, {}


def _describe_bias(layer, where):
    return {"shared_axes": _normalised_shared_axes(layer)}, {"b": layer.b}


def _describe_scale(layer, where):
    return {"shared_axes": _normalised_shared_axes(layer)}, {"scales": layer.scales}


def _describe_expression(layer, where):
    return {"function": nonlinearity_spec(layer.function, where, layer.input_shape,
                                          what="function")}, {}


def _describe_identity(layer, where):
    return {}, {}


def _describe_flatten(layer, where):
    return {"outdim": int(layer.outdim)}, {}


def _describe_reshape(layer, where):
    shape = [[int(s[0])] if isinstance(s, (list, tuple)) else int(s) for s in layer.shape]
    return {"shape": shape}, {}


def _describe_dimshuffle(layer, where):
    return {"pattern": [p if p == "x" else int(p) for p in layer.pattern]}, {}


def _describe_slice(layer, where):
    return {"axis": int(layer.axis), "indices": _slice_spec(layer.slice)}, {}


def _describe_pad(layer, where):
    width = [[int(a), int(b)] for a, b in layer.width]
    return {"width": width, "val": float(layer.val), "batch_ndim": int(layer.batch_ndim)}, {}


def _describe_concat(layer, where):
    return {"axis": int(layer.axis), "cropping": _cropping(layer)}, {}


def _describe_sum(layer, where):
    return {"coeffs": [float(c) for c in layer.coeffs], "cropping": _cropping(layer)}, {}


def _describe_merge(layer, where):
    return {"merge_function": _merge_spec(layer.merge_function, where, layer.output_shape),
            "cropping": _cropping(layer)}, {}


# -- convolution, pooling and normalization layers ----------------------------------

def _ints(values):
    return [int(v) for v in values]


def _conv_common(layer, where):
    return {"num_filters": int(layer.num_filters), "filter_size": _ints(layer.filter_size),
            "num_groups": int(layer.num_groups), "untie_biases": bool(layer.untie_biases),
            "flip_filters": bool(layer.flip_filters),
            "nonlinearity": nonlinearity_spec(layer.nonlinearity, where,
                                              layer.output_shape)}


def _pairs(pairs):
    return [[int(a), int(b)] for a, b in pairs]


def _describe_conv(layer, where):
    from .layers.conv import _pad_pairs

    config = _conv_common(layer, where)
    config.update(stride=_ints(layer.stride),
                  pad=_pairs(_pad_pairs(layer.pad, layer.filter_size)),
                  dilation=[1] * layer.n)
    return config, {"W": layer.W, "b": layer.b}


def _describe_dilated_conv(layer, where):
    config = _conv_common(layer, where)
    config.update(stride=[1] * layer.n, pad=[[0, 0]] * layer.n,
                  dilation=_ints(layer.dilation))
    return config, {"W": layer.W, "b": layer.b}


def _describe_transposed_conv(layer, where):
    from .layers.conv import _pad_pairs

    if not (layer.output_size is None or isinstance(layer.output_size, tuple)):
        raise ExportError(f"{where}: a symbolic output_size cannot be exported; pass ints "
                          f"or None (the smallest size, computed per call)")
    config = _conv_common(layer, where)
    # a null entry (an input axis of free size): the runtime computes the smallest size
    config.update(stride=_ints(layer.stride),
                  crop=_pairs(_pad_pairs(layer.crop, layer.filter_size)),
                  output_size=_shape(layer.output_shape[2:]))
    return config, {"W": layer.W, "b": layer.b}


def _describe_locally_connected(layer, where):
    from .layers.conv import _pad_pairs

    config = _conv_common(layer, where)
    del config["num_groups"]
    config.update(stride=_ints(layer.stride),
                  pad=_pairs(_pad_pairs(layer.pad, layer.filter_size)),
                  channelwise=bool(layer.channelwise))
    return config, {"W": layer.W, "b": layer.b}


_BUNDLE_POOL_MODES = ("max", "average_inc_pad", "average_exc_pad")


def _pool_mode(mode, where):
    if mode not in _BUNDLE_POOL_MODES:
        raise ExportError(f"{where}: pooling mode {mode!r} cannot be exported; bundles "
                          f"support the modes {', '.join(_BUNDLE_POOL_MODES)}")
    return mode


def _describe_pool(layer, where):
    return {"pool_size": _ints(layer.pool_size), "stride": _ints(layer.stride),
            "pad": _ints(layer.pad), "ignore_border": bool(layer.ignore_border),
            "mode": _pool_mode(layer.mode, where)}, {}


_POOL_FUNCTIONS = [(T.mean, "mean"), (T.max, "max"), (T.min, "min"), (T.sum, "sum")]


def _pool_function_spec(fn, where):
    return _function_name(fn, _POOL_FUNCTIONS, "pool_function", where)


def _describe_global_pool(layer, where):
    return {"pool_function": _pool_function_spec(layer.pool_function, where)}, {}


def _describe_upscale(layer, where):
    return {"scale_factor": _ints(layer.scale_factor), "mode": layer.mode}, {}


def _feature_axis(layer):
    return int(layer.axis) % len(layer.input_shape)


def _describe_feature_pool(layer, where):
    return {"pool_size": int(layer.pool_size), "axis": _feature_axis(layer),
            "pool_function": _pool_function_spec(layer.pool_function, where)}, {}


def _describe_feature_wta(layer, where):
    return {"pool_size": int(layer.pool_size), "axis": _feature_axis(layer)}, {}


def _describe_spp(layer, where):
    # with a spatial size unknown at build time, forge's 'fast' pyramid keeps the first
    # p x p windows of each level (so that its output size is known); with known sizes it
    # keeps every window the size gives, as Lasagne does
    return {"pool_dims": _ints(layer.pool_dims), "mode": _pool_mode(layer.mode, where),
            "implementation": layer.implementation,
            "first_bins_only": any(s is None for s in layer.input_shape[2:])}, {}


def _describe_batch_norm(layer, where):
    # Folded: y = x * scale + shift, computed in float64 from the evaluated parameters.
    def value(param, default):
        if param is None:
            return default
        return _evaluate(param, "float64", f"{where} parameter").astype(np.float64)

    mean = value(layer.mean, None)
    inv_std = value(layer.inv_std, None)
    gamma = value(layer.gamma, 1.0)
    beta = value(layer.beta, 0.0)
    scale = np.broadcast_to(gamma * inv_std, mean.shape)
    shift = np.broadcast_to(beta - mean * scale, mean.shape)
    dtype = pytensor.config.floatX
    # np.array copies the broadcast views into C-ordered floatX arrays (0-d when every
    # axis is normalized)
    return ({"axes": [int(a) for a in layer.axes]},
            {"scale": T.constant(np.array(scale, dtype=dtype, order="C")),
             "shift": T.constant(np.array(shift, dtype=dtype, order="C"))})


def _describe_lrn(layer, where):
    return {"alpha": float(layer.alpha), "k": float(layer.k), "beta": float(layer.beta),
            "n": int(layer.n)}, {}


def _describe_standardization(layer, where):
    return {"axes": [int(a) for a in layer.axes], "epsilon": float(layer.epsilon)}, {}


# -- special layers: rectifiers, inverses, spatial transformers -------------------------

def _describe_prelu(layer, where):
    return {"shared_axes": [int(a) for a in layer.shared_axes]}, {"alpha": layer.alpha}


def _scalar(value, what, where):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return float(_evaluate(value, "float64", f"{where} {what}"))


def _describe_rrelu(layer, where):
    return {"lower": _scalar(layer.lower, "lower", where),
            "upper": _scalar(layer.upper, "upper", where)}, {}


def _describe_inverse(layer, where):
    from runtime.layers.special import INVERTIBLE_NONLINEARITIES, INVERTIBLE_TYPES

    inverted = layer.layer
    type_name = type(inverted).__name__
    inner_where = f"{where}, inverting a {type_name}"
    if type_name not in INVERTIBLE_TYPES or getattr(L, type_name, None) is not type(inverted):
        raise ExportError(f"{where}: the inverse of a {type_name} cannot be exported; bundles "
                          f"invert {', '.join(INVERTIBLE_TYPES)}")
    config, params = _DESCRIBERS[type_name](inverted, inner_where)
    nonlinearity = config.get("nonlinearity")
    if nonlinearity is not None and nonlinearity.get("name") not in INVERTIBLE_NONLINEARITIES:
        raise ExportError(f"{inner_where}: cannot export the inverse through its nonlinearity "
                          f"{nonlinearity.get('name')!r}; supported: "
                          f"{', '.join(INVERTIBLE_NONLINEARITIES)}")
    return {"layer_type": type_name, "layer_config": config}, params


def _describe_transformer(layer, where):
    return {"downsample_factor": [float(f) for f in layer.downsample_factor],
            "border_mode": layer.border_mode}, {}


def _describe_tps_transformer(layer, where):
    config, params = _describe_transformer(layer, where)
    config["control_points"] = int(layer.control_points)
    return config, params


_DESCRIBERS = {
    "InputLayer": _describe_input,
    "DenseLayer": _describe_dense,
    "NINLayer": _describe_nin,
    "NonlinearityLayer": _describe_nonlinearity,
    "BiasLayer": _describe_bias,
    "ScaleLayer": _describe_scale,
    "ExpressionLayer": _describe_expression,
    "DropoutLayer": _describe_identity,
    "GaussianNoiseLayer": _describe_identity,
    "FlattenLayer": _describe_flatten,
    "ReshapeLayer": _describe_reshape,
    "DimshuffleLayer": _describe_dimshuffle,
    "SliceLayer": _describe_slice,
    "PadLayer": _describe_pad,
    "ConcatLayer": _describe_concat,
    "ElemwiseSumLayer": _describe_sum,
    "ElemwiseMergeLayer": _describe_merge,
    "Conv1DLayer": _describe_conv,
    "Conv2DLayer": _describe_conv,
    "Conv3DLayer": _describe_conv,
    "DilatedConv2DLayer": _describe_dilated_conv,
    "TransposedConv2DLayer": _describe_transposed_conv,
    "TransposedConv3DLayer": _describe_transposed_conv,
    "LocallyConnected2DLayer": _describe_locally_connected,
    "Pool1DLayer": _describe_pool,
    "Pool2DLayer": _describe_pool,
    "Pool3DLayer": _describe_pool,
    "MaxPool1DLayer": _describe_pool,
    "MaxPool2DLayer": _describe_pool,
    "MaxPool3DLayer": _describe_pool,
    "GlobalPoolLayer": _describe_global_pool,
    "Upscale1DLayer": _describe_upscale,
    "Upscale2DLayer": _describe_upscale,
    "Upscale3DLayer": _describe_upscale,
    "FeaturePoolLayer": _describe_feature_pool,
    "FeatureWTALayer": _describe_feature_wta,
    "SpatialPyramidPoolingLayer": _describe_spp,
    "BatchNormLayer": _describe_batch_norm,
    "LocalResponseNormalization2DLayer": _describe_lrn,
    "StandardizationLayer": _describe_standardization,
    "ParametricRectifierLayer": _describe_prelu,
    "RandomizedRectifierLayer": _describe_rrelu,
    "InverseLayer": _describe_inverse,
    "TransformerLayer": _describe_transformer,
    "TPSTransformerLayer": _describe_tps_transformer,
}


# -- embedding and recurrent layers ---------------------------------------------------

def _describe_embedding(layer, where):
    return {"input_size": int(layer.input_size), "output_size": int(layer.output_size)}, \
        {"W": layer.W}


def _recurrent_common(layer, where):
    """Flags and initial states every recurrent layer exports (the training-only options
    precompute_input, unroll_scan, gradient_steps, grad_clipping and learn_init do not
    change the output of the dense forms; the general CustomRecurrentLayer form stores
    precompute_input, which does matter when its input network mixes rows)."""
    config = {"num_units": int(layer.hidden_shape[0]), "backwards": layer.backwards,
              "only_return_final": layer.only_return_final,
              "mask_input": layer.mask_incoming_index > 0}
    params = {}
    for state, index in layer._init_incoming_index.items():
        config[f"{state}_init_input"] = index > 0
        params[f"{state}_init"] = None if index > 0 else getattr(layer, f"{state}_init")
    return config, params


def _step_nonlinearity(layer, fn, where, what):
    return nonlinearity_spec(fn, f"{where} ({what})",
                             (None,) + tuple(int(s) for s in layer.hidden_shape))


def _dense_subnetwork(layer, attr):
    """The DenseLayer (num_leading_axes=1, on its InputLayer) that a CustomRecurrentLayer
    network consists of, or None."""
    chain = get_all_layers(getattr(layer, attr))
    dense = chain[-1]
    if (len(chain) == 2 and type(dense) is L.DenseLayer and len(layer.hidden_shape) == 1
            and dense.num_leading_axes % len(dense.input_shape) == 1):
        return dense
    return None


def _incoming(layer):
    if isinstance(layer, L.InputLayer):
        return []
    return layer.input_layers if isinstance(layer, L.MergeLayer) else [layer.input_layer]


def _shape(shape):
    """A shape as a JSON list: ints, and null for a free axis."""
    return [None if s is None else int(s) for s in shape]


def _entry(layer, names, type_name, config, param_keys):
    """The manifest entry of ``layer`` (``names``: every layer's name in its graph)."""
    return {"name": names[layer], "type": type_name,
            "inputs": [names[i] for i in _incoming(layer)], "config": config,
            "params": param_keys, "output_shape": _shape(layer.output_shape)}


def _describe_subnetwork(layer, attr, where):
    """A CustomRecurrentLayer network as nested layer entries, and the parameters they
    name (``<attr>.<sub-layer>.<param>``, parameters of the recurrent layer)."""
    net = getattr(layer, attr)
    sub_layers = get_all_layers(net)
    names = _assign_names(sub_layers, [net])
    entries, params = [], {}
    for sub in sub_layers:
        name = names[sub]
        try:
            type_name, config, sub_params = _describe(sub, name)
        except ExportError as exc:
            raise ExportError(f"{where}: in its {attr} network: {exc}") from None
        refs = {}
        for pname, expr in sub_params.items():
            refs[pname] = None if expr is None else f"{attr}.{name}.{pname}"
            if expr is not None:
                params[refs[pname]] = expr
        entries.append(_entry(sub, names, type_name, config, refs))
    return entries, params


def _is_named(fn):
    """Whether ``fn`` is stored by name (not lowered to a program)."""
    try:
        return nonlinearity_spec(fn, "").get("name") != "program"
    except ExportError:
        return False


def _describe_custom_recurrent(layer, where):
    in_dense = _dense_subnetwork(layer, "input_to_hidden")
    hid_dense = _dense_subnetwork(layer, "hidden_to_hidden")
    config, params = _recurrent_common(layer, where)
    # the dense form applies input_nonlinearity to the whole (time, batch, units) sequence,
    # which a program lowered for (rows, units) cannot take: such a network stays nested
    if in_dense is not None and not _is_named(in_dense.nonlinearity):
        in_dense = None
    if in_dense is None or hid_dense is None:  # the general form: nested networks
        del config["num_units"]
        # precompute_input matters here: input_to_hidden then sees all steps' rows at
        # once rather than one step's, which a layer mixing rows would notice
        config.update(hidden_shape=[int(s) for s in layer.hidden_shape],
                      nonlinearity=_step_nonlinearity(layer, layer.nonlinearity, where,
                                                      "nonlinearity"),
                      precompute_input=bool(layer.precompute_input))
        for attr in ("input_to_hidden", "hidden_to_hidden"):
            config[attr], net_params = _describe_subnetwork(layer, attr, where)
            params.update(net_params)
        return config, params
    config.update(
        nonlinearity=_step_nonlinearity(layer, layer.nonlinearity, where, "nonlinearity"),
        input_nonlinearity=_step_nonlinearity(layer, in_dense.nonlinearity, where,
                                              "input_to_hidden"),
        hidden_nonlinearity=_step_nonlinearity(layer, hid_dense.nonlinearity, where,
                                               "hidden_to_hidden"))
    params.update(W_in_to_hid=in_dense.W, b_in_to_hid=in_dense.b, W_hid_to_hid=hid_dense.W,
                  b_hid_to_hid=hid_dense.b)
    return config, params


def _describe_recurrent(layer, where):
    config, params = _recurrent_common(layer, where)
    config["nonlinearity"] = _step_nonlinearity(layer, layer.nonlinearity, where,
                                                "nonlinearity")
    params.update(W_in_to_hid=layer.W_in_to_hid, W_hid_to_hid=layer.W_hid_to_hid,
                  b=layer.b)
    return config, params


def _describe_gated(layer, where):
    config, params = _recurrent_common(layer, where)
    for gate in layer._gate_names:
        config[f"nonlinearity_{gate}"] = _step_nonlinearity(
            layer, getattr(layer, f"nonlinearity_{gate}"), where, gate)
        for kind in ("W_in_to", "W_hid_to", "b"):
            params[f"{kind}_{gate}"] = getattr(layer, f"{kind}_{gate}")
    return config, params


def _describe_lstm(layer, where):
    config, params = _describe_gated(layer, where)
    config["nonlinearity"] = _step_nonlinearity(layer, layer.nonlinearity, where,
                                                "nonlinearity")
    config["peepholes"] = layer.peepholes
    for gate in ("ingate", "forgetgate", "outgate"):
        params[f"W_cell_to_{gate}"] = getattr(layer, f"W_cell_to_{gate}", None) \
            if layer.peepholes else None
    return config, params


_DESCRIBERS.update({
    "EmbeddingLayer": _describe_embedding,
    "CustomRecurrentLayer": _describe_custom_recurrent,
    "RecurrentLayer": _describe_recurrent,
    "LSTMLayer": _describe_lstm,
    "GRULayer": _describe_gated,
})


def _describe(layer, name):
    """(type name, config, params) for one layer, refusing what cannot be exported."""
    type_name = type(layer).__name__
    where = f"layer {name!r} ({type_name})"
    describer = _DESCRIBERS.get(type_name)
    if describer is None or getattr(L, type_name, None) is not type(layer):
        supported = ", ".join(sorted(_DESCRIBERS))
        raise ExportError(f"{where} cannot be exported: the bundle format has no layer "
                          f"of this type (a subclass of a forge layer counts as a new "
                          f"type). Supported types: {supported}")
    config, params = describer(layer, where)
    return type_name, config, params


# -- arrays --------------------------------------------------------------------------

def _evaluate(expr, dtype, where):
    """A parameter (shared variable or expression) as a C-contiguous array of ``dtype``."""
    if isinstance(expr, pytensor.compile.SharedVariable):
        value = expr.get_value(borrow=False)
    else:
        try:
            value = pytensor.function([], expr, mode="FAST_COMPILE")()
        except Exception as exc:  # an expression with free inputs, for instance
            raise ExportError(f"{where}: cannot evaluate the parameter expression "
                              f"{expr!r} to an array ({exc})") from exc
    value = np.asarray(value)
    if value.dtype.kind not in "fiub":
        raise ExportError(f"{where}: parameter has dtype {value.dtype}, expected a "
                          "real numeric array")
    if value.dtype.kind == "f":
        value = value.astype(dtype, copy=False)
    # np.asarray(order="C"), not np.ascontiguousarray, which makes 0-d arrays 1-d
    return np.asarray(value, order="C")


def _array_key(layer_name, param_name, used):
    key = _sanitize(f"{layer_name}.{param_name}")
    k, candidate = 1, key
    while candidate in used:
        k += 1
        candidate = f"{key}_{k}"
    return candidate


# -- the parity check ----------------------------------------------------------------

def _random_feeds(input_layers, names, batch_size, seed):
    rng = np.random.RandomState(seed)
    feeds = {}
    for layer in input_layers:
        shape = tuple(batch_size if s is None else s for s in layer.shape)
        dtype = layer.input_var.dtype
        if dtype.startswith(("int", "uint")):
            feeds[names[layer]] = rng.randint(0, 2, size=shape).astype(dtype)
        else:
            feeds[names[layer]] = rng.standard_normal(shape).astype(dtype)
    return feeds


def _with_numpy_storage(exprs):
    """``exprs`` with every shared variable whose value is not a numpy array (e.g. a JAX
    array after training on the JAX backend) replaced by a numpy-backed copy, so the
    check compiles on any backend without touching the user's variables."""
    replace = {}
    for var in graph_inputs(exprs):
        if isinstance(var, pytensor.compile.SharedVariable):
            value = var.get_value(borrow=True)
            if not isinstance(value, np.ndarray):
                replace[var] = pytensor.shared(np.asarray(value), name=var.name,
                                               shape=var.type.shape)
    return clone_replace(exprs, replace) if replace else exprs


def _parity(outputs, input_layers, names, path, batch_size, seed, mode):
    """Run forge and the runtime on the same input; return the error summary."""
    import runtime

    feeds = _random_feeds(input_layers, names, batch_size, seed)
    exprs = _with_numpy_storage(get_output(outputs, deterministic=True))
    fn = pytensor.function([lay.input_var for lay in input_layers], exprs, mode=mode,
                           on_unused_input="ignore")
    expected = fn(*[feeds[names[lay]] for lay in input_layers])
    model = runtime.load(path)
    got = model.run(feeds, outputs=[names[lay] for lay in outputs])
    max_abs, max_rel = 0.0, 0.0
    for layer, want in zip(outputs, expected):
        have = got[names[layer]]
        want = np.asarray(want)
        if have.shape != want.shape:
            raise ParityError(f"output {names[layer]!r}: runtime shape {have.shape}, "
                              f"forge shape {want.shape}")
        err = np.abs(have.astype(np.float64) - want.astype(np.float64))
        rel = err / np.maximum(1.0, np.abs(want.astype(np.float64)))
        if err.size:
            max_abs = max(max_abs, float(np.nanmax(err)))
            max_rel = max(max_rel, float(np.nanmax(rel)))
        if not np.all(np.isfinite(have) == np.isfinite(want)) or (rel.size and np.nanmax(rel) > PARITY_RTOL):
            raise ParityError(f"output {names[layer]!r}: runtime differs from forge by up "
                              f"to {float(np.nanmax(err)):.3g} (relative "
                              f"{float(np.nanmax(rel)):.3g}), above the tolerance "
                              f"{PARITY_RTOL:g} * max(1, |y|)")
    return {"checked": True, "max_abs_error": max_abs, "max_rel_error": max_rel,
            "tolerance": f"{PARITY_RTOL:g} * max(1, |y|)", "batch_size": batch_size,
            "seed": seed}


# -- export --------------------------------------------------------------------------

def _created():
    info = {"by": "forge 0.1.0",
            "at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "python": platform.python_version(), "numpy": np.__version__,
            "pytensor": pytensor.__version__}
    return info


def build_bundle(layer_or_layers, metadata=None):
    """The manifest and arrays :func:`export` writes, without writing them.

    Returns ``(manifest, arrays, outputs, input_layers, names)``.
    """
    outputs = (list(layer_or_layers) if isinstance(layer_or_layers, (list, tuple))
               else [layer_or_layers])
    if not outputs:
        raise ExportError("export needs at least one output layer, got an empty list")
    for out in outputs:
        if not isinstance(out, L.Layer):
            raise ExportError(f"export takes forge layers, got {type(out).__name__}")
    if metadata is None:
        metadata = {}
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ExportError(f"metadata must be JSON-serialisable (strings, numbers, lists, "
                          f"dicts): {exc}") from exc

    dtype = pytensor.config.floatX
    layers = get_all_layers(outputs)
    names = _assign_names(layers, outputs)
    input_layers = [lay for lay in layers if isinstance(lay, L.InputLayer)]

    arrays, by_digest, entries = {}, {}, []
    for layer in layers:
        name = names[layer]
        type_name, config, params = _describe(layer, name)
        param_keys = {}
        for pname, expr in params.items():
            if expr is None:
                param_keys[pname] = None
                continue
            value = _evaluate(expr, dtype, f"layer {name!r} parameter {pname!r}")
            digest = (value.dtype.str, value.shape, hashlib.sha256(value.tobytes()).hexdigest())
            if digest not in by_digest:  # an array shared by several layers is stored once
                key = _array_key(name, pname, arrays)
                arrays[key] = value
                by_digest[digest] = key
            param_keys[pname] = by_digest[digest]
        entries.append(_entry(layer, names, type_name, config, param_keys))

    def spec(layer, dt):
        return {"name": names[layer], "dtype": dt, "shape": _shape(layer.output_shape)}

    manifest = {
        "format": "forge-bundle",
        "format_version": 1,
        "created": _created(),
        "metadata": metadata,
        "dtype": dtype,
        "inputs": [spec(lay, lay.input_var.dtype) for lay in input_layers],
        "outputs": [spec(lay, dtype) for lay in outputs],
        "layers": entries,
    }
    return manifest, arrays, outputs, input_layers, names


def export(layer_or_layers, path, *, metadata=None, check=True, batch_size=4, seed=0,
           mode=None):
    """Write a network to a numpy-only ``.npz`` bundle.

    Parameters
    ----------
    layer_or_layers : Layer or list of Layer
        The output layer(s). Every layer they depend on is exported.
    path : str or os.PathLike
        Destination file. Written atomically: a crash leaves the old file or the new.
    metadata : dict, optional
        JSON-serialisable user data stored in the manifest (e.g. ``{"labels": [...]}``;
        the service reports class labels from it).
    check : bool
        Load the bundle with :mod:`runtime`, run it next to forge's compiled
        deterministic function on random input and raise :class:`ParityError` if any
        output differs by more than ``1e-5 * max(1, |y|)``. The measured error is
        stored in the manifest's ``parity`` entry.
    batch_size, seed : int
        Size of free axes and seed of the random input used by the check.
    mode : str, optional
        PyTensor compilation mode for the check (default: PyTensor's configured mode).

    Returns
    -------
    dict
        The manifest that was written.

    Examples
    --------
    >>> import os, tempfile
    >>> import forge
    >>> from forge.layers import InputLayer, DenseLayer
    >>> l_in = InputLayer((None, 8))
    >>> l_out = DenseLayer(l_in, num_units=3, nonlinearity=forge.nonlinearities.softmax)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> manifest = forge.export(l_out, path, metadata={"labels": ["a", "b", "c"]})
    >>> [layer["type"] for layer in manifest["layers"]]
    ['InputLayer', 'DenseLayer']
    >>> manifest["parity"]["max_rel_error"] <= 1e-5
    True
    """
    from runtime.bundle import write_bundle

    manifest, arrays, outputs, input_layers, names = build_bundle(layer_or_layers, metadata)
    path = os.fspath(path)
    if check:
        folder = os.path.dirname(os.path.abspath(path))
        fd, scratch = tempfile.mkstemp(prefix=".forge-check-", suffix=".npz", dir=folder)
        os.close(fd)
        try:
            write_bundle(scratch, dict(manifest), arrays)
            manifest["parity"] = _parity(outputs, input_layers, names, scratch,
                                         batch_size, seed, mode)
        finally:
            os.unlink(scratch)
    write_bundle(path, manifest, arrays)
    return manifest
