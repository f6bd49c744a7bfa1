"""Batched N-d convolution (cross-correlation) as fused PyTensor ops.

PyTensor 3 has no batched convolution, so forge brings its own: three ops that
compute a whole convolution, or one of its two gradients, in one node each.

``Corr``
    ``(input, filters) -> output``, the forward cross-correlation.
``CorrGradInputs``
    ``(filters, output_grad, *input_size) -> input_grad``; also the forward op of a
    transposed convolution.
``CorrGradWeights``
    ``(input, output_grad, *filter_size) -> filters_grad``.

Each one's gradient is built from the others, so gradients of any order stay three
kinds of fused node instead of graphs of strided slices. The spatial sizes the
gradients need (which a stride makes ambiguous) are extra int64 scalar inputs, taken
from ``Shape_i`` nodes, so that the JAX backend sees them as concrete values.

Settings are the same on all three: ``stride`` and ``dilation`` (one positive int per
spatial axis), ``pad`` (one ``(before, after)`` pair per axis) and ``num_groups``.
"""
import pytensor.tensor as T
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply
from pytensor.scalar import upcast
from pytensor.tensor.basic import get_scalar_constant_value
from pytensor.tensor.exceptions import NotScalarConstantError
from pytensor.tensor.shape import Shape_i

from . import _kernels
from ._op import ForgeOp
from ._args import int_tuple, is_int, pad_pairs, positive_int

__all__ = [
    "conv", "conv_transpose", "conv_output_shape", "Corr", "CorrGradInputs",
    "CorrGradWeights",
]

_SPATIAL_DIMS = (1, 2, 3)


def _static_int(var):
    """The value of an int scalar variable if PyTensor can tell it, else None."""
    try:
        return int(get_scalar_constant_value(var))
    except NotScalarConstantError:
        return None


def _spatial_shape(var):
    """The sizes of the spatial axes (2 onwards) of ``var``, as ``Shape_i`` nodes (the
    rewrites make constants of those its type knows)."""
    return [Shape_i(i)(var) for i in range(2, var.type.ndim)]


def _as_size(value, name):
    """Return ``value`` as an int64 scalar variable (a Python int or int scalar)."""
    var = T.as_tensor_variable(value)
    if var.type.ndim != 0 or not var.type.dtype.startswith(("int", "uint")):
        raise TypeError(
            f"every entry of {name} must be an int or an integer scalar variable, got "
            f"{value!r} of type {var.type}"
        )
    return T.cast(var, "int64") if var.type.dtype != "int64" else var


def _mul_or_none(a, b):
    return None if a is None or b is None else a * b


class _CorrOp(ForgeOp):
    """Settings, validation and shape arithmetic shared by the convolution ops."""

    __props__ = ("stride", "pad", "dilation", "num_groups")

    def __init__(self, stride, pad, dilation, num_groups=1):
        if is_int(stride) or not hasattr(stride, "__len__"):
            raise ValueError(
                f"the ops take stride as a tuple with one int per spatial axis (its "
                f"length sets how many there are), got stride={stride!r}"
            )
        nd = len(stride)
        self.stride = int_tuple(stride, nd, "stride", 1)
        self.pad = pad_pairs(pad, nd)
        self.dilation = int_tuple(dilation, nd, "dilation", 1)
        self.num_groups = positive_int(num_groups, "num_groups")

    @property
    def nd(self):
        return len(self.stride)

    @property
    def settings(self):
        return self.stride, self.pad, self.dilation, self.num_groups

    def out_length(self, axis, length, filter_size):
        """Output length along spatial ``axis``; ints, None or symbolic scalars."""
        if length is None or filter_size is None:
            return None
        before, after = self.pad[axis]
        extent = self.dilation[axis] * (filter_size - 1) + 1
        return (length + before + after - extent) // self.stride[axis] + 1

    def _tensor(self, value, role, ndim=None):
        var = T.as_tensor_variable(value)
        ndim = self.nd + 2 if ndim is None else ndim
        if var.type.ndim != ndim:
            raise TypeError(
                f"{type(self).__name__} with {self.nd} spatial axes needs a "
                f"{ndim}-dimensional {role}, got a {var.type.ndim}-dimensional one "
                f"({var.type})"
            )
        return var

    def _sizes(self, sizes, name):
        if len(sizes) != self.nd:
            raise TypeError(
                f"{type(self).__name__} needs {self.nd} {name} (one per spatial axis), "
                f"got {len(sizes)}"
            )
        return [_as_size(s, name) for s in sizes]

    def _check_groups(self, channels, num_filters, filter_channels):
        """Check the channel counts (ints, or None where unknown)."""
        g = self.num_groups
        if num_filters is not None and num_filters % g:
            raise ValueError(
                f"the number of filters must be divisible by num_groups, got "
                f"{num_filters} filters and num_groups={g}"
            )
        if None not in (channels, filter_channels) and channels != filter_channels * g:
            raise ValueError(
                f"the input has {channels} channels, but filters of shape (F, "
                f"{filter_channels}, ...) with num_groups={g} need "
                f"{filter_channels} * {g} = {filter_channels * g}"
            )

    def _check_dtypes(self, *vars):
        dtypes = {v.type.dtype for v in vars}
        if len(dtypes) != 1:
            raise TypeError(
                f"{type(self).__name__} needs inputs of one dtype, got "
                f"{sorted(dtypes)}; cast them first (conv() does)"
            )


