"""The two exceptions the runtime raises on purpose.

:class:`BundleError` means the file is at fault (malformed, tampered with, or written by
a newer format); :class:`InputError` means the caller's data is at fault. A service maps
the first to "model unavailable" and the second to "bad request".
"""

__all__ = ["BundleError", "InputError"]


class BundleError(Exception):
    """A bundle that is malformed, tampered with, or of an unsupported version."""


class InputError(ValueError):
    """Input that does not match what the model declares (names, rank, shape, dtype)."""
