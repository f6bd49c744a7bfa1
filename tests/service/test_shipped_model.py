"""The example bundle shipped in service/models/ serves real predictions by default."""
import numpy as np
from fastapi.testclient import TestClient

from service import create_app
from service.config import Settings


def test_default_settings_serve_the_shipped_digits_model():
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.data[:200] / 16.0).round(4).tolist()
    with TestClient(create_app(Settings())) as client:
        assert [m["name"] for m in client.get("/models").json()["models"]] == ["digits"]
        response = client.post("/models/digits/predict", json={"instances": X})
        assert response.status_code == 200, response.text
        predicted = np.array(response.json()["predictions"], dtype=int)
    assert np.mean(predicted == digits.target[:200]) >= 0.95
