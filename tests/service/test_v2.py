"""The Open Inference Protocol (v2) endpoints, checked against the protocol text.

Written from the KServe/Triton "Open Inference Protocol" REST specification and the
binary tensor data extension: health, server and model metadata, readiness,
inference with JSON tensors (flat and nested data), requested outputs, datatypes,
the binary extension in both directions, and the error answers.
"""
import json

import numpy as np
import pytest

from service.config import Settings

from .conftest import reference_clf, reference_hidden, reference_pair, write_clf, write_version

X = np.array([[0.5, -1.0, 2.0, 0.25], [1.0, 0.0, -0.5, 3.0]], dtype=np.float32)


def infer_body(data=None, *, shape=(2, 4), datatype="FP32", name="input", **extra):
    data = X.ravel().tolist() if data is None else data
    return {"inputs": [{"name": name, "shape": list(shape), "datatype": datatype, "data": data}],
            **extra}


def binary_request(arrays, datatypes, header_extra=None):
    """(body, headers) with every array sent as binary data after the JSON header."""
    inputs = [
        {"name": name, "shape": list(a.shape), "datatype": dt,
         "parameters": {"binary_data_size": a.nbytes}}
        for (name, a), dt in zip(arrays.items(), datatypes)
    ]
    header = json.dumps({"inputs": inputs, **(header_extra or {})}).encode()
    body = header + b"".join(a.tobytes() for a in arrays.values())
    return body, {"Inference-Header-Content-Length": str(len(header)),
                  "Content-Type": "application/octet-stream"}


def split_response(response):
    length = int(response.headers["inference-header-content-length"])
    return json.loads(response.content[:length]), response.content[length:]


def close(actual, expected):
    expected = np.asarray(expected)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5 * max(1, np.abs(expected).max()))


