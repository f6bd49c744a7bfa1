"""POST /models/{name}/predict: the happy paths and every bad request."""
import json

import numpy as np
import pytest

from service.inference import decode_tensor, encode_tensor
from service.errors import InvalidInputError

from .conftest import LABELS, reference_clf, reference_hidden, reference_pair

X = [[0.5, -1.0, 2.0, 0.25], [1.5, 0.0, -0.5, 1.0], [-2.0, 0.3, 0.1, 0.7]]


def predict(client, body, model="clf"):
    return client.post(f"/models/{model}/predict", json=body)


def predict_raw(client, text, model="clf", content_type="application/json"):
    return client.post(
        f"/models/{model}/predict", content=text, headers={"content-type": content_type}
    )


def assert_error(response, status, *fragments):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    for fragment in fragments:
        assert fragment in body["error"], (fragment, body["error"])


class TestPredict:
    def test_inputs_form_returns_outputs_and_labels(self, client):
        response = predict(client, {"inputs": {"input": X}})
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"model", "outputs", "predictions"}
        assert body["model"] == "clf"
        assert list(body["outputs"]) == ["output"]
        expected = reference_clf(X)
        np.testing.assert_allclose(body["outputs"]["output"], expected, rtol=1e-5, atol=1e-6)
        assert body["predictions"] == [LABELS[i] for i in expected.argmax(axis=1)]

    def test_instances_form_equals_inputs_form(self, client):
        by_inputs = predict(client, {"inputs": {"input": X}}).json()
        by_instances = predict(client, {"instances": X})
        assert by_instances.status_code == 200
        assert by_instances.json() == by_inputs

    def test_integer_and_boolean_data_are_converted(self, client):
        response = predict(client, {"instances": [[1, 0, 2, 3], [True, False, True, 1]]})
        assert response.status_code == 200
        np.testing.assert_allclose(
            response.json()["outputs"]["output"],
            reference_clf([[1, 0, 2, 3], [1, 0, 1, 1]]),
            rtol=1e-5,
        )

    def test_intermediate_output_only(self, client):
        response = predict(client, {"inputs": {"input": X}, "outputs": ["hidden"]})
        assert response.status_code == 200
        body = response.json()
        assert list(body["outputs"]) == ["hidden"]
        assert "predictions" not in body  # labels belong to the model's output only
        np.testing.assert_allclose(body["outputs"]["hidden"], reference_hidden(X), rtol=1e-5, atol=1e-6)

    def test_intermediate_and_final_outputs_in_request_order(self, client):
        body = predict(
            client, {"instances": X, "outputs": ["output", "hidden", "input", "hidden"]}
        ).json()
        assert list(body["outputs"]) == ["output", "hidden", "input"]
        np.testing.assert_allclose(body["outputs"]["input"], X, rtol=1e-6)
        assert len(body["predictions"]) == 3

    def test_multi_input_model(self, client):
        a = [[1.0, 2.0], [0.0, -1.0]]
        b = [[0.5, 0.5, 0.5], [1.0, 2.0, 3.0]]
        response = predict(client, {"inputs": {"a": a, "b": b}}, model="pair")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"model", "outputs"}  # no labels in its metadata
        np.testing.assert_allclose(body["outputs"]["output"], reference_pair(a, b), rtol=1e-5, atol=1e-6)

    def test_multi_input_intermediate_concat(self, client):
        a, b = [[1.0, 2.0]], [[3.0, 4.0, 5.0]]
        body = predict(client, {"inputs": {"a": a, "b": b}, "outputs": ["concat"]}, "pair").json()
        assert body["outputs"] == {"concat": [[1.0, 2.0, 3.0, 4.0, 5.0]]}

    def test_no_predictions_when_labels_do_not_fit_the_output(self, make_client, tmp_path):
        from service.config import Settings

        from .conftest import write_clf

        write_clf(tmp_path / "odd.npz", labels=["only", "two"])
        client = make_client(Settings(model_path=tmp_path))
        body = predict(client, {"instances": X}, model="odd").json()
        assert "predictions" not in body

    def test_nonfinite_allowed_when_configured(self, make_client, settings):
        client = make_client(settings.model_copy(update={"allow_nonfinite": True}))
        response = predict_raw(client, '{"instances": [[NaN, 0, 0, 0], [1, 2, 3, 4]]}')
        assert response.status_code == 200
        first, second = response.json()["outputs"]["output"]
        assert first == ["NaN", "NaN", "NaN"]
        assert all(isinstance(v, float) for v in second)


