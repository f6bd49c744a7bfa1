"""Layers that move, select or pad elements without computing new values."""
import math

import numpy as np

from .base import Layer, check, is_int, register

__all__ = ["FlattenLayer", "ReshapeLayer", "DimshuffleLayer", "SliceLayer", "PadLayer"]


@register
class FlattenLayer(Layer):
    """Keep the first ``outdim - 1`` axes and flatten the rest into one."""

    config_keys = ("outdim",)

    def __init__(self, name, inputs, outdim):
        super().__init__(name, inputs)
        check(is_int(outdim, 1), f"outdim must be a positive int, got {outdim!r}")
        self.outdim = outdim

    def __call__(self, x):
        if x.ndim < self.outdim:
            raise ValueError(f"cannot flatten a {x.ndim}-dimensional input to "
                             f"outdim={self.outdim} axes")
        keep = x.shape[:self.outdim - 1]
        return x.reshape(keep + (math.prod(x.shape[self.outdim - 1:]),))


@register
class ReshapeLayer(Layer):
    """Reshape to ``shape``: ints, one ``-1`` (inferred), and ``[i]`` (input axis i's size)."""

    config_keys = ("shape",)

    def __init__(self, name, inputs, shape):
        super().__init__(name, inputs)
        check(isinstance(shape, list) and all(
            is_int(s, -1) or (isinstance(s, list) and len(s) == 1 and is_int(s[0], 0))
            for s in shape), f"shape entries must be ints >= -1 or [i], got {shape!r}")
        check(shape.count(-1) <= 1, f"shape may hold one -1 at most, got {shape!r}")
        self.shape = tuple(tuple(s) if isinstance(s, list) else s for s in shape)

    def __call__(self, x):
        copied = [s[0] for s in self.shape if isinstance(s, tuple)]
        if copied and max(copied) >= x.ndim:
            raise ValueError(f"shape {self.shape} copies axis {max(copied)} of a "
                             f"{x.ndim}-dimensional input")
        return x.reshape([x.shape[s[0]] if isinstance(s, tuple) else s for s in self.shape])


@register
class DimshuffleLayer(Layer):
    """Permute axes (ints), insert size-1 axes (``"x"``), drop size-1 axes (unmentioned)."""

    config_keys = ("pattern",)

    def __init__(self, name, inputs, pattern):
        super().__init__(name, inputs)
        kept = [p for p in pattern if p != "x"] if isinstance(pattern, list) else None
        check(kept is not None and all(is_int(p, 0) for p in kept)
              and len(set(kept)) == len(kept),
              f"pattern must be a list of distinct axes (ints >= 0) and 'x', got {pattern!r}")
        self.pattern, self.kept = tuple(pattern), kept

    def __call__(self, x):
        if self.kept and max(self.kept) >= x.ndim:
            raise ValueError(f"pattern {list(self.pattern)} uses axis {max(self.kept)} of a "
                             f"{x.ndim}-dimensional input")
        dropped = [axis for axis in range(x.ndim) if axis not in self.kept]
        for axis in dropped:
            if x.shape[axis] != 1:
                raise ValueError(f"pattern {list(self.pattern)} drops axis {axis}, which has "
                                 f"size {x.shape[axis]}; only size-1 axes can be dropped")
        shape = [1 if p == "x" else x.shape[p] for p in self.pattern]
        return x.transpose(self.kept + dropped).reshape(shape)


@register
class SliceLayer(Layer):
    """``x[..., indices, ...]`` along ``axis``; an int index removes the axis."""

    config_keys = ("axis", "indices")

    def __init__(self, name, inputs, axis, indices):
        super().__init__(name, inputs)
        check(is_int(axis), f"axis must be an int, got {axis!r}")
        if isinstance(indices, dict):
            bounds = [indices.get(k) for k in ("start", "stop", "step")]
            check(set(indices) == {"start", "stop", "step"}
                  and all(b is None or is_int(b) for b in bounds) and bounds[2] != 0,
                  f"indices must hold 'start', 'stop' and 'step' (ints or null, step not "
                  f"0), got {indices!r}")
            indices = slice(*bounds)
        check(isinstance(indices, slice) or is_int(indices),
              f"indices must be an int or a start/stop/step object, got {indices!r}")
        self.axis, self.indices = axis, indices

    def __call__(self, x):
        if not -x.ndim <= self.axis < x.ndim:
            raise ValueError(f"axis {self.axis} is out of range for a {x.ndim}-dimensional "
                             "input")
        axis = self.axis % x.ndim
        if not isinstance(self.indices, slice) and not (
                -x.shape[axis] <= self.indices < x.shape[axis]):
            raise ValueError(f"index {self.indices} is out of range for axis {axis} of "
                             f"size {x.shape[axis]}")
        return x[(slice(None),) * axis + (self.indices,)]


@register
class PadLayer(Layer):
    """Pad with ``val``: ``width[k] = [before, after]`` applies to axis ``batch_ndim + k``."""

    config_keys = ("width", "val", "batch_ndim")

    def __init__(self, name, inputs, width, val, batch_ndim):
        super().__init__(name, inputs)
        check(isinstance(width, list) and all(
            isinstance(w, list) and len(w) == 2 and all(is_int(n, 0) for n in w)
            for w in width), f"width must be a list of [before, after] pairs of "
                             f"non-negative ints, got {width!r}")
        check(isinstance(val, (int, float)) and not isinstance(val, bool),
              f"val must be a number, got {val!r}")
        check(is_int(batch_ndim, 0), f"batch_ndim must be an int >= 0, got {batch_ndim!r}")
        self.width = tuple(tuple(w) for w in width)
        self.val, self.batch_ndim = val, batch_ndim

    def __call__(self, x):
        first, count = self.batch_ndim, len(self.width)
        if first + count > x.ndim:
            raise ValueError(f"batch_ndim={first} and {count} widths need an input with at "
                             f"least {first + count} axes, got shape {x.shape}")
        pads = ((0, 0),) * first + self.width + ((0, 0),) * (x.ndim - first - count)
        return np.pad(x, pads, constant_values=self.val)
