"""Fully connected layers."""
import numpy as np
import pytensor.tensor as T

from .. import init, nonlinearities
from ..utils import int_types
from .base import Layer

__all__ = ["DenseLayer", "NINLayer"]


class DenseLayer(Layer):
    """A fully connected layer: ``nonlinearity(dot(input, W) + b)``.

    The input's leading ``num_leading_axes`` axes are kept (usually just the batch
    axis); all the trailing ones are flattened into one and multiplied with ``W``.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    num_units : int
        Number of output units.
    W : initializer, numpy array, shared variable or expression
        Weights of shape ``(num_inputs, num_units)``, where ``num_inputs`` is the
        product of the trailing axes' sizes.
    b : initializer, numpy array, shared variable, expression or None
        Biases of shape ``(num_units,)``; ``None`` for no biases.
    nonlinearity : callable or None
        Applied to the output; ``None`` means linear.
    num_leading_axes : int
        Number of leading axes to keep. A negative number counts from the end:
        ``-1`` multiplies only the last axis with ``W``, whatever the input's rank.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, DenseLayer
    >>> l_in = InputLayer((None, 10, 20))
    >>> DenseLayer(l_in, num_units=50).output_shape
    (None, 50)
    >>> DenseLayer(l_in, num_units=50, num_leading_axes=-1).output_shape
    (None, 10, 50)
    >>> DenseLayer(l_in, num_units=50).W.get_value().shape
    (200, 50)
    """

    def __init__(self, incoming, num_units, W=init.GlorotUniform(),
                 b=init.Constant(0.), nonlinearity=nonlinearities.rectify,
                 num_leading_axes=1, name=None):
        super().__init__(incoming, name=name)
        self.nonlinearity = nonlinearities.identity if nonlinearity is None else nonlinearity
        if not (isinstance(num_units, int_types) and num_units > 0):
            raise ValueError(f"num_units must be a positive int, got num_units={num_units!r}")
        self.num_units = int(num_units)

        ndim = len(self.input_shape)
        if num_leading_axes >= ndim:
            raise ValueError(
                f"got num_leading_axes={num_leading_axes} for a {ndim}-dimensional "
                f"input: it must be smaller than {ndim} to leave at least one trailing "
                f"axis for the dot product"
            )
        if num_leading_axes < -ndim:
            raise ValueError(
                f"got num_leading_axes={num_leading_axes} for a {ndim}-dimensional "
                f"input: a negative value asks for that many trailing axes, and there "
                f"are only {ndim}"
            )
        self.num_leading_axes = num_leading_axes

        trailing = self.input_shape[num_leading_axes:]
        if any(s is None for s in trailing):
            raise ValueError(
                f"a DenseLayer needs fixed sizes on the axes it multiplies with W, got "
                f"input shape {self.input_shape} with num_leading_axes="
                f"{num_leading_axes}"
            )
        num_inputs = int(np.prod(trailing))
        self.W = self.add_param(W, (num_inputs, num_units), name="W")
        if b is None:
            self.b = None
        else:
            self.b = self.add_param(b, (num_units,), name="b", regularizable=False)

    def get_output_shape_for(self, input_shape):
        return tuple(input_shape[:self.num_leading_axes]) + (self.num_units,)

    def get_output_for(self, input, **kwargs):
        num_leading_axes = self.num_leading_axes
        if num_leading_axes < 0:
            num_leading_axes += input.ndim
        if input.ndim > num_leading_axes + 1:
            input = T.flatten(input, num_leading_axes + 1)
        activation = T.dot(input, self.W)
        if self.b is not None:
            activation = activation + self.b
        return self.nonlinearity(activation)


class NINLayer(Layer):
    """Network-in-network layer: a dense layer applied at every spatial location.

    Maps an input of shape ``(batch, channels, *spatial)`` to
    ``(batch, num_units, *spatial)``: a 1x1 convolution.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape; axis 1 (the channels) must have a fixed size.
    num_units : int
        Number of output channels.
    untie_biases : bool
        If False, one bias per unit, shape ``(num_units,)``; if True, one bias per unit
        and location, shape ``(num_units, *spatial)`` (then the spatial sizes must be
        fixed).
    W : initializer, numpy array, shared variable or expression
        Weights of shape ``(channels, num_units)``.
    b : initializer, numpy array, shared variable, expression or None
        Biases; ``None`` for no biases.
    nonlinearity : callable or None
        Applied to the output; ``None`` means linear.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, NINLayer
    >>> l_in = InputLayer((None, 3, 8, 8))
    >>> NINLayer(l_in, num_units=16).output_shape
    (None, 16, 8, 8)
    >>> NINLayer(l_in, num_units=16, untie_biases=True).b.get_value().shape
    (16, 8, 8)
    """

    def __init__(self, incoming, num_units, untie_biases=False, W=init.GlorotUniform(),
                 b=init.Constant(0.), nonlinearity=nonlinearities.rectify, name=None):
        super().__init__(incoming, name=name)
        self.nonlinearity = nonlinearities.identity if nonlinearity is None else nonlinearity
        if not (isinstance(num_units, int_types) and num_units > 0):
            raise ValueError(f"num_units must be a positive int, got num_units={num_units!r}")
        self.num_units = int(num_units)
        self.untie_biases = untie_biases

        if len(self.input_shape) < 2 or self.input_shape[1] is None:
            raise ValueError(
                f"a NINLayer needs an input of 2 or more dimensions with a fixed number "
                f"of channels on axis 1, got input shape {self.input_shape}"
            )
        self.W = self.add_param(W, (self.input_shape[1], num_units), name="W")
        if b is None:
            self.b = None
        else:
            if untie_biases:
                spatial = self.input_shape[2:]
                if any(s is None for s in spatial):
                    raise ValueError(
                        f"untie_biases=True needs fixed spatial sizes (one bias per "
                        f"location), got input shape {self.input_shape}"
                    )
                b_shape = (num_units,) + tuple(spatial)
            else:
                b_shape = (num_units,)
            self.b = self.add_param(b, b_shape, name="b", regularizable=False)

    def get_output_shape_for(self, input_shape):
        return (input_shape[0], self.num_units) + tuple(input_shape[2:])

    def get_output_for(self, input, **kwargs):
        spatial_axes = list(range(2, input.ndim))
        # (channels, units) x (batch, channels, *spatial) -> (units, batch, *spatial)
        units_first = T.tensordot(self.W, input, axes=[[0], [1]])
        activation = units_first.dimshuffle(1, 0, *spatial_axes)
        if self.b is not None:
            if self.untie_biases:
                b_pattern = ["x", *range(self.b.ndim)]
            else:
                b_pattern = ["x", 0] + ["x"] * len(spatial_axes)
            activation = activation + self.b.dimshuffle(*b_pattern)
        return self.nonlinearity(activation)
