"""Pooling layers: spatial pooling, global pooling, upscaling and feature pooling.

Spatial pooling is computed by :func:`forge.ops.pool` with Theano's semantics (Lasagne
ran on Theano's ``pool_2d``/``pool_3d``).
"""
import pytensor.tensor as T

from .. import ops
from .base import Layer
from .conv import _int_tuple, _is_int, _positive_int

__all__ = [
    "pool_output_length", "Pool1DLayer", "Pool2DLayer", "Pool3DLayer", "MaxPool1DLayer",
    "MaxPool2DLayer", "MaxPool3DLayer", "GlobalPoolLayer", "Upscale1DLayer",
    "Upscale2DLayer", "Upscale3DLayer", "FeaturePoolLayer", "FeatureWTALayer",
    "SpatialPyramidPoolingLayer",
]

_POOL_MODES = ("max", "average_inc_pad", "average_exc_pad", "sum")


def pool_output_length(input_length, pool_size, stride, pad, ignore_border):
    """The length of a pooling's output along one axis (Theano's rule).

    Parameters
    ----------
    input_length : int or None
        The input's length along the axis (``None``: unknown).
    pool_size : int
        The length of a pooling window.
    stride : int
        The step between windows.
    pad : int
        Padding on both sides (only with ``ignore_border=True``).
    ignore_border : bool
        If True, only windows that fit in the padded input count. If False, a last,
        partial window is added wherever the input has elements left over.

    Returns
    -------
    int or None

    Examples
    --------
    >>> from forge.layers import pool_output_length
    >>> pool_output_length(7, 2, 2, 0, True), pool_output_length(7, 2, 2, 0, False)
    (3, 4)
    >>> pool_output_length(7, 3, 2, 1, True)
    4
    """
    if input_length is None or pool_size is None:
        return None
    if ignore_border:
        covered = input_length + 2 * pad - pool_size + 1
        return (covered + stride - 1) // stride
    if pad:
        raise ValueError(f"padding works only with ignore_border=True, got pad={pad}")
    if stride >= pool_size:
        return (input_length + stride - 1) // stride
    return max(0, (input_length - pool_size + stride - 1) // stride) + 1


def _check_mode(mode, allowed=_POOL_MODES):
    if mode not in allowed:
        raise ValueError(f"mode must be one of {', '.join(repr(m) for m in allowed)}, "
                         f"got mode={mode!r}")
    return mode


class _PoolLayer(Layer):
    """Pooling over the last ``n`` axes of a ``(batch, channels, *spatial)`` input."""

    n = None

    def __init__(self, incoming, pool_size, stride, pad, ignore_border, mode, name):
        super().__init__(incoming, name=name)
        n = self.n
        layer_type = type(self).__name__
        if len(self.input_shape) != n + 2:
            raise ValueError(
                f"{layer_type} needs a {n + 2}-dimensional input (batch, channels, {n} "
                f"spatial axes), got input shape {self.input_shape}")
        self.pool_size = _int_tuple(pool_size, n, "pool_size")
        self.stride = self.pool_size if stride is None else _int_tuple(stride, n, "stride")
        self.pad = _int_tuple(pad, n, "pad", minimum=0)
        self.ignore_border = bool(ignore_border)
        self.mode = _check_mode(mode)
        if any(self.pad) and not self.ignore_border:
            raise ValueError(f"padding works only with ignore_border=True, got pad="
                             f"{self.pad} with ignore_border=False")
        if any(p >= s for p, s in zip(self.pad, self.pool_size)):
            raise ValueError(f"every entry of pad must be smaller than the pool size (a "
                             f"window must not lie in the padding alone), got pad="
                             f"{self.pad} with pool_size={self.pool_size}")
        out = self.output_shape
        if any(s is not None and s < 1 for s in out[2:]):
            raise ValueError(
                f"{layer_type} would have an empty output: input shape "
                f"{self.input_shape} with pool_size={self.pool_size}, stride="
                f"{self.stride}, pad={self.pad}, ignore_border={self.ignore_border} "
                f"gives output shape {out}")

    def get_output_shape_for(self, input_shape):
        spatial = tuple(
            pool_output_length(size, p, s, pad, self.ignore_border)
            for size, p, s, pad in zip(input_shape[2:], self.pool_size, self.stride,
                                       self.pad))
        return tuple(input_shape[:2]) + spatial

    def get_output_for(self, input, **kwargs):
        return ops.pool(input, self.pool_size, self.stride, self.pad,
                           ignore_border=self.ignore_border, mode=self.mode)


_POOL_PARAMETERS = """
    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape: ``(batch, channels, {spatial})``.
    pool_size : int or tuple of int
        Size of the pooling windows.
    stride : int, tuple of int or None
        Step between windows; ``None`` (the default) means ``pool_size``
        (non-overlapping windows).
    pad : int or tuple of int
        Padding on both sides of each spatial axis; smaller than ``pool_size``, and
        only with ``ignore_border=True``. Max pooling never picks the padding.
    ignore_border : bool
        If True, only windows that fit in the (padded) input count; if False, a
        last, partial window is added where elements are left over.
    mode : {{'max', 'average_inc_pad', 'average_exc_pad', 'sum'}}
        The pooling function: the maximum, the mean counting the padding (as zeros),
        the mean of the input elements only, or the sum. (Bundles store the first
        three.)
    name : str, optional
        Name of the layer.
"""


class Pool1DLayer(_PoolLayer):
    __doc__ = """1-D pooling over the last axis.
    """ + _POOL_PARAMETERS.format(spatial="length") + """
    Examples
    --------
    >>> from forge.layers import InputLayer, Pool1DLayer
    >>> Pool1DLayer(InputLayer((None, 4, 11)), pool_size=3).output_shape
    (None, 4, 3)
    >>> Pool1DLayer(InputLayer((None, 4, 11)), 3, ignore_border=False).output_shape
    (None, 4, 4)
    """

    n = 1

    def __init__(self, incoming, pool_size, stride=None, pad=0, ignore_border=True,
                 mode="max", name=None):
        super().__init__(incoming, pool_size, stride, pad, ignore_border, mode, name)


class Pool2DLayer(_PoolLayer):
    __doc__ = """2-D pooling over the last two axes.
    """ + _POOL_PARAMETERS.format(spatial="rows, columns") + """
    Examples
    --------
    >>> from forge.layers import InputLayer, Pool2DLayer
    >>> l_in = InputLayer((None, 3, 32, 31))
    >>> Pool2DLayer(l_in, pool_size=2).output_shape
    (None, 3, 16, 15)
    >>> Pool2DLayer(l_in, 3, stride=2, pad=1, mode='average_exc_pad').output_shape
    (None, 3, 16, 16)
    """

    n = 2

    def __init__(self, incoming, pool_size, stride=None, pad=(0, 0), ignore_border=True,
                 mode="max", name=None):
        super().__init__(incoming, pool_size, stride, pad, ignore_border, mode, name)


class Pool3DLayer(_PoolLayer):
    __doc__ = """3-D pooling over the last three axes.
    """ + _POOL_PARAMETERS.format(spatial="depth, rows, columns") + """
    Examples
    --------
    >>> from forge.layers import InputLayer, Pool3DLayer
    >>> Pool3DLayer(InputLayer((None, 2, 8, 9, 10)), pool_size=2).output_shape
    (None, 2, 4, 4, 5)
    """

    n = 3

    def __init__(self, incoming, pool_size, stride=None, pad=(0, 0, 0),
                 ignore_border=True, mode="max", name=None):
        super().__init__(incoming, pool_size, stride, pad, ignore_border, mode, name)


class MaxPool1DLayer(Pool1DLayer):
    """1-D max pooling: :class:`Pool1DLayer` with ``mode='max'``.

    Examples
    --------
    >>> from forge.layers import InputLayer, MaxPool1DLayer
    >>> MaxPool1DLayer(InputLayer((None, 4, 10)), pool_size=2).output_shape
    (None, 4, 5)
    """

    def __init__(self, incoming, pool_size, stride=None, pad=0, ignore_border=True,
                 name=None):
        super().__init__(incoming, pool_size, stride, pad, ignore_border, mode="max",
                         name=name)


class MaxPool2DLayer(Pool2DLayer):
    """2-D max pooling: :class:`Pool2DLayer` with ``mode='max'``.

    Examples
    --------
    >>> from forge.layers import InputLayer, MaxPool2DLayer
    >>> MaxPool2DLayer(InputLayer((None, 8, 7, 7)), pool_size=3, stride=2).output_shape
    (None, 8, 3, 3)
    """

    def __init__(self, incoming, pool_size, stride=None, pad=(0, 0), ignore_border=True,
                 name=None):
        super().__init__(incoming, pool_size, stride, pad, ignore_border, mode="max",
                         name=name)


class MaxPool3DLayer(Pool3DLayer):
    """3-D max pooling: :class:`Pool3DLayer` with ``mode='max'``.

    Examples
    --------
    >>> from forge.layers import InputLayer, MaxPool3DLayer
    >>> MaxPool3DLayer(InputLayer((None, 1, 4, 6, 8)), pool_size=2).output_shape
    (None, 1, 2, 3, 4)
    """

    def __init__(self, incoming, pool_size, stride=None, pad=(0, 0, 0),
                 ignore_border=True, name=None):
        super().__init__(incoming, pool_size, stride, pad, ignore_border, mode="max",
                         name=name)


class GlobalPoolLayer(Layer):
    """Pool over all axes after the second: ``(batch, channels, ...) -> (batch,
    channels)``.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape, of 3 or more dimensions.
    pool_function : callable
        Called as ``pool_function(x, axis=2)`` on the input flattened to three
        dimensions; ``T.mean`` (the default), ``T.max``, ``T.min`` and ``T.sum`` can
        be exported.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor.tensor as T
    >>> from forge.layers import InputLayer, GlobalPoolLayer, get_output
    >>> layer = GlobalPoolLayer(InputLayer((None, 2, 3, 3)), pool_function=T.max)
    >>> layer.output_shape
    (None, 2)
    >>> x = np.arange(36, dtype="float32").reshape(2, 2, 3, 3)
    >>> get_output(layer, x).eval()
    array([[ 8., 17.],
           [26., 35.]], dtype=float32)
    """

    def __init__(self, incoming, pool_function=T.mean, name=None):
        super().__init__(incoming, name=name)
        if len(self.input_shape) < 3:
            raise ValueError(f"GlobalPoolLayer pools over the axes after the second and "
                             f"needs an input of 3 or more dimensions, got input shape "
                             f"{self.input_shape}")
        if not callable(pool_function):
            raise ValueError(f"pool_function must be callable (e.g. T.mean), got "
                             f"pool_function={pool_function!r}")
        self.pool_function = pool_function

    def get_output_shape_for(self, input_shape):
        return tuple(input_shape[:2])

    def get_output_for(self, input, **kwargs):
        return self.pool_function(T.flatten(input, 3), axis=2)


class _UpscaleLayer(Layer):
    """Upscaling of the last ``n`` axes by integer factors."""

    n = None

    def __init__(self, incoming, scale_factor, mode, name):
        super().__init__(incoming, name=name)
        n = self.n
        if len(self.input_shape) != n + 2:
            raise ValueError(
                f"{type(self).__name__} needs a {n + 2}-dimensional input (batch, "
                f"channels, {n} spatial axes), got input shape {self.input_shape}")
        self.scale_factor = _int_tuple(scale_factor, n, "scale_factor")
        if mode not in ("repeat", "dilate"):
            raise ValueError(f"mode must be either 'repeat' or 'dilate', got mode={mode!r}")
        self.mode = mode

    def get_output_shape_for(self, input_shape):
        spatial = tuple(None if s is None else s * f
                        for s, f in zip(input_shape[2:], self.scale_factor))
        return tuple(input_shape[:2]) + spatial

    def get_output_for(self, input, **kwargs):
        if all(f == 1 for f in self.scale_factor):
            return input
        if self.mode == "repeat":
            upscaled = input
            for axis, factor in enumerate(self.scale_factor, start=2):
                if factor > 1:
                    upscaled = T.repeat(upscaled, factor, axis=axis)
            return upscaled
        shape = tuple(input.shape[:2]) + tuple(
            input.shape[axis] * f for axis, f in enumerate(self.scale_factor, start=2))
        upscaled = T.zeros(shape, dtype=input.dtype)
        index = (slice(None), slice(None)) + tuple(slice(None, None, f)
                                                   for f in self.scale_factor)
        return T.set_subtensor(upscaled[index], input)


_UPSCALE_PARAMETERS = """
    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape: ``(batch, channels, {spatial})``.
    scale_factor : int or tuple of int
        Upscaling factor per spatial axis (>= 1).
    mode : {{'repeat', 'dilate'}}
        ``'repeat'`` repeats every element ``scale_factor`` times along each axis;
        ``'dilate'`` places the input at every ``scale_factor``-th position (starting
        at the first) and fills the rest with zeros.
    name : str, optional
        Name of the layer.
"""


class Upscale1DLayer(_UpscaleLayer):
    __doc__ = """1-D upscaling of the last axis.
    """ + _UPSCALE_PARAMETERS.format(spatial="length") + """
    Examples
    --------
    >>> import numpy as np
    >>> from forge.layers import InputLayer, Upscale1DLayer, get_output
    >>> layer = Upscale1DLayer(InputLayer((None, 1, 3)), scale_factor=2)
    >>> get_output(layer, np.array([[[1, 2, 3]]], dtype="float32")).eval()
    array([[[1., 1., 2., 2., 3., 3.]]], dtype=float32)
    >>> layer = Upscale1DLayer(InputLayer((None, 1, 3)), 2, mode='dilate')
    >>> get_output(layer, np.array([[[1, 2, 3]]], dtype="float32")).eval()
    array([[[1., 0., 2., 0., 3., 0.]]], dtype=float32)
    """

    n = 1

    def __init__(self, incoming, scale_factor, mode="repeat", name=None):
        super().__init__(incoming, scale_factor, mode, name)


class Upscale2DLayer(_UpscaleLayer):
    __doc__ = """2-D upscaling of the last two axes.
    """ + _UPSCALE_PARAMETERS.format(spatial="rows, columns") + """
    Examples
    --------
    >>> from forge.layers import InputLayer, Upscale2DLayer
    >>> Upscale2DLayer(InputLayer((None, 3, 8, 5)), scale_factor=(2, 3)).output_shape
    (None, 3, 16, 15)
    """

    n = 2

    def __init__(self, incoming, scale_factor, mode="repeat", name=None):
        super().__init__(incoming, scale_factor, mode, name)


class Upscale3DLayer(_UpscaleLayer):
    __doc__ = """3-D upscaling of the last three axes.
    """ + _UPSCALE_PARAMETERS.format(spatial="depth, rows, columns") + """
    Examples
    --------
    >>> from forge.layers import InputLayer, Upscale3DLayer
    >>> Upscale3DLayer(InputLayer((None, 3, 2, 3, 4)), scale_factor=2).output_shape
    (None, 3, 4, 6, 8)
    """

    n = 3

    def __init__(self, incoming, scale_factor, mode="repeat", name=None):
        super().__init__(incoming, scale_factor, mode, name)


def _feature_axis(layer_type, axis, input_shape, pool_size):
    ndim = len(input_shape)
    if not _is_int(axis) or not -ndim <= axis < ndim:
        raise ValueError(f"{layer_type} got axis={axis!r} for a {ndim}-dimensional "
                         f"input; it must be an int in [-{ndim}, {ndim})")
    axis = int(axis) % ndim
    size = input_shape[axis]
    if size is not None and size % pool_size:
        raise ValueError(f"Number of input feature maps ({size}) is not a multiple of the "
                         f"pool size (pool_size={pool_size}); input shape {input_shape}, "
                         f"axis={axis}")
    return axis


class FeaturePoolLayer(Layer):
    """Pool groups of ``pool_size`` consecutive features along one axis (e.g. maxout).

    Features ``k * pool_size`` to ``(k + 1) * pool_size - 1`` of ``axis`` are pooled
    into output feature ``k``.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    pool_size : int
        Size of the groups; must divide the size of ``axis``.
    axis : int
        The axis along which to pool (default 1, the channels).
    pool_function : callable
        Called as ``pool_function(x, axis=...)``; ``T.max`` (the default: a maxout
        layer), ``T.mean``, ``T.min`` and ``T.sum`` can be exported.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.layers import InputLayer, FeaturePoolLayer, get_output
    >>> layer = FeaturePoolLayer(InputLayer((None, 6)), pool_size=3)
    >>> layer.output_shape
    (None, 2)
    >>> x = np.array([[1, 5, 2, 0, -1, 4]], dtype="float32")
    >>> get_output(layer, x).eval()
    array([[5., 4.]], dtype=float32)
    """

    def __init__(self, incoming, pool_size, axis=1, pool_function=T.max, name=None):
        super().__init__(incoming, name=name)
        self.pool_size = _positive_int(pool_size, "pool_size")
        self.axis = axis
        self._axis = _feature_axis("FeaturePoolLayer", axis, self.input_shape,
                                   self.pool_size)
        if not callable(pool_function):
            raise ValueError(f"pool_function must be callable (e.g. T.max), got "
                             f"pool_function={pool_function!r}")
        self.pool_function = pool_function

    def get_output_shape_for(self, input_shape):
        shape = list(input_shape)
        if shape[self._axis] is not None:
            shape[self._axis] = shape[self._axis] // self.pool_size
        return tuple(shape)

    def get_output_for(self, input, **kwargs):
        axis = self._axis
        shape = tuple(input.shape)
        grouped = input.reshape(shape[:axis] + (shape[axis] // self.pool_size,
                                                self.pool_size) + shape[axis + 1:])
        return self.pool_function(grouped, axis=axis + 1)


class FeatureWTALayer(Layer):
    """Winner-take-all over groups of ``pool_size`` consecutive features.

    In every group the largest feature is kept (the first one on ties) and the others
    are set to zero; the shape does not change.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    pool_size : int
        Size of the groups; must divide the size of ``axis``.
    axis : int
        The axis along which the groups lie (default 1).
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.layers import InputLayer, FeatureWTALayer, get_output
    >>> layer = FeatureWTALayer(InputLayer((None, 4)), pool_size=2)
    >>> get_output(layer, np.array([[1, 3, 4, 2]], dtype="float32")).eval()
    array([[0., 3., 4., 0.]], dtype=float32)
    """

    def __init__(self, incoming, pool_size, axis=1, name=None):
        super().__init__(incoming, name=name)
        self.pool_size = _positive_int(pool_size, "pool_size")
        self.axis = axis
        self._axis = _feature_axis("FeatureWTALayer", axis, self.input_shape,
                                   self.pool_size)

    def get_output_for(self, input, **kwargs):
        axis = self._axis
        shape = tuple(input.shape)
        grouped = input.reshape(shape[:axis] + (shape[axis] // self.pool_size,
                                                self.pool_size) + shape[axis + 1:])
        winner = T.argmax(grouped, axis=axis + 1, keepdims=True)
        position = T.arange(self.pool_size).dimshuffle(
            ("x",) * (axis + 1) + (0,) + ("x",) * (input.ndim - axis - 1))
        mask = T.eq(winner, position).reshape(input.shape)
        return input * T.cast(mask, input.dtype)


class SpatialPyramidPoolingLayer(Layer):
    """Spatial pyramid pooling: pool a 2-D map into a fixed grid at several scales.

    For every ``d`` in ``pool_dims`` the input's two spatial axes are pooled into
    (about) ``d x d`` bins, and the bins of all levels are concatenated:
    ``(batch, channels, rows, columns) -> (batch, channels, sum(d * d))``. This lets a
    dense layer follow convolutions of inputs of any size.

    With ``implementation='fast'`` (the default, and the one bundles store) each level
    is one pooling with windows of ``ceil(size / d)`` and strides of ``size // d``
    along each axis. That gives exactly ``d`` bins on an axis when ``size % d <=
    size // d`` (always when ``d`` divides ``size``) and a few more otherwise, which
    forge reports when the spatial sizes are fixed. When they are not, the output
    shape says ``sum(d * d)`` as in Lasagne, and forge pools the first ``d`` windows
    per axis (all of them in the common case above). ``implementation='kaiming'``
    pools the ``d x d``
    regions of He et al. (start ``floor(k * size / d)``, end ``ceil((k + 1) * size /
    d)``), always exactly ``d`` bins.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape, 4-dimensional.
    pool_dims : list of int
        The number of bins per axis of each level.
    mode : {'max', 'average_inc_pad', 'average_exc_pad', 'sum'}
        The pooling function (without padding the two averages agree).
    implementation : {'fast', 'kaiming'}
        See above.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, SpatialPyramidPoolingLayer
    >>> SpatialPyramidPoolingLayer(InputLayer((None, 16, 12, 8))).output_shape
    (None, 16, 21)
    >>> SpatialPyramidPoolingLayer(InputLayer((None, 16, None, None)), [2, 1]).output_shape
    (None, 16, 5)
    """

    def __init__(self, incoming, pool_dims=[4, 2, 1], mode="max", implementation="fast",
                 name=None):
        super().__init__(incoming, name=name)
        if len(self.input_shape) != 4:
            raise ValueError(f"Tried to create a SPP layer with input shape "
                             f"{self.input_shape}. Expected 4 input dimensions (batchsize, "
                             f"channels, 2 spatial dimensions).")
        try:
            dims = list(pool_dims)
        except TypeError:
            dims = None
        if not dims or not all(_is_int(d) and d > 0 for d in dims):
            raise ValueError(f"pool_dims must be a non-empty list of positive ints, got "
                             f"pool_dims={pool_dims!r}")
        self.pool_dims = [int(d) for d in dims]
        self.mode = _check_mode(mode)
        if implementation not in ("fast", "kaiming"):
            raise ValueError(f"implementation must be 'fast' or 'kaiming', got "
                             f"implementation={implementation!r}")
        self.implementation = implementation
        if implementation == "fast":
            for axis, size in enumerate(self.input_shape[2:]):
                small = [d for d in self.pool_dims if size is not None and size < d]
                if small:
                    raise ValueError(
                        f"implementation='fast' needs every spatial size to be at least "
                        f"the number of bins (the stride is size // d), got size {size} "
                        f"on spatial axis {axis} with pool_dims={self.pool_dims}")

    @staticmethod
    def _fast_window(size, d):
        """(window, stride) of one 'fast' level along an axis of length ``size``."""
        return (size + d - 1) // d, size // d

    def get_output_shape_for(self, input_shape):
        spatial = input_shape[2:]
        if self.implementation == "kaiming" or any(s is None for s in spatial):
            return tuple(input_shape[:2]) + (sum(d * d for d in self.pool_dims),)
        total = 0
        for d in self.pool_dims:
            count = 1
            for size in spatial:
                window, stride = self._fast_window(size, d)
                count *= (size - window) // stride + 1
            total += count
        return tuple(input_shape[:2]) + (total,)

    def get_output_for(self, input, **kwargs):
        fixed = all(s is not None for s in self.input_shape[2:])
        sizes = tuple(known if known is not None else symbolic
                      for known, symbolic in zip(self.input_shape[2:], input.shape[2:]))
        levels = []
        for d in self.pool_dims:
            if self.implementation == "kaiming":
                # bin k spans [floor(k * size / d), ceil((k + 1) * size / d))
                bounds = [[((k * n) // d, -((-(k + 1) * n) // d)) for k in range(d)]
                          for n in sizes]
                levels.append(self._bins(input, bounds))
            elif fixed:
                windows = [self._fast_window(n, d) for n in sizes]
                pooled = ops.pool(input, tuple(w for w, _ in windows),
                                  tuple(s for _, s in windows), (0, 0),
                                  ignore_border=True, mode=self.mode)
                levels.append(T.flatten(pooled, 3))
            else:
                # The fast pooling's first d windows per axis, by slicing (the window
                # size depends on the symbolic input size); they are all of its
                # windows whenever size % d <= size // d.
                bounds = []
                for n in sizes:
                    window, stride = (n + d - 1) // d, n // d
                    bounds.append([(k * stride, k * stride + window) for k in range(d)])
                levels.append(self._bins(input, bounds))
        return T.concatenate(levels, axis=2)

    def _bins(self, input, bounds):
        """Pool the ``(start, stop)`` regions of ``bounds`` (per axis) into bins."""
        reduce = {"max": T.max, "sum": T.sum}.get(self.mode, T.mean)
        bins = []
        for (r0, r1) in bounds[0]:
            for (c0, c1) in bounds[1]:
                bins.append(reduce(input[:, :, r0:r1, c0:c1], axis=(2, 3)))
        return T.stack(bins, axis=2)
