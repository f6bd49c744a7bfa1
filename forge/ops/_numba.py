"""Run the ops under PyTensor's Numba backend (the default mode).

The numpy kernels already spend their time in BLAS and whole-array numpy calls, so a
Numba rewrite would gain little and cost seconds of compilation per op. Each op is
instead called from the compiled graph through ``numba.objmode`` (a jump back into
Python for the one node), which is what PyTensor's own fallback does; registering it
explicitly drops the fallback's warning.

numba is imported inside ``register``: this module is only loaded once PyTensor's
Numba backend is (see ``_backends``).
"""
from .conv import Corr, CorrGradInputs, CorrGradWeights
from .pool import AveragePoolGrad, MaxPoolGrad, MaxPoolGradGrad, Pool

__all__ = ["register"]

_OPS = (Corr, CorrGradInputs, CorrGradWeights, Pool, MaxPoolGrad, AveragePoolGrad,
        MaxPoolGradGrad)


def _funcify_perform(op, node, **kwargs):
    """A jitted function that calls ``op.perform`` in object mode."""
    import numba
    from pytensor.link.numba.dispatch.basic import get_numba_type, numba_njit

    (output,) = node.outputs
    output_type = get_numba_type(output.type)

    def call_perform(*inputs):
        storage = [[None]]
        op.perform(None, list(inputs), storage)
        return storage[0][0]

    @numba_njit
    def perform(*inputs):
        with numba.objmode(result=output_type):
            result = call_perform(*inputs)
        return result

    return perform


def register():
    """Register every op's object-mode implementation with ``numba_funcify``."""
    from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

    for op_type in _OPS:
        register_funcify_default_op_cache_key(op_type)(_funcify_perform)
