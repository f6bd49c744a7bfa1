"""Run Forge bundles with numpy alone.

A bundle is one ``.npz`` file written by ``forge.export`` (format:
``docs/bundle-format.md``). This package imports numpy and the standard library only.

Examples
--------
>>> import runtime
>>> model = runtime.load("digits.npz")                   # doctest: +SKIP
>>> [str(spec) for spec in model.inputs]                 # doctest: +SKIP
['input: float32 (None, 64)']
>>> probabilities = model(images)                        # doctest: +SKIP
>>> model.run({"input": images}, outputs=["dense_1"])    # doctest: +SKIP
{'dense_1': array([[...]], dtype=float32)}
"""
from .bundle import FORMAT_VERSION, SUPPORTED_VERSIONS
from .errors import BundleError, InputError
from .model import Model, TensorSpec, load

__version__ = "0.1.0"

__all__ = [
    "load", "Model", "TensorSpec", "BundleError", "InputError", "FORMAT_VERSION",
    "SUPPORTED_VERSIONS",
]
