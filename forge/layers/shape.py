"""Layers that change the shape of their input without computing anything new."""
import numpy as np
import pytensor.tensor as T
from pytensor.graph.basic import Variable

from ..utils import int_types
from .base import Layer

__all__ = [
    "FlattenLayer", "flatten", "ReshapeLayer", "reshape", "DimshuffleLayer",
    "dimshuffle", "SliceLayer", "PadLayer", "pad",
]


def _is_int(value):
    return isinstance(value, int_types) and not isinstance(value, bool)


class FlattenLayer(Layer):
    """Flatten the trailing axes of the input into one.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    outdim : int
        Number of output dimensions: the first ``outdim - 1`` axes are kept, the
        rest are flattened into the last one.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, FlattenLayer
    >>> FlattenLayer(InputLayer((None, 3, 4, 5))).output_shape
    (None, 60)
    >>> FlattenLayer(InputLayer((None, 3, 4, 5)), outdim=3).output_shape
    (None, 3, 20)
    """

    def __init__(self, incoming, outdim=2, name=None):
        super().__init__(incoming, name=name)
        ndim = len(self.input_shape)
        if not (_is_int(outdim) and 1 <= outdim <= ndim):
            raise ValueError(
                f"outdim must be an int from 1 to the input's number of dimensions "
                f"({ndim}), got outdim={outdim!r}"
            )
        self.outdim = int(outdim)

    def get_output_shape_for(self, input_shape):
        kept = tuple(input_shape[:self.outdim - 1])
        merged = input_shape[self.outdim - 1:]
        size = None if any(s is None for s in merged) else int(np.prod(merged))
        return kept + (size,)

    def get_output_for(self, input, **kwargs):
        return T.flatten(input, self.outdim)


#: Lasagne's short alias of :class:`FlattenLayer`.
flatten = FlattenLayer


class ReshapeLayer(Layer):
    """Reshape the input.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    shape : tuple
        The output shape. Each entry is a positive int; ``-1`` (at most once) for the
        size that makes the total match; ``[i]``, a one-element list, for the size of
        input axis ``i``; or a symbolic scalar.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, ReshapeLayer
    >>> l_in = InputLayer((None, 784))
    >>> ReshapeLayer(l_in, ([0], 1, 28, 28)).output_shape
    (None, 1, 28, 28)
    >>> ReshapeLayer(l_in, ([0], -1, 7)).output_shape
    (None, 112, 7)
    """

    def __init__(self, incoming, shape, name=None):
        super().__init__(incoming, name=name)
        shape = tuple(shape)
        for entry in shape:
            if _is_int(entry):
                ok = entry > 0 or entry == -1
            elif isinstance(entry, list):
                ok = len(entry) == 1 and _is_int(entry[0]) and entry[0] >= 0
            elif isinstance(entry, Variable):
                ok = getattr(entry, "ndim", None) == 0
            else:
                ok = False
            if not ok:
                raise ValueError(
                    f"every entry of a ReshapeLayer's shape must be a positive int, -1, "
                    f"a one-element list [i] naming an input axis, or a symbolic scalar; "
                    f"got {entry!r} in shape={shape}"
                )
        if sum(1 for entry in shape if _is_int(entry) and entry == -1) > 1:
            raise ValueError(f"shape may contain -1 at most once, got shape={shape}")
        self.shape = shape
        self.get_output_shape_for(self.input_shape)  # check the sizes now

    def get_output_shape_for(self, input_shape):
        input_shape = tuple(input_shape)
        output_shape = []
        # Sizes that enter the total number of elements, on each side. An unknown
        # input size copied once with [i] enters neither total (it cancels out), so
        # that -1 can still be inferred.
        input_sizes = list(input_shape)
        output_sizes = []
        for entry in self.shape:
            if isinstance(entry, list):
                axis = entry[0]
                if axis >= len(input_shape):
                    raise ValueError(
                        f"shape={self.shape} refers to input axis [{axis}], but the input "
                        f"shape {input_shape} has only {len(input_shape)} dimensions"
                    )
                size = input_shape[axis]
                if size is None and input_sizes[axis] is None:
                    input_sizes[axis] = 1
                    output_sizes.append(1)
                else:
                    output_sizes.append(size)
                output_shape.append(size)
            elif isinstance(entry, Variable):
                output_shape.append(None)
                output_sizes.append(None)
            elif entry == -1:
                output_shape.append(-1)
                output_sizes.append(1)
            else:
                output_shape.append(int(entry))
                output_sizes.append(int(entry))

        input_total = None if None in input_sizes else int(np.prod(input_sizes))
        output_total = None if None in output_sizes else int(np.prod(output_sizes))
        if -1 in output_shape:
            position = output_shape.index(-1)
            if input_total is None or output_total is None:
                output_shape[position] = None
            elif input_total % output_total:
                raise ValueError(
                    f"cannot reshape input shape {input_shape} to shape={self.shape}: "
                    f"{input_total} elements do not divide into parts of {output_total}"
                )
            else:
                output_shape[position] = input_total // output_total
        elif None not in (input_total, output_total) and input_total != output_total:
            raise ValueError(
                f"cannot reshape input shape {input_shape} to shape={self.shape}: the "
                f"total sizes differ ({input_total} elements vs {output_total})"
            )
        return tuple(output_shape)

    def get_output_for(self, input, **kwargs):
        shape = [input.shape[entry[0]] if isinstance(entry, list) else entry
                 for entry in self.shape]
        return T.reshape(input, shape, ndim=len(shape))


