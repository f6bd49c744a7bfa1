"""Initializers: callables that return the initial value of a parameter.

Every initializer is called with a shape and returns a numpy array of that shape in
``floatX``. Random draws come from ``forge.random.get_rng()``, so
``forge.random.set_rng(np.random.RandomState(seed))`` makes them reproducible.

Examples
--------
>>> from forge import init
>>> W = init.GlorotUniform()((784, 100))
>>> W.shape, W.dtype
((784, 100), dtype('float32'))
"""
import numpy as np

from .random import get_rng
from .utils import floatX

__all__ = [
    "Initializer", "Normal", "Uniform", "Glorot", "GlorotNormal", "GlorotUniform",
    "He", "HeNormal", "HeUniform", "Constant", "Sparse", "Orthogonal",
]


def _parse_gain(gain):
    """Return a numeric gain; ``'relu'`` stands for sqrt(2)."""
    if isinstance(gain, str):
        if gain != "relu":
            raise ValueError(f"gain must be a number or 'relu', got {gain!r}")
        return np.sqrt(2)
    return gain


class Initializer:
    """Base class of the initializers.

    Subclasses implement :meth:`sample`; calling an initializer calls ``sample``.
    """

    def __call__(self, shape):
        return self.sample(shape)

    def sample(self, shape):
        """Return a numpy array of the given shape, in floatX.

        Parameters
        ----------
        shape : tuple of int
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement sample()")

    def __repr__(self):
        fields = ", ".join(
            f"{k}={v.__name__ if isinstance(v, type) else repr(v)}"
            for k, v in vars(self).items()
        )
        return f"{type(self).__name__}({fields})"


class Normal(Initializer):
    """Draw from a normal distribution.

    Parameters
    ----------
    std : float
        Standard deviation.
    mean : float
        Mean.

    Examples
    --------
    >>> from forge.init import Normal
    >>> Normal(std=0.1)((2, 3)).shape
    (2, 3)
    """

    def __init__(self, std=0.01, mean=0.0):
        self.std = std
        self.mean = mean

    def sample(self, shape):
        return floatX(get_rng().normal(self.mean, self.std, size=shape))


class Uniform(Initializer):
    """Draw from a uniform distribution.

    Parameters
    ----------
    range : float or (float, float)
        The interval: ``(low, high)``, or a number ``r`` for ``(-r, r)``. Ignored when
        ``std`` is given.
    std : float, optional
        Standard deviation; with ``mean``, sets the interval to
        ``mean -/+ sqrt(3) * std``.
    mean : float
        Centre of the interval when ``std`` is given.

    Examples
    --------
    >>> from forge.init import Uniform
    >>> Uniform((0.0, 1.0)).range
    (0.0, 1.0)
    >>> Uniform(0.5).range
    (-0.5, 0.5)
    """

    def __init__(self, range=0.01, std=None, mean=0.0):
        if std is not None:
            half_width = np.sqrt(3) * std
            low, high = mean - half_width, mean + half_width
        elif np.ndim(range) == 0:
            low, high = -range, range
        else:
            low, high = range
        self.range = (low, high)

    def sample(self, shape):
        low, high = self.range
        return floatX(get_rng().uniform(low=low, high=high, size=shape))


class Glorot(Initializer):
    """Glorot (Xavier) initialization: variance scaled by fan-in plus fan-out.

    Samples ``initializer(std=gain * sqrt(2 / ((fan_in + fan_out) * field)))``, where
    ``field`` is the size of the receptive field (the product of the trailing axes of a
    convolution filter, 1 for a dense matrix).

    Parameters
    ----------
    initializer : Initializer class
        ``Normal`` or ``Uniform``: called with ``std=``.
    gain : float or 'relu'
        Scale factor; ``'relu'`` means sqrt(2).
    c01b : bool
        Whether the shape is in the ``(channels, rows, columns, filters)`` layout of
        cuda-convnet filters rather than ``(filters, channels, rows, columns)``; then
        the shape must have 4 dimensions.
    """

    def __init__(self, initializer, gain=1.0, c01b=False):
        self.initializer = initializer
        self.gain = _parse_gain(gain)
        self.c01b = c01b

    def sample(self, shape):
        if self.c01b:
            if len(shape) != 4:
                raise RuntimeError(
                    f"with c01b=True the shape must have 4 dimensions, got {shape}"
                )
            n1, n2 = shape[0], shape[3]
            field = shape[1] * shape[2]
        else:
            if len(shape) < 2:
                raise RuntimeError(
                    f"{type(self).__name__} needs a shape of 2 or more dimensions, "
                    f"got {shape}"
                )
            n1, n2 = shape[:2]
            field = int(np.prod(shape[2:]))
        std = self.gain * np.sqrt(2.0 / ((n1 + n2) * field))
        return self.initializer(std=std).sample(shape)


class GlorotNormal(Glorot):
    """:class:`Glorot` with normal draws.

    Examples
    --------
    >>> from forge.init import GlorotNormal
    >>> GlorotNormal(gain="relu")((50, 50)).shape
    (50, 50)
    """

    def __init__(self, gain=1.0, c01b=False):
        super().__init__(Normal, gain, c01b)


class GlorotUniform(Glorot):
    """:class:`Glorot` with uniform draws (the default for ``W`` of most layers).

    Examples
    --------
    >>> import numpy as np
    >>> from forge.init import GlorotUniform
    >>> W = GlorotUniform()((6, 6))  # uniform on +-sqrt(6 / (fan_in + fan_out))
    >>> bool(np.abs(W).max() <= np.sqrt(6 / 12))
    True
    """

    def __init__(self, gain=1.0, c01b=False):
        super().__init__(Uniform, gain, c01b)


class He(Initializer):
    """He initialization: variance scaled by fan-in only.

    Samples ``initializer(std=gain * sqrt(1 / fan_in))``, where ``fan_in`` is the
    first axis of a matrix, and the product of all axes but the first of a convolution
    filter (the first three with ``c01b=True``).

    Parameters
    ----------
    initializer : Initializer class
        ``Normal`` or ``Uniform``: called with ``std=``.
    gain : float or 'relu'
        Scale factor; ``'relu'`` means sqrt(2).
    c01b : bool
        See :class:`Glorot`.
    """

    def __init__(self, initializer, gain=1.0, c01b=False):
        self.initializer = initializer
        self.gain = _parse_gain(gain)
        self.c01b = c01b

    def sample(self, shape):
        if self.c01b:
            if len(shape) != 4:
                raise RuntimeError(
                    f"with c01b=True the shape must have 4 dimensions, got {shape}"
                )
            fan_in = int(np.prod(shape[:3]))
        elif len(shape) == 2:
            fan_in = shape[0]
        elif len(shape) > 2:
            fan_in = int(np.prod(shape[1:]))
        else:
            raise RuntimeError(
                f"{type(self).__name__} needs a shape of 2 or more dimensions, got {shape}"
            )
        std = self.gain * np.sqrt(1.0 / fan_in)
        return self.initializer(std=std).sample(shape)


class HeNormal(He):
    """:class:`He` with normal draws.

    Examples
    --------
    >>> from forge.init import HeNormal
    >>> HeNormal(gain="relu")((20, 30)).shape
    (20, 30)
    """

    def __init__(self, gain=1.0, c01b=False):
        super().__init__(Normal, gain, c01b)


class HeUniform(He):
    """:class:`He` with uniform draws.

    Examples
    --------
    >>> from forge.init import HeUniform
    >>> HeUniform()((20, 30)).dtype
    dtype('float32')
    """

    def __init__(self, gain=1.0, c01b=False):
        super().__init__(Uniform, gain, c01b)


class Constant(Initializer):
    """Fill with one value.

    Examples
    --------
    >>> from forge.init import Constant
    >>> Constant(2.5)((2,))
    array([2.5, 2.5], dtype=float32)
    """

    def __init__(self, val=0.0):
        self.val = val

    def sample(self, shape):
        return floatX(np.full(shape, self.val))


class Sparse(Initializer):
    """A matrix with a few normal-distributed non-zero weights per column.

    Each of the ``n_out`` columns gets ``int(sparsity * n_in)`` non-zero entries, at
    random rows, drawn from a normal distribution of standard deviation ``std``.

    Parameters
    ----------
    sparsity : float
        Fraction of non-zero entries per column.
    std : float
        Standard deviation of the non-zero entries.

    Examples
    --------
    >>> import numpy as np
    >>> from forge.init import Sparse
    >>> W = Sparse(sparsity=0.2)((10, 4))
    >>> np.count_nonzero(W, axis=0).tolist()
    [2, 2, 2, 2]
    """

    def __init__(self, sparsity=0.1, std=0.01):
        self.sparsity = sparsity
        self.std = std

    def sample(self, shape):
        if len(shape) != 2:
            raise RuntimeError(f"Sparse needs a shape of 2 dimensions, got {shape}")
        n_in, n_out = shape
        n_nonzero = int(self.sparsity * n_in)
        rng = get_rng()
        W = floatX(np.zeros(shape))
        for column in range(n_out):
            rows = np.arange(n_in)
            rng.shuffle(rows)
            W[rows[:n_nonzero], column] = rng.normal(0.0, self.std, size=n_nonzero)
        return W


class Orthogonal(Initializer):
    """A (scaled) orthogonal matrix.

    The shape is viewed as a matrix ``(shape[0], prod(shape[1:]))``; its rows or
    columns, whichever are fewer, are orthonormal, and then scaled by ``gain``.

    Parameters
    ----------
    gain : float or 'relu'
        Scale factor; ``'relu'`` means sqrt(2).

    Examples
    --------
    >>> import numpy as np
    >>> from forge.init import Orthogonal
    >>> Q = Orthogonal()((4, 4))
    >>> bool(np.allclose(Q @ Q.T, np.eye(4), atol=1e-5))
    True
    """

    def __init__(self, gain=1.0):
        self.gain = _parse_gain(gain)

    def sample(self, shape):
        if len(shape) < 2:
            raise RuntimeError(
                f"Orthogonal needs a shape of 2 or more dimensions, got {shape}"
            )
        flat_shape = (shape[0], int(np.prod(shape[1:])))
        a = get_rng().normal(0.0, 1.0, flat_shape)
        u, _, vt = np.linalg.svd(a, full_matrices=False)
        # u is (rows, k) and vt is (k, cols) with k = min(rows, cols): one of them
        # has the flat shape.
        q = u if u.shape == flat_shape else vt
        return floatX(self.gain * q.reshape(shape))
