"""Special layers: nonlinearities, expressions, learned biases and scales, rectifiers,
the inverse of a layer, and spatial transformers."""
from types import MappingProxyType

import numpy as np

from .. import kernels
from ..errors import BundleError
from ..nonlinearities import get_nonlinearity
from .base import Layer, check, is_int, is_number, layer_class, register

__all__ = ["NonlinearityLayer", "ExpressionLayer", "BiasLayer", "ScaleLayer",
           "ParametricRectifierLayer", "RandomizedRectifierLayer", "InverseLayer",
           "TransformerLayer", "TPSTransformerLayer", "INVERTIBLE_TYPES",
           "INVERTIBLE_NONLINEARITIES"]


@register
class NonlinearityLayer(Layer):
    """``nonlinearity(x)``."""

    config_keys = ("nonlinearity",)

    def __init__(self, name, inputs, nonlinearity):
        super().__init__(name, inputs)
        self.nonlinearity = get_nonlinearity(nonlinearity)

    def __call__(self, x):
        return self.nonlinearity(x)


@register
class ExpressionLayer(Layer):
    """``function(x)``: a named nonlinearity, or the user's function lowered to a program."""

    config_keys = ("function",)

    def __init__(self, name, inputs, function):
        super().__init__(name, inputs)
        self.function = get_nonlinearity(function)

    def __call__(self, x):
        return self.function(x)


class _SharedAxesLayer(Layer):
    """A layer with one parameter (named by ``param_keys[0]``, and kept under that name
    with a size-1 axis at each shared axis) repeated along ``shared_axes`` of the input;
    subclasses give :meth:`_apply` of the input and that parameter."""

    config_keys = ("shared_axes",)

    def __init__(self, name, inputs, shared_axes, **param):
        super().__init__(name, inputs)
        [(what, value)] = param.items()
        ok = isinstance(shared_axes, list) and all(is_int(a, 0) for a in shared_axes)
        ndim = value.ndim + len(shared_axes) if ok else 0
        check(ok and len(set(shared_axes)) == len(shared_axes)
              and all(a < ndim for a in shared_axes),
              f"shared_axes must be a list of distinct axes (ints >= 0) of the input, which has "
              f"{what}'s {value.ndim} axes plus one per shared axis; got {shared_axes!r}")
        sizes = iter(value.shape)
        setattr(self, what, value.reshape([1 if a in shared_axes else next(sizes)
                                           for a in range(ndim)]))
        self.shared_axes = tuple(shared_axes)

    def __call__(self, x):
        what = self.param_keys[0]
        p = getattr(self, what)
        if x.ndim != p.ndim or any(axis not in self.shared_axes and n != size
                                   for axis, (n, size) in enumerate(zip(p.shape, x.shape))):
            raise ValueError(f"{what} of shape {p.shape} (1 on shared axes {self.shared_axes}) "
                             f"does not fit an input of shape {x.shape}")
        return self._apply(x, p)


@register
class BiasLayer(_SharedAxesLayer):
    """``x + b``, with ``b`` repeated along ``shared_axes``."""

    param_keys = ("b",)

    def _apply(self, x, b):
        return x + b


@register
class ScaleLayer(_SharedAxesLayer):
    """``x * scales``, with ``scales`` repeated along ``shared_axes``."""

    param_keys = ("scales",)

    def _apply(self, x, scales):
        return x * scales


@register
class ParametricRectifierLayer(_SharedAxesLayer):
    """``max(x, 0) + alpha * min(x, 0)``, with ``alpha`` repeated along ``shared_axes``."""

    param_keys = ("alpha",)

    def _apply(self, x, alpha):
        return np.maximum(x, 0) + alpha * np.minimum(x, 0)


@register
class RandomizedRectifierLayer(Layer):
    """At inference a leaky rectifier of slope ``(lower + upper) / 2``."""

    config_keys = ("lower", "upper")

    def __init__(self, name, inputs, lower, upper):
        super().__init__(name, inputs)
        check(is_number(lower) and is_number(upper) and lower <= upper,
              f"lower and upper must be numbers with lower <= upper, got {lower!r}, {upper!r}")
        self.slope = (lower + upper) / 2

    def __call__(self, x):
        return np.where(x > 0, x, x * np.asarray(self.slope, x.dtype))


