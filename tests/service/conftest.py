"""Fixtures for the service tests: small bundles written by hand, settings, a client.

Two models, written with ``runtime.bundle.write_bundle`` and manifests exactly as in
docs/bundle-format.md:

- ``clf``: input ``input`` [null, 4] -> ``hidden`` Dense(5, rectify) -> ``output``
  Dense(3, softmax); metadata labels ["cat", "dog", "bird"].
- ``pair``: inputs ``a`` [null, 2] and ``b`` [null, 3] -> ``concat`` (axis 1) ->
  ``output`` Dense(2, linear); no metadata.

``reference_clf`` / ``reference_pair`` compute the same functions with numpy.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from runtime.bundle import write_bundle
from service.app import create_app
from service.config import Settings, get_settings
from tests.serving import free_port

LABELS = ["cat", "dog", "bird"]

_rng = np.random.default_rng(20261122)
CLF = {
    "hidden.W": _rng.normal(size=(4, 5)).astype(np.float32),
    "hidden.b": _rng.normal(size=5).astype(np.float32),
    "output.W": _rng.normal(size=(5, 3)).astype(np.float32),
    "output.b": _rng.normal(size=3).astype(np.float32),
}
PAIR = {
    "output.W": _rng.normal(size=(5, 2)).astype(np.float32),
    "output.b": _rng.normal(size=2).astype(np.float32),
}


def _input_layer(name, shape):
    return {"name": name, "type": "InputLayer", "inputs": [], "config": {"shape": shape},
            "params": {}, "output_shape": shape}


def _dense(name, source, units, nonlinearity):
    return {"name": name, "type": "DenseLayer", "inputs": [source],
            "config": {"num_units": units, "num_leading_axes": 1,
                       "nonlinearity": {"name": nonlinearity}},
            "params": {"W": f"{name}.W", "b": f"{name}.b"}, "output_shape": [None, units]}


def _manifest(inputs, outputs, layers, metadata):
    return {
        "format": "forge-bundle",
        "format_version": 1,
        "created": {"by": "tests/service", "at": "2026-11-22T00:00:00Z"},
        "metadata": metadata,
        "dtype": "float32",
        "inputs": [{"name": n, "shape": s, "dtype": "float32"} for n, s in inputs],
        "outputs": [{"name": n, "shape": s, "dtype": "float32"} for n, s in outputs],
        "layers": layers,
    }


def write_clf(path: Path, labels=LABELS) -> Path:
    manifest = _manifest(
        inputs=[("input", [None, 4])],
        outputs=[("output", [None, 3])],
        layers=[
            _input_layer("input", [None, 4]),
            _dense("hidden", "input", 5, "rectify"),
            _dense("output", "hidden", 3, "softmax"),
        ],
        metadata={"labels": list(labels)} if labels is not None else {},
    )
    write_bundle(path, manifest, dict(CLF))
    return path


def write_pair(path: Path) -> Path:
    concat = {"name": "concat", "type": "ConcatLayer", "inputs": ["a", "b"],
              "config": {"axis": 1, "cropping": None}, "params": {},
              "output_shape": [None, 5]}
    manifest = _manifest(
        inputs=[("a", [None, 2]), ("b", [None, 3])],
        outputs=[("output", [None, 2])],
        layers=[_input_layer("a", [None, 2]), _input_layer("b", [None, 3]), concat,
                _dense("output", "concat", 2, "linear")],
        metadata={},
    )
    write_bundle(path, manifest, dict(PAIR))
    return path


def reference_hidden(x):
    x = np.asarray(x, dtype=np.float64)
    return np.maximum(x @ CLF["hidden.W"] + CLF["hidden.b"], 0)


def reference_clf(x):
    z = reference_hidden(x) @ CLF["output.W"] + CLF["output.b"]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def reference_pair(a, b):
    x = np.concatenate([np.asarray(a, float), np.asarray(b, float)], axis=1)
    return x @ PAIR["output.W"] + PAIR["output.b"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """No FORGE_* variable from the caller's shell leaks into a test; fresh settings cache."""
    for key in list(os.environ):
        if key.startswith("FORGE_"):
            monkeypatch.delenv(key)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    write_clf(folder / "clf.npz")
    write_pair(folder / "pair.npz")
    return folder


@pytest.fixture
def settings(bundle_dir) -> Settings:
    return Settings(model_path=bundle_dir)


@pytest.fixture
def make_client():
    """``make_client(settings, **kwargs)`` -> a started TestClient (lifespan run)."""
    clients = []

    def make(settings: Settings, **kwargs) -> TestClient:
        client = TestClient(create_app(settings), **kwargs)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client, settings) -> TestClient:
    return make_client(settings)


def write_version(root: Path, name: str, version: int, writer=write_clf) -> Path:
    """Write ``root/<name>/<version>/model.npz`` (the versioned repository layout)."""
    folder = root / name / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    return writer(folder / "model.npz")


class LiveServer:
    """A real uvicorn server on 127.0.0.1 in a background thread."""

    def __init__(self, settings: Settings) -> None:
        import threading

        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning",
            access_log=False, log_config=None,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "LiveServer":
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive(), "the server thread died while starting"
            assert time.monotonic() < deadline, "the server did not start within 20 s"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def live_server():
    """``live_server(settings)`` -> a started :class:`LiveServer` (stopped after the test)."""
    servers = []

    def start(settings: Settings) -> LiveServer:
        server = LiveServer(settings).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)
