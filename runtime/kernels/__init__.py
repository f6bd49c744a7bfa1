"""Numeric kernels shared by the layers, and the choice of their implementation.

``_numpy`` is the reference: always available, the fallback, and the oracle faster
kernels are tested against. ``_numba`` accelerates convolution and pooling when numba
(the optional ``[fast]`` extra: ``pip install 'forge-nn[fast]'``) is installed.

The environment variable ``FORGE_KERNELS`` chooses, each time a layer with accelerated
kernels (convolution, pooling) is built:

``auto`` (the default)
    numba when it is installed, else numpy.
``numba``
    numba, or an ``ImportError`` that says what to install.
``numpy``
    numpy only.

numba's import and set-up (about 0.35 s) happen then, when a model with such layers is
loaded, and never on ``import runtime``: a model without them never pays for them. The
names below are the numpy kernels; layers that accelerate ask :func:`select` for the
module to use.
"""
import importlib.util
import os
import threading
import warnings

from . import _numpy
from ._numpy import (
    affine, autocrop, conv, conv_output_shape, conv_transpose, dense, feature_pool,
    feature_wta, global_pool, local_response_norm, locally_connected, pool, pool_bounds,
    pool_output_shape, spatial_pyramid_pool, standardize, upscale,
)

__all__ = ["ENV_VAR", "CHOICES", "select", "requested", "numba_installed"] + _numpy.__all__

ENV_VAR = "FORGE_KERNELS"
CHOICES = ("auto", "numpy", "numba")

_auto_failed = threading.Event()  # numba is installed but would not load: stop trying


def requested():
    """The value of ``FORGE_KERNELS`` (``auto`` when unset or empty).

    Raises ``RuntimeError`` for any other value than ``auto``, ``numpy`` or ``numba``.
    """
    value = os.environ.get(ENV_VAR, "").strip().lower() or "auto"
    if value not in CHOICES:
        raise RuntimeError(f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not one of "
                           f"{', '.join(CHOICES)}")
    return value


def numba_installed():
    """Whether numba can be found, without importing it."""
    try:
        return importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):
        return False


def select():
    """The kernel module for convolution and pooling, per ``FORGE_KERNELS``.

    Returns ``_numba`` (numba imported and its kernels loaded) or ``_numpy``; both offer
    the same functions. Raises ``ImportError`` for ``FORGE_KERNELS=numba`` without numba.

    >>> select().__name__ in ("runtime.kernels._numpy", "runtime.kernels._numba")
    True
    """
    choice = requested()
    if choice == "numpy" or (choice == "auto" and (_auto_failed.is_set()
                                                   or not numba_installed())):
        return _numpy
    if not numba_installed():
        raise ImportError(f"{ENV_VAR}=numba, but numba is not installed: pip install "
                          f"'forge-nn[fast]' (or set {ENV_VAR}=auto or numpy)")
    from . import _numba

    try:
        _numba.load()
    except ImportError as exc:
        if choice == "numba":
            raise ImportError(f"{ENV_VAR}=numba, but numba cannot be imported ({exc}); "
                              f"reinstall it with pip install 'forge-nn[fast]'") from exc
        _auto_failed.set()
        warnings.warn(f"numba is installed but cannot be imported ({exc}); running "
                      "convolution and pooling with numpy", RuntimeWarning, stacklevel=2)
        return _numpy
    return _numba
