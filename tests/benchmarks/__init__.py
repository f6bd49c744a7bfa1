"""Benchmarks: Forge's runtime against ONNX Runtime and PyTorch on the same weights.

Not part of the test suite (no file here is named ``test_*``). Run with::

    python -m tests.benchmarks.run --output docs/benchmarks.md     # ~10 minutes
    python -m tests.benchmarks.run --quick                         # smoke run, < 1 minute

or ``make bench``. Modules:

``networks``
    The two networks (an MNIST MLP and Lasagne's README CNN) as plain data, their
    seeded weights, and the same weights written as a Forge bundle, an ONNX graph and
    a PyTorch state dict.
``engines``
    Opens one of those files with one engine and returns ``predict(x) -> y``. Imports
    only the standard library until asked, so cold starts time the engine alone.
``worker``
    The subprocess that times one engine on one model (``timing``) or measures one cold
    start (``coldstart``), printing JSON.
``training``
    The subprocess that times a training step (forge per PyTensor mode, PyTorch).
``machine``, ``report``
    What the machine is; the Markdown report.
``run``
    The command line that ties them together.
"""
