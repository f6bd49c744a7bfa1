"""The versioned model repository: layouts, version policies, reload, refusal, reload under load."""
import logging
import threading
import time

import httpx2 as httpx
import numpy as np
import pytest

from service.config import Settings
from service.repository import (
    ModelNotFoundError,
    ModelRepository,
    RepositoryError,
    VersionPolicy,
    find_bundles,
    scan_repository,
)

from .conftest import reference_clf, write_clf, write_pair, write_version

X = [[0.5, -1.0, 2.0, 0.25]]


class TestLayout:
    def test_versioned_and_flat_side_by_side(self, tmp_path):
        write_version(tmp_path, "clf", 1)
        write_version(tmp_path, "clf", 12)
        write_pair(tmp_path / "pair.npz")
        (tmp_path / "clf" / "notes").mkdir()  # not a number: ignored
        (tmp_path / "clf" / "3").mkdir()  # no model.npz: ignored
        found, skipped = scan_repository(tmp_path)
        assert {name: sorted(v) for name, v in found.items()} == {"clf": [1, 12], "pair": [1]}
        assert skipped == []
        assert len(find_bundles(tmp_path)) == 3

    def test_single_bundle_path(self, tmp_path):
        repository = ModelRepository.from_path(write_clf(tmp_path / "only.npz"))
        assert repository.names() == ["only"] and repository.versions("only") == [1]

    def test_traversal_names_are_skipped(self, tmp_path):
        write_version(tmp_path, "-bad", 1)
        write_version(tmp_path, "good", 1)
        found, skipped = scan_repository(tmp_path)
        assert list(found) == ["good"] and "invalid model name" in skipped[0]

    def test_missing_root(self, tmp_path):
        with pytest.raises(RepositoryError, match="does not exist"):
            scan_repository(tmp_path / "nowhere")


class TestPolicy:
    @pytest.fixture
    def root(self, tmp_path):
        for version in (1, 2, 3):
            write_version(tmp_path, "clf", version)
        return tmp_path

    @pytest.mark.parametrize("policy, served", [
        (VersionPolicy(), [3]),
        (VersionPolicy("latest", latest=2), [2, 3]),
        (VersionPolicy("all"), [1, 2, 3]),
        (VersionPolicy("specific", versions=(1, 3, 7)), [1, 3]),
    ])
    def test_policies(self, root, policy, served):
        repository = ModelRepository.from_path(root, policy=policy)
        assert repository.versions("clf") == served
        assert repository.get("clf").version == served[-1]

    def test_unknown_version(self, root):
        repository = ModelRepository.from_path(root)
        with pytest.raises(ModelNotFoundError, match="has no version '2'; served versions: 3"):
            repository.get("clf", 2)
        with pytest.raises(ModelNotFoundError, match="no version 'x'"):
            repository.get("clf", "x")

    def test_settings_choose_the_policy(self, make_client, root):
        client = make_client(Settings(model_repository=root, version_policy="specific",
                                      versions=[2]))
        assert client.get("/v2/models/clf").json()["versions"] == ["2"]

    def test_specific_needs_versions(self):
        with pytest.raises(ValueError, match="needs a non-empty list"):
            Settings(version_policy="specific")


