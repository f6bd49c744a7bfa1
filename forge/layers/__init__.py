"""Forge's layers, and the functions that walk a network of them.

Every layer family lives in its own module; all of them are re-exported here, so
``forge.layers.DenseLayer`` works whichever module defines it.
"""
from .base import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .dense import *  # noqa: F401,F403
from .embedding import *  # noqa: F401,F403
from .helper import *  # noqa: F401,F403
from .input import *  # noqa: F401,F403
from .merge import *  # noqa: F401,F403
from .noise import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .recurrent import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from .special import *  # noqa: F401,F403
from . import (base, conv, dense, helper, input, merge, noise, normalization, pool,
               shape, special)
from . import embedding, recurrent

__all__ = (
    base.__all__ + conv.__all__ + dense.__all__ + helper.__all__ + input.__all__
    + merge.__all__ + noise.__all__ + normalization.__all__ + pool.__all__
    + shape.__all__ + special.__all__
)
__all__ += embedding.__all__ + recurrent.__all__
