"""JAX implementations of the ops, for ``mode="JAX"`` (forge's GPU path).

Convolutions go to ``lax.conv_general_dilated`` (``feature_group_count`` for groups)
and its ``jax.vjp``; pooling to ``lax.reduce_window`` on an input padded exactly as
the numpy kernels pad it, so the two paths agree on every setting. The max pooling
gradient is written out rather than left to ``jax.vjp``, whose tie-breaking differs
from Theano's (every tied maximum gets the gradient).

Size arithmetic: PyTensor's own JAX implementations of elementwise ops, ``MakeVector``
and ``ScalarFromTensor`` are wrapped so that a node computing scalars or vectors from
untraced values (static shapes, constants) runs numpy's ``perform`` while tracing:
JAX needs those sizes concrete (:func:`_numpy_when_concrete`). ``Split`` takes its
positions at trace time (:func:`_eager_when_sizes_concrete`), ``Scan`` gets the sizes it
is passed from outside its body as constants in the body (:func:`_sizes_into_scan`),
and ``ARange`` checks its bounds while tracing (:func:`_funcify_arange`).

jax is imported inside the functions: this module is only loaded once PyTensor's JAX
backend is (see ``_backends``).
"""
import itertools

import numpy as np

from . import _kernels
from .conv import Corr, CorrGradInputs, CorrGradWeights
from .pool import AveragePoolGrad, MaxPoolGrad, MaxPoolGradGrad, Pool

__all__ = ["register"]


def _dimension_numbers(nd):
    spatial = "DHW"[3 - nd:]
    return ("NC" + spatial, "OI" + spatial, "NC" + spatial)


