"""Layers that combine several inputs into one."""
import pytensor.tensor as T

from .base import MergeLayer

__all__ = [
    "autocrop", "autocrop_array_shapes", "ConcatLayer", "concat",
    "ElemwiseMergeLayer", "ElemwiseSumLayer",
]

_CROP_MODES = ("lower", "upper", "center")


def _check_cropping(cropping):
    if cropping is None:
        return None
    cropping = list(cropping)
    for mode in cropping:
        if mode is not None and mode not in _CROP_MODES:
            raise ValueError(
                f"every cropping entry must be None, 'lower', 'upper' or 'center', got "
                f"{mode!r} in cropping={cropping}"
            )
    return cropping


def _padded_cropping(cropping, ndim):
    """The cropping list, extended with None to cover ``ndim`` axes."""
    cropping = _check_cropping(cropping)
    return cropping + [None] * (ndim - len(cropping))


def autocrop(inputs, cropping):
    """Crop input expressions to a common size along some axes.

    Parameters
    ----------
    inputs : list of PyTensor expressions
        Inputs of the same number of dimensions.
    cropping : None or list of (None, 'lower', 'upper', 'center')
        One entry per leading axis (missing trailing entries mean None). On an axis
        marked with a mode, every input is cut to the smallest size among them:
        ``'lower'`` keeps the first elements, ``'upper'`` the last ones, ``'center'``
        the middle ones (an odd surplus leaves one more element after than before).
        ``None`` leaves the axis alone; ``cropping=None`` returns the inputs as they
        are.

    Returns
    -------
    list of PyTensor expressions

    Examples
    --------
    >>> import numpy as np
    >>> from forge.layers import autocrop
    >>> a, b = np.arange(5.0), np.arange(3.0)
    >>> [x.eval().tolist() for x in autocrop([a, b], ["center"])]
    [[1.0, 2.0, 3.0], [0.0, 1.0, 2.0]]
    """
    if cropping is None:
        return inputs
    inputs = [T.as_tensor_variable(x) for x in inputs]
    ndim = inputs[0].ndim
    if any(x.ndim != ndim for x in inputs):
        raise ValueError(
            f"autocrop needs inputs of the same number of dimensions, got "
            f"{[x.ndim for x in inputs]}"
        )
    cropping = _padded_cropping(cropping, ndim)
    indices = [[] for _ in inputs]
    for axis, mode in enumerate(cropping):
        if mode is None:
            for index in indices:
                index.append(slice(None))
            continue
        sizes = [x.shape[axis] for x in inputs]
        smallest = sizes[0]
        for size in sizes[1:]:
            smallest = T.minimum(smallest, size)
        for index, size in zip(indices, sizes):
            if mode == "lower":
                start = 0
            elif mode == "upper":
                start = size - smallest
            else:
                start = (size - smallest) // 2
            index.append(slice(start, start + smallest))
    return [x[tuple(index)] for x, index in zip(inputs, indices)]


def autocrop_array_shapes(input_shapes, cropping):
    """Return the shapes that :func:`autocrop` would give inputs of these shapes.

    On a cropped axis every shape gets the smallest size among the inputs, or
    ``None`` if any input's size there is unknown.

    Examples
    --------
    >>> from forge.layers import autocrop_array_shapes
    >>> autocrop_array_shapes([(1, 5, 7), (2, 3, 9)], [None, "lower", "center"])
    [(1, 3, 7), (2, 3, 7)]
    """
    if cropping is None:
        return input_shapes
    ndim = len(input_shapes[0])
    if any(len(shape) != ndim for shape in input_shapes):
        raise ValueError(
            f"cropping needs inputs of the same number of dimensions, got shapes "
            f"{list(input_shapes)}"
        )
    cropping = _padded_cropping(cropping, ndim)
    columns = []
    for sizes, mode in zip(zip(*input_shapes), cropping):
        if mode is not None:
            smallest = None if None in sizes else min(sizes)
            sizes = (smallest,) * len(sizes)
        columns.append(sizes)
    return [tuple(shape) for shape in zip(*columns)]


def _first_known(sizes):
    return next((s for s in sizes if s is not None), None)


