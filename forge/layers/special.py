"""Layers that apply a function, a bias or a scale to their input."""
import numbers

import numpy as np
import pytensor
import pytensor.tensor as T

from .. import init, nonlinearities
from .base import Layer

__all__ = ["NonlinearityLayer", "BiasLayer", "ScaleLayer", "ExpressionLayer"]


class NonlinearityLayer(Layer):
    """Apply a nonlinearity to the input.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    nonlinearity : callable or None
        The function; ``None`` means linear.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, NonlinearityLayer
    >>> from forge.nonlinearities import softmax
    >>> NonlinearityLayer(InputLayer((None, 10)), softmax).output_shape
    (None, 10)
    """

    def __init__(self, incoming, nonlinearity=nonlinearities.rectify, name=None):
        super().__init__(incoming, name=name)
        self.nonlinearity = nonlinearities.identity if nonlinearity is None else nonlinearity

    def get_output_for(self, input, **kwargs):
        return self.nonlinearity(input)


def _parse_shared_axes(shared_axes, input_shape, layer_type):
    """Return shared_axes as a tuple of non-negative axes of ``input_shape``."""
    ndim = len(input_shape)
    if isinstance(shared_axes, str):
        if shared_axes != "auto":
            raise ValueError(
                f"shared_axes must be 'auto', an int or a tuple of ints, got "
                f"{shared_axes!r}"
            )
        return (0,) + tuple(range(2, ndim))
    if isinstance(shared_axes, numbers.Integral):
        shared_axes = (shared_axes,)
    axes = []
    for axis in shared_axes:
        if not -ndim <= axis < ndim:
            raise ValueError(
                f"{layer_type} got shared_axes={tuple(shared_axes)} for a "
                f"{ndim}-dimensional input; every axis must be in [-{ndim}, {ndim})"
            )
        axes.append(int(axis) % ndim)
    return tuple(axes)


def _per_axis_param_shape(input_shape, shared_axes, layer_type):
    shape = tuple(s for axis, s in enumerate(input_shape) if axis not in shared_axes)
    if any(s is None for s in shape):
        raise ValueError(
            f"{layer_type} needs fixed sizes on every axis it does not share its "
            f"parameters over, got input shape {input_shape} with shared_axes="
            f"{shared_axes}"
        )
    return shape


def _broadcast_pattern(param, shared_axes, ndim):
    """The dimshuffle pattern that lines ``param`` up with an ``ndim``-dim input."""
    param_axes = iter(range(param.ndim))
    return ["x" if axis in shared_axes else next(param_axes) for axis in range(ndim)]


class BiasLayer(Layer):
    """Add a learned bias to the input.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    b : initializer, numpy array, shared variable, expression or None
        The biases; their shape is the input shape without the shared axes.
        ``None`` makes the layer an identity.
    shared_axes : 'auto', int or tuple of int
        Axes over which one bias is shared. ``'auto'`` shares over every axis but the
        second (one bias per channel/unit).
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, BiasLayer
    >>> l_in = InputLayer((None, 3, 5, 5))
    >>> BiasLayer(l_in).b.get_value().shape
    (3,)
    >>> BiasLayer(l_in, shared_axes=(0, 1)).b.get_value().shape
    (5, 5)
    """

    def __init__(self, incoming, b=init.Constant(0), shared_axes="auto", name=None):
        super().__init__(incoming, name=name)
        self.shared_axes = _parse_shared_axes(shared_axes, self.input_shape, "BiasLayer")
        if b is None:
            self.b = None
        else:
            shape = _per_axis_param_shape(self.input_shape, self.shared_axes, "BiasLayer")
            self.b = self.add_param(b, shape, name="b", regularizable=False)

    def get_output_for(self, input, **kwargs):
        if self.b is None:
            return input
        pattern = _broadcast_pattern(self.b, self.shared_axes, input.ndim)
        return input + self.b.dimshuffle(*pattern)


class ScaleLayer(Layer):
    """Multiply the input by learned scales.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    scales : initializer, numpy array, shared variable or expression
        The scales; their shape is the input shape without the shared axes.
    shared_axes : 'auto', int or tuple of int
        Axes over which one scale is shared. ``'auto'`` shares over every axis but the
        second (one scale per channel/unit).
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, ScaleLayer
    >>> ScaleLayer(InputLayer((None, 4))).scales.get_value()
    array([1., 1., 1., 1.], dtype=float32)
    """

    def __init__(self, incoming, scales=init.Constant(1), shared_axes="auto", name=None):
        super().__init__(incoming, name=name)
        self.shared_axes = _parse_shared_axes(shared_axes, self.input_shape, "ScaleLayer")
        shape = _per_axis_param_shape(self.input_shape, self.shared_axes, "ScaleLayer")
        self.scales = self.add_param(scales, shape, name="scales", regularizable=False)

    def get_output_for(self, input, **kwargs):
        pattern = _broadcast_pattern(self.scales, self.shared_axes, input.ndim)
        return input * self.scales.dimshuffle(*pattern)


class ExpressionLayer(Layer):
    """Apply any function of one PyTensor expression to the input.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    function : callable
        Maps the input expression to the output expression.
    output_shape : None, 'auto', tuple or callable
        How to get the output shape: ``None`` keeps the input shape; a tuple is the
        output shape; a callable maps the input shape to the output shape; ``'auto'``
        runs ``function`` on arrays of zeros of the input shape, twice, with free
        axes of size 2 and then 3: output axes whose size changes with them are free
        (``None``), the others fixed.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, ExpressionLayer
    >>> l_in = InputLayer((None, 3, 4))
    >>> ExpressionLayer(l_in, lambda x: x.mean(axis=-1), output_shape="auto").output_shape
    (None, 3)
    >>> ExpressionLayer(l_in, lambda x: x.mean(axis=-1),
    ...                 output_shape=lambda shape: shape[:-1]).output_shape
    (None, 3)
    """

    def __init__(self, incoming, function, output_shape=None, name=None):
        super().__init__(incoming, name=name)
        if not callable(function):
            raise TypeError(f"function must be callable, got {function!r}")
        self.function = function
        self._auto_shapes = {}
        if output_shape is None or callable(output_shape):
            self._output_shape = output_shape
        elif isinstance(output_shape, str):
            if output_shape != "auto":
                raise ValueError(
                    f"output_shape must be None, 'auto', a tuple or a callable, got "
                    f"{output_shape!r}"
                )
            self._output_shape = output_shape
        else:
            self._output_shape = tuple(output_shape)

    def get_output_shape_for(self, input_shape):
        spec = self._output_shape
        if spec is None:
            return input_shape
        if callable(spec):
            return tuple(spec(input_shape))
        if spec == "auto":
            input_shape = tuple(input_shape)
            if input_shape not in self._auto_shapes:
                self._auto_shapes[input_shape] = self._infer_output_shape(input_shape)
            return self._auto_shapes[input_shape]
        return spec

    def _infer_output_shape(self, input_shape):
        dtype = pytensor.config.floatX
        x = T.tensor(dtype=dtype, shape=input_shape)
        # A one-off evaluation: skip the default linker's slow compilation.
        shape_of = pytensor.function([x], self.function(x).shape, mode="FAST_COMPILE")
        # Run it with two different sizes on the free axes: an output axis whose
        # size follows them is free too.
        fills = (2, 3) if None in input_shape else (1,)
        runs = [shape_of(np.zeros([fill if s is None else s for s in input_shape], dtype))
                for fill in fills]
        return tuple(int(s[0]) if len(set(s)) == 1 else None for s in zip(*runs))

    def get_output_for(self, input, **kwargs):
        return self.function(input)
