"""The recurrent example trains, exports, runs in the runtime and serves."""
import numpy as np
import pytest

import forge
import runtime
from forge.examples import sequence


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    forge.random.set_rng(np.random.RandomState(0))
    tokens, mask, labels = sequence.make_data(512, seed=0)
    network = sequence.build_network()
    predict = sequence.train(network, tokens, mask, labels, epochs=15)
    path = tmp_path_factory.mktemp("models") / "sequence.npz"
    manifest = forge.export(network, path, metadata={"labels": ["0", "1", "2"]})
    return network, predict, path, manifest


def test_data_labels_are_the_majority_token_of_the_unmasked_part():
    tokens, mask, labels = sequence.make_data(50, seed=3)
    for t, m, y in zip(tokens, mask, labels):
        assert y == np.bincount(t[m == 1], minlength=3).argmax()


def test_lstm_learns_the_task(trained):
    _, predict, _, manifest = trained
    assert sequence.accuracy(predict, *sequence.make_data(256, seed=1)) >= 0.9
    assert manifest["parity"]["max_rel_error"] <= 1e-5
    assert [spec["name"] for spec in manifest["inputs"]] == ["tokens", "mask"]


def test_runtime_matches_forge_on_ragged_batches_and_batch_1(trained):
    _, predict, path, _ = trained
    model = runtime.load(path)
    tokens, mask, _ = sequence.make_data(9, seed=2)
    got = model.run({"tokens": tokens, "mask": mask})["probs"]
    np.testing.assert_allclose(got, predict(tokens, mask), rtol=1e-5, atol=1e-6)
    single = model.run({"tokens": tokens[:1], "mask": mask[:1]})["probs"]
    np.testing.assert_allclose(single, got[:1], rtol=1e-5, atol=1e-6)


def test_served_prediction(trained):
    pytest.importorskip("fastapi", reason="fastapi not installed (the [serve] extra)")
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.config import Settings

    _, predict, path, _ = trained
    tokens, mask, labels = sequence.make_data(4, seed=5)
    with TestClient(create_app(Settings(model_path=path.parent))) as client:
        response = client.post("/models/sequence/predict", json={
            "inputs": {"tokens": tokens.tolist(), "mask": mask.tolist()}})
    assert response.status_code == 200, response.text
    body = response.json()
    np.testing.assert_allclose(body["outputs"]["probs"], predict(tokens, mask), rtol=1e-5,
                               atol=1e-6)
    assert body["predictions"] == [str(i) for i in predict(tokens, mask).argmax(axis=1)]


def test_trains_on_the_jax_backend_with_a_batch_size_left_open():
    # the network's inputs are (None, 8): JAX must still see static shapes everywhere,
    # including the reshapes in the LSTM's gradient (they failed while PyTensor's fusion
    # ran in the JAX mode)
    pytest.importorskip("jax", reason="jax not installed (the JAX backend, [dev] extra)")
    forge.random.set_rng(np.random.RandomState(0))
    tokens, mask, labels = sequence.make_data(256, seed=0)
    network = sequence.build_network()
    predict = sequence.train(network, tokens, mask, labels, epochs=12, mode="JAX")
    assert sequence.accuracy(predict, *sequence.make_data(128, seed=1)) >= 0.6
