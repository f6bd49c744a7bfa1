"""Operating the service: metrics, API keys, request ids, logs, config files, OpenAPI."""
import json
import logging

import pytest
from pydantic import SecretStr

from service.config import Settings
from service.logs import JsonFormatter, RequestIdFilter, logging_config

BODY = {"instances": [[0.5, -1.0, 2.0, 0.25]]}


class TestMetrics:
    def test_counts_latency_and_loaded_models(self, client):
        client.post("/v1/models/clf:predict", json=BODY)
        client.post("/v1/models/clf:predict", json={"instances": [[0.0] * 3]})
        client.post("/v2/models/nope/infer", json={})
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert 'forge_inference_requests_total{model="clf",status="200",version="1"} 1.0' in text
        assert 'forge_inference_requests_total{model="clf",status="422",version="1"} 1.0' in text
        assert 'forge_inference_requests_total{model="_unknown",status="404",version=""} 1.0' in text
        for name in ("forge_request_duration_seconds", "forge_queue_duration_seconds",
                     "forge_inference_duration_seconds", "forge_batch_size"):
            assert f'{name}_count{{model="clf",version="1"}}' in text
        assert "forge_models_loaded 2.0" in text

    def test_apps_do_not_share_metrics(self, make_client, settings):
        first, second = make_client(settings), make_client(settings)
        first.post("/v1/models/clf:predict", json=BODY)
        assert 'status="200"' not in second.get("/metrics").text


class TestApiKey:
    @pytest.fixture
    def secured(self, make_client, settings):
        return make_client(settings.model_copy(update={"api_key": SecretStr("s3cret")}))

    def test_off_by_default(self, client):
        assert client.post("/v1/models/clf:predict", json=BODY).status_code == 200

    @pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"},
                                         {"Authorization": "Bearer nope"},
                                         {"Authorization": "Basic s3cret"}])
    def test_missing_or_wrong_key_is_401(self, secured, headers):
        response = secured.post("/v1/models/clf:predict", json=BODY, headers=headers)
        assert response.status_code == 401
        assert "API key" in response.json()["error"]
        assert response.headers["www-authenticate"] == "Bearer"
        assert secured.get("/metrics", headers=headers).status_code == 401

    @pytest.mark.parametrize("headers", [{"X-API-Key": "s3cret"},
                                         {"Authorization": "Bearer s3cret"}])
    def test_right_key(self, secured, headers):
        assert secured.post("/v1/models/clf:predict", json=BODY, headers=headers).status_code == 200

    @pytest.mark.parametrize("path", ["/health", "/v2/health/live", "/v2/health/ready"])
    def test_health_is_exempt(self, secured, path):
        assert secured.get(path).status_code == 200

    def test_custom_header(self, make_client, settings):
        client = make_client(settings.model_copy(update={
            "api_key": SecretStr("k"), "api_key_header": "X-Token"}))
        assert client.get("/v2/models/clf", headers={"X-Token": "k"}).status_code == 200
        assert client.get("/v2/models/clf", headers={"X-API-Key": "k"}).status_code == 401


class TestRequestId:
    def test_given_id_is_echoed(self, client):
        response = client.get("/v2/health/live", headers={"X-Request-ID": "abc-123"})
        assert response.headers["x-request-id"] == "abc-123"

    def test_generated_when_missing_or_unsafe(self, client):
        first = client.get("/v2/health/live").headers["x-request-id"]
        second = client.get("/v2/health/live", headers={"X-Request-ID": "a b\tc"}).headers[
            "x-request-id"]
        assert len(first) == 32 and len(second) == 32 and first != second

    def test_errors_carry_the_id_too(self, client):
        response = client.get("/nowhere", headers={"X-Request-ID": "r1"})
        assert response.status_code == 404 and response.headers["x-request-id"] == "r1"

    def test_access_log_has_the_id(self, client, caplog):
        with caplog.at_level(logging.INFO, logger="service.access"):
            client.get("/v2/health/live", headers={"X-Request-ID": "logged-1"})
        [record] = [r for r in caplog.records if r.name == "service.access"]
        assert record.request_id == "logged-1"
        assert "GET /v2/health/live 200" in record.getMessage()


class TestLogs:
    def test_json_lines(self):
        record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "hi %s",
                                        "args": ("there",), "status": 200})
        RequestIdFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
        assert line["message"] == "hi there" and line["status"] == 200
        assert line["request_id"] == "-" and line["level"] == "info"

    def test_config_is_valid(self):
        import logging.config

        logging.config.dictConfig(logging_config("debug", "json"))
        logging.config.dictConfig(logging_config("trace", "text"))
        root = logging.getLogger()
        assert root.level == logging.DEBUG
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False,
                                   "root": {"level": "WARNING", "handlers": []}})


class TestConfigFile:
    @pytest.mark.parametrize("suffix, text", [
        (".toml", 'port = 9100\nbatching = true\nversions = [1, 2]\n'),
        (".json", '{"port": 9100, "batching": true, "versions": [1, 2]}'),
        (".yaml", "port: 9100\nbatching: true\nversions: [1, 2]\n"),
    ])
    def test_formats(self, tmp_path, monkeypatch, suffix, text):
        path = tmp_path / f"forge{suffix}"
        path.write_text(text)
        monkeypatch.setenv("FORGE_CONFIG", str(path))
        settings = Settings()
        assert (settings.port, settings.batching, settings.versions) == (9100, True, [1, 2])

    def test_environment_wins_over_the_file(self, tmp_path, monkeypatch):
        (tmp_path / "c.json").write_text('{"port": 9100}')
        monkeypatch.setenv("FORGE_CONFIG", str(tmp_path / "c.json"))
        monkeypatch.setenv("FORGE_PORT", "9200")
        assert Settings().port == 9200

    @pytest.mark.parametrize("name, message", [("c.ini", "must end in"), ("none.toml", "no such")])
    def test_bad_file(self, tmp_path, monkeypatch, name, message):
        if name.endswith(".ini"):
            (tmp_path / name).write_text("")
        monkeypatch.setenv("FORGE_CONFIG", str(tmp_path / name))
        with pytest.raises(ValueError, match=message):
            Settings()

    def test_model_repository_and_its_older_name(self, tmp_path, monkeypatch):
        monkeypatch.setenv("FORGE_MODEL_REPOSITORY", str(tmp_path / "a"))
        assert Settings().model_repository == tmp_path / "a"
        monkeypatch.setenv("FORGE_MODEL_PATH", str(tmp_path / "b"))
        assert Settings().model_repository == tmp_path / "a"  # the new name wins
        monkeypatch.delenv("FORGE_MODEL_REPOSITORY")
        assert Settings().model_repository == tmp_path / "b"


def test_openapi_documents_every_route(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ["/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/{name}",
                 "/v2/models/{name}/versions/{version}", "/v2/models/{name}/ready",
                 "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer",
                 "/v1/models/{name}:predict", "/v2/repository/index", "/metrics",
                 "/models/{name}/predict"]:
        assert path in paths, path
    body = paths["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/InferenceRequest"}
    assert {"InferenceRequest", "RequestInput", "InferenceResponse", "V1PredictRequest"} <= set(
        schema["components"]["schemas"])
    assert client.get("/docs").status_code == 200