#: Lasagne's short alias of :class:`ReshapeLayer`.
reshape = ReshapeLayer


class DimshuffleLayer(Layer):
    """Reorder the axes of the input, add broadcastable axes, or drop size-1 axes.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    pattern : tuple of int and 'x'
        Output axis ``k`` is input axis ``pattern[k]``, or a new axis of size 1 for
        ``'x'``. Input axes left out are dropped: their size must be 1 (or unknown,
        then checked to be 1 at run time).
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, DimshuffleLayer
    >>> l_in = InputLayer((None, 3, 1))
    >>> DimshuffleLayer(l_in, (1, 0, "x")).output_shape
    (3, None, 1)
    """

    def __init__(self, incoming, pattern, name=None):
        super().__init__(incoming, name=name)
        pattern = tuple(pattern)
        used = set()
        for entry in pattern:
            if _is_int(entry):
                if entry in used:
                    raise ValueError(
                        f"pattern={pattern} uses input axis {entry} more than once"
                    )
                used.add(entry)
            elif entry != "x":
                raise ValueError(
                    f"pattern entries must be input axes (ints) or 'x', got {entry!r} "
                    f"in pattern={pattern}"
                )
        self.pattern = pattern
        self.get_output_shape_for(self.input_shape)  # check the pattern now

    def get_output_shape_for(self, input_shape):
        ndim = len(input_shape)
        output_shape = []
        for entry in self.pattern:
            if entry == "x":
                output_shape.append(1)
            elif 0 <= entry < ndim:
                output_shape.append(input_shape[entry])
            else:
                raise ValueError(
                    f"pattern={self.pattern} refers to input axis {entry}, but the input "
                    f"shape {tuple(input_shape)} has axes 0 to {ndim - 1}"
                )
        for axis, size in enumerate(input_shape):
            if axis not in self.pattern and size not in (1, None):
                raise ValueError(
                    f"pattern={self.pattern} drops input axis {axis} of size {size}; only "
                    f"axes of size 1 can be dropped"
                )
        return tuple(output_shape)

    def get_output_for(self, input, **kwargs):
        dropped = [axis for axis in range(input.ndim)
                   if axis not in self.pattern and not input.broadcastable[axis]]
        if dropped:
            # Unknown sizes promised to be 1: PyTensor checks that at run time.
            input = T.specify_broadcastable(input, *dropped)
        return input.dimshuffle(*self.pattern)


#: Lasagne's short alias of :class:`DimshuffleLayer`.
dimshuffle = DimshuffleLayer


