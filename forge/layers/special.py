"""Special-purpose layers: functions, biases and scales, learned and randomized
rectifiers, the inverse of a layer, and spatial transformers."""
import numbers

import numpy as np
import pytensor
import pytensor.tensor as T

from .. import init, nonlinearities
from ..random import random_streams
from .base import Layer, MergeLayer

__all__ = [
    "NonlinearityLayer", "BiasLayer", "ScaleLayer", "standardize", "ExpressionLayer",
    "InverseLayer", "TransformerLayer", "TPSTransformerLayer", "ParametricRectifierLayer",
    "prelu", "RandomizedRectifierLayer", "rrelu",
]


class NonlinearityLayer(Layer):
    """Apply a nonlinearity to the input.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    nonlinearity : callable or None
        The function; ``None`` means linear.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, NonlinearityLayer
    >>> from forge.nonlinearities import softmax
    >>> NonlinearityLayer(InputLayer((None, 10)), softmax).output_shape
    (None, 10)
    """

    def __init__(self, incoming, nonlinearity=nonlinearities.rectify, name=None):
        super().__init__(incoming, name=name)
        self.nonlinearity = nonlinearities.identity if nonlinearity is None else nonlinearity

    def get_output_for(self, input, **kwargs):
        return self.nonlinearity(input)


def _parse_shared_axes(shared_axes, input_shape, layer_type, allow_all=False):
    """Return shared_axes as a tuple of non-negative axes of ``input_shape``.

    ``'auto'`` is every axis but the second; ``'all'`` (where ``allow_all``) every axis.
    """
    ndim = len(input_shape)
    if isinstance(shared_axes, str):
        if allow_all and shared_axes == "all":
            return tuple(range(ndim))
        if shared_axes != "auto":
            words = "'auto', 'all'" if allow_all else "'auto'"
            raise ValueError(
                f"{layer_type}: shared_axes must be {words}, an int or a tuple of ints, "
                f"got {shared_axes!r}"
            )
        return (0,) + tuple(range(2, ndim))
    if isinstance(shared_axes, numbers.Integral):
        shared_axes = (shared_axes,)
    axes = []
    for axis in shared_axes:
        if not -ndim <= axis < ndim:
            raise ValueError(
                f"{layer_type} got shared_axes={tuple(shared_axes)} for a "
                f"{ndim}-dimensional input; every axis must be in [-{ndim}, {ndim})"
            )
        axes.append(int(axis) % ndim)
    return tuple(axes)


def _per_axis_param_shape(input_shape, shared_axes, layer_type):
    shape = tuple(s for axis, s in enumerate(input_shape) if axis not in shared_axes)
    if any(s is None for s in shape):
        raise ValueError(
            f"{layer_type} needs fixed sizes on every axis it does not share its "
            f"parameters over, got input shape {input_shape} with shared_axes="
            f"{shared_axes}"
        )
    return shape


def _broadcast_pattern(param, shared_axes, ndim):
    """The dimshuffle pattern that lines ``param`` up with an ``ndim``-dim input."""
    param_axes = iter(range(param.ndim))
    return ["x" if axis in shared_axes else next(param_axes) for axis in range(ndim)]


class BiasLayer(Layer):
    """Add a learned bias to the input.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    b : initializer, numpy array, shared variable, expression or None
        The biases; their shape is the input shape without the shared axes.
        ``None`` makes the layer an identity.
    shared_axes : 'auto', int or tuple of int
        Axes over which one bias is shared. ``'auto'`` shares over every axis but the
        second (one bias per channel/unit).
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, BiasLayer
    >>> l_in = InputLayer((None, 3, 5, 5))
    >>> BiasLayer(l_in).b.get_value().shape
    (3,)
    >>> BiasLayer(l_in, shared_axes=(0, 1)).b.get_value().shape
    (5, 5)
    """

    def __init__(self, incoming, b=init.Constant(0), shared_axes="auto", name=None):
        super().__init__(incoming, name=name)
        self.shared_axes = _parse_shared_axes(shared_axes, self.input_shape, "BiasLayer")
        if b is None:
            self.b = None
        else:
            shape = _per_axis_param_shape(self.input_shape, self.shared_axes, "BiasLayer")
            self.b = self.add_param(b, shape, name="b", regularizable=False)

    def get_output_for(self, input, **kwargs):
        if self.b is None:
            return input
        pattern = _broadcast_pattern(self.b, self.shared_axes, input.ndim)
        return input + self.b.dimshuffle(*pattern)


