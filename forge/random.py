"""The random number generators that forge draws from.

Two kinds of randomness meet in a network:

* **Initial parameter values** (``forge.init``) are drawn in numpy, from the
  generator returned by :func:`get_rng`.
* **Symbolic noise** (dropout masks, Gaussian noise) is drawn inside the compiled
  PyTensor graph, from a :class:`RandomStreams` that each noise layer creates once, at
  construction, with a seed taken from :func:`get_rng`.

Both therefore follow one switch: ``set_rng(np.random.RandomState(1))`` before building a
network makes its initial weights *and* its dropout masks reproducible.

As in Lasagne, the default generator is ``numpy.random`` itself (the module-level
``RandomState``), so a script that calls ``np.random.seed(42)`` also gets reproducible
networks.
"""
import warnings

import numpy as np
import pytensor.tensor.random as ptr

__all__ = ["get_rng", "set_rng", "RandomStreams", "random_streams"]

_rng = np.random

# Exclusive upper bound of the seeds drawn for a new stream (the largest int32).
_MAX_SEED = 2**31 - 1


def get_rng():
    """Return the generator that forge draws initial values and stream seeds from.

    Returns
    -------
    numpy.random.RandomState or module
        The generator last given to :func:`set_rng`, or ``numpy.random`` (the global
        ``RandomState``) if :func:`set_rng` was never called.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.random import get_rng, set_rng
    >>> set_rng(np.random.RandomState(0))
    >>> first = get_rng().uniform()
    >>> set_rng(np.random.RandomState(0))
    >>> bool(get_rng().uniform() == first)
    True
    >>> set_rng(np.random)
    """
    return _rng


def set_rng(new_rng):
    """Make ``new_rng`` the generator that forge draws from.

    Parameters
    ----------
    new_rng : numpy.random.RandomState
        Anything with ``RandomState``'s methods (``uniform``, ``normal``, ``randint``,
        ``shuffle``); ``numpy.random`` restores the default.
    """
    global _rng
    _rng = new_rng


class RandomStreams:
    """A seeded source of symbolic random draws for the layers of a network.

    Every draw gets its own shared PyTensor generator, seeded from this stream's seed
    sequence, so the draws of one stream are reproducible and independent of each other.
    Each generator advances by itself every time a compiled function that uses it runs,
    as Theano's ``RandomStreams`` did: Lasagne-era code never passes the generators'
    updates to ``theano.function``, and its dropout masks must still change from one
    call to the next. The updates are also listed by :meth:`updates` for code that
    wants to pass them explicitly.

    Draws are made with uniform and normal distributions only, which every PyTensor
    backend (C, Numba, JAX) implements.

    Parameters
    ----------
    seed : int
        Seed of the stream.

    Examples
    --------
    >>> import numpy as np
    >>> import pytensor
    >>> import pytensor.tensor as T
    >>> from forge.random import RandomStreams
    >>> x = T.vector("x")
    >>> noisy = x + RandomStreams(seed=1).normal(size=x.shape, scale=0.1)
    >>> f = pytensor.function([x], noisy)
    >>> f(np.zeros(3, dtype=x.dtype)).shape
    (3,)
    """

    def __init__(self, seed):
        self.seed = int(seed)
        self._seeds = np.random.SeedSequence(self.seed)
        self._state_updates = []

    def uniform(self, size, low=0.0, high=1.0):
        """Symbolic uniform draw on ``[low, high)`` of the given (symbolic) size."""
        return self._draw("uniform", low, high, size=size)

    def normal(self, size, loc=0.0, scale=1.0):
        """Symbolic normal draw with mean ``loc`` and standard deviation ``scale``."""
        return self._draw("normal", loc, scale, size=size)

    def updates(self):
        """Return the ``(generator, next_generator)`` pairs of all draws made so far."""
        return list(self._state_updates)

    def _draw(self, distribution, *params, size):
        (child_seed,) = self._seeds.spawn(1)
        rng = ptr.shared_rng(np.random.default_rng(child_seed), borrow=True)
        next_rng, value = getattr(rng, distribution)(*params, size=size)
        with warnings.catch_warnings():
            # PyTensor 3 deprecates default updates in favour of passing
            # ``updates=`` to ``pytensor.function``; Lasagne code never does that
            # for its noise layers, so default updates are the only way to keep
            # its masks changing from call to call.
            warnings.simplefilter("ignore", DeprecationWarning)
            rng.default_update = next_rng
        self._state_updates.append((rng, next_rng))
        return value


def random_streams(seed=None):
    """Return a :class:`RandomStreams`, seeded from :func:`get_rng` by default.

    This is how layers get their symbolic randomness: a noise layer calls it once in
    its constructor, so ``set_rng`` before building the layer fixes its draws.

    Parameters
    ----------
    seed : int or None
        Seed of the stream; ``None`` draws one from :func:`get_rng`.

    Returns
    -------
    RandomStreams

    Examples
    --------
    >>> import numpy as np
    >>> from forge.random import random_streams, set_rng
    >>> set_rng(np.random.RandomState(1))
    >>> a = random_streams().seed
    >>> set_rng(np.random.RandomState(1))
    >>> a == random_streams().seed
    True
    >>> set_rng(np.random)
    """
    if seed is None:
        seed = get_rng().randint(1, _MAX_SEED)
    return RandomStreams(seed)
