"""Forge: Lasagne's layer library on PyTensor, exported to numpy-only bundles.

Code written for Lasagne runs after::

    import forge as lasagne
    import pytensor as theano
    import pytensor.tensor as T

Forge computes in float32 like a Lasagne user's ``floatX=float32`` setup: on import it
sets ``pytensor.config.floatX = "float32"`` unless ``PYTENSOR_FLAGS`` names ``floatX``.
"""
import os

import pytensor

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
