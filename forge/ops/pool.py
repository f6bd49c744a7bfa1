"""N-d pooling over the trailing axes as fused PyTensor ops, with Theano's semantics.

``Pool``
    ``input -> output``: max, sum or average over windows of the last
    ``len(pool_size)`` axes, whatever the input's rank.
``MaxPoolGrad``
    ``(input, output, output_grad) -> input_grad`` for the max mode.
``AveragePoolGrad``
    ``(input, output_grad) -> input_grad`` for the sum and average modes (the input
    only gives the shape).
``MaxPoolGradGrad``
    ``(input, output, input_grad_grad) -> output_grad_grad``: the transpose of
    ``MaxPoolGrad``, for second derivatives.

The semantics are those of Theano's ``pool_2d``/``pool_3d``, which Lasagne's pooling
layers used:

* windows start at ``0, stride, 2 * stride, ...`` of the padded input;
* with ``ignore_border=True`` only whole windows count; with ``False`` the last,
  partial window is kept (see :func:`pool_output_shape` for the exact count), and
  padding is not allowed;
* padding never wins a max and is left out of sums; ``average_inc_pad`` divides by
  the window's size inside the padded input, ``average_exc_pad`` by the number of
  real elements in it; a partial window divides by what it covers;
* the padding must be smaller than the window, so every window holds a real element;
* the gradient of a max goes to every element equal to its window's maximum.
"""
import numbers

import numpy as np
import pytensor.tensor as T
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply

from . import _kernels
from ._op import ForgeOp
from ._args import int_tuple

__all__ = [
    "pool", "pool_output_shape", "MODES", "Pool", "MaxPoolGrad", "AveragePoolGrad",
    "MaxPoolGradGrad",
]

#: The pooling modes, as Theano named them.
MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")


def _settings(pool_size, stride, pad, ignore_border, mode):
    """Validate and normalise the pooling settings; return them as a tuple."""
    if isinstance(pool_size, numbers.Integral):
        raise ValueError(
            f"pool_size must be a tuple with one int per pooled axis (its length sets "
            f"how many trailing axes are pooled), got pool_size={pool_size!r}"
        )
    try:
        nd = len(pool_size)
    except TypeError:
        nd = 0
    if nd == 0:
        raise ValueError(
            f"pool_size must be a non-empty tuple of positive ints, got "
            f"pool_size={pool_size!r}"
        )
    pool_size = int_tuple(pool_size, nd, "pool_size", 1)
    stride = pool_size if stride is None else int_tuple(stride, nd, "stride", 1)
    pad = int_tuple(0 if pad is None else pad, nd, "pad", 0)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got mode={mode!r}")
    if any(pad) and not ignore_border:
        raise ValueError(
            f"padding needs ignore_border=True (Theano's rule), got pad={pad} with "
            f"ignore_border=False"
        )
    if any(p >= k for p, k in zip(pad, pool_size)):
        raise ValueError(
            f"the padding must be smaller than the pool size on every axis, so that "
            f"every window holds a real element, got pad={pad} and "
            f"pool_size={pool_size}"
        )
    return pool_size, stride, pad, bool(ignore_border), mode


