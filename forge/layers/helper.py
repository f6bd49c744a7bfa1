"""Functions that walk a whole network: outputs, shapes and parameters."""
from difflib import get_close_matches
from warnings import warn

import numpy as np

from .. import utils
from .base import Layer, MergeLayer
from .input import InputLayer

__all__ = [
    "get_all_layers", "get_output", "get_output_shape", "get_all_params",
    "count_params", "get_all_param_values", "set_all_param_values",
]


def _as_layer_list(layer_or_layers):
    """Return ``(layers, single)``: the layers as a list, and whether one was given."""
    if isinstance(layer_or_layers, Layer):
        return [layer_or_layers], True
    return list(layer_or_layers), False


def _incoming(layer):
    if isinstance(layer, MergeLayer):
        return layer.input_layers
    return [getattr(layer, "input_layer", None)]


def get_all_layers(layer, treat_as_input=None):
    """Return every layer that the given layer(s) depend on, in topological order.

    A layer comes after all the layers it reads from. The order is that of a
    depth-first walk that visits a layer's inputs in order, so for a chain it is
    input to output, and the given layers come last (in their order, unless one
    depends on another).

    Parameters
    ----------
    layer : Layer or list of Layer
        The output layer(s).
    treat_as_input : iterable of Layer, optional
        Layers whose inputs are not followed: they are listed, but what feeds them
        is not (unless something else depends on it).

    Returns
    -------
    list of Layer

    Examples
    --------
    >>> from forge.layers import InputLayer, DenseLayer, get_all_layers
    >>> l_in = InputLayer((None, 10))
    >>> l1 = DenseLayer(l_in, 5)
    >>> l2 = DenseLayer(l1, 2)
    >>> get_all_layers(l2) == [l_in, l1, l2]
    True
    >>> get_all_layers(l2, treat_as_input=[l1]) == [l1, l2]
    True
    """
    outputs, _ = _as_layer_list(layer)
    stop = set(treat_as_input or ())
    result, done, entered = [], set(), set()
    # A stack of (layer, inputs_done) pairs: a layer is listed when it is popped the
    # second time, after all its inputs.
    stack = [(node, False) for node in reversed(outputs)]
    while stack:
        node, inputs_done = stack.pop()
        if node is None or node in done:
            continue
        if inputs_done or node in stop:
            done.add(node)
            result.append(node)
        elif node not in entered:  # (entered but not done: a cycle; skip it)
            entered.add(node)
            stack.append((node, True))
            stack.extend((parent, False) for parent in reversed(_incoming(node)))
    return result


def _accepted_kwargs(layer):
    names = set(getattr(layer, "get_output_kwargs", ()))
    try:
        names.update(utils.inspect_kwargs(layer.get_output_for))
    except (TypeError, ValueError):  # no introspectable signature
        pass
    return names