class TestBadRequests:
    def test_unknown_model(self, client):
        assert_error(predict(client, {"instances": X}, model="nope"), 404, "'nope'")

    def test_malformed_json(self, client):
        assert_error(predict_raw(client, '{"instances": [[1, 2,'), 400, "malformed JSON")

    def test_not_json_content_type(self, client):
        response = predict_raw(client, json.dumps({"instances": X}), content_type="text/plain")
        assert_error(response, 415, "application/json", "text/plain")

    def test_empty_body(self, client):
        assert_error(predict_raw(client, ""), 422, "request body is missing")

    def test_body_not_an_object(self, client):
        assert_error(predict(client, [1, 2, 3]), 422, "must be a JSON object")

    def test_neither_inputs_nor_instances(self, client):
        assert_error(predict(client, {"outputs": ["output"]}), 422, "exactly one of 'inputs'")

    def test_both_inputs_and_instances(self, client):
        response = predict(client, {"inputs": {"input": X}, "instances": X})
        assert_error(response, 422, "exactly one of 'inputs'")

    def test_unexpected_field(self, client):
        assert_error(predict(client, {"instances": X, "signature": "x"}), 422, "unexpected field 'signature'")

    def test_inputs_not_an_object(self, client):
        assert_error(predict(client, {"inputs": X}), 422, "inputs")

    def test_outputs_not_strings(self, client):
        assert_error(predict(client, {"instances": X, "outputs": [1]}), 422, "outputs[0]", "string")

    def test_empty_outputs_list(self, client):
        assert_error(predict(client, {"instances": X, "outputs": []}), 422, "outputs")

    def test_empty_instances(self, client):
        assert_error(predict(client, {"instances": []}), 422, "instances")

    def test_unknown_output_layer(self, client):
        response = predict(client, {"instances": X, "outputs": ["output", "dense_9"]})
        assert_error(response, 422, "unknown output layer 'dense_9'", "input, hidden, output")

    def test_wrong_width(self, client):
        response = predict(client, {"inputs": {"input": [[1.0, 2.0, 3.0]]}})
        assert_error(response, 422, "input")
        assert "4" in response.json()["error"] and "3" in response.json()["error"]

    def test_wrong_rank(self, client):
        assert_error(predict(client, {"inputs": {"input": [1.0, 2.0, 3.0, 4.0]}}), 422, "input")

    def test_scalar_input(self, client):
        assert_error(predict(client, {"inputs": {"input": 1.0}}), 422, "input")

    def test_missing_input(self, client):
        response = predict(client, {"inputs": {"a": [[1.0, 2.0]]}}, model="pair")
        assert_error(response, 422, "'b'")

    def test_extra_input(self, client):
        response = predict(client, {"inputs": {"input": X, "extra": [[1.0]]}})
        assert_error(response, 422, "extra")

    def test_inputs_with_different_batch_sizes(self, client):
        body = {"inputs": {"a": [[1.0, 2.0]], "b": [[1.0, 2.0, 3.0]] * 2}}
        assert_error(predict(client, body, model="pair"), 422, "concat")

    def test_instances_on_a_multi_input_model(self, client):
        response = predict(client, {"instances": [[1.0, 2.0]]}, model="pair")
        assert_error(response, 422, "single-input", "'a', 'b'")

    @pytest.mark.parametrize(
        "text, fragment",
        [
            ('{"instances": [[NaN, 0, 0, 0]]}', "nan"),
            ('{"instances": [[0, Infinity, 0, 0]]}', "inf"),
            ('{"instances": [[0, 0, -Infinity, 0]]}', "-inf"),
            ('{"instances": [[0, 0, 0, 1e999]]}', "inf"),
        ],
    )
    def test_nonfinite_values_rejected(self, client, text, fragment):
        response = predict_raw(client, text)
        assert_error(response, 422, "non-finite", "'input'", fragment)

    def test_float32_overflow_rejected(self, client):
        response = predict(client, {"instances": [[0, 0, 0, 1e39]]})
        assert_error(response, 422, "non-finite", "overflows float32", "[0][3]")

    def test_string_value(self, client):
        response = predict(client, {"instances": [[0, 1, "2", 3]]})
        assert_error(response, 422, "'input'", "[0][2] is a string ('2')", "expected a number")

    def test_null_value(self, client):
        response = predict(client, {"instances": [[0, 1, 2, None]]})
        assert_error(response, 422, "[0][3] is null")

    def test_object_value(self, client):
        response = predict(client, {"inputs": {"input": [[0, 1, 2, {"x": 1}]]}})
        assert_error(response, 422, "[0][3] is an object")

    def test_huge_integer(self, client):
        response = predict(client, {"instances": [[0, 1, 2, 10**30]]})
        assert_error(response, 422, "[0][3] is an integer", "64-bit")

    def test_ragged_rows(self, client):
        response = predict(client, {"instances": [[0, 1, 2, 3], [0, 1, 2]]})
        assert_error(response, 422, "ragged", "[1] is a list of 3", "[0] is a list of 4")

    def test_ragged_number_and_list(self, client):
        response = predict(client, {"instances": [[0, 1, 2, 3], 5]})
        assert_error(response, 422, "ragged", "[1] is a number")

    def test_too_many_rows(self, make_client, settings):
        client = make_client(settings.model_copy(update={"max_batch_size": 2}))
        assert_error(predict(client, {"instances": X}), 413, "3 rows", "at most 2")

    def test_too_many_elements(self, make_client, settings):
        client = make_client(settings.model_copy(update={"max_elements": 10}))
        assert_error(predict(client, {"instances": X}), 413, "more than 10 numbers")

    def test_too_many_elements_summed_over_inputs(self, make_client, settings):
        client = make_client(settings.model_copy(update={"max_elements": 8}))
        body = {"inputs": {"a": [[1.0, 2.0]] * 2, "b": [[1.0, 2.0, 3.0]] * 2}}
        assert_error(predict(client, body, model="pair"), 413, "more than 8 numbers")

    def test_get_is_not_allowed(self, client):
        assert_error(client.get("/models/clf/predict"), 405, "GET", "POST")


class TestEncoding:
    def test_nonfinite_outputs_become_strings(self):
        out = encode_tensor(np.array([[1.5, np.nan], [np.inf, -np.inf]], dtype=np.float32))
        assert out == [[1.5, "NaN"], ["Infinity", "-Infinity"]]
        assert json.loads(json.dumps(out)) == out

    def test_finite_outputs_are_plain_numbers(self):
        assert encode_tensor(np.arange(3, dtype=np.float64)) == [0.0, 1.0, 2.0]

    def test_decode_names_the_input(self):
        with pytest.raises(InvalidInputError, match="input 'pixels': ragged"):
            decode_tensor("pixels", [[1], [2, 3]])