# -- InverseLayer: back-propagation through another layer ---------------------------

def _softmax_backward(g, y):
    return y * (g - np.sum(g * y, axis=-1, keepdims=True))


#: d nonlinearity(z) / dz, written with the output ``y`` (and the parameters ``p``).
_SLOPES = {
    "linear": lambda y, p: None,
    "rectify": lambda y, p: y > 0,
    "leaky_rectify": lambda y, p: np.where(y > 0, 1, p["leakiness"]),
    "sigmoid": lambda y, p: y * (1 - y),
    "ultra_fast_sigmoid": lambda y, p: y * (1 - y),
    "tanh": lambda y, p: 1 - y * y,
    "scaled_tanh": lambda y, p: p["scale_in"] * (p["scale_out"] - y * y / p["scale_out"]),
    "elu": lambda y, p: np.where(y > 0, 1, y + 1),
    "selu": lambda y, p: np.where(y > 0, p["scale"], y + p["scale"] * p["scale_neg"]),
    "softplus": lambda y, p: -np.expm1(-y),
    "exp": lambda y, p: y,
}

#: The nonlinearities an inverted layer may have: those whose slope follows from the
#: output. Not ``abs`` and ``sqr`` (the output loses the input's sign), ``hard_sigmoid``
#: (at an output of 0 or 1 the input may sit on the clip's edge, where PyTensor's slope
#: is 0.2, or past it), ``log`` and ``sqrt`` (for a negative input the output is NaN,
#: while PyTensor's graph may not be: its slope ``1 / x`` is finite, and ``sqrt(x) *
#: 0.5 / sqrt(x)`` is rewritten to 0.5).
INVERTIBLE_NONLINEARITIES = tuple(_SLOPES) + ("softmax",)


def _through_nonlinearity(nonlinearity, g, y):
    """``g`` back-propagated through ``nonlinearity``, whose output was ``y``."""
    if nonlinearity.name == "softmax":
        return _softmax_backward(g, y)
    slope = _SLOPES[nonlinearity.name](y, nonlinearity.params)
    return g if slope is None else (g * slope).astype(g.dtype, copy=False)


def _dense_backward(layer, g, y, x):
    g = _through_nonlinearity(layer.nonlinearity, g, y)
    return (g.reshape(-1, layer.W.shape[1]) @ layer.W.T).reshape(x.shape)


def _conv_backward(layer, g, y, x):
    g = _through_nonlinearity(layer.nonlinearity, g, y)
    # layer.W holds the filters as the forward pass correlates with them
    return kernels.conv_transpose(g, layer.W, None, layer.stride, layer.pad, layer.dilation,
                                  layer.num_groups, x.shape[2:])


def _pool_backward(layer, g, y, x):
    """Each window sends its output gradient to the elements equal to its maximum (max),
    or spreads it over its elements with the forward pass's divisor (average)."""
    nd = len(layer.pool_size)
    size, out_shape = x.shape[-nd:], y.shape[-nd:]
    canvas_shape = tuple(max(s + 2 * p, (o - 1) * t + w) for s, p, o, t, w
                         in zip(size, layer.pad, out_shape, layer.stride, layer.pool_size))
    inside = (Ellipsis,) + tuple(slice(p, p + s) for p, s in zip(layer.pad, size))
    canvas = np.full(x.shape[:-nd] + canvas_shape, -np.inf, x.dtype)
    canvas[inside] = x
    grad = np.zeros_like(canvas)
    if layer.mode != "max":
        divisor = np.ones((), np.int64)
        for args in zip(size, layer.pool_size, layer.stride, layer.pad, out_shape):
            divisor = np.multiply.outer(divisor, kernels.pool_bounds(*args, layer.mode)[2])
        share = (g / divisor).astype(g.dtype)
    for offset in np.ndindex(*layer.pool_size):
        window = (Ellipsis,) + tuple(slice(k, k + (o - 1) * t + 1, t)
                                     for k, o, t in zip(offset, out_shape, layer.stride))
        grad[window] += np.where(canvas[window] == y, g, 0) if layer.mode == "max" else share
    return grad[inside]


