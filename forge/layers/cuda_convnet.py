"""Lasagne's ``lasagne.layers.cuda_convnet`` names, where forge can honour them.

cuda-convnet worked in the c01b layout (channels, rows, columns, batch). Its Lasagne
layers took ``dimshuffle=True`` (the default) to accept and return the usual bc01
layout, with weights laid out as in :class:`~forge.layers.Conv2DLayer`; those are
forge's own layers here:

* ``Conv2DCCLayer(..., dimshuffle=True)``: a ``Conv2DLayer`` with
  ``flip_filters=False`` by default; ``partial_sum`` (a speed setting) is accepted and
  ignored. cuda-convnet's limits (square filters, equal strides) are kept.
* ``MaxPool2DCCLayer(..., dimshuffle=True)``: a ``MaxPool2DLayer`` with
  ``ignore_border=False`` (cuda-convnet always kept the partial last window), square
  windows, equal strides no larger than the window, and no padding.
* ``ShuffleBC01ToC01BLayer`` / ``bc01_to_c01b`` and ``ShuffleC01BToBC01Layer`` /
  ``c01b_to_bc01``: :class:`~forge.layers.DimshuffleLayer` with the patterns
  ``(1, 2, 3, 0)`` and ``(3, 0, 1, 2)``.

Refused, with an error that says so: ``dimshuffle=False`` (layers working in c01b, whose
weights cuda-convnet laid out as ``(channels, rows, columns, filters)``) and
``NINLayer_c01b``. Build the c01b part of such a network with the shuffle layers around
forge's bc01 layers instead.

Examples
--------
>>> from forge.layers import InputLayer
>>> from forge.layers.cuda_convnet import Conv2DCCLayer, MaxPool2DCCLayer
>>> l_conv = Conv2DCCLayer(InputLayer((None, 3, 9, 9)), num_filters=16, filter_size=3)
>>> MaxPool2DCCLayer(l_conv, pool_size=2).output_shape
(None, 16, 4, 4)
"""
from .conv import Conv2DLayer
from .pool import MaxPool2DLayer
from .shape import DimshuffleLayer

__all__ = [
    "Conv2DCCLayer", "MaxPool2DCCLayer", "ShuffleBC01ToC01BLayer", "bc01_to_c01b",
    "ShuffleC01BToBC01Layer", "c01b_to_bc01", "NINLayer_c01b",
]


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _bc01_only(name, dimshuffle):
    if not dimshuffle:
        raise NotImplementedError(
            f"{name}(dimshuffle=False) works in cuda-convnet's c01b layout, which forge "
            f"does not implement; use dimshuffle=True (bc01 in and out), or wrap forge's "
            f"bc01 layers in c01b_to_bc01 / bc01_to_c01b")


def Conv2DCCLayer(incoming, num_filters, filter_size, stride=(1, 1), pad=0,
                  dimshuffle=True, flip_filters=False, partial_sum=1, **kwargs):
    """:class:`~forge.layers.Conv2DLayer` with ``flip_filters=False`` by default.

    ``dimshuffle`` must be True; square filters and equal strides only, as in
    cuda-convnet. ``partial_sum`` is accepted and ignored.
    """
    _bc01_only("Conv2DCCLayer", dimshuffle)
    filter_size, stride = _pair(filter_size), _pair(stride)
    if filter_size[0] != filter_size[1] or stride[0] != stride[1]:
        raise NotImplementedError(
            f"Conv2DCCLayer takes square filters and equal strides (cuda-convnet's "
            f"rule), got filter_size={filter_size}, stride={stride}")
    return Conv2DLayer(incoming, num_filters, filter_size, stride=stride, pad=pad,
                       flip_filters=flip_filters, **kwargs)


def MaxPool2DCCLayer(incoming, pool_size, stride=None, ignore_border=False,
                     dimshuffle=True, pad=0, **kwargs):
    """:class:`~forge.layers.MaxPool2DLayer` keeping partial windows.

    cuda-convnet's rules: ``dimshuffle`` True, ``ignore_border`` False, no padding,
    square windows, equal strides no larger than the window.
    """
    _bc01_only("MaxPool2DCCLayer", dimshuffle)
    pool_size = _pair(pool_size)
    stride = pool_size if stride is None else _pair(stride)
    problems = []
    if ignore_border:
        problems.append("ignore_border=True (partial windows are always kept)")
    if _pair(pad) != (0, 0):
        problems.append(f"pad={pad!r} (no padding)")
    if pool_size[0] != pool_size[1] or stride[0] != stride[1] or stride[0] > pool_size[0]:
        problems.append(f"pool_size={pool_size}, stride={stride} (square windows, equal "
                        f"strides no larger than the window)")
    if problems:
        raise NotImplementedError(f"MaxPool2DCCLayer follows cuda-convnet's rules; got "
                                  f"{'; '.join(problems)}")
    return MaxPool2DLayer(incoming, pool_size, stride, ignore_border=False, **kwargs)


def ShuffleBC01ToC01BLayer(incoming, **kwargs):
    """Reorder a 4-D input from (batch, channels, rows, cols) to (channels, rows, cols,
    batch): a :class:`~forge.layers.DimshuffleLayer`."""
    return DimshuffleLayer(incoming, (1, 2, 3, 0), **kwargs)


def ShuffleC01BToBC01Layer(incoming, **kwargs):
    """Reorder a 4-D input from (channels, rows, cols, batch) to (batch, channels, rows,
    cols): a :class:`~forge.layers.DimshuffleLayer`."""
    return DimshuffleLayer(incoming, (3, 0, 1, 2), **kwargs)


bc01_to_c01b = ShuffleBC01ToC01BLayer
c01b_to_bc01 = ShuffleC01BToBC01Layer


def NINLayer_c01b(incoming, num_units, **kwargs):
    """Refused: forge has no c01b layers (see the module's notes)."""
    raise NotImplementedError(
        "NINLayer_c01b works in cuda-convnet's c01b layout, which forge does not "
        "implement; use c01b_to_bc01, forge.layers.NINLayer (weights "
        "(num_input_channels, num_units), the transpose of NINLayer_c01b's) and "
        "bc01_to_c01b")
