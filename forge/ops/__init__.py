"""Fused PyTensor ops for the layers PyTensor 3 has no ops for: convolution, pooling.

Theano's ``tensor.nnet.conv`` and ``tensor.signal.pool`` are gone from PyTensor, and
a convolution built from strided slices is a graph of one node per filter tap, for the
forward pass and again for every gradient. Each function here is one node instead,
with a numpy implementation (``perform``, used by the C/VM linkers and, through object
mode, by Numba), a JAX one (``mode="JAX"``), and gradients made of the same kinds of
node.

Functions
---------
conv(input, filters, stride, pad, dilation, num_groups=1)
    Batched N-d cross-correlation (1 to 3 spatial axes, groups, dilation).
conv_transpose(input, filters, output_shape, stride, pad, dilation, num_groups=1)
    Its gradient with respect to the input: a transposed convolution.
pool(input, pool_size, stride=None, pad=0, ignore_border=True, mode="max")
    Pooling over the trailing axes with Theano's ``pool_2d``/``pool_3d`` semantics.
conv_output_shape, pool_output_shape
    The matching shape arithmetic on ints and ``None``, for the layers.
"""
from ._backends import install as _install_backends
from .conv import (
    Corr, CorrGradInputs, CorrGradWeights, conv, conv_output_shape, conv_transpose,
)
from .pool import (
    MODES, AveragePoolGrad, MaxPoolGrad, MaxPoolGradGrad, Pool, pool, pool_output_shape,
)

_install_backends()


__all__ = [
    "conv", "conv_transpose", "conv_output_shape", "pool", "pool_output_shape",
    "MODES", "Corr", "CorrGradInputs", "CorrGradWeights", "Pool", "MaxPoolGrad",
    "AveragePoolGrad", "MaxPoolGradGrad",
]
