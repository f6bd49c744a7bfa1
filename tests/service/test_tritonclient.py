"""The real tritonclient (HTTP) against a live server: JSON and binary tensors both ways."""
import numpy as np
import pytest

from service.config import Settings

from .conftest import reference_clf, reference_hidden, reference_pair, write_version

httpclient = pytest.importorskip(
    "tritonclient.http", reason="tritonclient[http] is not installed (pip install 'tritonclient[http]')"
)
from tritonclient.utils import InferenceServerException  # noqa: E402

X = np.random.default_rng(3).normal(size=(3, 4)).astype(np.float32)


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5 * max(1, np.abs(expected).max()))


@pytest.fixture
def triton(live_server, bundle_dir):
    server = live_server(Settings(model_repository=bundle_dir))
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}")
    yield client
    client.close()


def test_health_and_metadata(triton):
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready("clf") and not triton.is_model_ready("nope")
    assert triton.get_server_metadata()["name"] == "forge"
    metadata = triton.get_model_metadata("clf")
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]


@pytest.mark.parametrize("binary_in", [False, True])
@pytest.mark.parametrize("binary_out", [False, True])
def test_infer(triton, binary_in, binary_out):
    tensor = httpclient.InferInput("input", list(X.shape), "FP32")
    tensor.set_data_from_numpy(X, binary_data=binary_in)
    outputs = [httpclient.InferRequestedOutput("output", binary_data=binary_out),
               httpclient.InferRequestedOutput("hidden", binary_data=binary_out)]
    result = triton.infer("clf", [tensor], outputs=outputs, request_id="r7")
    assert result.get_response()["id"] == "r7"
    close(result.as_numpy("output"), reference_clf(X))
    close(result.as_numpy("hidden"), reference_hidden(X))


def test_infer_default_outputs_and_fp64(triton):
    a = X[:, :2].astype(np.float64)
    b = X[:, 1:].astype(np.float64)
    inputs = [httpclient.InferInput("a", list(a.shape), "FP64"),
              httpclient.InferInput("b", list(b.shape), "FP64")]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(b, binary_data=False)
    result = triton.infer("pair", inputs)  # no outputs named: tritonclient asks for binary
    close(result.as_numpy("output"), reference_pair(a, b))


def test_errors_surface_as_exceptions(triton):
    tensor = httpclient.InferInput("input", [1, 3], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 3), np.float32))
    with pytest.raises(InferenceServerException, match="expected shape"):
        triton.infer("clf", [tensor])
    with pytest.raises(InferenceServerException, match="no model named 'zzz'"):
        triton.infer("zzz", [tensor])


def test_repository_extension(live_server, tmp_path):
    write_version(tmp_path, "clf", 1)
    server = live_server(Settings(model_repository=tmp_path))
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}")
    try:
        write_version(tmp_path, "clf", 2)
        client.load_model("clf")
        assert client.get_model_metadata("clf")["versions"] == ["2"]
        index = client.get_model_repository_index()
        assert [(m["name"], m["version"], m["state"]) for m in index] == [("clf", "2", "READY")]
        client.unload_model("clf")
        assert not client.is_model_ready("clf")
        client.load_model("clf")
        assert client.is_model_ready("clf", "2")
    finally:
        client.close()
