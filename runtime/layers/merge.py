"""Layers that combine several inputs, optionally cropping them to a common shape."""
import numpy as np

from .. import kernels
from ..nonlinearities import get_merge_function
from .base import Layer, check, is_int, register

__all__ = ["ConcatLayer", "ElemwiseSumLayer", "ElemwiseMergeLayer"]

_CROP_MODES = (None, "lower", "upper", "center")


def _check_cropping(cropping):
    check(cropping is None or (isinstance(cropping, list) and all(
        c in _CROP_MODES for c in cropping)),
        f"cropping must be null or a list of null, 'lower', 'upper' and 'center', "
        f"got {cropping!r}")
    return None if cropping is None else tuple(cropping)


def _same_shapes(arrays):
    shapes = [a.shape for a in arrays]
    if len(set(shapes)) != 1:
        raise ValueError(f"inputs must have one shape, got {shapes} (cropping can make "
                         "them agree)")
    return arrays


class _MergeLayer(Layer):
    num_inputs = None

    def __init__(self, name, inputs, cropping):
        super().__init__(name, inputs)
        self.cropping = _check_cropping(cropping)


@register
class ConcatLayer(_MergeLayer):
    """Join the (cropped) inputs along ``axis``."""

    config_keys = ("axis", "cropping")

    def __init__(self, name, inputs, axis, cropping):
        super().__init__(name, inputs, cropping)
        check(is_int(axis), f"axis must be an int, got {axis!r}")
        self.axis = axis

    def __call__(self, *xs):
        return np.concatenate(kernels.autocrop(xs, self.cropping), axis=self.axis)


@register
class ElemwiseSumLayer(_MergeLayer):
    """``coeffs[0] * x0 + coeffs[1] * x1 + ...``, summed left to right."""

    config_keys = ("coeffs", "cropping")

    def __init__(self, name, inputs, coeffs, cropping):
        super().__init__(name, inputs, cropping)
        check(isinstance(coeffs, list) and len(coeffs) == len(inputs) and all(
            isinstance(c, (int, float)) and not isinstance(c, bool) for c in coeffs),
            f"coeffs must be a list of {len(inputs)} numbers (one per input), got {coeffs!r}")
        self.coeffs = tuple(coeffs)

    def __call__(self, *xs):
        total = None
        for coeff, x in zip(self.coeffs, _same_shapes(kernels.autocrop(xs, self.cropping))):
            term = x if coeff == 1 else x * coeff
            total = term if total is None else total + term
        return total


@register
class ElemwiseMergeLayer(_MergeLayer):
    """``f(f(x0, x1), x2)...`` for a binary ``merge_function`` (add, mul, maximum, ...,
    or a two-input program lowered from the user's function)."""

    config_keys = ("merge_function", "cropping")

    def __init__(self, name, inputs, merge_function, cropping):
        super().__init__(name, inputs, cropping)
        self.merge_function = get_merge_function(merge_function)

    def __call__(self, *xs):
        first, *rest = _same_shapes(kernels.autocrop(xs, self.cropping))
        for x in rest:
            first = self.merge_function(first, x)
        return first