class Corr(_CorrOp):
    """Batched N-d cross-correlation: ``(input, filters) -> output``.

    ``input`` is ``(B, C, *spatial)``, ``filters`` ``(F, C // num_groups, *fs)`` and
    the output ``(B, F, *out)``. Use :func:`conv` rather than this class.
    """

    def make_node(self, x, w):
        x = self._tensor(x, "input")
        w = self._tensor(w, "filters")
        self._check_dtypes(x, w)
        xs, ws = x.type.shape, w.type.shape
        self._check_groups(xs[1], ws[0], ws[1])
        out = tuple(self.out_length(i, xs[2 + i], ws[2 + i]) for i in range(self.nd))
        if any(n is not None and n <= 0 for n in out):
            raise ValueError(
                f"a convolution of spatial input shape {xs[2:]} with filters of shape "
                f"{ws}, pad {self.pad} and dilation {self.dilation} has no output: the "
                f"padded input must be at least dilation * (filter_size - 1) + 1 long "
                f"on every axis"
            )
        return Apply(self, [x, w], [T.tensor(dtype=x.type.dtype, shape=(xs[0], ws[0]) + out)])

    def perform(self, node, inputs, outputs):
        x, w = inputs
        self._check_groups(x.shape[1], w.shape[0], w.shape[1])
        outputs[0][0] = _kernels.corr(x, w, *self.settings)

    def output_shapes(self, node, shapes):
        xs, ws = shapes
        out = [self.out_length(i, xs[2 + i], ws[2 + i]) for i in range(self.nd)]
        return [(xs[0], ws[0], *out)]

    def pullback(self, inputs, outputs, cotangents):
        x, w = inputs
        dy = T.cast(cotangents[0], x.type.dtype)
        dx = CorrGradInputs(*self.settings)(w, dy, *_spatial_shape(x))
        dw = CorrGradWeights(*self.settings)(x, dy, *_spatial_shape(w))
        return [dx, dw]


class CorrGradInputs(_CorrOp):
    """Gradient of :class:`Corr` with respect to its input; a transposed convolution.

    ``(filters, output_grad, *input_size) -> input_grad``, where ``input_size`` are
    the forward input's spatial sizes (int64 scalars). Use :func:`conv_transpose`
    rather than this class.
    """

    def make_node(self, w, dy, *input_size):
        w = self._tensor(w, "filters")
        dy = self._tensor(dy, "output gradient")
        self._check_dtypes(w, dy)
        sizes = self._sizes(input_size, "input sizes")
        ws, ds = w.type.shape, dy.type.shape
        self._check_groups(None, ws[0], ws[1])
        if None not in (ws[0], ds[1]) and ws[0] != ds[1]:
            raise ValueError(
                f"the output gradient has {ds[1]} channels but there are {ws[0]} filters"
            )
        channels = _mul_or_none(ws[1], self.num_groups)
        spatial = tuple(_static_int(s) for s in sizes)
        otype = T.tensor(dtype=w.type.dtype, shape=(ds[0], channels) + spatial)
        return Apply(self, [w, dy, *sizes], [otype])

    def perform(self, node, inputs, outputs):
        w, dy, *sizes = inputs
        if dy.shape[1] != w.shape[0]:
            raise ValueError(
                f"the output gradient has {dy.shape[1]} channels but there are "
                f"{w.shape[0]} filters"
            )
        self._check_groups(None, w.shape[0], w.shape[1])
        input_size = tuple(int(s) for s in sizes)
        outputs[0][0] = _kernels.corr_grad_inputs(w, dy, input_size, *self.settings)

    def output_shapes(self, node, shapes):
        ws, ds = shapes[:2]
        return [(ds[0], ws[1] * self.num_groups, *node.inputs[2:])]

    def connection_pattern(self, node):
        return [[True], [True]] + [[False]] * self.nd

    def pullback(self, inputs, outputs, cotangents):
        w, dy, *sizes = inputs
        g = T.cast(cotangents[0], w.type.dtype)
        gw = CorrGradWeights(*self.settings)(g, dy, *_spatial_shape(w))
        gdy = Corr(*self.settings)(g, w)
        return [gw, gdy] + [disconnected_type() for _ in sizes]


