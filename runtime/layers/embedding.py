"""Embedding layers: integer indices to rows of a matrix."""
import numpy as np

from .base import Layer, check, is_int, register

__all__ = ["EmbeddingLayer"]


@register
class EmbeddingLayer(Layer):
    """``W[x]``: one row of ``W`` (``input_size`` x ``output_size``) per integer of ``x``.

    Indices follow numpy's rules (negative ones count from the end); one outside
    ``[-input_size, input_size)`` is refused.
    """

    config_keys = ("input_size", "output_size")
    param_keys = ("W",)

    def __init__(self, name, inputs, input_size, output_size, W):
        super().__init__(name, inputs)
        check(is_int(input_size, 1), f"input_size must be a positive int, got {input_size!r}")
        check(is_int(output_size, 1),
              f"output_size must be a positive int, got {output_size!r}")
        check(W.shape == (input_size, output_size),
              f"W must have shape ({input_size}, {output_size}), got {W.shape}")
        self.W = W

    def __call__(self, x):
        if x.dtype.kind not in "biu":
            raise ValueError(f"needs integer indices, got dtype {x.dtype}")
        size = self.W.shape[0]
        if x.size and (x.min() < -size or x.max() >= size):
            bad = x[(x < -size) | (x >= size)].flat[0]
            raise ValueError(f"got index {bad}; indices must be in [-{size}, {size}) for "
                             f"an embedding of {size} rows")
        return self.W[x.astype(np.intp, copy=False)]