class ConcatLayer(MergeLayer):
    """Concatenate the inputs along one axis.

    Parameters
    ----------
    incomings : list of Layer or tuple
        The inputs; their shapes must agree on every axis but ``axis``.
    axis : int
        The concatenation axis.
    cropping : None or list of (None, 'lower', 'upper', 'center')
        Crop the inputs to a common size first (see :func:`autocrop`); the
        concatenation axis itself is never cropped.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, ConcatLayer
    >>> a, b = InputLayer((None, 3)), InputLayer((None, 5))
    >>> ConcatLayer([a, b]).output_shape
    (None, 8)
    """

    def __init__(self, incomings, axis=1, cropping=None, name=None):
        super().__init__(incomings, name=name)
        ndim = len(self.input_shapes[0])
        if not -ndim <= axis < ndim:
            raise ValueError(
                f"axis must be in [-{ndim}, {ndim}) for {ndim}-dimensional inputs, got "
                f"axis={axis}"
            )
        self.axis = axis
        if cropping is not None:
            # Sizes along the concatenation axis may differ: never crop it.
            cropping = _padded_cropping(cropping, ndim)
            cropping[axis] = None
        self.cropping = cropping
        self.get_output_shape_for(self.input_shapes)  # check the shapes now

    def get_output_shape_for(self, input_shapes):
        input_shapes = autocrop_array_shapes(input_shapes, self.cropping)
        output_shape = [_first_known(sizes) for sizes in zip(*input_shapes)]
        axis = self.axis % len(output_shape)
        for shape in input_shapes:
            if len(shape) != len(output_shape) or any(
                a != axis and s is not None and s != t
                for a, (s, t) in enumerate(zip(shape, output_shape))
            ):
                raise ValueError(
                    f"ConcatLayer needs inputs whose shapes agree on every axis but "
                    f"the concatenation axis {self.axis}, got {list(input_shapes)}"
                )
        sizes = [shape[axis] for shape in input_shapes]
        output_shape[axis] = None if None in sizes else sum(sizes)
        return tuple(output_shape)

    def get_output_for(self, inputs, **kwargs):
        inputs = autocrop(inputs, self.cropping)
        axis = self.axis % len(self.input_shapes[0])
        return T.concatenate(inputs, axis=axis)


#: Lasagne's short alias of :class:`ConcatLayer`.
concat = ConcatLayer


class ElemwiseMergeLayer(MergeLayer):
    """Combine inputs of one shape element by element with a binary function.

    The inputs are folded from the left: ``f(f(x0, x1), x2)``.

    Parameters
    ----------
    incomings : list of Layer or tuple
        The inputs; their shapes must agree.
    merge_function : callable
        Binary elementwise function, e.g. ``T.mul`` or ``T.maximum``.
    cropping : None or list of (None, 'lower', 'upper', 'center')
        Crop the inputs to a common size first (see :func:`autocrop`).
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> import pytensor.tensor as T
    >>> from forge.layers import InputLayer, ElemwiseMergeLayer
    >>> a, b = InputLayer((None, 4)), InputLayer((8, 4))
    >>> ElemwiseMergeLayer([a, b], T.maximum).output_shape
    (8, 4)
    """

    def __init__(self, incomings, merge_function, cropping=None, name=None):
        super().__init__(incomings, name=name)
        if not callable(merge_function):
            raise TypeError(f"merge_function must be callable, got {merge_function!r}")
        self.merge_function = merge_function
        self.cropping = _check_cropping(cropping)
        self.get_output_shape_for(self.input_shapes)  # check the shapes now

    def get_output_shape_for(self, input_shapes):
        input_shapes = autocrop_array_shapes(input_shapes, self.cropping)
        output_shape = tuple(_first_known(sizes) for sizes in zip(*input_shapes))
        for shape in input_shapes:
            if len(shape) != len(output_shape) or any(
                s is not None and s != t for s, t in zip(shape, output_shape)
            ):
                raise ValueError(
                    f"{type(self).__name__} needs inputs of one shape, got "
                    f"{list(input_shapes)}"
                )
        return output_shape

    def get_output_for(self, inputs, **kwargs):
        inputs = autocrop(inputs, self.cropping)
        output = inputs[0]
        for input in inputs[1:]:
            output = self.merge_function(output, input)
        return output


class ElemwiseSumLayer(ElemwiseMergeLayer):
    """Sum the inputs element by element, each multiplied by a coefficient.

    Parameters
    ----------
    incomings : list of Layer or tuple
        The inputs; their shapes must agree.
    coeffs : number or list of numbers
        One coefficient for all inputs, or one per input.
    cropping : None or list of (None, 'lower', 'upper', 'center')
        Crop the inputs to a common size first (see :func:`autocrop`).
    name : str, optional
        Name of the layer.

    Attributes
    ----------
    coeffs : list
        One coefficient per input.

    Examples
    --------
    >>> from forge.layers import InputLayer, ElemwiseSumLayer
    >>> a, b = InputLayer((None, 4)), InputLayer((None, 4))
    >>> ElemwiseSumLayer([a, b], coeffs=[1, -1]).coeffs
    [1, -1]
    >>> ElemwiseSumLayer([a, b], coeffs=0.5).coeffs
    [0.5, 0.5]
    """

    def __init__(self, incomings, coeffs=1, cropping=None, name=None):
        super().__init__(incomings, T.add, cropping=cropping, name=name)
        num_inputs = len(self.input_shapes)
        if isinstance(coeffs, list | tuple):
            if len(coeffs) != num_inputs:
                raise ValueError(
                    f"coeffs must be one number or one per input ({num_inputs}), got "
                    f"{len(coeffs)} coeffs: {list(coeffs)}"
                )
            coeffs = list(coeffs)
        else:
            coeffs = [coeffs] * num_inputs
        self.coeffs = coeffs

    def get_output_for(self, inputs, **kwargs):
        scaled = [x if c == 1 else x * c for x, c in zip(inputs, self.coeffs)]
        return super().get_output_for(scaled, **kwargs)