def _nonlinearity_backward(layer, g, y, x):
    return _through_nonlinearity(layer.nonlinearity, g, y)


def _transposed_conv_backward(layer, g, y, x):
    # the transpose of a transposed convolution is the convolution with the same filters
    g = _through_nonlinearity(layer.nonlinearity, g, y)
    return kernels.conv(g, layer.W, None, layer.stride, layer.crop, None, layer.num_groups)


def _reduce_backward(function, groups, y, g, axis):
    """``g`` sent back through ``function`` over ``axis`` of ``groups``: max and min to
    every element equal to the result (PyTensor's gradient), sum to all, mean shared."""
    y, g = np.expand_dims(y, axis), np.expand_dims(g, axis)
    if function in ("max", "min"):
        return np.where(groups == y, g, 0).astype(g.dtype)
    share = g / np.asarray(groups.shape[axis], g.dtype) if function == "mean" else g
    return share + np.zeros(groups.shape, g.dtype)


def _feature_pool_backward(layer, g, y, x):
    axis = layer.axis % x.ndim
    groups = x.reshape(x.shape[:axis] + (-1, layer.pool_size) + x.shape[axis + 1:])
    return _reduce_backward(layer.pool_function, groups, y, g, axis + 1).reshape(x.shape)


def _global_pool_backward(layer, g, y, x):
    flat = x.reshape(x.shape[:2] + (-1,))
    return _reduce_backward(layer.pool_function, flat, y, g, 2).reshape(x.shape)


def _upscale_backward(layer, g, y, x):
    """Repeat: each element's block summed; dilate: the elements it was placed at."""
    lead = x.ndim - len(layer.scale_factor)
    if layer.mode == "dilate":
        return g[(Ellipsis,) + tuple(slice(None, None, f) for f in layer.scale_factor)]
    blocks = g.reshape(x.shape[:lead] + sum(((s, f) for s, f in zip(
        x.shape[lead:], layer.scale_factor)), ()))
    return blocks.sum(axis=tuple(range(lead + 1, g.ndim + len(layer.scale_factor), 2)))


def _dimshuffle_backward(layer, g, y, x):
    order = layer.kept + [a for a in range(x.ndim) if a not in layer.kept]
    return g.reshape([x.shape[a] for a in order]).transpose(np.argsort(order))


def _pad_backward(layer, g, y, x):
    first = layer.batch_ndim
    return g[(slice(None),) * first + tuple(slice(a, g.shape[first + k] - b)
                                            for k, (a, b) in enumerate(layer.width))]


def _slice_backward(layer, g, y, x):
    grad = np.zeros_like(x, dtype=g.dtype)
    grad[(slice(None),) * (layer.axis % x.ndim) + (layer.indices,)] = g
    return grad


_BACKWARD = {
    "DenseLayer": _dense_backward,
    **dict.fromkeys(["Conv1DLayer", "Conv2DLayer", "Conv3DLayer", "DilatedConv2DLayer"],
                    _conv_backward),
    **dict.fromkeys([f"{kind}{n}DLayer" for kind in ("Pool", "MaxPool") for n in (1, 2, 3)],
                    _pool_backward),
    "NonlinearityLayer": _nonlinearity_backward,
    "BiasLayer": lambda layer, g, y, x: g,
    "ScaleLayer": lambda layer, g, y, x: g * layer.scales,
    "FlattenLayer": lambda layer, g, y, x: g.reshape(x.shape),
    "ReshapeLayer": lambda layer, g, y, x: g.reshape(x.shape),
    "TransposedConv2DLayer": _transposed_conv_backward,
    "TransposedConv3DLayer": _transposed_conv_backward,
    **dict.fromkeys([f"Upscale{n}DLayer" for n in (1, 2, 3)], _upscale_backward),
    "DimshuffleLayer": _dimshuffle_backward,
    "PadLayer": _pad_backward,
    "SliceLayer": _slice_backward,
    "FeaturePoolLayer": _feature_pool_backward,
    "GlobalPoolLayer": _global_pool_backward,
}

#: The layer types an InverseLayer can invert.
INVERTIBLE_TYPES = tuple(_BACKWARD)