class ScaleLayer(Layer):
    """Multiply the input by learned scales.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    scales : initializer, numpy array, shared variable or expression
        The scales; their shape is the input shape without the shared axes.
    shared_axes : 'auto', int or tuple of int
        Axes over which one scale is shared. ``'auto'`` shares over every axis but the
        second (one scale per channel/unit).
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, ScaleLayer
    >>> ScaleLayer(InputLayer((None, 4))).scales.get_value()
    array([1., 1., 1., 1.], dtype=float32)
    """

    def __init__(self, incoming, scales=init.Constant(1), shared_axes="auto", name=None):
        super().__init__(incoming, name=name)
        self.shared_axes = _parse_shared_axes(shared_axes, self.input_shape, "ScaleLayer")
        shape = _per_axis_param_shape(self.input_shape, self.shared_axes, "ScaleLayer")
        self.scales = self.add_param(scales, shape, name="scales", regularizable=False)

    def get_output_for(self, input, **kwargs):
        pattern = _broadcast_pattern(self.scales, self.shared_axes, input.ndim)
        return input * self.scales.dimshuffle(*pattern)


def standardize(layer, offset, scale, shared_axes="auto"):
    """Standardize a layer's output with fixed statistics: ``(x - offset) / scale``.

    Builds a :class:`BiasLayer` with ``b = -offset`` and a :class:`ScaleLayer` with
    ``scales = 1 / scale``, neither of them trainable (both export as usual).

    Parameters
    ----------
    layer : Layer
        The layer whose output is standardized.
    offset, scale : number or numpy array
        The statistics, shaped like the input without ``shared_axes``.
    shared_axes : 'auto', int or tuple of int
        Axes the statistics are shared over (``'auto'``: every axis but the second).

    Returns
    -------
    ScaleLayer
        The last layer of the pair.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.layers import InputLayer, standardize, get_output
    >>> l_std = standardize(InputLayer((None, 2)), offset=np.array([1.0, 2.0]),
    ...                     scale=np.array([2.0, 4.0]))
    >>> get_output(l_std, np.array([[3.0, 6.0]], "float32")).eval()
    array([[1., 1.]], dtype=float32)
    >>> l_std.get_params(trainable=True)
    []
    """
    dtype = pytensor.config.floatX
    layer = BiasLayer(layer, np.asarray(-np.asarray(offset), dtype), shared_axes)
    layer.params[layer.b].discard("trainable")
    layer = ScaleLayer(layer, np.asarray(1.0 / np.asarray(scale), dtype), shared_axes)
    layer.params[layer.scales].discard("trainable")
    return layer


