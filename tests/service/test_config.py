"""Settings: defaults, FORGE_* environment variables, validation, caching."""
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.config import DEFAULT_MODEL_PATH, Settings, get_settings


def test_defaults():
    settings = Settings()
    assert settings.model_path == DEFAULT_MODEL_PATH
    assert DEFAULT_MODEL_PATH == Path(__file__).resolve().parents[2] / "service" / "models"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.max_body_bytes == 8 * 1024 * 1024
    assert settings.max_batch_size == 1024
    assert settings.max_elements == 1_000_000
    assert settings.allow_nonfinite is False
    assert settings.log_level == "info"


def test_environment_variables_with_forge_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("FORGE_MODEL_PATH", str(tmp_path / "m.npz"))
    monkeypatch.setenv("FORGE_HOST", "0.0.0.0")
    monkeypatch.setenv("FORGE_PORT", "9001")
    monkeypatch.setenv("FORGE_MAX_BODY_BYTES", "1024")
    monkeypatch.setenv("FORGE_MAX_BATCH_SIZE", "16")
    monkeypatch.setenv("FORGE_MAX_ELEMENTS", "64")
    monkeypatch.setenv("FORGE_ALLOW_NONFINITE", "true")
    monkeypatch.setenv("FORGE_LOG_LEVEL", "DEBUG")
    settings = Settings()
    assert settings.model_path == tmp_path / "m.npz"
    assert (settings.host, settings.port) == ("0.0.0.0", 9001)
    assert (settings.max_body_bytes, settings.max_batch_size, settings.max_elements) == (1024, 16, 64)
    assert settings.allow_nonfinite is True
    assert settings.log_level == "debug"


def test_unprefixed_variables_are_ignored(monkeypatch):
    monkeypatch.setenv("PORT", "1234")
    monkeypatch.setenv("MODEL_PATH", "/elsewhere")
    settings = Settings()
    assert settings.port == 8000 and settings.model_path == DEFAULT_MODEL_PATH


def test_keyword_arguments_win_over_environment(monkeypatch):
    monkeypatch.setenv("FORGE_PORT", "9001")
    assert Settings(port=9002).port == 9002


def test_home_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings(model_path="~/models").model_path == tmp_path / "models"


@pytest.mark.parametrize(
    "variable, value",
    [
        ("FORGE_PORT", "eighty"),
        ("FORGE_PORT", "70000"),
        ("FORGE_MAX_BODY_BYTES", "0"),
        ("FORGE_MAX_ELEMENTS", "-1"),
        ("FORGE_ALLOW_NONFINITE", "perhaps"),
        ("FORGE_LOG_LEVEL", "loud"),
    ],
)
def test_invalid_values_are_refused(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable.removeprefix("FORGE_").lower()):
        Settings()


def test_get_settings_is_cached_until_cleared(monkeypatch):
    first = get_settings()
    assert get_settings() is first
    monkeypatch.setenv("FORGE_PORT", "9100")
    assert get_settings().port == 8000
    get_settings.cache_clear()
    assert get_settings().port == 9100
