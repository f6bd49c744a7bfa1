"""Open a benchmark model with one engine: ``open_engine(...) -> Engine``.

This module imports only the standard library until an engine is opened, so that a cold
start measures the engine's own imports. Engines:

``runtime-numpy``, ``runtime-numba``, ``runtime-auto``
    Forge's runtime on the bundle. The kernels are chosen from ``FORGE_KERNELS``; the
    caller starts the process with it set (``numpy``, ``numba`` or ``auto``, the
    default: numpy for small calls, numba for large ones) and :func:`kernel_check` then
    confirms which kernels actually ran.
``onnxruntime``
    ONNX Runtime's CPU provider, ``THREADS`` intra-op threads, one inter-op thread.
``torch``
    PyTorch eager on CPU, ``torch.set_num_threads(THREADS)``, under
    ``torch.inference_mode()``.

Every engine takes and returns numpy arrays, so conversions are part of what is timed.
"""
import os
import sys
import time

__all__ = ["ENGINES", "THREADS", "Engine", "Unavailable", "open_engine", "kernel_check"]

ENGINES = ("runtime-numpy", "runtime-numba", "runtime-auto", "onnxruntime", "torch")

#: Threads every engine may use (the machine has 2 cores).
THREADS = 2


class Unavailable(Exception):
    """This engine cannot run this model here; the message says why."""


class Engine:
    """An opened model: ``engine.predict(x) -> y`` (numpy in, numpy out)."""

    def __init__(self, name, predict, marks):
        self.name = name
        self.predict = predict
        #: ``time.monotonic()`` after the engine's imports and after loading the model.
        self.marks = marks


def _path(folder, net, ext):
    return os.path.join(folder, f"{net}.{ext}")


def _open_runtime(kernels, net, folder, marks):
    found = os.environ.get("FORGE_KERNELS")
    if found != kernels:
        raise RuntimeError(f"runtime-{kernels} needs the process started with "
                           f"FORGE_KERNELS={kernels}, got {found!r}")
    import numpy as np  # noqa: F401  (part of the runtime's import cost)
    try:
        import runtime
    except ImportError as exc:  # e.g. FORGE_KERNELS=numba without numba installed
        raise Unavailable(f"importing runtime with FORGE_KERNELS={kernels} failed: "
                          f"{exc}") from None
    from runtime.errors import BundleError

    marks["imported"] = time.monotonic()
    try:
        model = runtime.load(_path(folder, net, "npz"))
    except BundleError as exc:
        raise Unavailable(f"the runtime cannot load the bundle: {exc}") from None
    marks["loaded"] = time.monotonic()
    return model


def _open_onnxruntime(net, folder, marks, threads):
    import numpy as np  # noqa: F401
    import onnxruntime as ort

    marks["imported"] = time.monotonic()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(_path(folder, net, "onnx"), options,
                                   providers=["CPUExecutionProvider"])
    marks["loaded"] = time.monotonic()

    def predict(x):
        return session.run(["output"], {"input": x})[0]

    return predict


def _open_torch(net, folder, marks, threads):
    import numpy as np  # noqa: F401
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
    from .networks import torch_module

    marks["imported"] = time.monotonic()
    module = torch_module(net)
    module.load_state_dict(torch.load(_path(folder, net, "pt"), weights_only=True),
                           assign=True)
    module.eval()
    marks["loaded"] = time.monotonic()

    def predict(x):
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    return predict


def open_engine(engine, net, folder, threads=THREADS):
    """Open ``net``'s file in ``folder`` with ``engine``; raise :class:`Unavailable`."""
    marks = {}
    if engine.startswith("runtime-"):
        predict = _open_runtime(engine.split("-", 1)[1], net, folder, marks)
    elif engine == "onnxruntime":
        predict = _open_onnxruntime(net, folder, marks, threads)
    elif engine == "torch":
        predict = _open_torch(net, folder, marks, threads)
    else:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    return Engine(engine, predict, marks)


def kernel_check(engine, net):
    """After a prediction: which runtime kernels ran, and whether they are ``engine``'s.

    Returns ``(kernels, problem)``: a description, and None when the kernels are the
    ones the engine's name promises. The runtime imports numba only when a model has
    convolution or pooling layers (dense layers use numba's product only once those have
    loaded it), so under ``FORGE_KERNELS=numba`` a model without them (the MLP) runs
    numpy's kernels by design, and a model with them must have imported numba. Under
    ``auto`` either is right (it depends on the calls' sizes); the description says
    which ran.
    """
    if not engine.startswith("runtime-"):
        return None, None
    from .networks import NETWORKS

    accelerated = any(layer["kind"] in ("conv", "maxpool") for layer in NETWORKS[net])
    numba_loaded = "numba" in sys.modules
    wanted = engine.split("-", 1)[1]
    if wanted == "auto":  # numba for the calls large enough, numpy for the others
        return ("numba (large conv, pool, dense calls) + numpy" if numba_loaded
                else "numpy"), None
    if wanted == "numpy":
        if numba_loaded:
            return "numba", "FORGE_KERNELS=numpy imported numba"
        return "numpy", None
    if numba_loaded:
        return "numba (conv, pool, large dense) + numpy", None
    if accelerated:
        return "numpy", ("FORGE_KERNELS=numba did not import numba for a model with "
                         "convolution and pooling layers")
    return "numpy (numba runs conv/pool, and dense next to them; this model has neither)", None
