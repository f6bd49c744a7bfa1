"""Run the ops under PyTensor's Numba backend (the default mode).

The numpy kernels already spend their time in BLAS and whole-array numpy calls, so a
Numba rewrite would mostly redo what BLAS does, and cost seconds of compilation per
op on a cold cache. Each op is called from the compiled graph through
``numba.objmode`` instead, a jump back into Python for that one node, as PyTensor's
own fallback does. Registering it explicitly drops the fallback's warning and, more
importantly, gives PyTensor a cache key: a graph with a node that has none is never
cached, and is compiled again on every run.

numba is imported inside the functions: this module is only loaded once PyTensor's
Numba backend is (see ``_backends``).
"""
import inspect
import zlib

from . import _kernels
from .conv import Corr, CorrGradInputs, CorrGradWeights
from .pool import AveragePoolGrad, MaxPoolGrad, MaxPoolGradGrad, Pool

__all__ = ["register"]

_OPS = (Corr, CorrGradInputs, CorrGradWeights, Pool, MaxPoolGrad, AveragePoolGrad,
        MaxPoolGradGrad)

#: Part of the cache key, with a checksum of :func:`_funcify_perform`'s source (see
#: :func:`_cache_version`).
_CACHE_VERSION = 3


def _funcify_perform(op, node, **kwargs):
    """A jitted function that calls ``op.perform`` in object mode.

    Only the op (whose props are the cache key) is captured, not the node: the ops'
    ``perform`` methods do not use it. The function is named after the op
    (``forge_corr``...), which is how it shows in numba's compile events and in
    ``tests/forge/ops/compile_times.py --breakdown``.
    """
    import numba
    from pytensor.link.numba.dispatch.basic import get_numba_type, numba_njit

    (output,) = node.outputs
    output_type = get_numba_type(output.type)

    def call_perform(*inputs):
        storage = [[None]]
        with _kernels.scipy_blas_products():  # the BLAS the compiled graph uses
            op.perform(None, list(inputs), storage)
        return storage[0][0]

    def perform(*inputs):
        with numba.objmode(result=output_type):
            result = call_perform(*inputs)
        return result

    perform.__name__ = perform.__qualname__ = f"forge_{type(op).__name__.lower()}"
    return numba_njit(perform), _cache_version()


def _cache_version():
    """The int PyTensor adds to each op's cache key: :data:`_CACHE_VERSION` and a
    checksum of :func:`_funcify_perform`'s source.

    Numba's cache keeps the object-mode body (``call_perform``) as it was compiled, so
    without the checksum an edited body (or an upgraded forge) would keep running the
    cached old one until someone remembered to bump the version.
    """
    try:
        source = inspect.getsource(_funcify_perform)
    except (OSError, TypeError):  # no source shipped: the version alone
        return _CACHE_VERSION
    return _CACHE_VERSION << 32 | zlib.crc32(source.encode())


def register():
    """Register every op's object-mode implementation with PyTensor's Numba backend."""
    from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

    for op_type in _OPS:
        register_funcify_default_op_cache_key(op_type)(_funcify_perform)
