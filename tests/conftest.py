"""Test-wide settings.

PyTensor's default (Numba) linker spends seconds compiling every new graph; the suite
builds hundreds of small graphs, so it compiles them in FAST_COMPILE mode unless the
caller set PYTENSOR_FLAGS. Tests that exercise the default linker ask for it by name
(``mode="NUMBA"``).
"""
import os

os.environ.setdefault("PYTENSOR_FLAGS", "mode=FAST_COMPILE")