class TestHealthAndMetadata:
    def test_live_and_ready(self, client):
        assert client.get("/v2/health/live").json() == {"live": True}
        ready = client.get("/v2/health/ready")
        assert ready.status_code == 200 and ready.json() == {"ready": True}

    def test_server_metadata(self, client):
        body = client.get("/v2").json()
        assert body["name"] == "forge" and body["version"]
        assert "binary_tensor_data" in body["extensions"]

    def test_model_metadata(self, client):
        body = client.get("/v2/models/clf").json()
        assert body["name"] == "clf" and body["versions"] == ["1"]
        assert body["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
        assert body["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 3]}]
        assert body["parameters"]["layers"] == ["input", "hidden", "output"]
        assert body["parameters"]["labels"] == ["cat", "dog", "bird"]

    def test_model_ready(self, client):
        assert client.get("/v2/models/pair/ready").json() == {"name": "pair", "ready": True}
        assert client.get("/v2/models/pair/versions/1/ready").status_code == 200

    @pytest.mark.parametrize("path", ["/v2/models/nope", "/v2/models/nope/ready",
                                      "/v2/models/clf/versions/9", "/v2/models/clf/versions/x/ready",
                                      "/v2/models/clf/versions/\u00b2", "/v2/models/clf/versions/"
                                      + "9" * 5000])
    def test_unknown_model_or_version_is_404(self, client, path):
        response = client.get(path)
        assert response.status_code == 404
        assert set(response.json()) == {"error"}


class TestInferJson:
    def test_flat_data(self, client):
        response = client.post("/v2/models/clf/infer", json=infer_body(id="req-1"))
        assert response.status_code == 200
        body = response.json()
        assert (body["model_name"], body["model_version"], body["id"]) == ("clf", "1", "req-1")
        [output] = body["outputs"]
        assert (output["name"], output["datatype"], output["shape"]) == ("output", "FP32", [2, 3])
        close(np.reshape(output["data"], (2, 3)), reference_clf(X))

    def test_nested_data(self, client):
        response = client.post("/v2/models/clf/infer", json=infer_body(X.tolist()))
        close(np.reshape(response.json()["outputs"][0]["data"], (2, 3)), reference_clf(X))

    def test_no_id_no_id_in_answer(self, client):
        assert "id" not in client.post("/v2/models/clf/infer", json=infer_body()).json()

    def test_requested_outputs_may_be_intermediate_layers(self, client):
        body = infer_body(outputs=[{"name": "hidden"}, {"name": "output"}])
        outputs = client.post("/v2/models/clf/infer", json=body).json()["outputs"]
        assert [o["name"] for o in outputs] == ["hidden", "output"]
        close(np.reshape(outputs[0]["data"], (2, 5)), reference_hidden(X))

    def test_two_inputs(self, client):
        a, b = X[:, :2], X[:, 1:]
        body = {"inputs": [
            {"name": "b", "shape": [2, 3], "datatype": "FP32", "data": b.ravel().tolist()},
            {"name": "a", "shape": [2, 2], "datatype": "FP32", "data": a.ravel().tolist()},
        ]}
        data = client.post("/v2/models/pair/infer", json=body).json()["outputs"][0]["data"]
        close(np.reshape(data, (2, 2)), reference_pair(a, b))

    def test_version_path(self, client):
        response = client.post("/v2/models/clf/versions/1/infer", json=infer_body())
        assert response.status_code == 200 and response.json()["model_version"] == "1"

    @pytest.mark.parametrize("datatype, data", [
        ("FP64", X.astype(np.float64).ravel().tolist()),
        ("FP16", X.astype(np.float16).astype(float).ravel().tolist()),
        ("INT32", [1, 2, 3, 4, -1, -2, -3, -4]),
        ("INT64", [1, 2, 3, 4, -1, -2, -3, 2**24]),
        ("UINT8", [1, 2, 3, 4, 5, 6, 7, 8]),
        ("BOOL", [True, False, True, False, False, True, True, True]),
    ])
    def test_datatypes_converted_when_safe(self, client, datatype, data):
        response = client.post("/v2/models/clf/infer", json=infer_body(data, datatype=datatype))
        assert response.status_code == 200, response.text
        close(np.reshape(response.json()["outputs"][0]["data"], (2, 3)),
              reference_clf(np.reshape(np.asarray(data, dtype=np.float32), (2, 4))))


class TestBinaryExtension:
    def test_binary_input_json_output(self, client):
        body, headers = binary_request({"input": X}, ["FP32"])
        response = client.post("/v2/models/clf/infer", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert "inference-header-content-length" not in response.headers
        close(np.reshape(response.json()["outputs"][0]["data"], (2, 3)), reference_clf(X))

    def test_binary_output_for_all(self, client):
        body, headers = binary_request({"input": X}, ["FP32"],
                                       {"parameters": {"binary_data_output": True}})
        response = client.post("/v2/models/clf/infer", content=body, headers=headers)
        header, data = split_response(response)
        [output] = header["outputs"]
        assert "data" not in output and output["parameters"]["binary_data_size"] == 24 == len(data)
        close(np.frombuffer(data, "<f4").reshape(2, 3), reference_clf(X))

    def test_binary_output_per_output_with_json_input(self, client):
        body = infer_body(outputs=[{"name": "hidden", "parameters": {"binary_data": True}},
                                   {"name": "output", "parameters": {"binary_data": False}}])
        header, data = split_response(client.post("/v2/models/clf/infer", json=body))
        hidden, output = header["outputs"]
        assert hidden["parameters"]["binary_data_size"] == len(data) == 40
        close(np.frombuffer(data, "<f4").reshape(2, 5), reference_hidden(X))
        close(np.reshape(output["data"], (2, 3)), reference_clf(X))

    def test_binary_fp64_and_int_inputs(self, client):
        a, b = X[:, :2].astype(np.float64), np.array([[1, 2, 3], [4, 5, 6]], dtype="<i4")
        body, headers = binary_request({"a": a, "b": b}, ["FP64", "INT32"])
        data = client.post("/v2/models/pair/infer", content=body, headers=headers).json()
        close(np.reshape(data["outputs"][0]["data"], (2, 2)), reference_pair(a, b))

    @pytest.mark.parametrize("mutate, message", [
        (lambda body, n: (body[:-4], n), "only 28 follow"),
        (lambda body, n: (body + b"\0\0\0\0", n), "4 bytes of binary data follow"),
        (lambda body, n: (body, str(len(body) + 1)), "Inference-Header-Content-Length"),
        (lambda body, n: (body, "abc"), "Inference-Header-Content-Length"),
        (lambda body, n: (body, str(int(n) - 1)), "malformed JSON"),
    ])
    def test_bad_binary_framing_is_400(self, client, mutate, message):
        body, headers = binary_request({"input": X}, ["FP32"])
        body, headers["Inference-Header-Content-Length"] = mutate(
            body, headers["Inference-Header-Content-Length"])
        response = client.post("/v2/models/clf/infer", content=body, headers=headers)
        assert response.status_code == 400
        assert message in response.json()["error"]

    def test_size_must_match_shape(self, client):
        header = json.dumps({"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32",
                                         "parameters": {"binary_data_size": 16}}]}).encode()
        response = client.post("/v2/models/clf/infer", content=header + X.tobytes()[:16],
                               headers={"Inference-Header-Content-Length": str(len(header))})
        assert response.status_code == 400 and "needs 32" in response.json()["error"]

    def test_gzip_request(self, client):
        import gzip

        response = client.post(
            "/v2/models/clf/infer", content=gzip.compress(json.dumps(infer_body()).encode()),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
        assert response.status_code == 200, response.text

    def test_truncated_gzip_is_400(self, client):
        import gzip

        whole = gzip.compress(json.dumps(infer_body()).encode())
        response = client.post(
            "/v2/models/clf/infer", content=whole[:-8],  # the CRC and length trailer cut off
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
        assert response.status_code == 400 and "gzip" in response.json()["error"]


BAD_INPUTS = [
    # (request body, status, part of the message)
    (infer_body(shape=(2, 3), data=[0.0] * 6), 400, "expected shape (None, 4)"),
    (infer_body(shape=(2, 4), data=[0.0] * 7), 400, "needs 8 elements, 'data' has 7"),
    (infer_body(data=[[0.0] * 4, [0.0] * 3]), 400, "ragged"),
    (infer_body(data=["a"] * 8), 400, "is a string"),
    (infer_body(datatype="BYTES"), 400, "'BYTES' is not supported"),
    (infer_body(datatype="COMPLEX"), 400, "'COMPLEX' is unknown"),
    (infer_body(datatype="INT32", data=[0.5] * 8), 400, "needs integers"),
    (infer_body(datatype="INT64", data=[2**25] * 8), 400, "cannot be converted exactly"),
    (infer_body(datatype="INT8", data=[300] * 8), 400, "outside the INT8 range"),
    (infer_body(datatype="BOOL", data=[1] * 8), 400, "true/false"),
    (infer_body(data=[1e39] * 8), 400, "overflows float32"),
    (infer_body(name="other"), 400, "unexpected input 'other'"),
    ({"inputs": []}, 400, "inputs"),
    ({"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32"}]}, 400, "neither 'data'"),
    ({"inputs": [{"name": "input", "shape": [-2, 4], "datatype": "FP32", "data": []}]}, 400,
     "greater than or equal to 0"),
    ({"inputs": "x"}, 400, "inputs"),
    ([1, 2], 400, "JSON object"),
    (infer_body(outputs=[{"name": "nope"}]), 400, "unknown output layer 'nope'"),
    (infer_body(outputs=[{"name": "output", "parameters": {"classification": 2}}]), 400,
     "classification"),
    (infer_body(shape=(2000, 4), data=[0.0] * 8000), 413, "max_batch_size"),
    # an empty tensor with an absurd axis: refused before numpy is asked to shape it
    (infer_body(shape=(0, 10**30), data=[]), 413, "max_elements"),
    # integers mixed with one beyond 2**53 arrive as float64, which rounds 2**64 - 1 up
    # to 2**64: out of range, not silently wrapped to 0
    (infer_body(datatype="UINT64", data=[2**64 - 1] + [1] * 7), 400, "outside the UINT64 range"),
]


class TestBadInput:
    @pytest.mark.parametrize("body, status, message", BAD_INPUTS)
    def test_bad_input(self, client, body, status, message):
        response = client.post("/v2/models/clf/infer", json=body)
        assert response.status_code == status, response.text
        assert message in response.json()["error"]

    def test_nan_and_infinity_are_rejected_by_default(self, client):
        body = json.dumps(infer_body([float("nan")] + [0.0] * 7))
        assert "NaN" in body
        response = client.post("/v2/models/clf/infer", content=body,
                               headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and "non-finite" in response.json()["error"]
        x = X.copy()
        x[1, 2] = np.inf
        body, headers = binary_request({"input": x}, ["FP32"])
        response = client.post("/v2/models/clf/infer", content=body, headers=headers)
        assert response.status_code == 400 and "first at [1][2]" in response.json()["error"]

    def test_nan_allowed_when_configured(self, make_client, settings):
        client = make_client(settings.model_copy(update={"allow_nonfinite": True}))
        body = json.dumps(infer_body([float("nan")] + [0.0] * 7))
        response = client.post("/v2/models/clf/infer", content=body,
                               headers={"Content-Type": "application/json"})
        assert response.status_code == 200
        assert response.json()["outputs"][0]["data"][:3] == ["NaN", "NaN", "NaN"]

    def test_malformed_json(self, client):
        response = client.post("/v2/models/clf/infer", content=b'{"inputs": [',
                               headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and "malformed JSON" in response.json()["error"]

    def test_wrong_content_type(self, client):
        response = client.post("/v2/models/clf/infer", content=json.dumps(infer_body()),
                               headers={"Content-Type": "text/plain"})
        assert response.status_code == 415 and "text/plain" in response.json()["error"]

    def test_unknown_content_encoding(self, client):
        response = client.post("/v2/models/clf/infer", content=b"{}",
                               headers={"Content-Encoding": "br"})
        assert response.status_code == 415

    def test_too_many_elements(self, make_client, settings):
        client = make_client(settings.model_copy(update={"max_elements": 4}))
        response = client.post("/v2/models/clf/infer", json=infer_body())
        assert response.status_code == 413 and "max_elements" in response.json()["error"]

    def test_body_over_the_limit(self, make_client, settings):
        client = make_client(settings.model_copy(update={"max_body_bytes": 64}))
        response = client.post("/v2/models/clf/infer", json=infer_body())
        assert response.status_code == 413 and "max_body_bytes" in response.json()["error"]

    @pytest.mark.parametrize("path", ["/v2/models/nope/infer", "/v2/models/clf/versions/3/infer",
                                      "/v2/models/..%2Fetc/infer"])
    def test_unknown_model_or_version(self, client, path):
        response = client.post(path, json=infer_body())
        assert response.status_code == 404 and set(response.json()) == {"error"}

    def test_wrong_method(self, client):
        assert client.get("/v2/models/clf/infer").status_code == 405


def test_versions_of_a_model(make_client, tmp_path):
    for version in (1, 2, 10):
        write_version(tmp_path, "clf", version)
    write_clf(tmp_path / "flat.npz")
    client = make_client(Settings(model_repository=tmp_path, version_policy="all"))
    assert client.get("/v2/models/clf").json()["versions"] == ["1", "2", "10"]
    assert client.post("/v2/models/clf/infer", json=infer_body()).json()["model_version"] == "10"
    assert client.post("/v2/models/clf/versions/2/infer",
                       json=infer_body()).json()["model_version"] == "2"
    assert client.get("/v2/models/flat").json()["versions"] == ["1"]