def get_output(layer_or_layers, inputs=None, **kwargs):
    """Return the output expression(s) of the given layer(s).

    Parameters
    ----------
    layer_or_layers : Layer or list of Layer
        The layer(s) whose output to compute.
    inputs : None, expression, numpy array or dict, optional
        What to feed the network: ``None`` uses the ``input_var`` of every
        ``InputLayer``; an expression or array replaces the input variable of the
        network's single ``InputLayer``; a dict maps layers (of any kind) to the
        expressions or arrays to use as their outputs.
    **kwargs
        Passed to every layer's ``get_output_for``, e.g. ``deterministic=True`` to
        switch off dropout and noise. A warning names the keyword arguments no layer
        accepted (a likely typo).

    Returns
    -------
    PyTensor expression, or a list of them for a list of layers

    Raises
    ------
    ValueError
        If one input expression is given for a network of several input layers, or a
        layer has no input (built from a shape) and ``inputs`` does not provide one.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.layers import InputLayer, DenseLayer, get_output
    >>> l_out = DenseLayer(InputLayer((None, 3)), 2, W=np.ones((3, 2)), b=None)
    >>> get_output(l_out, np.array([[1.0, 2.0, 3.0]])).eval()
    array([[6., 6.]])
    """
    requested, single = _as_layer_list(layer_or_layers)
    given = dict(inputs) if isinstance(inputs, dict) else {}
    all_layers = get_all_layers(requested, treat_as_input=given.keys())

    outputs = {layer: layer.input_var for layer in all_layers
               if isinstance(layer, InputLayer) and layer not in given}
    if isinstance(inputs, dict):
        outputs.update((layer, utils.as_theano_expression(expr))
                       for layer, expr in given.items())
    elif inputs is not None:
        if len(outputs) > 1:
            raise ValueError(
                f"get_output() got one input expression for a network of "
                f"{len(outputs)} input layers; pass a dict {{input_layer: expression}}"
            )
        for input_layer in outputs:
            outputs[input_layer] = utils.as_theano_expression(inputs)

    accepted = {"deterministic"}
    for layer in all_layers:
        if layer in outputs:
            continue
        parents = _incoming(layer)
        missing = [p for p in parents if p not in outputs]
        if missing:
            raise ValueError(
                f"get_output() has no input expression for {layer!r}, which was built "
                f"from a shape rather than a layer; pass inputs={{layer: expression}} "
                f"for it"
            )
        if isinstance(layer, MergeLayer):
            layer_input = [outputs[p] for p in parents]
        else:
            layer_input = outputs[parents[0]]
        outputs[layer] = layer.get_output_for(layer_input, **kwargs)
        accepted |= _accepted_kwargs(layer)

    unused = sorted(set(kwargs) - accepted)
    if unused:
        hints = []
        for name in unused:
            close = get_close_matches(name, sorted(accepted), n=1)
            hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
        warn(f"get_output() was called with keyword arguments that no layer accepts: "
             f"{', '.join(hints)}", UserWarning, stacklevel=2)

    if single:
        return outputs[requested[0]]
    return [outputs[layer] for layer in requested]


def get_output_shape(layer_or_layers, input_shapes=None):
    """Return the output shape(s) of the given layer(s), for other input shapes.

    Parameters
    ----------
    layer_or_layers : Layer or list of Layer
        The layer(s) whose output shape to compute.
    input_shapes : None, tuple or dict, optional
        ``None`` returns the layers' ``output_shape``; a tuple replaces the shape of
        the network's single ``InputLayer``; a dict maps layers to the shapes to use
        as their output shapes.

    Returns
    -------
    tuple, or a list of tuples for a list of layers

    Examples
    --------
    >>> from forge.layers import InputLayer, DenseLayer, get_output_shape
    >>> l_out = DenseLayer(InputLayer((None, 3)), 2)
    >>> get_output_shape(l_out)
    (None, 2)
    >>> get_output_shape(l_out, (16, 3))
    (16, 2)
    """
    requested, single = _as_layer_list(layer_or_layers)
    if not input_shapes:
        shapes = [layer.output_shape for layer in requested]
        return shapes[0] if single else shapes

    given = dict(input_shapes) if isinstance(input_shapes, dict) else {}
    all_layers = get_all_layers(requested, treat_as_input=given.keys())
    shapes = {layer: layer.shape for layer in all_layers
              if isinstance(layer, InputLayer) and layer not in given}
    if isinstance(input_shapes, dict):
        shapes.update((layer, tuple(shape)) for layer, shape in given.items())
    else:
        if len(shapes) > 1:
            raise ValueError(
                f"get_output_shape() got one input shape for a network of "
                f"{len(shapes)} input layers; pass a dict {{input_layer: shape}}"
            )
        for input_layer in shapes:
            shapes[input_layer] = tuple(input_shapes)

    for layer in all_layers:
        if layer in shapes:
            continue
        parents = _incoming(layer)
        if any(p not in shapes for p in parents):
            raise ValueError(
                f"get_output_shape() has no input shape for {layer!r}, which was built "
                f"from a shape rather than a layer; pass input_shapes={{layer: shape}}"
            )
        if isinstance(layer, MergeLayer):
            shapes[layer] = layer.get_output_shape_for([shapes[p] for p in parents])
        else:
            shapes[layer] = layer.get_output_shape_for(shapes[parents[0]])

    if single:
        return shapes[requested[0]]
    return [shapes[layer] for layer in requested]


