"""Fixtures for the runtime tests: hand-written bundles on disk."""
import pytest

from .helpers import mlp_builder


@pytest.fixture
def mlp(tmp_path):
    """A two-layer MLP bundle on disk: ``(path, params)``; see :func:`mlp_builder`."""
    builder, params = mlp_builder()
    return builder.write(tmp_path / "mlp.npz"), params


@pytest.fixture
def make_bundle(tmp_path):
    """Write a :class:`BundleBuilder` to a fresh file under ``tmp_path``; return the path."""
    count = iter(range(10_000))

    def write(builder, name=None):
        return builder.write(tmp_path / (name or f"bundle{next(count)}.npz"))

    return write


@pytest.fixture(params=["numpy", "numba"])
def kernel_backend(request, monkeypatch):
    """Run the test once with each kernel implementation (FORGE_KERNELS); the numba run
    is skipped when numba is not installed."""
    if request.param == "numba":
        pytest.importorskip("numba", reason="numba not installed (optional [fast] extra)")
    monkeypatch.setenv("FORGE_KERNELS", request.param)
    return request.param
