"""POST /v1/models/{name}:predict, the TF-Serving-like endpoint."""
import numpy as np
import pytest

from .conftest import LABELS, reference_clf, reference_hidden, reference_pair

X = np.array([[0.5, -1.0, 2.0, 0.25], [1.0, 0.0, -0.5, 3.0]], dtype=np.float32)


def test_instances_give_predictions_and_labels(client):
    response = client.post("/v1/models/clf:predict", json={"instances": X.tolist()})
    assert response.status_code == 200
    body = response.json()
    assert (body["model_name"], body["model_version"]) == ("clf", "1")
    np.testing.assert_allclose(body["predictions"], reference_clf(X), atol=1e-6)
    assert body["labels"] == [LABELS[i] for i in reference_clf(X).argmax(axis=1)]


def test_versioned_path_and_several_outputs(client):
    body = client.post("/v1/models/clf/versions/1:predict",
                       json={"instances": X.tolist(), "outputs": ["hidden", "output"]}).json()
    assert [sorted(p) for p in body["predictions"]] == [["hidden", "output"]] * 2
    np.testing.assert_allclose([p["hidden"] for p in body["predictions"]], reference_hidden(X),
                               atol=1e-6)


def test_object_instances_for_several_inputs(client):
    a, b = X[:, :2], X[:, 1:]
    instances = [{"a": a[i].tolist(), "b": b[i].tolist()} for i in range(2)]
    body = client.post("/v1/models/pair:predict", json={"instances": instances}).json()
    np.testing.assert_allclose(body["predictions"], reference_pair(a, b), atol=1e-5)
    assert "labels" not in body


@pytest.mark.parametrize("path, body, status, message", [
    ("/v1/models/clf:predict", {"instances": [[0.0] * 3]}, 422, "expected shape (None, 4)"),
    ("/v1/models/clf:predict", {"instances": []}, 422, "instances"),
    ("/v1/models/clf:predict", {"rows": [[0.0] * 4]}, 422, "unexpected field 'rows'"),
    ("/v1/models/pair:predict", {"instances": [[0.0] * 5]}, 422, "only for single-input"),
    ("/v1/models/pair:predict", {"instances": [{"a": [0, 0]}]}, 422, "exactly the inputs"),
    ("/v1/models/clf:predict", {"instances": [[float("nan")] * 4]}, 422, "non-finite"),
    ("/v1/models/nope:predict", {"instances": [[0.0] * 4]}, 404, "no model named 'nope'"),
    ("/v1/models/clf/versions/5:predict", {"instances": [[0.0] * 4]}, 404, "no version '5'"),
])
def test_errors(client, path, body, status, message):
    import json

    response = client.post(path, content=json.dumps(body),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_malformed_json_and_content_type(client):
    response = client.post("/v1/models/clf:predict", content=b"{",
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    response = client.post("/v1/models/clf:predict", content=b'{"instances": [[0,0,0,0]]}',
                           headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
