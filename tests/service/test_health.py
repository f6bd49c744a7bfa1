"""GET /health."""

from service.config import Settings


def test_health_reports_ok_and_model_count(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "models": 2}


def test_health_counts_a_single_bundle_file(make_client, settings, bundle_dir):
    client = make_client(Settings(model_repository=bundle_dir / "clf.npz"))
    assert client.get("/health").json() == {"status": "ok", "models": 1}
