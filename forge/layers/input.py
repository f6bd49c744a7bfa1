"""The layer that holds a network's input."""
from collections import OrderedDict

import pytensor
import pytensor.tensor as T

from ..utils import int_types
from .base import Layer

__all__ = ["InputLayer"]


class InputLayer(Layer):
    """A network's input: a shape and the symbolic variable that stands for the data.

    Parameters
    ----------
    shape : tuple
        The input's shape: a positive int for each fixed axis, ``None`` for a free one
        (usually the batch axis).
    input_var : PyTensor tensor variable, optional
        The variable standing for the input. By default a new floatX tensor with
        ``len(shape)`` dimensions is created (axes of size 1 are broadcastable).
    name : str, optional
        Name of the layer; also names the created variable (``"<name>.input"``).

    Attributes
    ----------
    shape : tuple
    input_var : PyTensor tensor variable

    Examples
    --------
    >>> from forge.layers import InputLayer
    >>> l_in = InputLayer((None, 784))
    >>> l_in.output_shape
    (None, 784)
    >>> l_in.input_var.ndim
    2
    """

    def __init__(self, shape, input_var=None, name=None):
        try:
            shape = tuple(shape)
        except TypeError:
            raise TypeError(
                f"shape must be a tuple of positive ints and None, got {shape!r}"
            ) from None
        for size in shape:
            is_int = isinstance(size, int_types) and not isinstance(size, bool)
            if size is not None and not (is_int and size > 0):
                raise ValueError(
                    f"every entry of an InputLayer's shape must be a positive int or "
                    f"None, got shape={shape}"
                )
        self.shape = tuple(None if s is None else int(s) for s in shape)

        if input_var is None:
            static_shape = tuple(1 if s == 1 else None for s in self.shape)
            var_name = "input" if name is None else f"{name}.input"
            input_var = T.tensor(
                dtype=pytensor.config.floatX, shape=static_shape, name=var_name
            )
        elif getattr(input_var, "ndim", None) != len(self.shape):
            raise ValueError(
                f"input_var must have as many dimensions as shape={self.shape} "
                f"({len(self.shape)}), got {input_var!r} with "
                f"{getattr(input_var, 'ndim', 'no')} dimensions"
            )
        self.input_var = input_var
        self.input_layer = None
        self.input_shape = self.shape
        self.name = name
        self.params = OrderedDict()
        self.get_output_kwargs = []

    @property
    def output_shape(self):
        """The declared shape."""
        return self.shape