def _corr_fn(op, widen=True):
    """``corr(x, w)``: the op's convolution in ``lax``.

    On the CPU, XLA sends a convolution without padding to a kernel several times
    slower than the one (YNNPACK) it uses for a padded one: the README CNN's second
    convolution took 40 ms forward and 44 ms for its filter gradient unpadded, 11 and
    18 ms padded (batch 64, 2 cores, jaxlib 0.10). So with ``widen`` and no padding on
    the CPU, the last axis gets one zero column after the input and the extra output
    column, if any, is cut off: the same sums, the fast kernel. The input gradient is
    fast either way and is left plain (``widen=False``).
    """
    import jax
    from jax import lax

    stride, pad, dilation, num_groups = op.settings
    numbers = _dimension_numbers(op.nd)
    widen = widen and not any(sum(pad, ())) and jax.default_backend() == "cpu"
    padding = pad[:-1] + ((0, 1),) if widen else pad

    def corr(x, w):
        y = lax.conv_general_dilated(
            x, w, window_strides=stride, padding=padding, rhs_dilation=dilation,
            dimension_numbers=numbers, feature_group_count=num_groups)
        if widen:
            span = dilation[-1] * (w.shape[-1] - 1) + 1
            y = y[..., :(x.shape[-1] - span) // stride[-1] + 1]
        return y

    return corr


def _concrete_sizes(sizes, static, op, role):
    """Python ints for the size inputs: JAX needs concrete shapes."""
    values = []
    for size, known in zip(sizes, static):
        if known is not None:
            values.append(known)
            continue
        try:
            values.append(int(size))
        except TypeError as exc:  # a tracer: computed inside the jitted graph
            raise NotImplementedError(
                f"{type(op).__name__} on the JAX backend needs the {role} sizes as "
                f"ints, constants or shapes of other arrays (Shape_i), so that they "
                f"are known when tracing; got one computed in the graph"
            ) from exc
    return tuple(values)


def _funcify_corr(op, node=None, **kwargs):
    return _corr_fn(op)


def _funcify_corr_grad_inputs(op, node, **kwargs):
    import jax
    import jax.numpy as jnp

    corr = _corr_fn(op, widen=False)
    static = node.outputs[0].type.shape[2:]

    def corr_grad_inputs(w, dy, *sizes):
        size = _concrete_sizes(sizes, static, op, "input")
        x = jnp.zeros((dy.shape[0], w.shape[1] * op.num_groups) + size, dtype=dy.dtype)
        _, pullback = jax.vjp(lambda x: corr(x, w), x)
        return pullback(dy)[0]

    return corr_grad_inputs


#: On the CPU, the filter gradient is summed over chunks of this many items. XLA's CPU
#: backend computes it over a whole batch with a kernel that runs on one thread, and 2-4
#: times faster over a few items at a time (2-core Sapphire Rapids VM, jaxlib 0.10, batch
#: 64, ms for one chunk size and the whole batch): the README CNN's second convolution
#: 15 against 50, and 57 against 217 at batch 256; 16 -> 16 channels on 32 x 32, 4.9
#: against 13.6; 128 -> 128 on 14 x 14, 26 against 69. 8 was best or near it for all.
CPU_FILTER_GRADIENT_ITEMS = 8


def _funcify_corr_grad_weights(op, node, **kwargs):
    import jax
    import jax.numpy as jnp

    corr = _corr_fn(op)
    static = node.outputs[0].type.shape[2:]
    chunk = CPU_FILTER_GRADIENT_ITEMS if jax.default_backend() == "cpu" else None

    def corr_grad_weights(x, dy, *sizes):
        size = _concrete_sizes(sizes, static, op, "filter")
        w = jnp.zeros((dy.shape[1], x.shape[1] // op.num_groups) + size, dtype=dy.dtype)

        def gradient(x, dy):
            _, pullback = jax.vjp(lambda w: corr(x, w), w)
            return pullback(dy)[0]

        if chunk is None or x.shape[0] <= chunk:
            return gradient(x, dy)
        total = gradient(x[:chunk], dy[:chunk])
        for first in range(chunk, x.shape[0], chunk):
            total = total + gradient(x[first:first + chunk], dy[first:first + chunk])
        return total

    return corr_grad_weights


# -------------------------------------------------------------------- pooling

def _geometry(shape, op):
    """Output lengths and window span along the pooled axes of ``shape``."""
    pool_size, stride, pad, ignore_border = op.settings
    spatial = shape[-op.nd:]
    out = tuple(_kernels.pool_output_length(n, k, s, p, ignore_border)
                for n, k, s, p in zip(spatial, pool_size, stride, pad))
    return spatial, out, _kernels.pool_span(out, pool_size, stride)


def _to_span(x, spatial, span, pad, fill):
    """``x`` placed at offset ``pad`` in an extent of ``span``, as in the kernels."""
    from jax import lax

    lead = [(0, 0, 0)] * (x.ndim - len(span))
    # A negative high padding crops what no window reaches.
    config = lead + [(p, s - p - n, 0) for n, s, p in zip(spatial, span, pad)]
    return lax.pad(x, np.array(fill, dtype=x.dtype), config)


def _from_span(xp, spatial, span, pad):
    """The inverse placement: crop the padding, zero-fill what the span missed."""
    from jax import lax

    lead = [(0, 0, 0)] * (xp.ndim - len(span))
    config = lead + [(-p, p + n - s, 0) for n, s, p in zip(spatial, span, pad)]
    return lax.pad(xp, np.array(0, dtype=xp.dtype), config)


def _window_views(xp, out, op):
    """Yield ``(offsets, strided slice)`` for every offset inside a window."""
    from jax import lax

    lead = xp.ndim - op.nd
    for k in itertools.product(*(range(n) for n in op.pool_size)):
        start = (0,) * lead + k
        limit = xp.shape[:lead] + tuple(
            o + s * (n - 1) + 1 for o, s, n in zip(k, op.stride, out))
        yield k, lax.slice(xp, start, limit, (1,) * lead + op.stride)


def _scatter_window(values, k, span, out, op):
    """The transpose of one strided slice: ``values`` spread back into the span."""
    from jax import lax

    lead = [(0, 0, 0)] * (values.ndim - op.nd)
    config = lead + [(o, sp - o - s * (n - 1) - 1, s - 1)
                     for o, sp, s, n in zip(k, span, op.stride, out)]
    return lax.pad(values, np.array(0, dtype=values.dtype), config)


def _pool_fn(op, mode):
    import jax.numpy as jnp
    from jax import lax

    pool_size, stride, pad, _ = op.settings

    def pool(x):
        spatial, out, span = _geometry(x.shape, op)
        lead_shape = x.shape[:-op.nd]
        if 0 in out:
            return jnp.zeros(lead_shape + out, dtype=x.dtype)
        fill = _kernels.pool_fill_value(mode, x.dtype)
        xp = _to_span(x, spatial, span, pad, fill)
        ones = (1,) * len(lead_shape)
        reducer = lax.max if mode == "max" else lax.add
        y = lax.reduce_window(xp, np.array(fill, dtype=x.dtype), reducer,
                              ones + pool_size, ones + stride, "VALID")
        divisor = _kernels.pool_divisor(spatial, out, pool_size, stride, pad, mode, x.dtype)
        return y if divisor is None else y / divisor

    return pool


def _funcify_pool(op, node=None, **kwargs):
    return _pool_fn(op, op.mode)


def _funcify_average_pool_grad(op, node=None, **kwargs):
    import jax

    pool = _pool_fn(op, op.mode)

    def average_pool_grad(x, dy):
        return jax.vjp(pool, x)[1](dy)[0]

    return average_pool_grad


def _funcify_max_pool_grad(op, node=None, **kwargs):
    import jax.numpy as jnp

    def max_pool_grad(x, y, dy):
        spatial, out, span = _geometry(x.shape, op)
        if 0 in out:
            return jnp.zeros_like(x)
        xp = _to_span(x, spatial, span, op.pad, _kernels.pool_fill_value("max", x.dtype))
        dxp = None
        for k, view in _window_views(xp, out, op):
            part = _scatter_window(jnp.where(view == y, dy, 0), k, span, out, op)
            dxp = part if dxp is None else dxp + part
        return _from_span(dxp, spatial, span, op.pad)

    return max_pool_grad


def _funcify_max_pool_grad_grad(op, node=None, **kwargs):
    import jax.numpy as jnp

    def max_pool_grad_grad(x, y, ggx):
        spatial, out, span = _geometry(x.shape, op)
        if 0 in out:
            return jnp.zeros_like(y)
        xp = _to_span(x, spatial, span, op.pad, _kernels.pool_fill_value("max", x.dtype))
        gp = _to_span(ggx, spatial, span, op.pad, 0)
        views = dict(_window_views(gp, out, op))
        acc = None
        for k, view in _window_views(xp, out, op):
            part = jnp.where(view == y, views[k], 0)
            acc = part if acc is None else acc + part
        return acc

    return max_pool_grad_grad


# ------------------------------------------------------- shape arithmetic

def _small(var):
    """Whether ``var`` is a scalar or a vector, the kinds of values sizes are."""
    from pytensor.scalar import ScalarType
    from pytensor.tensor import TensorType

    return isinstance(var.type, (TensorType, ScalarType)) and var.type.ndim <= 1


def _traced(value):
    """Whether ``value`` is a JAX tracer: known only when the compiled program runs."""
    from jax.core import Tracer

    return isinstance(value, Tracer)


def _shape_like(node):
    """Whether ``node`` computes scalars or vectors only: sizes, the arithmetic on them
    (``(n + pad - k) // s + 1``), the checks PyTensor adds and, once fusion has merged
    them, the casts a mean divides by."""
    return node is not None and all(_small(out) for out in node.outputs)


def _numpy_when_concrete(funcify):
    """Wrap ``funcify`` (PyTensor's JAX implementation of an op class) so that a
    shape-like node computes with the op's numpy ``perform`` when no input is traced.

    Under ``jax.jit`` every ``jax.numpy`` call is staged, constants included, so size
    arithmetic on the arrays' static shapes (``Shape_i``) came out traced, and the JAX
    backend needs concrete sizes wherever it allocates, reshapes, slices or splits.
    Computed with numpy at trace time, the sizes stay Python values; a node with a
    traced input (sizes of arrays the graph computes from data) keeps JAX's code.
    """
    def funcify_concrete(op, node=None, **kwargs):
        jax_fn = funcify(op, node=node, **kwargs)
        if not _shape_like(node):
            return jax_fn

        def fn(*inputs):
            if any(map(_traced, inputs)):
                return jax_fn(*inputs)
            storage = [[None] for _ in node.outputs]
            # copies: an in-place elementwise op would write into the graph's constants
            op.perform(node, [np.array(value) for value in inputs], storage)
            results = [cell[0] for cell in storage]
            return results[0] if len(results) == 1 else results

        return fn

    return funcify_concrete


def _eager_when_sizes_concrete(funcify):
    """Wrap ``funcify`` (PyTensor's JAX implementation of an op whose inputs after the
    first are sizes, as ``Split``'s axis and split lengths) so that, when those sizes
    are not traced, its own arithmetic on them runs at trace time.

    PyTensor's ``Split`` takes the cumulative sum of the lengths with ``jax.numpy``,
    which ``jit`` stages, so ``jnp.split`` got traced positions; the gradient of a
    concatenation splits by its inputs' sizes. Inside ``jax.ensure_compile_time_eval``
    operations on concrete values are evaluated eagerly, while the data input, traced,
    is staged as before.
    """
    def funcify_eager(op, node=None, **kwargs):
        import jax

        jax_fn = funcify(op, node=node, **kwargs)

        def fn(x, *sizes):
            if any(map(_traced, sizes)):
                return jax_fn(x, *sizes)
            with jax.ensure_compile_time_eval():
                return jax_fn(x, *sizes)

        return fn

    return funcify_eager


def _sizes_into_scan(funcify):
    """Wrap ``funcify`` (PyTensor's JAX implementation of ``Scan``) so that non-sequences
    that are untraced scalars or vectors, mostly sizes, enter the loop's body as
    constants.

    PyTensor moves computations that do not change from step to step out of a scan's
    body, sizes included (``Shape_i`` of the filters a recurrent convolution's gradient
    needs), and passes them back in as non-sequences. JAX's ``lax.scan`` carries those,
    so inside the body they were traced, however concrete outside. At trace time the
    wrapper puts their values into the body's graph as constants and converts that
    scan instead.
    """
    def funcify_scan(op, node=None, **kwargs):
        # converted now, so that a scan JAX cannot run fails when the function is built
        jax_fn = funcify(op, node=node, **kwargs)
        small = [_small(var) for var in op.inner_non_seqs(op.inner_inputs)]

        def scan(*outer_inputs):
            values = op.outer_non_seqs(list(outer_inputs))
            known = [(k, value) for k, (value, size) in enumerate(zip(values, small))
                     if size and not _traced(value)]
            if not known:
                return jax_fn(*outer_inputs)
            # PyTensor 3.1 and later keep the body frozen: edit a mutable copy
            body = (op.fgraph.unfreeze() if hasattr(op.fgraph, "unfreeze")
                    else op.fgraph.clone())
            inner = op.inner_non_seqs(body.inputs)
            for k, value in known:
                var = inner[k]
                data = var.type.filter(np.asarray(value), allow_downcast=True)
                body.replace(var, var.type.make_constant(data), import_missing=True)
            concrete = type(op)(body.inputs, body.outputs, op.info, mode=op.mode,
                                truncate_gradient=op.truncate_gradient, name=op.name)
            return funcify(concrete, node=node, **kwargs)(*outer_inputs)

        return scan

    return funcify_scan


def _funcify_arange(op, node=None, **kwargs):
    """``ARange`` with its bounds checked when tracing, not when converting.

    PyTensor's own version accepts only constants and ``Shape_i`` nodes as bounds, so
    ``arange(x.shape[1] + 1)`` failed even though the bound is known when tracing."""
    import jax.numpy as jnp

    def arange(start, stop, step):
        if any(map(_traced, (start, stop, step))):
            raise NotImplementedError(
                "arange on the JAX backend needs its start, stop and step known when "
                "tracing (constants, or arithmetic on shapes); got one computed from "
                "the data")
        start, stop, step = (np.asarray(value).item() for value in (start, stop, step))
        return jnp.arange(start, stop, step, dtype=op.dtype)

    return arange


def _register_concrete_shapes(jax_funcify):
    from pytensor.scan.op import Scan
    from pytensor.tensor.basic import ARange, MakeVector, ScalarFromTensor, Split
    from pytensor.tensor.elemwise import Elemwise

    for cls in (Elemwise, MakeVector, ScalarFromTensor):
        jax_funcify.register(cls)(_numpy_when_concrete(jax_funcify.dispatch(cls)))
    jax_funcify.register(Split)(_eager_when_sizes_concrete(jax_funcify.dispatch(Split)))
    jax_funcify.register(Scan)(_sizes_into_scan(jax_funcify.dispatch(Scan)))
    jax_funcify.register(ARange)(_funcify_arange)


def register(jax_funcify):
    """Register every op's JAX implementation with PyTensor's ``jax_funcify``."""
    _register_concrete_shapes(jax_funcify)
    jax_funcify.register(Corr)(_funcify_corr)
    jax_funcify.register(CorrGradInputs)(_funcify_corr_grad_inputs)
    jax_funcify.register(CorrGradWeights)(_funcify_corr_grad_weights)
    jax_funcify.register(Pool)(_funcify_pool)
    jax_funcify.register(MaxPoolGrad)(_funcify_max_pool_grad)
    jax_funcify.register(AveragePoolGrad)(_funcify_average_pool_grad)
    jax_funcify.register(MaxPoolGradGrad)(_funcify_max_pool_grad_grad)