class SliceLayer(Layer):
    """Index or slice the input along one axis.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    indices : int or slice
        An int picks one position and removes the axis; a slice keeps it.
    axis : int
        The axis; negative counts from the end.
    name : str, optional
        Name of the layer.

    Attributes
    ----------
    slice : int or slice
        The ``indices`` argument.
    axis : int

    Examples
    --------
    >>> from forge.layers import InputLayer, SliceLayer
    >>> l_in = InputLayer((None, 10, 6))
    >>> SliceLayer(l_in, indices=slice(0, 4)).output_shape
    (None, 10, 4)
    >>> SliceLayer(l_in, indices=2, axis=1).output_shape
    (None, 6)
    """

    def __init__(self, incoming, indices, axis=-1, name=None):
        super().__init__(incoming, name=name)
        ndim = len(self.input_shape)
        if not (_is_int(axis) and -ndim <= axis < ndim):
            raise ValueError(
                f"axis must be an int in [-{ndim}, {ndim}) for a {ndim}-dimensional "
                f"input, got axis={axis!r}"
            )
        if _is_int(indices):
            size = self.input_shape[axis]
            if size is not None and not -size <= indices < size:
                raise ValueError(
                    f"indices={indices} is out of range for axis {axis} of size {size}"
                )
            indices = int(indices)
        elif not isinstance(indices, slice):
            raise TypeError(f"indices must be an int or a slice, got {indices!r}")
        self.slice = indices
        self.axis = int(axis)

    def get_output_shape_for(self, input_shape):
        output_shape = list(input_shape)
        size = input_shape[self.axis]
        if isinstance(self.slice, slice):
            output_shape[self.axis] = (
                None if size is None else len(range(*self.slice.indices(size)))
            )
        else:
            del output_shape[self.axis]
        return tuple(output_shape)

    def get_output_for(self, input, **kwargs):
        axis = self.axis % input.ndim
        return input[(slice(None),) * axis + (self.slice,)]


class PadLayer(Layer):
    """Pad the trailing axes of the input with a constant.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    width : int or iterable
        Padding of the axes after the first ``batch_ndim``: an int pads every one of
        them by that much on both sides; an iterable gives, for the first of those
        axes onwards, an int (both sides) or a pair ``(before, after)``. Axes it does
        not reach are not padded.
    val : float
        The padding value.
    batch_ndim : int
        Number of leading axes that are not padded.
    name : str, optional
        Name of the layer.

    Attributes
    ----------
    width : list of (int, int)
        The padding normalised to one ``(before, after)`` pair per padded axis (every
        axis after the first ``batch_ndim``).

    Examples
    --------
    >>> from forge.layers import InputLayer, PadLayer
    >>> l_pad = PadLayer(InputLayer((None, 3, 5, 5)), width=[1, (0, 2)])
    >>> l_pad.width
    [(1, 1), (0, 2)]
    >>> l_pad.output_shape
    (None, 3, 7, 7)
    """

    def __init__(self, incoming, width, val=0, batch_ndim=2, name=None):
        super().__init__(incoming, name=name)
        ndim = len(self.input_shape)
        if not (_is_int(batch_ndim) and 0 <= batch_ndim <= ndim):
            raise ValueError(
                f"batch_ndim must be an int from 0 to the input's number of dimensions "
                f"({ndim}), got batch_ndim={batch_ndim!r}"
            )
        self.batch_ndim = int(batch_ndim)
        self.width = self._normalise_width(width, ndim - self.batch_ndim)
        self.val = val

    @staticmethod
    def _normalise_width(width, num_axes):
        def bad():
            return ValueError(
                f"width must be a non-negative int or an iterable of at most {num_axes} "
                f"non-negative ints or (before, after) pairs, got width={width!r}"
            )

        if _is_int(width):
            entries = [width] * num_axes
        else:
            try:
                entries = list(width)
            except TypeError:
                raise bad() from None
            if len(entries) > num_axes:
                raise bad()
        pairs = []
        for entry in entries:
            if _is_int(entry):
                pair = (entry, entry)
            elif isinstance(entry, tuple | list):
                pair = tuple(entry)
            else:
                raise bad()
            if len(pair) != 2 or not all(_is_int(w) and w >= 0 for w in pair):
                raise bad()
            pairs.append((int(pair[0]), int(pair[1])))
        return pairs + [(0, 0)] * (num_axes - len(pairs))

    def get_output_shape_for(self, input_shape):
        output_shape = list(input_shape)
        for offset, (before, after) in enumerate(self.width):
            axis = self.batch_ndim + offset
            if output_shape[axis] is not None:
                output_shape[axis] += before + after
        return tuple(output_shape)

    def get_output_for(self, input, **kwargs):
        output_shape = [input.shape[axis] for axis in range(input.ndim)]
        inner = [slice(None)] * input.ndim
        for offset, (before, after) in enumerate(self.width):
            axis = self.batch_ndim + offset
            output_shape[axis] = output_shape[axis] + before + after
            inner[axis] = slice(before, before + input.shape[axis])
        padded = T.alloc(T.constant(self.val, dtype=input.dtype), *output_shape)
        return T.set_subtensor(padded[tuple(inner)], input)


#: Lasagne's short alias of :class:`PadLayer`.
pad = PadLayer