class ExpressionLayer(Layer):
    """Apply any function of one PyTensor expression to the input.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    function : callable
        Maps the input expression to the output expression.
    output_shape : None, 'auto', tuple or callable
        How to get the output shape: ``None`` keeps the input shape; a tuple is the
        output shape; a callable maps the input shape to the output shape; ``'auto'``
        runs ``function`` on arrays of zeros of the input shape, twice, with free
        axes of size 2 and then 3: output axes whose size changes with them are free
        (``None``), the others fixed.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, ExpressionLayer
    >>> l_in = InputLayer((None, 3, 4))
    >>> ExpressionLayer(l_in, lambda x: x.mean(axis=-1), output_shape="auto").output_shape
    (None, 3)
    >>> ExpressionLayer(l_in, lambda x: x.mean(axis=-1),
    ...                 output_shape=lambda shape: shape[:-1]).output_shape
    (None, 3)
    """

    def __init__(self, incoming, function, output_shape=None, name=None):
        super().__init__(incoming, name=name)
        if not callable(function):
            raise TypeError(f"function must be callable, got {function!r}")
        self.function = function
        self._auto_shapes = {}
        if output_shape is None or callable(output_shape):
            self._output_shape = output_shape
        elif isinstance(output_shape, str):
            if output_shape != "auto":
                raise ValueError(
                    f"output_shape must be None, 'auto', a tuple or a callable, got "
                    f"{output_shape!r}"
                )
            self._output_shape = output_shape
        else:
            self._output_shape = tuple(output_shape)

    def get_output_shape_for(self, input_shape):
        spec = self._output_shape
        if spec is None:
            return input_shape
        if callable(spec):
            return tuple(spec(input_shape))
        if spec == "auto":
            input_shape = tuple(input_shape)
            if input_shape not in self._auto_shapes:
                self._auto_shapes[input_shape] = self._infer_output_shape(input_shape)
            return self._auto_shapes[input_shape]
        return spec

    def _infer_output_shape(self, input_shape):
        dtype = pytensor.config.floatX
        x = T.tensor(dtype=dtype, shape=input_shape)
        # A one-off evaluation: skip the default linker's slow compilation.
        shape_of = pytensor.function([x], self.function(x).shape, mode="FAST_COMPILE")
        # Run it with two different sizes on the free axes: an output axis whose
        # size follows them is free too.
        fills = (2, 3) if None in input_shape else (1,)
        runs = [shape_of(np.zeros([fill if s is None else s for s in input_shape], dtype))
                for fill in fills]
        return tuple(int(s[0]) if len(set(s)) == 1 else None for s in zip(*runs))

    def get_output_for(self, input, **kwargs):
        return self.function(input)


class InverseLayer(MergeLayer):
    """Back-propagate through another layer: the gradient of ``layer`` w.r.t. its input.

    The output is ``J^T g``: the Jacobian of ``layer``'s output with respect to its
    input, transposed, applied to this layer's input ``g`` (shaped like ``layer``'s
    output). For a :class:`DenseLayer` that is a multiplication by ``W.T``, for a
    convolution a transposed convolution, for a max pooling an unpooling that puts
    each value where its window's maximum was. A nonlinearity of ``layer`` contributes
    its derivative at ``layer``'s current output, so the inverse depends on the
    network's input too.

    Parameters
    ----------
    incoming : Layer or tuple
        The values to back-propagate, shaped like ``layer``'s output.
    layer : Layer
        The layer to invert; it must have a single incoming layer (not a shape).
    name : str, optional
        Name of the layer.

    Notes
    -----
    The network graph of this layer holds ``incoming``, ``layer`` and ``layer``'s input
    layer. :func:`forge.export` supports the inverse of ``DenseLayer``,
    ``Conv1DLayer``/``Conv2DLayer``/``Conv3DLayer``, ``DilatedConv2DLayer``, the
    pooling layers (``Pool*DLayer``, ``MaxPool*DLayer``), ``NonlinearityLayer``,
    ``BiasLayer``, ``ScaleLayer``, ``FlattenLayer`` and ``ReshapeLayer``, with the
    nonlinearities whose derivative follows from their output (see
    ``docs/bundle-format.md``); it refuses others with an error naming the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, DenseLayer, InverseLayer
    >>> l_in = InputLayer((None, 8))
    >>> l_code = DenseLayer(l_in, num_units=3)
    >>> InverseLayer(l_code, l_code).output_shape  # a tied-weights decoder
    (None, 8)
    """

    def __init__(self, incoming, layer, name=None):
        if not isinstance(layer, Layer) or isinstance(layer, MergeLayer):
            raise TypeError(
                f"InverseLayer inverts a layer with one input, got layer={layer!r}")
        if layer.input_layer is None:
            raise ValueError(
                f"InverseLayer needs the inverted layer's input to be a layer, but "
                f"{layer!r} was built on the shape {layer.input_shape}")
        super().__init__([incoming, layer, layer.input_layer], name=name)
        self.layer = layer
        given, wanted = self.input_shapes[0], self.input_shapes[1]
        if len(given) != len(wanted) or any(
                a is not None and b is not None and a != b for a, b in zip(given, wanted)):
            raise ValueError(
                f"InverseLayer's input must be shaped like the inverted layer's output "
                f"{wanted}, got {given}")

    def get_output_shape_for(self, input_shapes):
        return input_shapes[2]

    def get_output_for(self, inputs, **kwargs):
        input, layer_out, layer_in = inputs
        return pytensor.grad(None, wrt=layer_in, known_grads={layer_out: input})


