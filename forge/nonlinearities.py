"""Activation functions: callables from a PyTensor expression to one of the same shape.

The parametrised ones are classes whose instances keep their parameters as attributes
(``LeakyRectify(0.1).leakiness``); ``forge.export`` reads them from there.

Examples
--------
>>> import numpy as np
>>> from forge.nonlinearities import rectify
>>> rectify(np.array([-1.0, 2.0])).eval()
array([0., 2.])
"""
import pytensor.tensor as T
from pytensor.tensor.special import softmax as _softmax

__all__ = [
    "sigmoid", "softmax", "tanh", "ScaledTanH", "ScaledTanh", "rectify",
    "LeakyRectify", "leaky_rectify", "very_leaky_rectify", "elu", "SELU", "selu",
    "softplus", "linear", "identity", "ultra_fast_sigmoid",
]


def sigmoid(x):
    """Logistic sigmoid, ``1 / (1 + exp(-x))``."""
    return T.sigmoid(x)


def softmax(x):
    """Softmax over the last axis of a matrix (one distribution per row).

    Computed stably: PyTensor subtracts each row's maximum before exponentiating, so
    large inputs do not overflow.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.nonlinearities import softmax
    >>> softmax(np.array([[1000.0, 1000.0]])).eval()
    array([[0.5, 0.5]])
    """
    return _softmax(x, axis=-1)


def tanh(x):
    """Hyperbolic tangent."""
    return T.tanh(x)


class ScaledTanH:
    """Scaled hyperbolic tangent, ``scale_out * tanh(scale_in * x)``.

    Parameters
    ----------
    scale_in : float
        Scale of the input.
    scale_out : float
        Scale of the output.

    Notes
    -----
    LeCun et al. ("Efficient BackProp", 1998) recommend ``scale_in=2/3`` and
    ``scale_out=1.7159``, which keeps unit-variance inputs at unit variance.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.nonlinearities import ScaledTanH
    >>> f = ScaledTanH(scale_in=0.5, scale_out=2.0)
    >>> bool(np.isclose(f(np.array(1.0)).eval(), 2.0 * np.tanh(0.5)))
    True
    """

    def __init__(self, scale_in=1, scale_out=1):
        self.scale_in = scale_in
        self.scale_out = scale_out

    def __call__(self, x):
        return self.scale_out * T.tanh(self.scale_in * x)

    def __repr__(self):
        return f"ScaledTanH(scale_in={self.scale_in!r}, scale_out={self.scale_out!r})"


ScaledTanh = ScaledTanH


def rectify(x):
    """Rectified linear unit, ``max(0, x)``."""
    return T.maximum(x, 0)


class LeakyRectify:
    """Leaky rectifier, ``x`` for ``x > 0`` and ``leakiness * x`` otherwise.

    Parameters
    ----------
    leakiness : float
        Slope for negative inputs.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.nonlinearities import LeakyRectify
    >>> LeakyRectify(0.1)(np.array([-2.0, 3.0])).eval()
    array([-0.2,  3. ])
    """

    def __init__(self, leakiness=0.01):
        self.leakiness = leakiness

    def __call__(self, x):
        return T.switch(x > 0, x, self.leakiness * x)

    def __repr__(self):
        return f"LeakyRectify(leakiness={self.leakiness!r})"


#: Leaky rectifier with leakiness 0.01.
leaky_rectify = LeakyRectify(0.01)

#: Leaky rectifier with leakiness 1/3.
very_leaky_rectify = LeakyRectify(1.0 / 3)


def elu(x):
    """Exponential linear unit, ``x`` for ``x > 0`` and ``exp(x) - 1`` otherwise.

    The exponential is taken of ``min(x, 0)`` so that large positive inputs cannot
    overflow it and turn the gradient into NaN.
    """
    return T.switch(x > 0, x, T.expm1(T.minimum(x, 0)))


class SELU:
    """Scaled exponential linear unit.

    ``scale * x`` for ``x > 0`` and ``scale * scale_neg * (exp(x) - 1)`` otherwise.

    Parameters
    ----------
    scale : float
        Scale of the whole output.
    scale_neg : float
        Extra scale of the negative part.

    Notes
    -----
    As in Lasagne, ``SELU()`` defaults to ``scale=1, scale_neg=1`` (an ELU), and
    the module's ``selu`` instance carries the self-normalising constants of
    Klambauer et al. (2017): ``scale≈1.0507``, ``scale_neg≈1.6733``.

    Examples
    --------
    >>> from forge.nonlinearities import selu
    >>> round(selu.scale, 4), round(selu.scale_neg, 4)
    (1.0507, 1.6733)
    """

    def __init__(self, scale=1, scale_neg=1):
        self.scale = scale
        self.scale_neg = scale_neg

    def __call__(self, x):
        negative = self.scale_neg * T.expm1(T.minimum(x, 0))
        return self.scale * T.switch(x > 0, x, negative)

    def __repr__(self):
        return f"SELU(scale={self.scale!r}, scale_neg={self.scale_neg!r})"


#: SELU with the self-normalising constants of Klambauer et al. (2017).
selu = SELU(scale=1.0507009873554805, scale_neg=1.6732632423543772)


def softplus(x):
    """Softplus, ``log(1 + exp(x))``."""
    return T.softplus(x)


def linear(x):
    """Identity: return ``x`` unchanged."""
    return x


identity = linear


def ultra_fast_sigmoid(x):
    """Sigmoid; in forge exactly :func:`sigmoid`.

    Theano offered a piecewise-linear approximation under this name, for speed on old
    GPUs. Forge computes the exact logistic sigmoid instead, so that a model gives the
    same results in PyTensor and in the numpy runtime.
    """
    return T.sigmoid(x)
