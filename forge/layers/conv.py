"""Convolution layers: 1-, 2- and 3-D, transposed, dilated and locally connected.

Every layer here computes a cross-correlation with :func:`forge.ops.conv` (or its
transpose, :func:`forge.ops.conv_transpose`). Lasagne's convolution flips the filters
(``flip_filters=True``, a true convolution); forge does the flip in the graph
(``W[:, :, ::-1, ::-1]``) so that the stored weights are exactly Lasagne's.
"""
import pytensor.tensor as T
from pytensor.graph.basic import Variable

from .. import init, nonlinearities, ops
from ..utils import int_types
from .base import Layer

__all__ = [
    "conv_output_length", "conv_input_length", "BaseConvLayer", "Conv1DLayer",
    "Conv2DLayer", "Conv3DLayer", "TransposedConv2DLayer", "TransposedConv3DLayer",
    "Deconv2DLayer", "Deconv3DLayer", "DilatedConv2DLayer", "LocallyConnected2DLayer",
]

_PAD_MODES = ("valid", "full", "same")


# -- argument checking (shared with pool.py) -----------------------------------------

def _is_int(value):
    return isinstance(value, int_types) and not isinstance(value, bool)


def _int_tuple(value, n, what, minimum=1):
    """``value`` (an int or ``n`` ints) as a tuple of ``n`` ints >= ``minimum``.

    ``what`` names the argument in the error message.
    """
    if _is_int(value):
        result = (int(value),) * n
    else:
        try:
            result = tuple(value)
        except TypeError:
            result = None
        if result is None or len(result) != n or not all(_is_int(v) for v in result):
            raise ValueError(f"{what} must be an int or a tuple of {n} ints, got "
                             f"{what}={value!r}")
        result = tuple(int(v) for v in result)
    if any(v < minimum for v in result):
        rule = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"every entry of {what} must be {rule}, got {what}={value!r}")
    return result


def _positive_int(value, what):
    if not (_is_int(value) and value > 0):
        raise ValueError(f"{what} must be a positive int, got {what}={value!r}")
    return int(value)


def _check_rank(layer_type, input_shape, n):
    if len(input_shape) != n + 2:
        raise ValueError(
            f"{layer_type} needs a {n + 2}-dimensional input (batch, channels, {n} "
            f"spatial axes), got input shape {tuple(input_shape)} with "
            f"{len(input_shape)} dimensions")


def _parse_pad(pad, filter_size, what="pad"):
    """Lasagne's padding argument: ``'full'``/``'same'`` are kept, the rest -> ints."""
    n = len(filter_size)
    if isinstance(pad, str):
        if pad not in _PAD_MODES:
            raise ValueError(f"{what} must be 'valid', 'full', 'same', an int or a tuple "
                             f"of {n} ints, got {what}={pad!r}")
        if pad == "valid":
            return (0,) * n
        if pad == "same" and any(f % 2 == 0 for f in filter_size):
            raise NotImplementedError(
                f"{what}='same' requires odd filter sizes (the padding is filter_size // "
                f"2 on both sides), got filter_size={filter_size}")
        return pad
    return _int_tuple(pad, n, what, minimum=0)