class CorrGradWeights(_CorrOp):
    """Gradient of :class:`Corr` with respect to its filters.

    ``(input, output_grad, *filter_size) -> filters_grad`` of shape
    ``(F, C // num_groups, *filter_size)``.
    """

    def make_node(self, x, dy, *filter_size):
        x = self._tensor(x, "input")
        dy = self._tensor(dy, "output gradient")
        self._check_dtypes(x, dy)
        sizes = self._sizes(filter_size, "filter sizes")
        xs, ds = x.type.shape, dy.type.shape
        self._check_groups(None, ds[1], None)
        g = self.num_groups
        if xs[1] is not None and xs[1] % g:
            raise ValueError(
                f"the number of input channels must be divisible by num_groups, got "
                f"{xs[1]} channels and num_groups={g}"
            )
        channels = None if xs[1] is None else xs[1] // g
        spatial = tuple(_static_int(s) for s in sizes)
        otype = T.tensor(dtype=x.type.dtype, shape=(ds[1], channels) + spatial)
        return Apply(self, [x, dy, *sizes], [otype])

    def perform(self, node, inputs, outputs):
        x, dy, *sizes = inputs
        g = self.num_groups
        if x.shape[1] % g or dy.shape[1] % g:
            raise ValueError(
                f"the numbers of input channels and filters must be divisible by "
                f"num_groups, got {x.shape[1]} channels, {dy.shape[1]} filters and "
                f"num_groups={g}"
            )
        filter_size = tuple(int(s) for s in sizes)
        outputs[0][0] = _kernels.corr_grad_weights(x, dy, filter_size, *self.settings)

    def output_shapes(self, node, shapes):
        xs, ds = shapes[:2]
        return [(ds[1], xs[1] // self.num_groups, *node.inputs[2:])]

    def connection_pattern(self, node):
        return [[True], [True]] + [[False]] * self.nd

    def pullback(self, inputs, outputs, cotangents):
        x, dy, *sizes = inputs
        g = T.cast(cotangents[0], x.type.dtype)
        gx = CorrGradInputs(*self.settings)(g, dy, *_spatial_shape(x))
        gdy = Corr(*self.settings)(x, g)
        return [gx, gdy] + [disconnected_type() for _ in sizes]


def _prepare(input, filters, stride, pad, dilation, num_groups, input_role):
    """Shared validation of conv() and conv_transpose(); returns the op and inputs."""
    input = T.as_tensor_variable(input)
    filters = T.as_tensor_variable(filters)
    nd = filters.type.ndim - 2
    if nd not in _SPATIAL_DIMS:
        raise ValueError(
            f"filters must have 3, 4 or 5 dimensions, (F, C // num_groups, *filter_size) "
            f"for 1, 2 or 3 spatial axes, got {filters.type.ndim}-dimensional filters"
        )
    if input.type.ndim != nd + 2:
        raise ValueError(
            f"{nd}-d filters need a {nd + 2}-dimensional {input_role} (batch, channels, "
            f"*spatial), got a {input.type.ndim}-dimensional one"
        )
    op_args = (int_tuple(stride, nd, "stride", 1), pad_pairs(pad, nd),
               int_tuple(dilation, nd, "dilation", 1),
               positive_int(num_groups, "num_groups"))
    dtype = upcast(input.type.dtype, filters.type.dtype)
    return op_args, T.cast(input, dtype), T.cast(filters, dtype)


def conv(input, filters, stride, pad, dilation, num_groups=1):
    """Batched N-d cross-correlation of ``input`` with ``filters``.

    The filters are not flipped (layers flip them for a true convolution).

    Parameters
    ----------
    input : tensor
        ``(batch, channels, *spatial)`` with 1, 2 or 3 spatial axes.
    filters : tensor
        ``(num_filters, channels // num_groups, *filter_size)``; its rank sets the
        number of spatial axes.
    stride : int or tuple of int
        Step between windows, one positive int per spatial axis.
    pad : int or tuple
        Zero padding, one ``(before, after)`` pair of non-negative ints per axis (an
        int stands for the same amount on both sides).
    dilation : int or tuple of int
        Spacing between filter taps, one positive int per axis.
    num_groups : int
        Channels and filters are split into this many groups, each filter seeing only
        its group's channels.

    Returns
    -------
    tensor
        ``(batch, num_filters, *out)`` with ``out = (in + before + after -
        dilation * (filter_size - 1) - 1) // stride + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor.tensor as T
    >>> from forge.ops import conv
    >>> x, w = T.tensor4("x"), T.tensor4("w")
    >>> y = conv(x, w, stride=(1, 1), pad=((1, 1), (1, 1)), dilation=(1, 1))
    >>> ones = np.ones((1, 1, 3, 3), dtype="float32")
    >>> y.eval({x: ones, w: ones})[0, 0]
    array([[4., 6., 4.],
           [6., 9., 6.],
           [4., 6., 4.]], dtype=float32)
    """
    op_args, input, filters = _prepare(input, filters, stride, pad, dilation,
                                       num_groups, "input")
    return Corr(*op_args)(input, filters)


def conv_transpose(input, filters, output_shape, stride, pad, dilation, num_groups=1):
    """Transposed convolution: the gradient of :func:`conv` with respect to its input.

    Parameters
    ----------
    input : tensor
        ``(batch, num_filters, *spatial_in)``: what the forward convolution outputs.
    filters : tensor
        In the forward convolution's layout, ``(num_filters, channels // num_groups,
        *filter_size)``.
    output_shape : tuple
        The spatial shape of the result (the forward convolution's input), one int or
        integer scalar variable per axis; a stride makes it ambiguous, so it is
        required. It must be one that the forward convolution maps to ``spatial_in``.
    stride, pad, dilation, num_groups
        The forward convolution's settings; ``pad`` is what it padded, so here it is
        cropped from the result (Lasagne's ``crop``).

    Returns
    -------
    tensor
        ``(batch, channels, *output_shape)``.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor.tensor as T
    >>> from forge.ops import conv_transpose
    >>> x, w = T.tensor3("x"), T.tensor3("w")
    >>> y = conv_transpose(x, w, output_shape=(5,), stride=(2,), pad=((0, 0),),
    ...                    dilation=(1,))
    >>> y.eval({x: np.ones((1, 1, 2), "float32"), w: np.ones((1, 1, 3), "float32")})
    array([[[1., 1., 2., 1., 1.]]], dtype=float32)
    """
    op_args, input, filters = _prepare(input, filters, stride, pad, dilation,
                                       num_groups, "input")
    nd = filters.type.ndim - 2
    try:
        sizes = tuple(output_shape)
    except TypeError:
        sizes = None
    if sizes is None or len(sizes) != nd:
        raise ValueError(
            f"output_shape must be a tuple of {nd} sizes (one per spatial axis), got "
            f"output_shape={output_shape!r}"
        )
    op = CorrGradInputs(*op_args)
    static_in = input.type.shape[2:]
    static_w = filters.type.shape[2:]
    for axis, size in enumerate(sizes):
        if is_int(size) and static_in[axis] is not None:
            expected = op.out_length(axis, size, static_w[axis])
            if expected is not None and expected != static_in[axis]:
                raise ValueError(
                    f"output_shape={tuple(sizes)!r} does not fit the input: a forward "
                    f"convolution of length {size} on axis {axis} gives {expected}, but "
                    f"the input has {static_in[axis]}"
                )
    return op(filters, input, *sizes)


def conv_output_shape(input_shape, filter_shape, stride, pad, dilation=1):
    """The shape of ``conv(input, filters, ...)`` from the shapes of its inputs.

    Pure int arithmetic: ``None`` (an unknown size) gives ``None``.

    Parameters
    ----------
    input_shape : tuple
        ``(batch, channels, *spatial)``, entries int or None.
    filter_shape : tuple
        ``(num_filters, channels // num_groups, *filter_size)``, entries int or None.
    stride, pad, dilation
        As for :func:`conv`.

    Returns
    -------
    tuple
        ``(batch, num_filters, *out)``.

    Examples
    --------
    >>> from forge.ops import conv_output_shape
    >>> conv_output_shape((None, 3, 28, 27), (16, 3, 5, 5), stride=(2, 2),
    ...                   pad=((2, 2), (2, 2)), dilation=(1, 1))
    (None, 16, 14, 14)
    >>> conv_output_shape((8, 1, None), (4, 1, 3), stride=1, pad=0, dilation=2)
    (8, 4, None)
    """
    input_shape, filter_shape = tuple(input_shape), tuple(filter_shape)
    nd = len(filter_shape) - 2
    if nd not in _SPATIAL_DIMS or len(input_shape) != nd + 2:
        raise ValueError(
            f"filter_shape must have 3 to 5 entries and input_shape 2 more than the "
            f"number of spatial axes, got input_shape={input_shape} and "
            f"filter_shape={filter_shape}"
        )
    stride = int_tuple(stride, nd, "stride", 1)
    pad = pad_pairs(pad, nd)
    dilation = int_tuple(dilation, nd, "dilation", 1)
    out = tuple(
        None if n is None or k is None else _kernels.conv_output_length(n, k, s, p, d)
        for n, k, s, p, d in zip(input_shape[2:], filter_shape[2:], stride, pad, dilation)
    )
    return (input_shape[0], filter_shape[0]) + out