# -- spatial transformers -------------------------------------------------------------

_BORDER_MODES = ("nearest", "mirror", "wrap")


def _border_index(position, size, border_mode):
    """Integer pixel positions (floats holding integers) mapped into ``[0, size)``.

    ``nearest`` clamps to the edge, ``mirror`` reflects about the edge pixels (period
    ``2 * (size - 1)``, or 1 for a single pixel), ``wrap`` repeats the image.
    """
    if border_mode == "nearest":
        index = T.clip(position, 0, size - 1)
    elif border_mode == "mirror":
        period = T.maximum(2 * (size - 1), 1)
        index = T.minimum(position % period, -position % period)
    else:
        index = position % size
    return T.cast(index, "int64")


def _bilinear_sample(input, x, y, border_mode):
    """Sample ``input`` (batch, channels, rows, cols) at normalized coordinates.

    ``x`` and ``y`` are (batch, points) in ``[-1, 1]`` (-1: the first column/row, 1:
    the last); each point gets the bilinear blend of its 2x2 pixel neighbourhood,
    whose pixels outside the image are found by ``border_mode``. Returns
    (batch, points, channels).
    """
    dtype = input.dtype
    batch, channels, rows, cols = input.shape
    rows_f, cols_f = T.cast(rows, dtype), T.cast(cols, dtype)
    x = (x + 1) / 2 * (cols_f - 1)  # pixel coordinates
    y = (y + 1) / 2 * (rows_f - 1)
    x0, y0 = T.floor(x), T.floor(y)
    x1, y1 = x0 + 1, y0 + 1
    ix0, ix1 = (_border_index(v, cols_f, border_mode) for v in (x0, x1))
    iy0, iy1 = (_border_index(v, rows_f, border_mode) for v in (y0, y1))
    pixels = input.dimshuffle(0, 2, 3, 1).reshape((-1, channels))
    first = (T.arange(batch, dtype="int64") * rows * cols).dimshuffle(0, "x")

    def gather(iy, ix):
        return pixels[(first + iy * cols + ix).flatten()]

    def weight(w):
        return w.flatten().dimshuffle(0, "x")

    output = (weight((x1 - x) * (y1 - y)) * gather(iy0, ix0)
              + weight((x1 - x) * (y - y0)) * gather(iy1, ix0)
              + weight((x - x0) * (y1 - y)) * gather(iy0, ix1)
              + weight((x - x0) * (y - y0)) * gather(iy1, ix1))
    return output.reshape((batch, x.shape[1], channels))


def _linspace(num, dtype):
    """``num`` evenly spaced values from -1 to 1 (``[-1]`` for ``num=1``), symbolically."""
    num_f = T.cast(num, dtype)
    step = T.cast(2, dtype) / T.maximum(num_f - 1, 1)
    return T.arange(num, dtype=dtype) * step - 1


def _output_grid(rows, cols, dtype):
    """The output pixels' normalized (x, y) coordinates, row-major: (2, rows * cols)."""
    xs = T.tile(_linspace(cols, dtype).dimshuffle("x", 0), (rows, 1)).flatten()
    ys = T.tile(_linspace(rows, dtype).dimshuffle(0, "x"), (1, cols)).flatten()
    return T.stack([xs, ys])


def _numpy_grid(rows, cols):
    """:func:`_output_grid` in float64 numpy."""
    xs, ys = np.meshgrid(np.linspace(-1, 1, cols), np.linspace(-1, 1, rows))
    return np.stack([xs.ravel(), ys.ravel()])


