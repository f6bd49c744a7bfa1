"""Layers that add noise during training and pass their input through otherwise."""
import numbers

import pytensor.tensor as T

from ..random import random_streams
from .base import Layer

__all__ = [
    "DropoutLayer", "dropout", "dropout_channels", "spatial_dropout", "dropout_locations",
    "GaussianNoiseLayer",
]


class DropoutLayer(Layer):
    """Dropout: zero each input element with probability ``p`` during training.

    With ``deterministic=True`` (passed to ``get_output``) the layer is an identity.
    The mask is drawn as ``uniform(0, 1) < 1 - p`` from the layer's own random stream,
    seeded from ``forge.random.get_rng()`` when the layer is built, which every
    PyTensor backend (JAX included) can compile.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    p : float or scalar expression
        Probability of dropping an element, in ``[0, 1)`` (1 is allowed with
        ``rescale=False``).
    rescale : bool
        If True, divide the kept elements by ``1 - p`` so that the expected output
        equals the input.
    shared_axes : tuple of int
        Axes along which one mask value is shared (the mask has size 1 there and is
        broadcast), e.g. ``(2, 3)`` drops whole feature maps of a 4-D input.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.layers import InputLayer, DropoutLayer, get_output
    >>> l_drop = DropoutLayer(InputLayer((None, 100)), p=0.5)
    >>> x = np.ones((2, 100), dtype="float32")
    >>> out = get_output(l_drop, x).eval()
    >>> sorted(np.unique(out).tolist())
    [0.0, 2.0]
    >>> bool((get_output(l_drop, x, deterministic=True).eval() == x).all())
    True
    """

    def __init__(self, incoming, p=0.5, rescale=True, shared_axes=(), name=None):
        super().__init__(incoming, name=name)
        if isinstance(p, numbers.Number):
            if not 0 <= p <= 1:
                raise ValueError(f"the dropout probability p must be in [0, 1], got p={p}")
            if p == 1 and rescale:
                raise ValueError(
                    "the dropout probability p must be below 1 when rescale=True "
                    "(the kept elements are divided by 1 - p), got p=1"
                )
        self._srng = random_streams()
        self.p = p
        self.rescale = rescale
        ndim = len(self.input_shape)
        if isinstance(shared_axes, numbers.Integral):
            shared_axes = (shared_axes,)
        shared_axes = tuple(shared_axes)
        if any(not -ndim <= a < ndim for a in shared_axes):
            raise ValueError(
                f"got shared_axes={shared_axes} for a {ndim}-dimensional input; every "
                f"axis must be in [-{ndim}, {ndim})"
            )
        self.shared_axes = shared_axes

    def get_output_for(self, input, deterministic=False, **kwargs):
        if deterministic or (isinstance(self.p, numbers.Number) and self.p == 0):
            return input
        retain_prob = T.cast(1 - T.as_tensor_variable(self.p), input.dtype)
        shared = {a % input.ndim for a in self.shared_axes}
        mask_shape = tuple(1 if a in shared else input.shape[a] for a in range(input.ndim))
        # The constant 1s make the mask broadcastable along the shared axes.
        keep = self._srng.uniform(size=mask_shape) < retain_prob
        mask = T.cast(keep, input.dtype)
        if self.rescale:
            mask = mask / retain_prob
        return input * mask


#: Lasagne's short alias of :class:`DropoutLayer`.
dropout = DropoutLayer


def dropout_channels(incoming, *args, **kwargs):
    """Spatial dropout: drop whole channels, one mask value per sample and channel.

    A :class:`DropoutLayer` with ``shared_axes`` set to all axes after the second.

    Examples
    --------
    >>> from forge.layers import InputLayer, dropout_channels
    >>> dropout_channels(InputLayer((None, 8, 5, 5))).shared_axes
    (2, 3)
    """
    ndim = len(getattr(incoming, "output_shape", incoming))
    kwargs["shared_axes"] = tuple(range(2, ndim))
    return DropoutLayer(incoming, *args, **kwargs)


#: Lasagne's other name for :func:`dropout_channels`.
spatial_dropout = dropout_channels


def dropout_locations(incoming, *args, **kwargs):
    """Drop whole locations: one mask value shared over the channel axis (axis 1).

    Examples
    --------
    >>> from forge.layers import InputLayer, dropout_locations
    >>> dropout_locations(InputLayer((None, 8, 5, 5))).shared_axes
    (1,)
    """
    kwargs["shared_axes"] = (1,)
    return DropoutLayer(incoming, *args, **kwargs)


class GaussianNoiseLayer(Layer):
    """Add zero-mean Gaussian noise of standard deviation ``sigma`` during training.

    With ``deterministic=True`` (passed to ``get_output``) the layer is an identity.

    Parameters
    ----------
    incoming : Layer or tuple
        The incoming layer or shape.
    sigma : float or scalar expression
        Standard deviation of the noise.
    name : str, optional
        Name of the layer.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.layers import InputLayer, GaussianNoiseLayer, get_output
    >>> l_noise = GaussianNoiseLayer(InputLayer((None, 3)), sigma=0.1)
    >>> x = np.zeros((2, 3), dtype="float32")
    >>> bool((get_output(l_noise, x).eval() != 0).all())
    True
    """

    def __init__(self, incoming, sigma=0.1, name=None):
        super().__init__(incoming, name=name)
        if isinstance(sigma, numbers.Number) and sigma < 0:
            raise ValueError(f"sigma must be non-negative, got sigma={sigma}")
        self._srng = random_streams()
        self.sigma = sigma

    def get_output_for(self, input, deterministic=False, **kwargs):
        if deterministic or (isinstance(self.sigma, numbers.Number) and self.sigma == 0):
            return input
        noise = self._srng.normal(size=input.shape, scale=self.sigma)
        return input + T.cast(noise, input.dtype)
