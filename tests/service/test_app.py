"""The application as a whole: startup, body limit, error format, import hygiene."""
import ast
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import service
from service.app import create_app
from service.config import Settings, get_settings
from service.repository import RepositoryError

SERVICE_DIR = Path(service.__file__).resolve().parent
REPO_ROOT = SERVICE_DIR.parent
BODY = {"instances": [[0.5, -1.0, 2.0, 0.25]]}


class TestStartup:
    def test_models_load_in_lifespan_not_in_create_app(self, tmp_path):
        app = create_app(Settings(model_path=tmp_path / "nowhere"))  # nothing loaded yet
        assert isinstance(app, FastAPI)
        with pytest.raises(RepositoryError, match="does not exist"):
            with TestClient(app):
                pass

    def test_empty_folder_fails_startup_clearly(self, tmp_path, caplog):
        with caplog.at_level(logging.ERROR, logger="service.app"):
            with pytest.raises(RepositoryError, match="no model bundles"):
                with TestClient(create_app(Settings(model_path=tmp_path))):
                    pass
        assert "cannot start the service" in caplog.text

    def test_settings_through_dependency_override(self, bundle_dir):
        app = create_app()
        app.dependency_overrides[get_settings] = lambda: Settings(
            model_path=bundle_dir / "pair.npz"
        )
        with TestClient(app) as client:
            assert client.get("/health").json()["models"] == 1
            assert client.get("/models/pair").status_code == 200

    def test_settings_from_environment_by_default(self, bundle_dir, monkeypatch):
        monkeypatch.setenv("FORGE_MODEL_PATH", str(bundle_dir / "clf.npz"))
        with TestClient(create_app()) as client:
            assert [m["name"] for m in client.get("/models").json()["models"]] == ["clf"]

    def test_lazy_create_app_attribute(self):
        assert service.create_app is create_app
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            service.nope  # noqa: B018


class TestBodyLimit:
    def test_declared_length_over_the_limit(self, make_client, settings):
        client = make_client(settings.model_copy(update={"max_body_bytes": 100}))
        response = client.post("/models/clf/predict", json={"instances": [[0.0] * 4] * 20})
        assert response.status_code == 413
        assert "request body too large" in response.json()["error"]
        assert "100 bytes" in response.json()["error"]

    def test_streamed_body_over_the_limit(self, make_client, settings):
        client = make_client(settings.model_copy(update={"max_body_bytes": 100}))

        def chunks():  # no Content-Length: sent chunked
            yield b'{"instances": ['
            for _ in range(20):
                yield b"[0.0, 0.0, 0.0, 0.0],"
            yield b"[0.0, 0.0, 0.0, 0.0]]}"

        response = client.post(
            "/models/clf/predict", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert "more than 100 bytes" in response.json()["error"]

    def test_streamed_body_under_the_limit_is_served(self, client):
        def chunks():
            yield b'{"instances": '
            yield json.dumps(BODY["instances"]).encode()
            yield b"}"

        response = client.post(
            "/models/clf/predict", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text

    def test_invalid_content_length(self, client):
        response = client.post(
            "/models/clf/predict",
            content=b"{}",
            headers={"content-type": "application/json", "content-length": "lots"},
        )
        assert response.status_code == 400


class TestErrorFormat:
    def test_unknown_route(self, client):
        response = client.get("/nothing/here")
        assert response.status_code == 404
        assert response.json() == {
            "error": "no such endpoint: GET /nothing/here (the API is described at /docs)"
        }

    def test_unexpected_error_is_a_500_without_internals(
        self, make_client, settings, caplog, monkeypatch
    ):
        client = make_client(settings, raise_server_exceptions=False)
        model = client.app.state.repository.get("clf").model

        def explode(*args, **kwargs):
            raise RuntimeError("secret internal detail")

        monkeypatch.setattr(type(model), "run", explode)
        with caplog.at_level(logging.ERROR, logger="service.handlers"):
            response = client.post("/models/clf/predict", json=BODY)
        assert response.status_code == 500
        error = response.json()["error"]
        assert "internal server error" in error and "secret" not in error
        assert "secret internal detail" in caplog.text

    def test_openapi_documents_the_routes(self, client):
        schema = client.get("/openapi.json").json()
        assert {"/health", "/models", "/models/{name}", "/models/{name}/predict"} <= set(
            schema["paths"]
        )
        post = schema["paths"]["/models/{name}/predict"]["post"]
        assert post["operationId"].startswith("run_prediction")
        assert post["summary"] == "Run Prediction"
        assert post["description"].startswith("Run a model on a batch")
        assert {"404", "413", "422"} <= set(post["responses"])


class TestImports:
    def test_service_never_imports_forge_or_pytensor(self):
        for path in SERVICE_DIR.rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module or ""]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    assert top not in {"forge", "pytensor"}, f"{path}: imports {name}"

    def test_package_and_cli_import_no_web_stack(self):
        code = (
            "import sys, service, service.cli\n"
            "service.cli.build_parser()\n"
            "heavy = {'fastapi', 'uvicorn', 'pydantic', 'pydantic_settings', 'starlette',"
            " 'forge', 'pytensor'}\n"
            "print(sorted(heavy & set(sys.modules)))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "[]"

    def test_app_imports_neither_forge_nor_pytensor(self):
        code = (
            "import sys, service.app\n"
            "print(sorted({'forge', 'pytensor'} & set(sys.modules)))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "[]"
