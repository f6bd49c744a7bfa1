"""Lasagne's cuDNN layer names (``lasagne.layers.dnn``), as forge's own layers.

Lasagne kept cuDNN-backed duplicates of its convolution, pooling and batch
normalization layers. Forge's ops run on every PyTensor backend, so these names give
forge's layers with the duplicates' defaults and restrictions:

* ``Conv2DDNNLayer``, ``Conv3DDNNLayer``: :class:`~forge.layers.Conv2DLayer` /
  :class:`~forge.layers.Conv3DLayer` with ``flip_filters=False`` by default (cuDNN
  computes a cross-correlation; the weights are laid out the same).
* ``Pool2DDNNLayer``, ``Pool3DDNNLayer``, ``MaxPool2DDNNLayer``, ``MaxPool3DDNNLayer``:
  the pooling layers; cuDNN never keeps a partial last window, so
  ``ignore_border=False`` is refused.
* ``SpatialPyramidPoolingDNNLayer``: :class:`~forge.layers.SpatialPyramidPoolingLayer`
  (the same pyramid of adaptive poolings).
* ``BatchNormDNNLayer``, ``batch_norm_dnn``: :class:`~forge.layers.BatchNormLayer` and
  :func:`~forge.layers.batch_norm`, whose semantics cuDNN's kernel only accelerated.

The factories return forge layers (``type(layer)`` is ``Conv2DLayer``, ...), so the
networks export like any other.

Examples
--------
>>> from forge.layers import InputLayer
>>> from forge.layers.dnn import Conv2DDNNLayer, MaxPool2DDNNLayer
>>> l_conv = Conv2DDNNLayer(InputLayer((None, 3, 8, 8)), num_filters=4, filter_size=3)
>>> type(l_conv).__name__, l_conv.flip_filters
('Conv2DLayer', False)
>>> MaxPool2DDNNLayer(l_conv, pool_size=2).output_shape
(None, 4, 3, 3)
"""
from .conv import Conv2DLayer, Conv3DLayer
from .normalization import BatchNormLayer, batch_norm
from .pool import (MaxPool2DLayer, MaxPool3DLayer, Pool2DLayer, Pool3DLayer,
                   SpatialPyramidPoolingLayer)

__all__ = [
    "Conv2DDNNLayer", "Conv3DDNNLayer", "Pool2DDNNLayer", "Pool3DDNNLayer",
    "MaxPool2DDNNLayer", "MaxPool3DDNNLayer", "SpatialPyramidPoolingDNNLayer",
    "BatchNormDNNLayer", "batch_norm_dnn",
]


def Conv2DDNNLayer(incoming, num_filters, filter_size, stride=(1, 1), pad=0,
                   flip_filters=False, **kwargs):
    """:class:`~forge.layers.Conv2DLayer` with cuDNN's default ``flip_filters=False``."""
    return Conv2DLayer(incoming, num_filters, filter_size, stride=stride, pad=pad,
                       flip_filters=flip_filters, **kwargs)


def Conv3DDNNLayer(incoming, num_filters, filter_size, stride=(1, 1, 1), pad=0,
                   flip_filters=False, **kwargs):
    """:class:`~forge.layers.Conv3DLayer` with cuDNN's default ``flip_filters=False``."""
    return Conv3DLayer(incoming, num_filters, filter_size, stride=stride, pad=pad,
                       flip_filters=flip_filters, **kwargs)


def _whole_windows(name, ignore_border):
    if not ignore_border:
        raise NotImplementedError(
            f"{name} keeps whole pooling windows only (cuDNN's rule), got "
            f"ignore_border=False; use forge.layers.{name.replace('DNN', '')} for partial "
            f"windows")


def Pool2DDNNLayer(incoming, pool_size, stride=None, pad=(0, 0), ignore_border=True,
                   mode="max", **kwargs):
    """:class:`~forge.layers.Pool2DLayer`; ``ignore_border`` must be True."""
    _whole_windows("Pool2DDNNLayer", ignore_border)
    return Pool2DLayer(incoming, pool_size, stride, pad, ignore_border=True, mode=mode,
                       **kwargs)


def Pool3DDNNLayer(incoming, pool_size, stride=None, pad=(0, 0, 0), ignore_border=True,
                   mode="max", **kwargs):
    """:class:`~forge.layers.Pool3DLayer`; ``ignore_border`` must be True."""
    _whole_windows("Pool3DDNNLayer", ignore_border)
    return Pool3DLayer(incoming, pool_size, stride, pad, ignore_border=True, mode=mode,
                       **kwargs)


def MaxPool2DDNNLayer(incoming, pool_size, stride=None, pad=(0, 0), ignore_border=True,
                      **kwargs):
    """:class:`~forge.layers.MaxPool2DLayer`; ``ignore_border`` must be True."""
    _whole_windows("MaxPool2DDNNLayer", ignore_border)
    return MaxPool2DLayer(incoming, pool_size, stride, pad, ignore_border=True, **kwargs)


def MaxPool3DDNNLayer(incoming, pool_size, stride=None, pad=(0, 0, 0), ignore_border=True,
                      **kwargs):
    """:class:`~forge.layers.MaxPool3DLayer`; ``ignore_border`` must be True."""
    _whole_windows("MaxPool3DDNNLayer", ignore_border)
    return MaxPool3DLayer(incoming, pool_size, stride, pad, ignore_border=True, **kwargs)


#: The same layer as :class:`~forge.layers.SpatialPyramidPoolingLayer`.
SpatialPyramidPoolingDNNLayer = SpatialPyramidPoolingLayer

#: The same layer as :class:`~forge.layers.BatchNormLayer`.
BatchNormDNNLayer = BatchNormLayer

#: The same function as :func:`~forge.layers.batch_norm`.
batch_norm_dnn = batch_norm