@register
class InverseLayer(Layer):
    """The gradient of another layer w.r.t. its input, applied to ``g``: ``J^T g``.

    Inputs: ``g`` (shaped like the inverted layer's output), the inverted layer's output
    ``y`` and its input ``x``. The entry's ``layer_type`` and ``layer_config``, with its
    params, describe the inverted layer as its own entry does.
    """

    num_inputs = 3
    config_keys = ("layer_type", "layer_config")

    def __init__(self, name, inputs, layer_type, layer_config, params):
        super().__init__(name, inputs)
        check(layer_type in _BACKWARD, f"layer_type {layer_type!r} cannot be inverted; "
                                       f"invertible: {', '.join(INVERTIBLE_TYPES)}")
        self.layer = layer_class(layer_type).from_config(name, layer_config, params, inputs[2:])
        self.backward = _BACKWARD[layer_type]
        nonlinearity = getattr(self.layer, "nonlinearity", None)
        check(nonlinearity is None or getattr(nonlinearity, "name", None) in INVERTIBLE_NONLINEARITIES,
              f"cannot invert through the nonlinearity {nonlinearity!r}; invertible: "
              f"{', '.join(INVERTIBLE_NONLINEARITIES)}")

    @classmethod
    def from_config(cls, name, config, params, inputs):
        """Build from a bundle entry whose params are those of the inverted layer."""
        where = f"layer {name!r} (InverseLayer)"
        check(sorted(config) == sorted(cls.config_keys),
              f"{where}: config keys must be {list(cls.config_keys)}, got {sorted(config)}")
        check(len(inputs) == 3, f"{where}: takes 3 inputs (g, the inverted layer's output "
                                f"and its input), got {len(inputs)}")
        try:
            layer = cls(name, inputs, params=params, **config)
        except (BundleError, TypeError, ValueError) as exc:
            raise BundleError(f"{where}: {exc}") from None
        layer.params = MappingProxyType({k: v for k, v in params.items() if v is not None})
        return layer

    def __call__(self, g, y, x):
        if g.shape != y.shape:
            raise ValueError(f"the input of shape {g.shape} must be shaped like the inverted "
                             f"layer's output, {y.shape}")
        return self.backward(self.layer, g, y, x)


# -- spatial transformers -------------------------------------------------------------

def _border_index(position, size, border_mode):
    """Integer positions (as floats) mapped into ``[0, size)``: clamped (nearest),
    reflected about the edge pixels (mirror) or repeated (wrap)."""
    if border_mode == "nearest":
        index = np.clip(position, 0, size - 1)
    elif border_mode == "mirror":
        period = max(2 * (size - 1), 1)
        index = np.minimum(position % period, -position % period)
    else:
        index = position % size
    return index.astype(np.int64)


def _bilinear_sample(x, px, py, rows, cols, border_mode):
    """``x`` (n, c, h, w) sampled at normalized points ``px``, ``py`` (n, rows * cols) in
    [-1, 1], each the bilinear blend of its 2x2 neighbourhood: (n, c, rows, cols)."""
    n, c, h, w = x.shape
    px = (px + 1) / 2 * (np.asarray(w, x.dtype) - 1)  # pixel coordinates
    py = (py + 1) / 2 * (np.asarray(h, x.dtype) - 1)
    x0, y0 = np.floor(px), np.floor(py)
    x1, y1 = x0 + 1, y0 + 1
    ix0, ix1 = _border_index(x0, w, border_mode), _border_index(x1, w, border_mode)
    iy0, iy1 = _border_index(y0, h, border_mode), _border_index(y1, h, border_mode)
    pixels = x.transpose(0, 2, 3, 1).reshape(-1, c)
    first = (np.arange(n) * h * w)[:, None]

    def blend(weight, iy, ix):
        return weight.reshape(-1, 1) * pixels[(first + iy * w + ix).ravel()]

    out = (blend((x1 - px) * (y1 - py), iy0, ix0) + blend((x1 - px) * (py - y0), iy1, ix0)
           + blend((px - x0) * (y1 - py), iy0, ix1) + blend((px - x0) * (py - y0), iy1, ix1))
    return out.reshape(n, rows, cols, c).transpose(0, 3, 1, 2)


