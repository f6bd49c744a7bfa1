"""GET /models and GET /models/{name}; the model repository."""
import logging

import pytest

from service.repository import (
    ModelNotFoundError,
    ModelRepository,
    RepositoryError,
    find_bundles,
    validate_model_name,
)

from .conftest import LABELS, write_clf

CLF_INFO = {
    "name": "clf",
    "format_version": 1,
    "inputs": [{"name": "input", "shape": [None, 4], "dtype": "float32"}],
    "outputs": [{"name": "output", "shape": [None, 3], "dtype": "float32"}],
    "layers": ["input", "hidden", "output"],
    "metadata": {"labels": LABELS},
}


class TestListModels:
    def test_lists_every_bundle_sorted_by_name(self, client):
        response = client.get("/models")
        assert response.status_code == 200
        models = response.json()["models"]
        assert [m["name"] for m in models] == ["clf", "pair"]
        assert models[0] == CLF_INFO

    def test_multi_input_specs(self, client):
        pair = client.get("/models").json()["models"][1]
        assert pair["inputs"] == [
            {"name": "a", "shape": [None, 2], "dtype": "float32"},
            {"name": "b", "shape": [None, 3], "dtype": "float32"},
        ]
        assert pair["metadata"] == {}


class TestGetModel:
    def test_describes_one_model(self, client):
        response = client.get("/models/clf")
        assert response.status_code == 200
        assert response.json() == CLF_INFO

    def test_unknown_model_is_404_naming_it_and_the_available_ones(self, client):
        response = client.get("/models/nope")
        assert response.status_code == 404
        error = response.json()["error"]
        assert "'nope'" in error and "clf, pair" in error

    @pytest.mark.parametrize("name", [".hidden", "-leading-dash", "a..b", "sp ace", "x" * 200])
    def test_invalid_name_is_404_with_the_naming_rule(self, client, name):
        response = client.get(f"/models/{name}")
        assert response.status_code == 404
        assert "invalid model name" in response.json()["error"]

    def test_path_traversal_is_not_routed(self, client):
        response = client.get("/models/..%2F..%2Fetc%2Fpasswd")
        assert response.status_code == 404
        assert set(response.json()) == {"error"}


class TestRepository:
    def test_loads_a_folder(self, bundle_dir):
        repository = ModelRepository.from_path(bundle_dir)
        assert repository.names() == ["clf", "pair"]
        assert len(repository) == 2 and "clf" in repository
        entry = repository.get("clf")
        assert entry.name == "clf" and entry.path == bundle_dir / "clf.npz"
        assert [spec.name for spec in entry.model.inputs] == ["input"]

    def test_unknown_name_raises_typed_error(self, bundle_dir):
        repository = ModelRepository.from_path(bundle_dir)
        with pytest.raises(ModelNotFoundError, match="no model named 'zzz'") as info:
            repository.get("zzz")
        assert info.value.name == "zzz"
        assert isinstance(info.value, LookupError)

    def test_broken_bundle_is_logged_and_skipped(self, tmp_path, caplog):
        write_clf(tmp_path / "good.npz")
        (tmp_path / "broken.npz").write_bytes(b"this is not a zip archive")
        with caplog.at_level(logging.ERROR, logger="service.repository"):
            repository = ModelRepository.from_path(tmp_path)
        assert repository.names() == ["good"]
        assert "broken" in caplog.text

    def test_tampered_bundle_is_skipped(self, tmp_path, caplog):
        import zipfile

        write_clf(tmp_path / "good.npz")
        # Same members, but one array's bytes changed: the sha256 check must refuse it.
        with zipfile.ZipFile(tmp_path / "good.npz") as source, zipfile.ZipFile(
            tmp_path / "tampered.npz", "w"
        ) as target:
            for info in source.infolist():
                data = source.read(info)
                if info.filename == "output.b.npy":
                    data = data[:-1] + bytes([data[-1] ^ 0xFF])
                target.writestr(info, data)
        with caplog.at_level(logging.ERROR, logger="service.repository"):
            repository = ModelRepository.from_path(tmp_path)
        assert repository.names() == ["good"]
        assert "tampered" in caplog.text

    def test_badly_named_bundle_is_skipped(self, tmp_path):
        write_clf(tmp_path / "ok.npz")
        write_clf(tmp_path / "-bad.npz")
        assert ModelRepository.from_path(tmp_path).names() == ["ok"]

    def test_nothing_loadable_is_a_clear_error(self, tmp_path):
        (tmp_path / "broken.npz").write_bytes(b"garbage")
        with pytest.raises(RepositoryError, match=r"no model could be loaded .*broken\.npz"):
            ModelRepository.from_path(tmp_path)

    def test_empty_folder_is_a_clear_error(self, tmp_path):
        with pytest.raises(RepositoryError, match=r"no model bundles \(\*\.npz\) in"):
            find_bundles(tmp_path)

    def test_missing_path_is_a_clear_error(self, tmp_path):
        with pytest.raises(RepositoryError, match="does not exist"):
            ModelRepository.from_path(tmp_path / "nowhere")

    @pytest.mark.parametrize("name", ["digits", "mnist-v2", "a.b_c", "0"])
    def test_valid_names(self, name):
        assert validate_model_name(name) == name

    @pytest.mark.parametrize("name", ["", ".hidden", "../x", "a/b", "a\\b", "a..b", "é", "abc\n"])
    def test_invalid_names(self, name):
        with pytest.raises(ValueError, match="invalid model name"):
            validate_model_name(name)
