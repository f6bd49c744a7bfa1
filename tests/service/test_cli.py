"""The ``forge`` command line: argument parsing, ``serve`` wiring, one real server."""
import httpx2 as httpx
import pytest

from service import cli
from service.config import DEFAULT_MODEL_PATH, get_settings
from tests.serving import forge_serve


class TestParser:
    def test_serve_defaults_to_none_so_settings_decide(self):
        args = cli.build_parser().parse_args(["serve"])
        assert args.command == "serve"
        assert (args.path, args.host, args.port, args.log_level) == (None, None, None, None)

    def test_serve_arguments(self):
        args = cli.build_parser().parse_args(
            ["serve", "models/", "--host", "0.0.0.0", "--port", "9000", "--log-level", "DEBUG"]
        )
        assert (args.path, args.host, args.port, args.log_level) == ("models/", "0.0.0.0", 9000, "debug")

    @pytest.mark.parametrize(
        "argv",
        [[], ["bogus"], ["serve", "--port", "x"], ["serve", "--port", "70000"],
         ["serve", "--log-level", "loud"], ["serve", "a", "b"]],
    )
    def test_bad_arguments_exit_2(self, argv, capsys):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
        assert "usage: forge" in capsys.readouterr().err


class TestServe:
    @pytest.fixture
    def served(self, monkeypatch):
        """Replace uvicorn.run; collect what serve would have started."""
        calls = []
        monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: calls.append((app, kwargs)))
        return calls

    def test_serve_starts_uvicorn_on_create_app(self, served, bundle_dir):
        status = cli.main(
            ["serve", str(bundle_dir), "--host", "127.0.0.2", "--port", "9123", "--log-level", "warning"]
        )
        assert status == 0
        [(app, kwargs)] = served
        assert {k: kwargs[k] for k in ("host", "port", "log_level")} == {
            "host": "127.0.0.2", "port": 9123, "log_level": "warning"}
        assert kwargs["access_log"] is False and kwargs["log_config"]["version"] == 1
        settings = app.dependency_overrides[get_settings]()
        assert settings.model_path == bundle_dir

    def test_environment_fills_what_the_command_line_leaves_out(self, served, bundle_dir, monkeypatch):
        monkeypatch.setenv("FORGE_MODEL_PATH", str(bundle_dir))
        monkeypatch.setenv("FORGE_PORT", "9555")
        assert cli.main(["serve", "--port", "9556"]) == 0
        [(app, kwargs)] = served
        assert kwargs["port"] == 9556 and kwargs["host"] == "127.0.0.1"
        assert app.dependency_overrides[get_settings]().model_path == bundle_dir

    def test_without_path_serves_the_shipped_models(self, served, monkeypatch):
        monkeypatch.setattr("service.repository.find_bundles", lambda path: [path])
        assert cli.main(["serve"]) == 0
        [(app, _)] = served
        assert app.dependency_overrides[get_settings]().model_path == DEFAULT_MODEL_PATH

    def test_missing_path_is_a_clear_error_before_starting(self, served, tmp_path, capsys):
        assert cli.main(["serve", str(tmp_path / "none.npz")]) == 2
        assert served == []
        assert "does not exist" in capsys.readouterr().err

    def test_folder_without_bundles_is_a_clear_error(self, served, tmp_path, capsys):
        assert cli.main(["serve", str(tmp_path)]) == 2
        assert served == []
        assert "no model bundles (*.npz)" in capsys.readouterr().err

    def test_invalid_environment_is_reported(self, served, bundle_dir, monkeypatch, capsys):
        monkeypatch.setenv("FORGE_MAX_ELEMENTS", "none")
        assert cli.main(["serve", str(bundle_dir)]) == 2
        assert "max_elements" in capsys.readouterr().err


def test_forge_serve_end_to_end(bundle_dir):
    """Start `forge serve` as a process, wait for /health, predict once, stop it."""
    with forge_serve(bundle_dir, "--log-level", "warning", ready="/health",
                     startup_timeout_s=30) as server:
        health = httpx.get(f"{server.url}/health", timeout=5)
        assert health.json() == {"status": "ok", "models": 2}
        response = httpx.post(f"{server.url}/models/clf/predict",
                              json={"instances": [[0.5, -1.0, 2.0, 0.25]]}, timeout=10)
        assert response.status_code == 200
        assert len(response.json()["predictions"]) == 1
