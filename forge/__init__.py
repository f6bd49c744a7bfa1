"""Forge: Lasagne's layer library on PyTensor, exported to numpy-only bundles.

Code written for Lasagne runs after::

    import forge as lasagne
    import pytensor as theano
    import pytensor.tensor as T

Forge computes in float32 like a Lasagne user's ``floatX=float32`` setup: on import it
sets ``pytensor.config.floatX = "float32"`` unless ``PYTENSOR_FLAGS`` names ``floatX``.
"""
import os
import warnings

import pytensor

#: The PyTensor versions forge is tested with (``pyproject.toml`` requires them):
#: ``[first, last)`` without the minor series in :data:`BROKEN_PYTENSOR`.
SUPPORTED_PYTENSOR = ((3, 0, 7), (3, 4))

#: Minor series inside the range that forge refuses: PyTensor 3.1 and 3.2 rewrite a
#: slice of a ``set_subtensor`` into a result of the wrong shape (silently in the
#: default mode; local response normalization with ``n=1`` is a forge layer it hits).
BROKEN_PYTENSOR = ((3, 1), (3, 2))

PYTENSOR_REQUIREMENT = "pytensor>={},{}<{}".format(
    ".".join(map(str, SUPPORTED_PYTENSOR[0])),
    "".join(f"!={major}.{minor}.*," for major, minor in BROKEN_PYTENSOR),
    ".".join(map(str, SUPPORTED_PYTENSOR[1])))


def _check_pytensor(version):
    """Warn unless ``version`` (a PyTensor version string) satisfies
    :data:`PYTENSOR_REQUIREMENT`."""
    try:
        found = tuple(int(part) for part in version.split("+")[0].split(".")[:3])
    except ValueError:
        found = None
    low, high = SUPPORTED_PYTENSOR
    if found is not None and found[:2] in BROKEN_PYTENSOR:
        why = ("Its graph rewrites give a slice of a set_subtensor the wrong shape, "
               "silently in the default mode.")
    elif found is None or not low <= found < high:
        why = ("Other versions differ in the APIs and graph rewrites that forge's ops, "
               "forge.export and the JAX backend rely on.")
    else:
        return
    warnings.warn(f"forge is tested with {PYTENSOR_REQUIREMENT}; this is PyTensor "
                  f"{version}. {why} Install '{PYTENSOR_REQUIREMENT}'.", stacklevel=3)


_check_pytensor(pytensor.__version__)

if "floatx" not in os.environ.get("PYTENSOR_FLAGS", "").lower():
    pytensor.config.floatX = "float32"

from . import random  # noqa: E402
from . import init  # noqa: E402
from . import nonlinearities  # noqa: E402
from . import utils  # noqa: E402
from . import layers  # noqa: E402
from . import objectives  # noqa: E402
from . import regularization  # noqa: E402
from . import updates  # noqa: E402
from .export import export  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "export", "init", "layers", "nonlinearities", "objectives", "random",
    "regularization", "updates", "utils",
]