def _pad_pairs(pad, filter_size):
    """Resolve a parsed padding to explicit ``(before, after)`` pairs per spatial axis.

    ``'full'`` pads by the filter size minus one, ``'same'`` by half of it (rounded
    down), and an int ``p`` by ``p`` on both sides.
    """
    if pad == "full":
        amounts = [f - 1 for f in filter_size]
    elif pad == "same":
        amounts = [f // 2 for f in filter_size]
    else:
        amounts = pad
    return tuple((int(p), int(p)) for p in amounts)


def _flip_spatial(W, n, first=None):
    """``W`` reversed along ``n`` spatial axes starting at axis ``first`` (default: the
    last ``n``)."""
    if first is None:
        first = W.ndim - n
    index = [slice(None)] * W.ndim
    for axis in range(first, first + n):
        index[axis] = slice(None, None, -1)
    return W[tuple(index)]


# -- shape arithmetic ----------------------------------------------------------------

def conv_output_length(input_length, filter_size, stride, pad=0):
    """The length of a convolution's output along one axis.

    Parameters
    ----------
    input_length : int, symbolic int or None
        The input's length along the axis (``None``: unknown).
    filter_size : int
        The filter's length along the axis.
    stride : int
        The step between filter positions.
    pad : int, 'valid', 'full' or 'same'
        Zero padding added on both sides: an int, ``'valid'`` (0), ``'full'``
        (``filter_size - 1``) or ``'same'`` (``filter_size // 2``, which keeps the
        length for odd filter sizes and stride 1).

    Returns
    -------
    int, symbolic int or None
        ``ceil((input_length + 2 * pad - filter_size + 1) / stride)``, or ``None`` for
        an unknown input length.

    Examples
    --------
    >>> from forge.layers import conv_output_length
    >>> conv_output_length(10, 3, 1, 'valid'), conv_output_length(10, 3, 1, 'full')
    (8, 12)
    >>> conv_output_length(10, 3, 2, 'same'), conv_output_length(10, 3, 3, 2)
    (5, 4)
    """
    if input_length is None:
        return None
    if isinstance(pad, str):
        if pad == "valid":
            covered = input_length - filter_size + 1
        elif pad == "full":
            covered = input_length + filter_size - 1
        elif pad == "same":
            covered = input_length
        else:
            raise ValueError(f"pad must be 'valid', 'full', 'same' or an int, got "
                             f"pad={pad!r}")
    elif _is_int(pad):
        covered = input_length + 2 * pad - filter_size + 1
    else:
        raise ValueError(f"pad must be 'valid', 'full', 'same' or an int, got pad={pad!r}")
    # ceil(covered / stride) in integer arithmetic (works for symbolic lengths too)
    return (covered + stride - 1) // stride


def conv_input_length(output_length, filter_size, stride, pad=0):
    """The smallest input length that gives a convolution output of the given length.

    The inverse of :func:`conv_output_length`; it is the output length of the
    transposed convolution (:class:`TransposedConv2DLayer`) with ``crop=pad``. Inputs
    up to ``stride - 1`` longer give the same output length.

    Parameters
    ----------
    output_length : int, symbolic int or None
        The convolution's output length (``None``: unknown).
    filter_size, stride : int
        As in :func:`conv_output_length`.
    pad : int, 'valid', 'full' or 'same'
        As in :func:`conv_output_length`.

    Returns
    -------
    int, symbolic int or None
        ``(output_length - 1) * stride - 2 * pad + filter_size``.

    Examples
    --------
    >>> from forge.layers import conv_input_length
    >>> conv_input_length(8, 3, 1, 'valid'), conv_input_length(5, 3, 2, 'same')
    (10, 9)
    """
    if output_length is None:
        return None
    if isinstance(pad, str):
        if pad not in _PAD_MODES:
            raise ValueError(f"pad must be 'valid', 'full', 'same' or an int, got "
                             f"pad={pad!r}")
        pad = {"valid": 0, "full": filter_size - 1, "same": filter_size // 2}[pad]
    elif not _is_int(pad):
        raise ValueError(f"pad must be 'valid', 'full', 'same' or an int, got pad={pad!r}")
    return (output_length - 1) * stride - 2 * pad + filter_size


# -- the layers ----------------------------------------------------------------------

class BaseConvLayer(Layer):
    """Base class of the convolution layers: parameters, shapes, bias, nonlinearity.

    A subclass implements :meth:`convolve` (the linear part); this class validates the
    arguments, infers the shapes, creates the parameters, adds the bias and applies
    the nonlinearity.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape: ``(batch, channels, *spatial)``; the number of
        channels must be fixed.
    num_filters : int
        Number of output channels.
    filter_size : int or tuple of int
        Size of the filters along each spatial axis.
    stride : int or tuple of int
        Step between filter positions along each spatial axis.
    pad : int, tuple of int, 'valid', 'full' or 'same'
        Zero padding on both sides of each spatial axis: ``'valid'`` (none, the
        default 0), ``'full'`` (``filter_size - 1``: every partial overlap) or
        ``'same'`` (``filter_size // 2``: the output is as long as the input for
        stride 1; it needs odd filter sizes).
    untie_biases : bool
        If False, one bias per filter, shape ``(num_filters,)``. If True, one bias per
        filter and output location, shape ``(num_filters, *output_spatial)``; then
        the input's spatial sizes must be fixed.
    W : initializer, numpy array, shared variable or expression
        The filters, of shape :meth:`get_W_shape`.
    b : initializer, numpy array, shared variable, expression or None
        The biases; ``None`` for none.
    nonlinearity : callable or None
        Applied to the output; ``None`` means linear.
    flip_filters : bool
        Whether to flip the filters on every spatial axis before sliding them over the
        input (a convolution, Lasagne's default, right for weights trained with
        Theano's ``conv2d``) or not (a cross-correlation, right for weights from Caffe
        or PyTorch).
    n : int or None
        Number of spatial dimensions; ``None`` takes it from the input's rank.
    num_groups : int
        Split the input channels and the filters into this many groups, each group of
        filters seeing one group of channels (a grouped convolution); both counts
        must be divisible by it.
    name : str, optional
        Name of the layer.

    Attributes
    ----------
    W, b : shared variables or expressions
        The parameters (``b`` is ``None`` without biases).
    pad : tuple of int or str
        The padding per spatial axis, or ``'full'``/``'same'`` (``'valid'`` becomes
        zeros).

    Examples
    --------
    >>> from forge.layers import InputLayer, Conv2DLayer
    >>> l_in = InputLayer((None, 3, 32, 32))
    >>> layer = Conv2DLayer(l_in, num_filters=16, filter_size=5, stride=2, pad='same')
    >>> layer.output_shape, layer.W.get_value().shape
    ((None, 16, 16, 16), (16, 3, 5, 5))
    """

    #: name of the attribute (and argument) that holds the padding
    _pad_name = "pad"

    def __init__(self, incoming, num_filters, filter_size, stride=1, pad=0,
                 untie_biases=False, W=init.GlorotUniform(), b=init.Constant(0.),
                 nonlinearity=nonlinearities.rectify, flip_filters=True, n=None,
                 num_groups=1, name=None):
        super().__init__(incoming, name=name)
        layer_type = type(self).__name__
        self.nonlinearity = nonlinearities.identity if nonlinearity is None else nonlinearity
        ndim = len(self.input_shape)
        if n is None:
            n = ndim - 2
            if n < 1:
                raise ValueError(
                    f"{layer_type} needs an input of 3 or more dimensions (batch, "
                    f"channels, spatial axes), got input shape {self.input_shape}")
        else:
            _check_rank(layer_type, self.input_shape, n)
        self.n = n
        self.num_filters = _positive_int(num_filters, "num_filters")
        self.filter_size = _int_tuple(filter_size, n, "filter_size")
        self.stride = _int_tuple(stride, n, "stride")
        self.untie_biases = bool(untie_biases)
        self.flip_filters = bool(flip_filters)
        self.num_groups = _positive_int(num_groups, "num_groups")

        channels = self.input_shape[1]
        if channels is None:
            raise ValueError(f"{layer_type} needs a fixed number of input channels "
                             f"(axis 1), got input shape {self.input_shape}")
        if channels % self.num_groups:
            raise ValueError(f"the number of input channels must be divisible by "
                             f"num_groups, got {channels} channels and num_groups="
                             f"{self.num_groups}")
        if self.num_filters % self.num_groups:
            raise ValueError(f"num_filters must be divisible by num_groups, got "
                             f"num_filters={self.num_filters} and num_groups="
                             f"{self.num_groups}")
        setattr(self, self._pad_name, _parse_pad(pad, self.filter_size, self._pad_name))
        self._check_output_shape()

        self.W = self.add_param(W, self.get_W_shape(), name="W")
        if b is None:
            self.b = None
        else:
            if self.untie_biases:
                spatial = self.output_shape[2:]
                if any(s is None for s in spatial):
                    raise ValueError(
                        f"untie_biases=True needs fixed output sizes (one bias per "
                        f"location), got input shape {self.input_shape} and output "
                        f"shape {self.output_shape}")
                b_shape = (self.num_filters,) + tuple(spatial)
            else:
                b_shape = (self.num_filters,)
            self.b = self.add_param(b, b_shape, name="b", regularizable=False)

    def _check_output_shape(self):
        out = self.get_output_shape_for(self.input_shape)
        if any(s is not None and s < 1 for s in out[2:]):
            settings = ", ".join(f"{key}={value}" for key, value in self._settings())
            raise ValueError(
                f"{type(self).__name__} would have an empty output: input shape "
                f"{self.input_shape} with {settings} gives output shape {out}")

    def _settings(self):
        """(argument, value) pairs shown in shape errors."""
        return [("filter_size", self.filter_size), ("stride", self.stride),
                (self._pad_name, getattr(self, self._pad_name))]

    def get_W_shape(self):
        """The shape of the filters: ``(num_filters, channels // num_groups, *filter_size)``."""
        return (self.num_filters, self.input_shape[1] // self.num_groups) + self.filter_size

    def get_output_shape_for(self, input_shape):
        pad = self.pad if isinstance(self.pad, tuple) else (self.pad,) * self.n
        spatial = tuple(conv_output_length(size, f, s, p) for size, f, s, p
                        in zip(input_shape[2:], self.filter_size, self.stride, pad))
        return (input_shape[0], self.num_filters) + spatial

    def get_output_for(self, input, **kwargs):
        conved = self.convolve(input, **kwargs)
        if self.b is None:
            activation = conved
        elif self.untie_biases:
            activation = conved + T.shape_padleft(self.b, 1)
        else:
            activation = conved + self.b.dimshuffle(("x", 0) + ("x",) * self.n)
        return self.nonlinearity(activation)

    def convolve(self, input, **kwargs):
        """The linear part of the layer: the convolution of ``input`` with ``W``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement convolve(); "
                                  f"use a subclass such as Conv2DLayer")

    def _filters(self):
        """``W`` as the cross-correlation filters (flipped if ``flip_filters``)."""
        return _flip_spatial(self.W, self.n) if self.flip_filters else self.W


class _ConvNDLayer(BaseConvLayer):
    """The plain N-d convolution behind Conv1DLayer, Conv2DLayer and Conv3DLayer."""

    def __init__(self, incoming, num_filters, filter_size, stride, pad, untie_biases, W,
                 b, nonlinearity, flip_filters, convolution, num_groups, n, name):
        if convolution is not None:
            raise ValueError(
                f"{type(self).__name__} computes its convolution with forge.ops.conv; a "
                f"custom convolution callable is not supported, got convolution="
                f"{convolution!r}")
        self.convolution = None
        super().__init__(incoming, num_filters, filter_size, stride, pad, untie_biases,
                         W, b, nonlinearity, flip_filters, n=n, num_groups=num_groups,
                         name=name)

    def convolve(self, input, **kwargs):
        return ops.conv(input, self._filters(), self.stride,
                        _pad_pairs(self.pad, self.filter_size), (1,) * self.n,
                        num_groups=self.num_groups)


class Conv1DLayer(_ConvNDLayer):
    """1-D convolution layer: ``nonlinearity(conv(input, W) + b)``.

    Maps ``(batch, channels, length)`` to ``(batch, num_filters, output_length)``.
    See :class:`BaseConvLayer` for the arguments; ``convolution`` exists for
    Lasagne's signature and must be ``None`` (forge always uses
    :func:`forge.ops.conv`).

    Examples
    --------
    >>> from forge.layers import InputLayer, Conv1DLayer
    >>> l_in = InputLayer((None, 4, 100))
    >>> Conv1DLayer(l_in, num_filters=8, filter_size=5, stride=2).output_shape
    (None, 8, 48)
    """

    def __init__(self, incoming, num_filters, filter_size, stride=1, pad=0,
                 untie_biases=False, W=init.GlorotUniform(), b=init.Constant(0.),
                 nonlinearity=nonlinearities.rectify, flip_filters=True, convolution=None,
                 num_groups=1, name=None):
        super().__init__(incoming, num_filters, filter_size, stride, pad, untie_biases, W,
                         b, nonlinearity, flip_filters, convolution, num_groups, 1, name)


class Conv2DLayer(_ConvNDLayer):
    """2-D convolution layer: ``nonlinearity(conv(input, W) + b)``.

    Maps ``(batch, channels, rows, columns)`` to ``(batch, num_filters, out_rows,
    out_columns)``. See :class:`BaseConvLayer` for the arguments; ``convolution``
    exists for Lasagne's signature and must be ``None``.

    Examples
    --------
    >>> from forge.layers import InputLayer, Conv2DLayer
    >>> l_in = InputLayer((None, 3, 28, 28))
    >>> Conv2DLayer(l_in, num_filters=32, filter_size=(5, 3)).output_shape
    (None, 32, 24, 26)
    >>> Conv2DLayer(l_in, num_filters=32, filter_size=3, pad='full').output_shape
    (None, 32, 30, 30)
    >>> Conv2DLayer(l_in, 6, 3, num_groups=3).W.get_value().shape
    (6, 1, 3, 3)
    """

    def __init__(self, incoming, num_filters, filter_size, stride=(1, 1), pad=0,
                 untie_biases=False, W=init.GlorotUniform(), b=init.Constant(0.),
                 nonlinearity=nonlinearities.rectify, flip_filters=True, convolution=None,
                 num_groups=1, name=None):
        super().__init__(incoming, num_filters, filter_size, stride, pad, untie_biases, W,
                         b, nonlinearity, flip_filters, convolution, num_groups, 2, name)


class Conv3DLayer(_ConvNDLayer):
    """3-D convolution layer: ``nonlinearity(conv(input, W) + b)``.

    Maps ``(batch, channels, depth, rows, columns)`` to ``(batch, num_filters,
    *output_spatial)``. See :class:`BaseConvLayer` for the arguments.

    Examples
    --------
    >>> from forge.layers import InputLayer, Conv3DLayer
    >>> l_in = InputLayer((None, 1, 10, 12, 14))
    >>> Conv3DLayer(l_in, num_filters=4, filter_size=3, pad='same').output_shape
    (None, 4, 10, 12, 14)
    """

    def __init__(self, incoming, num_filters, filter_size, stride=(1, 1, 1), pad=0,
                 untie_biases=False, W=init.GlorotUniform(), b=init.Constant(0.),
                 nonlinearity=nonlinearities.rectify, flip_filters=True, convolution=None,
                 num_groups=1, name=None):
        super().__init__(incoming, num_filters, filter_size, stride, pad, untie_biases, W,
                         b, nonlinearity, flip_filters, convolution, num_groups, 3, name)


class _TransposedConvLayer(BaseConvLayer):
    """The transposed N-d convolution behind TransposedConv2DLayer/3DLayer."""

    _pad_name = "crop"

    def __init__(self, incoming, num_filters, filter_size, stride, crop, untie_biases, W,
                 b, nonlinearity, flip_filters, output_size, num_groups, n, name):
        if output_size is not None and not isinstance(output_size, Variable):
            output_size = _int_tuple(output_size, n, "output_size")
        self.output_size = output_size
        super().__init__(incoming, num_filters, filter_size, stride, crop, untie_biases,
                         W, b, nonlinearity, flip_filters, n=n, num_groups=num_groups,
                         name=name)

    def _check_output_shape(self):
        if isinstance(self.output_size, tuple):
            self._check_output_size()
        super()._check_output_shape()

    def _check_output_size(self):
        # The convolution this layer transposes must map output_size back onto the
        # input's spatial shape; that allows stride - 1 extra rows/columns at most.
        crop = self.crop if isinstance(self.crop, tuple) else (self.crop,) * self.n
        for axis, (size, out, f, s, c) in enumerate(zip(
                self.input_shape[2:], self.output_size, self.filter_size, self.stride,
                crop)):
            if size is None:
                continue
            smallest = conv_input_length(size, f, s, c)
            if not smallest <= out < smallest + s:
                raise ValueError(
                    f"output_size={self.output_size} does not fit the input: on "
                    f"spatial axis {axis} an input of length {size} with filter_size="
                    f"{f}, stride={s}, crop={c} gives outputs of length {smallest} to "
                    f"{smallest + s - 1}, got {out}")

    def get_W_shape(self):
        """``(channels, num_filters // num_groups, *filter_size)``: the filters of the
        convolution this layer transposes."""
        return (self.input_shape[1], self.num_filters // self.num_groups) + self.filter_size

    def get_output_shape_for(self, input_shape):
        if self.output_size is not None:
            if isinstance(self.output_size, Variable):
                return (input_shape[0], self.num_filters) + (None,) * self.n
            return (input_shape[0], self.num_filters) + tuple(self.output_size)
        crop = self.crop if isinstance(self.crop, tuple) else (self.crop,) * self.n
        spatial = tuple(conv_input_length(size, f, s, c) for size, f, s, c
                        in zip(input_shape[2:], self.filter_size, self.stride, crop))
        return (input_shape[0], self.num_filters) + spatial

    def convolve(self, input, **kwargs):
        if isinstance(self.output_size, Variable):
            output_size = tuple(self.output_size[axis] for axis in range(self.n))
        else:
            output_size = self.output_shape[2:]
            if any(s is None for s in output_size):
                symbolic = self.get_output_shape_for(tuple(input.shape))[2:]
                output_size = tuple(s if s is not None else t
                                    for s, t in zip(output_size, symbolic))
        # Lasagne's transposed convolution is the gradient of a convolution that
        # flips its filters unless flip_filters is True; forge.ops.conv_transpose is
        # the gradient of a cross-correlation, so the filters are flipped for it when
        # flip_filters is False.
        filters = self.W if self.flip_filters else _flip_spatial(self.W, self.n)
        return ops.conv_transpose(input, filters, output_size, self.stride,
                                  _pad_pairs(self.crop, self.filter_size), (1,) * self.n,
                                  num_groups=self.num_groups)


class TransposedConv2DLayer(_TransposedConvLayer):
    """2-D transposed convolution (also called deconvolution or fractionally strided
    convolution).

    The transpose of a :class:`Conv2DLayer` (its gradient with respect to its input):
    it maps ``(batch, channels, rows, columns)`` to ``(batch, num_filters, *size)``
    where a convolution with the same ``filter_size``, ``stride`` and ``pad=crop``
    would map ``size`` back to ``(rows, columns)``. With the same ``W`` and the
    default ``flip_filters`` it is exactly the transpose of a ``Conv2DLayer`` with its
    default ``flip_filters=True``.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape, with a fixed number of channels.
    num_filters : int
        Number of output channels.
    filter_size, stride : int or tuple of int
        Of the convolution this layer transposes; a stride above 1 upsamples.
    crop : int, tuple of int, 'valid', 'full' or 'same'
        The padding of the convolution this layer transposes: here it crops the
        output (``'full'`` crops ``filter_size - 1``, ``'same'`` ``filter_size //
        2``).
    untie_biases : bool
        One bias per filter (False) or per filter and output location (True).
    W : initializer, numpy array, shared variable or expression
        Filters of shape ``(channels, num_filters // num_groups, *filter_size)``: the
        layout of the forward convolution's filters, so a ``Conv2DLayer``'s ``W`` can
        be shared.
    b : initializer, numpy array, shared variable, expression or None
        The biases; ``None`` for none.
    nonlinearity : callable or None
        Applied to the output; ``None`` means linear.
    flip_filters : bool
        Whether to flip the filters, seeing the layer as a convolution of the
        (dilated, padded) input. False (the default, unlike ``Conv2DLayer``) computes a
        correlation in that view.
    output_size : int, tuple of int, symbolic vector or None
        The output's spatial size. A stride above 1 allows ``stride - 1`` sizes above
        the smallest one (the default); give one to pick it.
    num_groups : int
        Groups of the convolution this layer transposes.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, TransposedConv2DLayer
    >>> l_in = InputLayer((None, 16, 8, 8))
    >>> layer = TransposedConv2DLayer(l_in, num_filters=3, filter_size=4, stride=2,
    ...                               crop=1)
    >>> layer.output_shape, layer.W.get_value().shape
    ((None, 3, 16, 16), (16, 3, 4, 4))
    >>> TransposedConv2DLayer(l_in, 3, 3, stride=2).output_shape
    (None, 3, 17, 17)
    >>> TransposedConv2DLayer(l_in, 3, 3, stride=2, output_size=18).output_shape
    (None, 3, 18, 18)
    """

    def __init__(self, incoming, num_filters, filter_size, stride=(1, 1), crop=0,
                 untie_biases=False, W=init.GlorotUniform(), b=init.Constant(0.),
                 nonlinearity=nonlinearities.rectify, flip_filters=False, output_size=None,
                 num_groups=1, name=None):
        super().__init__(incoming, num_filters, filter_size, stride, crop, untie_biases, W,
                         b, nonlinearity, flip_filters, output_size, num_groups, 2, name)


class TransposedConv3DLayer(_TransposedConvLayer):
    """3-D transposed convolution; see :class:`TransposedConv2DLayer`.

    Examples
    --------
    >>> from forge.layers import InputLayer, TransposedConv3DLayer
    >>> l_in = InputLayer((None, 8, 4, 4, 4))
    >>> TransposedConv3DLayer(l_in, num_filters=2, filter_size=3, stride=2).output_shape
    (None, 2, 9, 9, 9)
    """

    def __init__(self, incoming, num_filters, filter_size, stride=(1, 1, 1), crop=0,
                 untie_biases=False, W=init.GlorotUniform(), b=init.Constant(0.),
                 nonlinearity=nonlinearities.rectify, flip_filters=False, output_size=None,
                 num_groups=1, name=None):
        super().__init__(incoming, num_filters, filter_size, stride, crop, untie_biases, W,
                         b, nonlinearity, flip_filters, output_size, num_groups, 3, name)


#: Lasagne's alias of :class:`TransposedConv2DLayer` (the same class).
Deconv2DLayer = TransposedConv2DLayer
#: Lasagne's alias of :class:`TransposedConv3DLayer` (the same class).
Deconv3DLayer = TransposedConv3DLayer


class DilatedConv2DLayer(BaseConvLayer):
    """2-D dilated convolution (also called atrous convolution).

    The filters are spread out: filter tap ``(u, v)`` meets the input at
    ``(i + u * dilation[0], j + v * dilation[1])``, so a filter of size ``f`` covers
    ``(f - 1) * dilation + 1`` input positions. As in Lasagne the layer has no stride
    and no padding (add a :class:`PadLayer` in front for padding), does not flip its
    filters, and stores them as ``(channels, num_filters, rows, columns)``.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape, with a fixed number of channels.
    num_filters : int
        Number of output channels.
    filter_size : int or tuple of int
        Size of the filters.
    dilation : int or tuple of int
        Spacing between filter taps (1: an ordinary convolution).
    pad : 0 or 'valid'
        Only no padding is supported.
    untie_biases : bool
        One bias per filter (False) or per filter and output location (True).
    W : initializer, numpy array, shared variable or expression
        Filters of shape ``(channels, num_filters, *filter_size)``.
    b : initializer, numpy array, shared variable, expression or None
        The biases; ``None`` for none.
    nonlinearity : callable or None
        Applied to the output; ``None`` means linear.
    flip_filters : False
        Only False is supported.
    num_groups : 1
        Only 1 is supported.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, DilatedConv2DLayer
    >>> l_in = InputLayer((None, 3, 32, 32))
    >>> layer = DilatedConv2DLayer(l_in, num_filters=8, filter_size=3, dilation=2)
    >>> layer.output_shape, layer.W.get_value().shape
    ((None, 8, 28, 28), (3, 8, 3, 3))
    """

    def __init__(self, incoming, num_filters, filter_size, dilation=(1, 1), pad=0,
                 untie_biases=False, W=init.GlorotUniform(), b=init.Constant(0.),
                 nonlinearity=nonlinearities.rectify, flip_filters=False, num_groups=1,
                 name=None):
        self.dilation = _int_tuple(dilation, 2, "dilation")
        if num_groups != 1:
            raise NotImplementedError(f"DilatedConv2DLayer supports num_groups=1 only, "
                                      f"got num_groups={num_groups!r}")
        if not (pad == "valid" or (not isinstance(pad, str)
                                   and _int_tuple(pad, 2, "pad", minimum=0) == (0, 0))):
            raise NotImplementedError(
                f"DilatedConv2DLayer requires pad=0 / (0, 0) / 'valid', got pad={pad!r}; "
                f"for a padded dilated convolution, put a PadLayer in front")
        if flip_filters:
            raise NotImplementedError(f"DilatedConv2DLayer requires flip_filters=False, "
                                      f"got flip_filters={flip_filters!r}")
        super().__init__(incoming, num_filters, filter_size, 1, pad, untie_biases, W, b,
                         nonlinearity, flip_filters, n=2, name=name)
        del self.stride  # as in Lasagne: the layer has no stride

    def _settings(self):
        return [("filter_size", self.filter_size), ("dilation", self.dilation)]

    def get_W_shape(self):
        """``(channels, num_filters, *filter_size)``, Lasagne's layout for this layer."""
        return (self.input_shape[1], self.num_filters) + self.filter_size

    def get_output_shape_for(self, input_shape):
        spatial = tuple(conv_output_length(size, (f - 1) * d + 1, 1, 0) for size, f, d
                        in zip(input_shape[2:], self.filter_size, self.dilation))
        return (input_shape[0], self.num_filters) + spatial

    def convolve(self, input, **kwargs):
        filters = self.W.dimshuffle(1, 0, 2, 3)
        return ops.conv(input, filters, (1, 1), ((0, 0), (0, 0)), self.dilation,
                        num_groups=1)


class LocallyConnected2DLayer(BaseConvLayer):
    """2-D locally connected layer: a convolution whose filters are not shared.

    Every output location has its own filter: ``W`` has shape ``(num_filters,
    channels, *filter_size, *output_spatial)``. With ``channelwise=True`` output
    channel ``f`` sees input channel ``f`` only (then ``num_filters`` must equal the
    number of channels) and ``W`` has shape ``(num_filters, *filter_size,
    *output_spatial)``. As in Lasagne only ``stride=1`` and ``pad='same'`` (odd filter
    sizes) are supported, and the input shape must be fixed apart from the batch
    size.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    num_filters : int
        Number of output channels.
    filter_size : int or tuple of int
        Size of the filters (odd).
    stride : 1 or (1, 1)
        Only 1 is supported.
    pad : 'same'
        Only ``'same'`` is supported.
    untie_biases : bool
        One bias per filter (False) or per filter and output location (True).
    W : initializer, numpy array, shared variable or expression
        The filters, shape as above.
    b : initializer, numpy array, shared variable, expression or None
        The biases; ``None`` for none.
    nonlinearity : callable or None
        Applied to the output; ``None`` means linear.
    flip_filters : bool
        Whether to flip every filter on its two spatial axes (a convolution, the
        default) or not (a correlation).
    channelwise : bool
        One filter per channel (see above).
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> from forge.layers import InputLayer, LocallyConnected2DLayer
    >>> l_in = InputLayer((None, 3, 6, 5))
    >>> layer = LocallyConnected2DLayer(l_in, num_filters=4, filter_size=3)
    >>> layer.output_shape, layer.W.get_value().shape
    ((None, 4, 6, 5), (4, 3, 3, 3, 6, 5))
    >>> LocallyConnected2DLayer(l_in, 3, 3, channelwise=True).W.get_value().shape
    (3, 3, 3, 6, 5)
    """

    def __init__(self, incoming, num_filters, filter_size, stride=(1, 1), pad="same",
                 untie_biases=False, W=init.GlorotUniform(), b=init.Constant(0.),
                 nonlinearity=nonlinearities.rectify, flip_filters=True, channelwise=False,
                 num_groups=1, name=None):
        self.channelwise = bool(channelwise)
        if num_groups != 1:
            raise NotImplementedError(f"LocallyConnected2DLayer supports num_groups=1 "
                                      f"only, got num_groups={num_groups!r}")
        if _int_tuple(stride, 2, "stride") != (1, 1):
            raise NotImplementedError(f"LocallyConnected2DLayer requires stride=1 / (1, 1), "
                                      f"got stride={stride!r}")
        if pad != "same":
            raise NotImplementedError(f"LocallyConnected2DLayer requires pad='same', got "
                                      f"pad={pad!r}")
        super().__init__(incoming, num_filters, filter_size, stride, pad, untie_biases, W,
                         b, nonlinearity, flip_filters, n=2, name=name)

    def get_W_shape(self):
        """``(num_filters, channels, *filter_size, *output_spatial)``; without the
        channel axis when ``channelwise``."""
        if any(s is None for s in self.input_shape[1:]):
            raise ValueError(f"A LocallyConnected2DLayer requires a fixed input shape "
                             f"(except for the batch size), got input shape "
                             f"{self.input_shape}")
        channels = self.input_shape[1]
        spatial = tuple(self.get_output_shape_for(self.input_shape)[2:])
        if self.channelwise:
            if self.num_filters != channels:
                raise ValueError(f"num_filters and the number of input channels should "
                                 f"match when channelwise is true, got num_filters="
                                 f"{self.num_filters} and {channels} channels")
            return (self.num_filters,) + self.filter_size + spatial
        return (self.num_filters, channels) + self.filter_size + spatial

    def convolve(self, input, **kwargs):
        fh, fw = self.filter_size
        rows, cols = self.output_shape[2:]
        (top, _), (left, _) = _pad_pairs(self.pad, self.filter_size)
        padded = T.zeros((input.shape[0], input.shape[1], rows + fh - 1, cols + fw - 1),
                         dtype=input.dtype)
        padded = T.set_subtensor(padded[:, :, top:top + rows, left:left + cols], input)
        # patches[b, c, u, v, i, j] = padded[b, c, i + u, j + v]
        patches = T.stack([T.stack([padded[:, :, u:u + rows, v:v + cols]
                                    for v in range(fw)], axis=2)
                           for u in range(fh)], axis=2)
        first = 1 if self.channelwise else 2
        W = _flip_spatial(self.W, 2, first) if self.flip_filters else self.W
        if self.channelwise:
            # (num_filters == channels, fh, fw, rows, cols) -> sum over the taps
            return T.sum(patches * W.dimshuffle("x", 0, 1, 2, 3, 4), axis=(2, 3))
        taps = input.shape[1] * fh * fw
        # locations first: (rows*cols, batch, taps) @ (rows*cols, taps, filters)
        lhs = patches.reshape((input.shape[0], taps, rows * cols)).dimshuffle(2, 0, 1)
        rhs = W.reshape((self.num_filters, taps, rows * cols)).dimshuffle(2, 1, 0)
        out = T.matmul(lhs, rhs)  # (rows*cols, batch, filters)
        return out.dimshuffle(1, 2, 0).reshape((input.shape[0], self.num_filters, rows, cols))
