"""Weight penalties to add to a training loss.

A penalty maps one parameter tensor to a scalar (:func:`l1`, :func:`l2`, or any function
of your own with that signature). The helpers apply it to a set of tensors, to the
parameters of chosen layers, or to every parameter of a network, and sum the results::

    import forge as lasagne
    from forge.regularization import regularize_network_params, l2

    loss = lasagne.objectives.categorical_crossentropy(prediction, target_var).mean()
    loss = loss + 1e-4 * regularize_network_params(network, l2)

By default only parameters tagged ``regularizable`` are penalized: the weights of a
:class:`~forge.layers.DenseLayer` are, its biases are not.
"""
import numbers

import numpy as np
import pytensor.tensor as T
from pytensor.graph.basic import Variable

__all__ = [
    "l1",
    "l2",
    "apply_penalty",
    "regularize_layer_params",
    "regularize_layer_params_weighted",
    "regularize_network_params",
]


def l1(x):
    """Sum of absolute values, :math:`\\sum |x|`.

    Parameters
    ----------
    x : PyTensor tensor
        The tensor to penalize.

    Returns
    -------
    PyTensor scalar

    Examples
    --------
    >>> import numpy as np
    >>> from forge.regularization import l1
    >>> float(l1(np.float32([1.0, -2.0, 0.5])).eval())
    3.5
    """
    return T.sum(abs(x))


def l2(x):
    """Sum of squares, :math:`\\sum x^2` (no factor 1/2, as in Lasagne).

    Parameters
    ----------
    x : PyTensor tensor
        The tensor to penalize.

    Returns
    -------
    PyTensor scalar

    Examples
    --------
    >>> import numpy as np
    >>> from forge.regularization import l2
    >>> float(l2(np.float32([1.0, -2.0, 0.5])).eval())
    5.25
    """
    return T.sum(T.square(x))


def apply_penalty(tensor_or_tensors, penalty, **kwargs):
    """Apply `penalty` to one tensor, or to each of several tensors and sum.

    Parameters
    ----------
    tensor_or_tensors : PyTensor variable or iterable of them
        One tensor, or a list (any iterable) of tensors such as a network's parameters.
    penalty : callable
        Maps a tensor (and `kwargs`) to a scalar, e.g. :func:`l1` or :func:`l2`.
    **kwargs
        Passed on to `penalty`.

    Returns
    -------
    PyTensor scalar
        The penalty, summed over the tensors (the number ``0`` for an empty list).

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> from forge.regularization import apply_penalty, l2
    >>> w = pytensor.shared(np.float32([[1.0, 2.0]]))
    >>> b = pytensor.shared(np.float32([3.0]))
    >>> float(apply_penalty([w, b], l2).eval())
    14.0
    """
    if isinstance(tensor_or_tensors, (Variable, np.ndarray, numbers.Number)):
        return penalty(tensor_or_tensors, **kwargs)
    return sum(penalty(x, **kwargs) for x in tensor_or_tensors)


def _params_of(layer, tags):
    """Return the tag-filtered parameters of one layer or of each layer in a list."""
    # Duck typing: anything with get_params is one layer; anything else is a list.
    layers = [layer] if hasattr(layer, "get_params") else list(layer)
    params = []
    for one_layer in layers:
        if not hasattr(one_layer, "get_params"):
            raise TypeError(
                f"regularize_layer_params needs a layer or a list of layers (objects "
                f"with get_params); got {one_layer!r}"
            )
        params.extend(one_layer.get_params(**tags))
    return params


def regularize_layer_params(layer, penalty, tags={"regularizable": True}, **kwargs):
    """Penalty of the parameters of one layer, or of each of several layers.

    Only the layers' own parameters count, not those of the layers below them (see
    :func:`regularize_network_params` for that).

    Parameters
    ----------
    layer : Layer or list of Layer
        The layer(s) whose parameters to penalize.
    penalty : callable
        Maps a tensor to a scalar, e.g. :func:`l1` or :func:`l2`.
    tags : dict, optional
        Tag filter passed to ``layer.get_params(**tags)``; the default selects the
        parameters tagged ``regularizable``.
    **kwargs
        Passed on to `penalty`.

    Returns
    -------
    PyTensor scalar
        The summed penalty.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.layers import InputLayer, DenseLayer
    >>> from forge.regularization import regularize_layer_params, l1
    >>> l_in = InputLayer((None, 2))
    >>> l_out = DenseLayer(l_in, num_units=2, W=np.ones((2, 2), "float32"))
    >>> float(regularize_layer_params(l_out, l1).eval())  # W only, not b
    4.0
    """
    return apply_penalty(_params_of(layer, tags), penalty, **kwargs)


def regularize_layer_params_weighted(layers, penalty, tags={"regularizable": True},
                                     **kwargs):
    """Weighted sum of the penalties of several layers' parameters.

    Parameters
    ----------
    layers : dict
        Maps each layer to its coefficient.
    penalty : callable
        Maps a tensor to a scalar, e.g. :func:`l1` or :func:`l2`.
    tags : dict, optional
        Tag filter passed to ``layer.get_params(**tags)``; the default selects the
        parameters tagged ``regularizable``.
    **kwargs
        Passed on to `penalty`.

    Returns
    -------
    PyTensor scalar
        :math:`\\sum_{\\text{layer}} c_{\\text{layer}} \\cdot
        \\text{penalty}(\\text{params of layer})`.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.layers import InputLayer, DenseLayer
    >>> from forge.regularization import regularize_layer_params_weighted, l2
    >>> l_in = InputLayer((None, 2))
    >>> l_1 = DenseLayer(l_in, num_units=2, W=np.ones((2, 2), "float32"))
    >>> l_2 = DenseLayer(l_1, num_units=1, W=np.ones((2, 1), "float32"))
    >>> penalty = regularize_layer_params_weighted({l_1: 0.5, l_2: 0.1}, l2)
    >>> round(float(penalty.eval()), 4)
    2.2
    """
    if not hasattr(layers, "items"):
        raise TypeError(
            f"regularize_layer_params_weighted needs a dict mapping layers to their "
            f"coefficients; got {type(layers).__name__} {layers!r}"
        )
    return sum(coefficient * apply_penalty(_params_of(layer, tags), penalty, **kwargs)
               for layer, coefficient in layers.items())


def regularize_network_params(layer, penalty, tags={"regularizable": True}, **kwargs):
    """Penalty of every parameter in the network below (and including) `layer`.

    Parameters
    ----------
    layer : Layer or list of Layer
        The output layer(s) of the network.
    penalty : callable
        Maps a tensor to a scalar, e.g. :func:`l1` or :func:`l2`.
    tags : dict, optional
        Tag filter passed to :func:`forge.layers.get_all_params`; the default selects
        the parameters tagged ``regularizable``.
    **kwargs
        Passed on to `penalty`.

    Returns
    -------
    PyTensor scalar
        The summed penalty.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.layers import InputLayer, DenseLayer
    >>> from forge.regularization import regularize_network_params, l1
    >>> l_in = InputLayer((None, 2))
    >>> l_1 = DenseLayer(l_in, num_units=2, W=np.ones((2, 2), "float32"))
    >>> l_2 = DenseLayer(l_1, num_units=1, W=np.ones((2, 1), "float32"))
    >>> float(regularize_network_params(l_2, l1).eval())  # both W, no b
    6.0
    """
    from .layers import get_all_params  # here, so this module loads without layers

    return apply_penalty(get_all_params(layer, **tags), penalty, **kwargs)
