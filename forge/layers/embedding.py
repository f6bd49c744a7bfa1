"""Embedding layers: integer indices to learned vectors."""
from .. import init
from ..utils import int_types
from .base import Layer

__all__ = ["EmbeddingLayer"]


def _positive_int(value, what):
    if not (isinstance(value, int_types) and not isinstance(value, bool) and value > 0):
        raise ValueError(f"{what} must be a positive int, got {what}={value!r}")
    return int(value)


class EmbeddingLayer(Layer):
    """Look up one row of ``W`` for every integer of the input: ``W[input]``.

    The output has the input's shape with ``output_size`` appended. Indices follow
    numpy's rules: ``0 <= i < input_size``, and negative ones count from the end.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape; its output must hold integers (build the
        ``InputLayer`` with an integer ``input_var`` such as ``T.imatrix()``).
    input_size : int
        Number of distinct indices (the vocabulary size): the rows of ``W``.
    output_size : int
        Size of each embedding vector: the columns of ``W``.
    W : initializer, numpy array, shared variable or expression
        The embedding matrix, shape ``(input_size, output_size)``.
    **kwargs
        Passed to :class:`Layer` (``name``).

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor.tensor as T
    >>> from forge.layers import InputLayer, EmbeddingLayer, get_output
    >>> l_in = InputLayer((None, 5), input_var=T.imatrix("tokens"))
    >>> l_emb = EmbeddingLayer(l_in, input_size=10, output_size=3)
    >>> l_emb.output_shape
    (None, 5, 3)
    >>> W = np.arange(6, dtype="float32").reshape(3, 2)
    >>> get_output(EmbeddingLayer(l_in, 3, 2, W=W), np.array([[2, 0]])).eval()
    array([[[4., 5.],
            [0., 1.]]], dtype=float32)
    """

    def __init__(self, incoming, input_size, output_size, W=init.Normal(), **kwargs):
        super().__init__(incoming, **kwargs)
        self.input_size = _positive_int(input_size, "input_size")
        self.output_size = _positive_int(output_size, "output_size")
        self.W = self.add_param(W, (self.input_size, self.output_size), name="W")

    def get_output_shape_for(self, input_shape):
        return tuple(input_shape) + (self.output_size,)

    def get_output_for(self, input, **kwargs):
        if not input.dtype.startswith(("int", "uint")):
            raise TypeError(
                f"EmbeddingLayer needs integer indices, got an input of dtype "
                f"{input.dtype}; build the InputLayer with an integer input_var "
                f"(e.g. T.imatrix())")
        return self.W[input]