def get_all_params(layer, unwrap_shared=True, **tags):
    """Return the parameters of every layer of the network, once each.

    Parameters
    ----------
    layer : Layer or list of Layer
        The output layer(s).
    unwrap_shared : bool
        If True, return the shared variables (a parameter given as an expression is
        replaced by the shared variables inside it); if False, the parameters as the
        layers registered them.
    **tags
        ``tag=True`` keeps only parameters with the tag, ``tag=False`` drops them
        (e.g. ``trainable=True``, ``regularizable=True``).

    Returns
    -------
    list

    Examples
    --------
    >>> from forge.layers import InputLayer, DenseLayer, get_all_params
    >>> l_out = DenseLayer(InputLayer((None, 3)), 2, name="out")
    >>> [p.name for p in get_all_params(l_out)]
    ['out.W', 'out.b']
    >>> [p.name for p in get_all_params(l_out, regularizable=True)]
    ['out.W']
    """
    params = []
    for each in get_all_layers(layer):
        params.extend(each.get_params(unwrap_shared=unwrap_shared, **tags))
    return utils.unique(params)


def count_params(layer, **tags):
    """Return the number of scalar parameters of the network (filtered by tags).

    Examples
    --------
    >>> from forge.layers import InputLayer, DenseLayer, count_params
    >>> count_params(DenseLayer(InputLayer((None, 3)), 2))
    8
    """
    params = get_all_params(layer, **tags)
    return int(sum(np.prod(p.get_value(borrow=True).shape) for p in params))


def get_all_param_values(layer, **tags):
    """Return the values of the network's parameters, in ``get_all_params`` order.

    Examples
    --------
    >>> from forge.layers import InputLayer, DenseLayer, get_all_param_values
    >>> [v.shape for v in get_all_param_values(DenseLayer(InputLayer((None, 3)), 2))]
    [(3, 2), (2,)]
    """
    return [p.get_value() for p in get_all_params(layer, **tags)]


def set_all_param_values(layer, values, **tags):
    """Set the values of the network's parameters, in ``get_all_params`` order.

    Every value is checked before any is set, so a mismatch leaves the network as
    it was.

    Parameters
    ----------
    layer : Layer or list of Layer
        The output layer(s).
    values : list of numpy.ndarray
        One array per parameter, e.g. from ``get_all_param_values`` or
        ``forge.utils.load_param_values``. Values are cast to each parameter's dtype
        when that is safe within their kind (float64 to float32, say).
    **tags
        As for ``get_all_params``.

    Raises
    ------
    ValueError
        If the number of values or a shape does not match.

    Examples
    --------
    >>> from forge.layers import (InputLayer, DenseLayer, get_all_param_values,
    ...                           set_all_param_values)
    >>> net = DenseLayer(InputLayer((None, 3)), 2)
    >>> set_all_param_values(net, get_all_param_values(net))
    """
    params = get_all_params(layer, **tags)
    values = list(values)
    if len(values) != len(params):
        raise ValueError(
            f"set_all_param_values() expected {len(params)} arrays, one per parameter, "
            f"got {len(values)}"
        )
    checked = []
    for index, (param, value) in enumerate(zip(params, values)):
        value = np.asarray(value)
        current = param.get_value(borrow=True)
        if value.shape != current.shape:
            raise ValueError(
                f"parameter #{index} ({param.name or 'unnamed'}) has shape "
                f"{current.shape}, got an array of shape {value.shape}"
            )
        if not np.can_cast(value.dtype, current.dtype, casting="same_kind"):
            raise ValueError(
                f"parameter #{index} ({param.name or 'unnamed'}) has dtype "
                f"{current.dtype}, got an array of dtype {value.dtype}"
            )
        checked.append(value.astype(current.dtype, copy=False))
    for param, value in zip(params, checked):
        param.set_value(value)
