"""Lasagne's ``lasagne.layers.corrmm`` name, as forge's own convolution.

``Conv2DMMLayer`` was Lasagne's convolution through Theano's GEMM-based ``CorrMM`` op:
the same computation as :class:`~forge.layers.Conv2DLayer`, with the weights laid out
the same way, but ``flip_filters=False`` by default (``CorrMM`` correlates). The
factory returns a ``Conv2DLayer`` with that default, which exports like any other.

Examples
--------
>>> from forge.layers import InputLayer
>>> from forge.layers.corrmm import Conv2DMMLayer
>>> l_conv = Conv2DMMLayer(InputLayer((None, 3, 8, 8)), num_filters=4, filter_size=3,
...                        pad="same")
>>> type(l_conv).__name__, l_conv.output_shape, l_conv.flip_filters
('Conv2DLayer', (None, 4, 8, 8), False)
"""
from .conv import Conv2DLayer

__all__ = ["Conv2DMMLayer"]


def Conv2DMMLayer(incoming, num_filters, filter_size, stride=(1, 1), pad=0,
                  flip_filters=False, **kwargs):
    """:class:`~forge.layers.Conv2DLayer` with ``CorrMM``'s default ``flip_filters=False``."""
    return Conv2DLayer(incoming, num_filters, filter_size, stride=stride, pad=pad,
                       flip_filters=flip_filters, **kwargs)
