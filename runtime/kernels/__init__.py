"""Numeric kernels shared by the layers, and the choice of their implementation.

``_numpy`` is the reference: always available, the fallback, and the oracle faster
kernels are tested against. ``_numba`` accelerates convolution, pooling and large dense
products when numba (the optional ``[fast]`` extra: ``pip install 'forge-nn[fast]'``) is
installed.

The environment variable ``FORGE_KERNELS`` chooses, each time a layer with accelerated
kernels (convolution, pooling) is built (:func:`layer_kernels`):

``auto`` (the default)
    per call: numpy's kernel for a call whose work is below :data:`AUTO_MIN_WORK`
    (pooling: :data:`AUTO_MIN_POOL_WORK`), numba's (imported on the first such call)
    for larger ones; numpy alone when numba
    is not installed.
``numba``
    numba for every call, imported when the layer is built, or an ``ImportError`` that
    says what to install.
``numpy``
    numpy only.

Dense layers (:func:`dense_kernels`) never import numba: under ``auto`` and ``numba``
their large products run numba's direct kernel once convolution or pooling kernels
have loaded numba in the process, numpy's OpenBLAS otherwise.

numba's import and set-up (about 0.35 s, and seconds more to compile with an empty
cache) never happen on ``import runtime``. Under ``auto`` a process that only makes
small predictions (a batch-1 CNN) never pays for them, and one that makes large ones
pays once, on its first large call, unless it warms the model first
(:meth:`runtime.Model.warm_up`, which runs it once inside :func:`numba_for_every_call`:
the service does so before a model serves). The names below are the numpy kernels.
"""
import contextlib
import contextvars
import importlib.util
import os
import threading
import warnings

from . import _numpy
from ._numpy import (
    affine, autocrop, conv, conv_output_shape, conv_transpose, dense, dense_one,
    feature_pool, feature_wta, global_pool, local_response_norm, locally_connected, pool,
    pool_bounds, pool_output_shape, spatial_pyramid_bins, spatial_pyramid_pool, standardize,
    upscale,
)

__all__ = ["ENV_VAR", "CHOICES", "AUTO_MIN_WORK", "AUTO_MIN_POOL_WORK", "select",
           "layer_kernels", "dense_kernels", "requested", "numba_installed",
           "numba_for_every_call"] + _numpy.__all__

ENV_VAR = "FORGE_KERNELS"
CHOICES = ("auto", "numpy", "numba")

#: Under ``FORGE_KERNELS=auto``, the least work (multiply-adds: batch x input positions
#: x filter weights for a convolution, items x weights for a dense product) for which a
#: call runs numba's kernel. A call below it takes numpy about 0.5 ms on a 2-core Zen 5,
#: of which numba would save about a quarter: importing numba (0.35 s, seconds with an
#: empty cache) pays only after thousands of such calls. The README CNN's second
#: convolution does 12.5 million a sample: batch 1 runs numpy, batch 2 and up numba.
AUTO_MIN_WORK = 2**24

#: :data:`AUTO_MIN_WORK` for pooling, whose work is input elements x window size. A
#: comparison costs numpy's separable pooling about three times what a multiply-add
#: costs its convolution, and numba's pooling splits the planes over the cores: at
#: 2**22 they tie (0.31 and 0.35 ms for the README CNN's max-pool at batch 16 on a 2-core
#: Sapphire Rapids VM), at batch 64 (10 million) numba takes 0.9 ms to numpy's 1.4.
AUTO_MIN_POOL_WORK = 2**22

_auto_failed = threading.Event()  # numba is installed but would not load: stop trying

#: True within :func:`numba_for_every_call` (per thread and per asyncio task).
_every_call = contextvars.ContextVar("forge_numba_for_every_call", default=False)


@contextlib.contextmanager
def numba_for_every_call():
    """Within this context (in this thread), layers under ``FORGE_KERNELS=auto`` run
    numba's kernel for every call, small ones included, importing numba on the first.

    One small prediction in this context imports numba and compiles (or loads from
    numba's cache) every kernel signature the model's large calls will use: the
    signatures depend on dtypes and layouts, not on the batch size. Under ``numpy`` or
    ``numba``, and without numba installed, it changes nothing.

    >>> with numba_for_every_call():
    ...     pass
    """
    token = _every_call.set(True)
    try:
        yield
    finally:
        _every_call.reset(token)


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


def layer_kernels():
    """The kernels a convolution or pooling layer calls, per ``FORGE_KERNELS``.

    ``_numpy``, ``_numba`` (as :func:`select`), or under ``auto`` with numba installed
    ``_auto``, whose functions pick numpy or numba call by call (:data:`AUTO_MIN_WORK`)
    and import nothing until a call needs numba.

    >>> layer_kernels().__name__.rsplit(".", 1)[1] in ("_numpy", "_numba", "_auto")
    True
    """
    if requested() == "auto" and numba_installed() and not _auto_failed.is_set():
        from . import _auto

        return _auto
    return select()


def dense_kernels():
    """The kernels a dense layer calls: ``_numpy`` under ``FORGE_KERNELS=numpy`` or
    without numba, ``_auto`` otherwise, under ``numba`` too. Never imports numba.

    A dense product alone runs faster on numpy's OpenBLAS; ``_auto.dense`` moves large
    products to numba's direct kernel only in a process whose convolution or pooling
    kernels already run on numba, where OpenBLAS's spinning threads would take the cores
    from theirs.

    >>> dense_kernels().__name__.rsplit(".", 1)[1] in ("_numpy", "_auto")
    True
    """
    if requested() == "numpy" or not numba_installed() or _auto_failed.is_set():
        return _numpy
    from . import _auto

    return _auto


def select_rnn():
    """The recurrent step kernels, ``_numba_rnn`` or ``_numpy_rnn``, chosen as :func:`select`
    chooses (same ``FORGE_KERNELS`` rule, errors and warning)."""
    from . import _numpy_rnn

    if select() is _numpy:
        return _numpy_rnn
    from . import _numba_rnn

    return _numba_rnn