def _linspace(num, dtype):
    """``num`` values from -1 to 1 in ``dtype``, computed as forge computes them."""
    step = np.asarray(2, dtype) / np.asarray(max(num - 1, 1), dtype)
    return np.arange(num, dtype=dtype) * step - 1


class _Transformer(Layer):
    num_inputs = 2

    def __init__(self, name, inputs, downsample_factor, border_mode):
        super().__init__(name, inputs)
        check(isinstance(downsample_factor, list) and len(downsample_factor) == 2 and all(
            is_number(f) and f > 0 for f in downsample_factor),
            f"downsample_factor must be a list of 2 positive numbers, got {downsample_factor!r}")
        check(border_mode in ("nearest", "mirror", "wrap"),
              f"border_mode must be 'nearest', 'mirror' or 'wrap', got {border_mode!r}")
        self.downsample_factor, self.border_mode = tuple(downsample_factor), border_mode

    def output_size(self, x, params, wanted):
        if x.ndim != 4 or params.ndim != 2 or params.shape != (x.shape[0], wanted):
            raise ValueError(f"needs images (batch, channels, rows, columns) and parameters "
                             f"(batch, {wanted}), got shapes {x.shape} and {params.shape}")
        return tuple(int(s // f) for s, f in zip(x.shape[2:], self.downsample_factor))


@register
class TransformerLayer(_Transformer):
    """Sample the images at ``theta @ (x_t, y_t, 1)`` for every output pixel ``(x_t, y_t)``
    in [-1, 1]^2, ``theta`` (2 x 3) being each item's row of the second input."""

    config_keys = ("downsample_factor", "border_mode")

    def __call__(self, x, theta):
        rows, cols = self.output_size(x, theta, 6)
        xs, ys = _linspace(cols, x.dtype), _linspace(rows, x.dtype)
        grid = np.stack([np.tile(xs, rows), np.repeat(ys, cols), np.ones(rows * cols, x.dtype)])
        points = theta.astype(x.dtype, copy=False).reshape(-1, 2, 3) @ grid
        return _bilinear_sample(x, points[:, 0], points[:, 1], rows, cols, self.border_mode)


def _tps_kernel(r2):
    return r2 * np.log(np.where(r2 > 0, r2, 1))


@register
class TPSTransformerLayer(_Transformer):
    """Sample the images along the thin-plate spline through the control points (a square
    grid over [-1, 1]^2) moved by each item's offsets (all x offsets, then all y)."""

    config_keys = ("downsample_factor", "control_points", "border_mode")

    def __init__(self, name, inputs, downsample_factor, control_points, border_mode):
        super().__init__(name, inputs, downsample_factor, border_mode)
        side = round(control_points ** 0.5) if is_int(control_points, 4) else 0
        check(side * side == control_points, f"control_points must be a perfect square >= 4, "
                                             f"got {control_points!r}")
        grid = np.linspace(-1, 1, side)
        self.source = np.stack([np.tile(grid, side), np.repeat(grid, side)])  # (2, k)
        system = np.zeros((control_points + 3,) * 2)  # Bookstein's L, in float64
        system[0, 3:] = system[3:, 0] = 1
        system[1:3, 3:], system[3:, 1:3] = self.source, self.source.T
        system[3:, 3:] = _tps_kernel(((self.source[:, :, None] - self.source[:, None]) ** 2).sum(0))
        self.solver = np.linalg.inv(system)[:, 3:].T  # destinations -> coefficients
        self.control_points = control_points

    def __call__(self, x, offsets):
        rows, cols = self.output_size(x, offsets, 2 * self.control_points)
        xs, ys = np.linspace(-1, 1, cols), np.linspace(-1, 1, rows)
        grid = np.stack([np.tile(xs, rows), np.repeat(ys, cols)])
        radial = _tps_kernel(((grid[:, None] - self.source[:, :, None]) ** 2).sum(0))
        basis = np.concatenate([np.ones((1, rows * cols)), grid, radial])
        moved = self.source + offsets.astype(np.float64).reshape(-1, 2, self.control_points)
        points = (moved @ self.solver @ basis).astype(x.dtype)  # float64, as in forge
        return _bilinear_sample(x, points[:, 0], points[:, 1], rows, cols, self.border_mode)