def _out_length(length, pool_size, stride, pad, ignore_border):
    """Output length for an int, None or a symbolic scalar ``length``."""
    if length is None:
        return None
    if isinstance(length, (numbers.Integral, np.integer)):
        return _kernels.pool_output_length(int(length), pool_size, stride, pad,
                                           ignore_border)
    padded = length + 2 * pad
    if ignore_border:
        return T.maximum((padded - pool_size) // stride + 1, 0)
    if stride >= pool_size:
        return (padded - 1) // stride + 1
    return T.maximum((padded - 1 - pool_size + stride) // stride, 0) + 1


class _PoolOp(ForgeOp):
    """Settings and shape arithmetic shared by the pooling ops."""

    __props__ = ("pool_size", "stride", "pad", "ignore_border", "mode")

    def __init__(self, pool_size, stride=None, pad=0, ignore_border=True, mode="max"):
        (self.pool_size, self.stride, self.pad, self.ignore_border,
         self.mode) = _settings(pool_size, stride, pad, ignore_border, mode)

    @property
    def nd(self):
        return len(self.pool_size)

    @property
    def settings(self):
        return self.pool_size, self.stride, self.pad, self.ignore_border

    def out_shape(self, shape):
        """The output shape for an input shape (ints, None or symbolic scalars)."""
        nd = self.nd
        lead, spatial = tuple(shape[:-nd]), tuple(shape[-nd:])
        return lead + tuple(
            _out_length(n, k, s, p, self.ignore_border)
            for n, k, s, p in zip(spatial, self.pool_size, self.stride, self.pad))

    def _tensor(self, value, role, ndim=None):
        var = T.as_tensor_variable(value)
        if ndim is None and var.type.ndim < self.nd:
            raise TypeError(
                f"pooling {self.nd} axes needs an {role} of {self.nd} or more "
                f"dimensions, got a {var.type.ndim}-dimensional one ({var.type})"
            )
        if ndim is not None and var.type.ndim != ndim:
            raise TypeError(
                f"{type(self).__name__} needs a {ndim}-dimensional {role}, got a "
                f"{var.type.ndim}-dimensional one ({var.type})"
            )
        return var

    def _check_dtypes(self, *vars):
        dtypes = {v.type.dtype for v in vars}
        if len(dtypes) != 1:
            raise TypeError(
                f"{type(self).__name__} needs inputs of one dtype, got {sorted(dtypes)}"
            )

    def _like(self, var):
        return T.tensor(dtype=var.type.dtype, shape=var.type.shape)


class Pool(_PoolOp):
    """Pooling of the trailing axes; use :func:`pool` rather than this class."""

    def make_node(self, x):
        x = self._tensor(x, "input")
        if self.mode.startswith("average") and not x.type.dtype.startswith("float"):
            raise TypeError(
                f"mode={self.mode!r} needs a floating-point input, got {x.type}"
            )
        shape = self.out_shape(x.type.shape)
        return Apply(self, [x], [T.tensor(dtype=x.type.dtype, shape=shape)])

    def perform(self, node, inputs, outputs):
        (x,) = inputs
        outputs[0][0] = _kernels.pool(x, *self.settings, self.mode)

    def output_shapes(self, node, shapes):
        return [self.out_shape(shapes[0])]

    def pullback(self, inputs, outputs, cotangents):
        (x,), (y,) = inputs, outputs
        dy = T.cast(cotangents[0], x.type.dtype)
        if self.mode == "max":
            return [MaxPoolGrad(*self.settings)(x, y, dy)]
        return [AveragePoolGrad(*self.settings, mode=self.mode)(x, dy)]


class MaxPoolGrad(_PoolOp):
    """``(input, output, output_grad) -> input_grad`` of a max pooling."""

    def __init__(self, pool_size, stride=None, pad=0, ignore_border=True, mode="max"):
        if mode != "max":
            raise ValueError(f"MaxPoolGrad is for mode='max', got mode={mode!r}")
        super().__init__(pool_size, stride, pad, ignore_border, mode)

    def make_node(self, x, y, dy):
        x = self._tensor(x, "input")
        y = self._tensor(y, "pooled output", x.type.ndim)
        dy = self._tensor(dy, "output gradient", x.type.ndim)
        self._check_dtypes(x, y, dy)
        return Apply(self, [x, y, dy], [self._like(x)])

    def perform(self, node, inputs, outputs):
        x, y, dy = inputs
        outputs[0][0] = _kernels.pool_grad(x, y, dy, *self.settings, self.mode)

    def output_shapes(self, node, shapes):
        return [shapes[0]]

    def pullback(self, inputs, outputs, cotangents):
        x, y, dy = inputs
        g = T.cast(cotangents[0], x.type.dtype)
        # The result is piecewise constant in x and y: zero gradient almost everywhere.
        return [T.zeros_like(x), T.zeros_like(y), MaxPoolGradGrad(*self.settings)(x, y, g)]


class MaxPoolGradGrad(_PoolOp):
    """``(input, output, input_grad_grad) -> output_grad_grad``: MaxPoolGrad's transpose."""

    def __init__(self, pool_size, stride=None, pad=0, ignore_border=True, mode="max"):
        if mode != "max":
            raise ValueError(f"MaxPoolGradGrad is for mode='max', got mode={mode!r}")
        super().__init__(pool_size, stride, pad, ignore_border, mode)

    def make_node(self, x, y, ggx):
        x = self._tensor(x, "input")
        y = self._tensor(y, "pooled output", x.type.ndim)
        ggx = self._tensor(ggx, "input gradient's gradient", x.type.ndim)
        self._check_dtypes(x, y, ggx)
        return Apply(self, [x, y, ggx], [self._like(y)])

    def perform(self, node, inputs, outputs):
        x, y, ggx = inputs
        outputs[0][0] = _kernels.max_pool_grad_grad(x, y, ggx, *self.settings)

    def output_shapes(self, node, shapes):
        return [shapes[1]]

    def pullback(self, inputs, outputs, cotangents):
        x, y, ggx = inputs
        h = T.cast(cotangents[0], x.type.dtype)
        return [T.zeros_like(x), T.zeros_like(y), MaxPoolGrad(*self.settings)(x, y, h)]


class AveragePoolGrad(_PoolOp):
    """``(input, output_grad) -> input_grad`` of a sum or average pooling."""

    def __init__(self, pool_size, stride=None, pad=0, ignore_border=True,
                 mode="average_exc_pad"):
        if mode == "max":
            raise ValueError("AveragePoolGrad is for the sum and average modes, got "
                             "mode='max'")
        super().__init__(pool_size, stride, pad, ignore_border, mode)

    def make_node(self, x, dy):
        x = self._tensor(x, "input")
        dy = self._tensor(dy, "output gradient", x.type.ndim)
        self._check_dtypes(x, dy)
        return Apply(self, [x, dy], [self._like(x)])

    def perform(self, node, inputs, outputs):
        x, dy = inputs
        outputs[0][0] = _kernels.pool_grad(x, None, dy, *self.settings, self.mode)

    def output_shapes(self, node, shapes):
        return [shapes[0]]

    def connection_pattern(self, node):
        return [[False], [True]]

    def pullback(self, inputs, outputs, cotangents):
        g = T.cast(cotangents[0], inputs[0].type.dtype)
        # A linear map's transpose's transpose: pooling again.
        return [disconnected_type(), Pool(*self.settings, mode=self.mode)(g)]


def pool(input, pool_size, stride=None, pad=0, ignore_border=True, mode="max"):
    """Pool the last ``len(pool_size)`` axes of ``input``, as Theano's ``pool_2d`` did.

    Parameters
    ----------
    input : tensor
        Any rank of at least ``len(pool_size)``; the leading axes are kept.
    pool_size : tuple of int
        Window size per pooled axis.
    stride : tuple of int or None
        Step between windows; ``None`` means ``pool_size`` (no overlap).
    pad : int or tuple of int
        Symmetric padding per axis; smaller than ``pool_size``, and only with
        ``ignore_border=True``.
    ignore_border : bool
        If True only whole windows count; if False a last, partial window is kept.
    mode : {'max', 'sum', 'average_inc_pad', 'average_exc_pad'}
        Padding never wins a max; ``average_inc_pad`` counts padding in the divisor,
        ``average_exc_pad`` does not.

    Returns
    -------
    tensor
        The pooled input, shaped as :func:`pool_output_shape` says.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor.tensor as T
    >>> from forge.ops import pool
    >>> x = T.matrix("x")
    >>> values = np.arange(9, dtype="float32").reshape(3, 3)
    >>> pool(x, (2, 2), ignore_border=False).eval({x: values})
    array([[4., 5.],
           [7., 8.]], dtype=float32)
    >>> pool(x, (2, 2), stride=(1, 1), pad=(1, 1), mode="average_exc_pad").eval(
    ...     {x: values})[0]
    array([0. , 0.5, 1.5, 2. ], dtype=float32)
    """
    input = T.as_tensor_variable(input)
    return Pool(pool_size, stride, pad, ignore_border, mode)(input)


def pool_output_shape(input_shape, pool_size, stride=None, pad=0, ignore_border=True):
    """The shape of ``pool(input, ...)`` from the input's shape (ints or None).

    Along each pooled axis of length ``n`` (padded: ``m = n + 2 * pad``), with window
    ``k`` and stride ``s``:

    * ``ignore_border=True``: ``max(0, (m - k) // s + 1)``, the whole windows;
    * ``ignore_border=False`` and ``s >= k``: ``(m - 1) // s + 1``, a window for every
      start before the end;
    * ``ignore_border=False`` and ``s < k``: ``max(0, (m - 1 - k + s) // s) + 1``, just
      enough windows for the last one to reach the end.

    Examples
    --------
    >>> from forge.ops import pool_output_shape
    >>> pool_output_shape((None, 32, 27, 27), (3, 3), stride=(2, 2))
    (None, 32, 13, 13)
    >>> pool_output_shape((None, 32, 28, None), (3, 3), stride=(2, 2),
    ...                   ignore_border=False)
    (None, 32, 14, None)
    """
    pool_size, stride, pad, ignore_border, _ = _settings(pool_size, stride, pad,
                                                         ignore_border, "max")
    input_shape = tuple(input_shape)
    nd = len(pool_size)
    if len(input_shape) < nd:
        raise ValueError(
            f"pooling {nd} axes needs a shape of {nd} or more entries, got "
            f"input_shape={input_shape}"
        )
    spatial = tuple(
        None if n is None else _kernels.pool_output_length(n, k, s, p, ignore_border)
        for n, k, s, p in zip(input_shape[-nd:], pool_size, stride, pad))
    return input_shape[:-nd] + spatial