class _TransformerBase(MergeLayer):
    """What both spatial transformers share: inputs, output size and sampling."""

    def __init__(self, incoming, localization_network, downsample_factor, border_mode,
                 name):
        super().__init__([incoming, localization_network], name=name)
        kind = type(self).__name__
        input_shape, loc_shape = self.input_shapes
        if len(input_shape) != 4:
            raise ValueError(
                f"{kind} needs a 4-dimensional input (batch, channels, rows, columns), "
                f"got input shape {input_shape}")
        if len(loc_shape) != 2:
            raise ValueError(
                f"{kind} needs a 2-dimensional localization output (batch, "
                f"parameters), got shape {loc_shape}")
        if isinstance(downsample_factor, numbers.Number):
            downsample_factor = (downsample_factor, downsample_factor)
        downsample_factor = tuple(downsample_factor)
        if len(downsample_factor) != 2 or not all(
                isinstance(f, numbers.Number) and f > 0 for f in downsample_factor):
            raise ValueError(
                f"{kind}: downsample_factor must be a positive number or a pair of them, "
                f"got {downsample_factor!r}")
        self.downsample_factor = downsample_factor
        if border_mode not in _BORDER_MODES:
            raise ValueError(
                f"{kind}: border_mode must be one of {', '.join(_BORDER_MODES)}, got "
                f"{border_mode!r}")
        self.border_mode = border_mode
        for size, out in zip(input_shape[2:], self.get_output_shape_for(self.input_shapes)[2:]):
            if out is not None and out < 1:
                raise ValueError(
                    f"{kind}: downsample_factor={self.downsample_factor} leaves no output "
                    f"pixel of an input of shape {input_shape}")

    def get_output_shape_for(self, input_shapes):
        shape = input_shapes[0]
        return tuple(shape[:2]) + tuple(
            None if s is None else int(s // f) for s, f in zip(shape[2:], self.downsample_factor))

    def _output_size(self, input):
        """The output rows and columns: ints when known, else expressions."""
        sizes = []
        for axis, (known, factor) in enumerate(zip(self.output_shape[2:],
                                                    self.downsample_factor), start=2):
            if known is not None:
                sizes.append(known)
            else:  # floor division in float64, as the output shape does it
                size = T.floor(T.cast(input.shape[axis], "float64") / factor)
                sizes.append(T.cast(size, "int64"))
        return sizes

    def _sample(self, input, points, rows, cols):
        """``input`` sampled at ``points`` (batch, 2, rows * cols): (batch, c, rows, cols)."""
        sampled = _bilinear_sample(input, points[:, 0], points[:, 1], self.border_mode)
        return sampled.reshape((input.shape[0], rows, cols, input.shape[1])).dimshuffle(
            0, 3, 1, 2)


class TransformerLayer(_TransformerBase):
    """Affine spatial transformer: resample the input along a learned affine map.

    Every output pixel, at normalized coordinates ``(x_t, y_t)`` in ``[-1, 1]``, takes
    the input's value at ``theta @ (x_t, y_t, 1)``, interpolated bilinearly from the
    four surrounding pixels (Jaderberg et al., 2015). ``theta`` is the localization
    network's output for the item, read as a 2 x 3 matrix.

    Parameters
    ----------
    incoming : Layer or tuple
        The images: (batch, channels, rows, columns).
    localization_network : Layer
        The transformation parameters: (batch, 6).
    downsample_factor : number or pair of numbers
        The output has ``rows // f0`` rows and ``columns // f1`` columns (a factor
        below 1 upsamples).
    border_mode : 'nearest', 'mirror' or 'wrap'
        What the pixels outside the image are: the nearest edge pixel, the image
        mirrored about its edge pixels, or the image repeated.
    name : str, optional
        Name of the layer.

    Examples
    --------
    An identity transform to start from: a localization layer with zero weights and
    the identity as its bias.

    >>> import numpy as np
    >>> from forge.layers import InputLayer, DenseLayer, TransformerLayer
    >>> l_in = InputLayer((None, 3, 28, 28))
    >>> identity = np.array([1, 0, 0, 0, 1, 0], dtype="float32")
    >>> l_loc = DenseLayer(l_in, num_units=6, W=np.zeros((3 * 28 * 28, 6), "float32"),
    ...                    b=identity, nonlinearity=None)
    >>> TransformerLayer(l_in, l_loc, downsample_factor=2).output_shape
    (None, 3, 14, 14)
    """

    def __init__(self, incoming, localization_network, downsample_factor=1,
                 border_mode="nearest", name=None):
        super().__init__(incoming, localization_network, downsample_factor, border_mode,
                         name)
        if self.input_shapes[1][1] not in (None, 6):
            raise ValueError(
                f"TransformerLayer needs 6 localization outputs per item (a 2 x 3 "
                f"matrix), got localization shape {self.input_shapes[1]}")

    def get_output_for(self, inputs, **kwargs):
        input, theta = inputs
        rows, cols = self._output_size(input)
        grid = _output_grid(rows, cols, input.dtype)
        grid = T.concatenate([grid, T.ones_like(grid[:1])])  # (x_t, y_t, 1)
        points = T.dot(T.cast(theta, input.dtype).reshape((-1, 2, 3)), grid)
        return self._sample(input, points, rows, cols)


def _tps_kernel(squared_distance):
    """The thin-plate spline's radial function ``U = r^2 log r^2`` (0 at ``r = 0``)."""
    if isinstance(squared_distance, np.ndarray):
        safe = np.where(squared_distance > 0, squared_distance, 1)
        return squared_distance * np.log(safe)
    safe = T.switch(squared_distance > 0, squared_distance, 1)
    return squared_distance * T.log(safe)


def tps_source_points(control_points):
    """The control points' resting positions: a square grid over [-1, 1]^2, (2, k)."""
    side = int(round(np.sqrt(control_points)))
    xs, ys = np.meshgrid(np.linspace(-1, 1, side), np.linspace(-1, 1, side))
    return np.stack([xs.ravel(), ys.ravel()])


def tps_solver(source_points):
    """The (k, k + 3) matrix mapping destination points to spline coefficients.

    The coefficients (``a_1, a_x, a_y, w_1..w_k`` per coordinate) solve Bookstein's
    system ``L c = (0, 0, 0, destinations)``; computed in float64.
    """
    k = source_points.shape[1]
    system = np.zeros((k + 3, k + 3))
    system[0, 3:] = system[3:, 0] = 1
    system[1:3, 3:] = source_points
    system[3:, 1:3] = source_points.T
    diff = source_points[:, :, None] - source_points[:, None, :]
    system[3:, 3:] = _tps_kernel(np.sum(diff ** 2, axis=0))
    return np.linalg.inv(system)[:, 3:].T


def tps_basis(grid, source_points):
    """Rows ``1, x, y, U(|p - c_1|), ..., U(|p - c_k|)`` for grid points ``p``: (k + 3, n)."""
    lib = np if isinstance(grid, np.ndarray) else T
    diff = grid[:, None, :] - source_points[:, :, None]
    radial = _tps_kernel((diff ** 2).sum(axis=0))
    return lib.concatenate([lib.ones_like(grid[:1]), grid, radial])


class TPSTransformerLayer(_TransformerBase):
    """Thin-plate spline spatial transformer.

    ``control_points`` points rest on a square grid over the image; the localization
    network gives each item's offsets of these points (all x offsets, then all y
    offsets). The thin-plate spline (Bookstein, 1989) through the moved points maps
    every output pixel to the input position it samples, bilinearly interpolated as in
    :class:`TransformerLayer`. Zero offsets give the identity.

    Parameters
    ----------
    incoming : Layer or tuple
        The images: (batch, channels, rows, columns).
    localization_network : Layer
        The control point offsets: (batch, 2 * control_points).
    downsample_factor : number or pair of numbers
        The output has ``rows // f0`` rows and ``columns // f1`` columns.
    control_points : int
        The number of control points: a perfect square, at least 4.
    precompute_grid : 'auto' or bool
        Compute the spline basis of the output grid once, when the layer is built
        (needs fixed rows and columns; ``'auto'``: whenever they are fixed), instead of
        in the graph. The outputs are the same.
    border_mode : 'nearest', 'mirror' or 'wrap'
        What the pixels outside the image are (see :class:`TransformerLayer`).
    name : str, optional
        Name of the layer.

    Notes
    -----
    The radial basis is ``U(r) = r^2 log r^2`` with ``U(0) = 0`` whether or not the grid
    is precomputed (Lasagne 0.2's in-graph path dropped the radial term).

    Examples
    --------
    >>> import numpy as np
    >>> from forge.layers import InputLayer, DenseLayer, TPSTransformerLayer
    >>> l_in = InputLayer((None, 1, 12, 12))
    >>> l_loc = DenseLayer(l_in, num_units=2 * 16, W=np.zeros((144, 32), "float32"),
    ...                    nonlinearity=None)  # zero offsets: the identity
    >>> l_tps = TPSTransformerLayer(l_in, l_loc, control_points=16)
    >>> l_tps.output_shape, l_tps.precompute_grid
    ((None, 1, 12, 12), True)
    """

    def __init__(self, incoming, localization_network, downsample_factor=1,
                 control_points=16, precompute_grid="auto", border_mode="nearest",
                 name=None):
        super().__init__(incoming, localization_network, downsample_factor, border_mode,
                         name)
        side = int(round(np.sqrt(control_points))) if isinstance(
            control_points, numbers.Integral) else 0
        if side < 2 or side * side != control_points:
            raise ValueError(
                f"control_points must be a perfect square of at least 4 (the points form "
                f"a square grid), got control_points={control_points!r}")
        self.control_points = int(control_points)
        if self.input_shapes[1][1] not in (None, 2 * self.control_points):
            raise ValueError(
                f"TPSTransformerLayer needs 2 * control_points = {2 * self.control_points} "
                f"localization outputs per item, got localization shape "
                f"{self.input_shapes[1]}")
        fixed = None not in self.output_shape[2:]
        if precompute_grid == "auto":
            precompute_grid = fixed
        elif precompute_grid not in (True, False):
            raise ValueError(f"precompute_grid must be 'auto', True or False, got "
                             f"{precompute_grid!r}")
        elif precompute_grid and not fixed:
            raise ValueError(
                f"precompute_grid=True needs fixed rows and columns, got input shape "
                f"{self.input_shapes[0]}")
        self.precompute_grid = precompute_grid
        self.source_points = tps_source_points(self.control_points)
        self._solver = tps_solver(self.source_points)
        self._basis = None
        if precompute_grid:
            rows, cols = self.output_shape[2:]
            self._basis = tps_basis(_numpy_grid(rows, cols), self.source_points)

    def get_output_for(self, inputs, **kwargs):
        input, offsets = inputs
        rows, cols = self._output_size(input)
        # The spline's coefficients are large and cancel: solve and evaluate it in
        # float64, then sample in the input's dtype.
        source = T.constant(self.source_points)
        moved = source + T.cast(offsets, "float64").reshape((-1, 2, self.control_points))
        coefficients = T.dot(moved, T.constant(self._solver))
        if self._basis is not None:
            basis = T.constant(self._basis)
        else:
            basis = tps_basis(_output_grid(rows, cols, "float64"), source)
        points = T.cast(T.dot(coefficients, basis), input.dtype)  # (batch, 2, rows * cols)
        return self._sample(input, points, rows, cols)


# -- learned and randomized rectifiers ------------------------------------------------

def _on_top(layer, layer_class, kwargs):
    """``layer_class(layer, **kwargs)``, taking over ``layer``'s nonlinearity, which
    becomes the identity (in place)."""
    if getattr(layer, "nonlinearity", None) is not None:
        layer.nonlinearity = nonlinearities.identity
    return layer_class(layer, **kwargs)


def _leaky(input, slope):
    """``x`` where ``x > 0``, ``slope * x`` elsewhere (``slope`` broadcasts)."""
    return T.switch(input > 0, input, slope * input)


class ParametricRectifierLayer(Layer):
    """Parametric rectifier (PReLU): ``max(x, 0) + alpha * min(x, 0)``, alpha learned.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    alpha : initializer, numpy array, shared variable or expression
        The negative slopes; their shape is the input shape without the shared axes.
    shared_axes : 'auto', 'all', int or tuple of int
        Axes over which one alpha is shared: ``'auto'`` every axis but the second (one
        per channel/unit), ``'all'`` every axis (a single scalar).
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, ParametricRectifierLayer
    >>> ParametricRectifierLayer((20, 3, 28, 28), shared_axes=(0, 3)).alpha.get_value().shape
    (3, 28)
    """

    def __init__(self, incoming, alpha=init.Constant(0.25), shared_axes="auto", name=None):
        super().__init__(incoming, name=name)
        kind = "ParametricRectifierLayer"
        self.shared_axes = _parse_shared_axes(shared_axes, self.input_shape, kind,
                                              allow_all=True)
        shape = _per_axis_param_shape(self.input_shape, self.shared_axes, kind)
        self.alpha = self.add_param(alpha, shape, name="alpha", regularizable=False)

    def get_output_for(self, input, **kwargs):
        pattern = _broadcast_pattern(self.alpha, self.shared_axes, input.ndim)
        alpha = self.alpha.dimshuffle(*pattern)
        return T.maximum(input, 0) + alpha * T.minimum(input, 0)


def prelu(layer, **kwargs):
    """Replace ``layer``'s nonlinearity by a :class:`ParametricRectifierLayer` on top.

    ``layer.nonlinearity`` (if it has one) becomes the identity: the layer is changed in
    place. Keyword arguments go to :class:`ParametricRectifierLayer`.

    Examples
    --------
    >>> from forge.layers import InputLayer, DenseLayer, prelu
    >>> from forge.nonlinearities import identity
    >>> l_dense = DenseLayer(InputLayer((None, 10)), num_units=5)
    >>> l_prelu = prelu(l_dense)
    >>> l_dense.nonlinearity is identity, l_prelu.alpha.get_value().shape
    (True, (5,))
    """
    return _on_top(layer, ParametricRectifierLayer, kwargs)


class RandomizedRectifierLayer(Layer):
    """Randomized leaky rectifier (RReLU).

    During training the negative slope is drawn uniformly from ``[lower, upper)``, one
    draw per element not on ``shared_axes``; with ``deterministic=True`` it is the mean
    ``(lower + upper) / 2``, i.e. a leaky rectifier.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    lower, upper : number or scalar expression
        The range of the slopes, ``lower <= upper``.
    shared_axes : 'auto', 'all', int or tuple of int
        Axes over which one random slope is shared: ``'auto'`` every axis but the
        second, ``'all'`` every axis (one slope per call).
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.layers import InputLayer, RandomizedRectifierLayer, get_output
    >>> l_rrelu = RandomizedRectifierLayer(InputLayer((None, 2)), lower=0.2, upper=0.4)
    >>> x = np.array([[-1.0, 2.0]], "float32")
    >>> get_output(l_rrelu, x, deterministic=True).eval()
    array([[-0.3,  2. ]], dtype=float32)
    """

    def __init__(self, incoming, lower=0.3, upper=0.8, shared_axes="auto", name=None):
        super().__init__(incoming, name=name)
        if isinstance(lower, numbers.Number) and isinstance(upper, numbers.Number) and (
                lower > upper):
            raise ValueError(f"RandomizedRectifierLayer needs lower <= upper, got "
                             f"lower={lower}, upper={upper}")
        self.lower, self.upper = lower, upper
        self.shared_axes = _parse_shared_axes(shared_axes, self.input_shape,
                                              "RandomizedRectifierLayer", allow_all=True)
        self._srng = random_streams()

    def get_output_for(self, input, deterministic=False, **kwargs):
        fixed = isinstance(self.lower, numbers.Number) and self.lower == self.upper
        if deterministic or fixed:
            mean = (self.lower + self.upper) / 2
            return _leaky(input, T.cast(mean, input.dtype))
        shape = tuple(1 if axis in self.shared_axes else input.shape[axis]
                      for axis in range(input.ndim))
        slopes = self._srng.uniform(size=shape, low=self.lower, high=self.upper)
        return _leaky(input, T.cast(slopes, input.dtype))


def rrelu(layer, **kwargs):
    """Replace ``layer``'s nonlinearity by a :class:`RandomizedRectifierLayer` on top.

    ``layer.nonlinearity`` (if it has one) becomes the identity: the layer is changed in
    place. Keyword arguments go to :class:`RandomizedRectifierLayer`.

    Examples
    --------
    >>> from forge.layers import InputLayer, DenseLayer, rrelu
    >>> l_rrelu = rrelu(DenseLayer(InputLayer((None, 10)), num_units=5), lower=0.1)
    >>> l_rrelu.lower, l_rrelu.upper
    (0.1, 0.8)
    """
    return _on_top(layer, RandomizedRectifierLayer, kwargs)