class TestReload:
    def test_new_version_is_loaded_and_warmed_then_served(self, tmp_path, monkeypatch):
        write_version(tmp_path, "clf", 1)
        repository = ModelRepository.from_path(tmp_path, warmup=True)
        warmed = []
        monkeypatch.setattr("service.repository.warm_up", lambda model: warmed.append(model))
        write_version(tmp_path, "clf", 2)
        assert repository.reload() == {"clf": [2]}
        assert warmed == [repository.get("clf").model]

    def test_broken_new_version_is_refused_and_the_old_one_serves(self, tmp_path, caplog):
        write_version(tmp_path, "clf", 1)
        repository = ModelRepository.from_path(tmp_path)
        old = repository.get("clf")
        (tmp_path / "clf" / "2").mkdir()
        (tmp_path / "clf" / "2" / "model.npz").write_bytes(b"not a bundle")
        with caplog.at_level(logging.ERROR, logger="service.repository"):
            repository.reload()
        assert repository.get("clf") is old
        assert "refusing model 'clf' version 2" in caplog.text
        assert "previous version keeps serving" not in caplog.text  # v2 never served
        assert "clf/2" in repository.failures()
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="service.repository"):
            repository.reload()  # unchanged since: not retried, not logged again
        assert caplog.text == ""
        write_version(tmp_path, "clf", 2)  # fixed: now it loads
        repository.reload()
        assert repository.get("clf").version == 2 and repository.failures() == {}

    def test_bundle_replaced_by_a_broken_one_keeps_the_loaded_copy(self, tmp_path):
        path = write_version(tmp_path, "clf", 1)
        repository = ModelRepository.from_path(tmp_path)
        old = repository.get("clf")
        time.sleep(0.01)
        path.write_bytes(b"garbage")
        repository.reload()
        assert repository.get("clf") is old

    def test_warm_up_failure_refuses(self, tmp_path, monkeypatch):
        write_version(tmp_path, "clf", 1)
        repository = ModelRepository.from_path(tmp_path, warmup=True)

        def fail(model):
            raise FloatingPointError("kernel exploded")

        monkeypatch.setattr("service.repository.warm_up", fail)
        write_version(tmp_path, "clf", 2)
        repository.reload()
        assert repository.versions("clf") == [1]
        assert "kernel exploded" in repository.failures()["clf/2"]

    def test_removed_model_is_no_longer_served(self, tmp_path):
        write_version(tmp_path, "clf", 1)
        write_clf(tmp_path / "other.npz")
        repository = ModelRepository.from_path(tmp_path)
        (tmp_path / "other.npz").unlink()
        repository.reload()
        assert repository.names() == ["clf"]

    def test_load_and_unload_endpoints(self, make_client, tmp_path):
        write_version(tmp_path, "clf", 1)
        client = make_client(Settings(model_repository=tmp_path))
        write_version(tmp_path, "clf", 2)
        assert client.post("/v2/repository/models/clf/load").status_code == 200
        assert client.get("/v2/models/clf").json()["versions"] == ["2"]
        assert client.post("/v2/repository/models/clf/unload").status_code == 200
        assert client.get("/v2/models/clf/ready").status_code == 404
        assert client.post("/v2/repository/models/nope/load").status_code == 404
        assert client.post("/v2/repository/models/nope/unload").status_code == 404
        assert client.post("/v2/repository/models/clf/load").status_code == 200

    def test_load_of_a_broken_model_is_400(self, make_client, tmp_path):
        write_version(tmp_path, "clf", 1)
        client = make_client(Settings(model_repository=tmp_path))
        (tmp_path / "bad" / "1").mkdir(parents=True)
        (tmp_path / "bad" / "1" / "model.npz").write_bytes(b"x")
        response = client.post("/v2/repository/models/bad/load")
        assert response.status_code == 400 and "could not be loaded" in response.json()["error"]
        index = client.post("/v2/repository/index", json={}).json()
        assert {"name": "bad", "version": "1", "state": "UNAVAILABLE"}.items() <= index[-1].items()

    def test_polling_picks_up_new_versions(self, make_client, tmp_path):
        write_version(tmp_path, "clf", 1)
        client = make_client(Settings(model_repository=tmp_path, poll_interval=0.05))
        write_version(tmp_path, "clf", 2)
        deadline = time.monotonic() + 10
        while client.get("/v2/models/clf").json()["versions"] != ["2"]:
            assert time.monotonic() < deadline, "polling did not load version 2 within 10 s"
            time.sleep(0.05)


def test_reload_under_load_fails_no_request(live_server, tmp_path):
    """Swap versions back and forth while 4 threads send requests: every answer is 200."""
    write_version(tmp_path, "clf", 1)
    server = live_server(Settings(model_repository=tmp_path, poll_interval=0.02,
                                  batching=True, batch_max_delay_ms=1))
    stop = threading.Event()
    answers: list[tuple[int, str]] = []
    failures: list[str] = []

    def send():
        with httpx.Client(base_url=server.url, timeout=10) as http:
            while not stop.is_set():
                try:
                    r = http.post("/v1/models/clf:predict", json={"instances": X})
                    answers.append((r.status_code, r.json().get("model_version", "")))
                    if r.status_code != 200:
                        failures.append(r.text)
                    else:
                        np.testing.assert_allclose(r.json()["predictions"], reference_clf(X),
                                                   atol=1e-5)
                except Exception as exc:  # noqa: BLE001 - any failure counts
                    failures.append(repr(exc))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for version in range(2, 8):  # new versions appear; old ones are removed
            time.sleep(0.15)
            write_version(tmp_path, "clf", version)
            time.sleep(0.15)
            import shutil

            shutil.rmtree(tmp_path / "clf" / str(version - 1))
        time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
    assert failures == []
    versions = {v for _, v in answers}
    assert len(answers) > 50 and {"1", "7"} <= versions and len(versions) >= 3
