"""Numeric kernels shared by the layers, chosen once at import.

``_numpy`` is the reference implementation: always available, and the oracle that any
faster implementation is tested against. Accelerated kernels (numba) will be chosen
here, lazily, without the layers noticing.
"""
from ._numpy import autocrop, dense

#: Which implementation the names below come from.
BACKEND = "numpy"

__all__ = ["BACKEND", "autocrop", "dense"]
