"""forge.export: the manifest it writes, what it refuses, its parity check."""
import json
import os
import zipfile

import numpy as np
import pytensor.tensor as T
import pytest

import forge
import runtime
from forge import layers as L
from forge.export import ExportError, ParityError


@pytest.fixture
def mlp():
    l_in = L.InputLayer((None, 10))
    l_hid = L.DenseLayer(l_in, num_units=8, name="hidden")
    l_drop = L.DropoutLayer(l_hid, p=0.5)
    return L.DenseLayer(l_drop, num_units=3, nonlinearity=forge.nonlinearities.softmax)


class TestManifest:
    def test_contents(self, mlp, tmp_path):
        path = tmp_path / "m.npz"
        manifest = forge.export(mlp, path, metadata={"labels": ["a", "b", "c"]})
        with zipfile.ZipFile(path) as zf:
            on_disk = json.loads(zf.read("manifest.json"))
        assert on_disk == json.loads(json.dumps(manifest))
        assert on_disk["format_version"] == 1
        assert [lay["name"] for lay in on_disk["layers"]] == ["input", "hidden", "dropout_1", "output"]
        assert on_disk["inputs"] == [{"name": "input", "dtype": "float32", "shape": [None, 10]}]
        assert on_disk["outputs"] == [{"name": "output", "dtype": "float32", "shape": [None, 3]}]
        assert on_disk["metadata"] == {"labels": ["a", "b", "c"]}
        assert on_disk["layers"][1]["config"] == {
            "num_units": 8, "num_leading_axes": 1, "nonlinearity": {"name": "rectify"}}
        assert set(on_disk["arrays"]) == {"hidden.W", "hidden.b", "output.W", "output.b"}
        assert on_disk["parity"]["checked"] and on_disk["parity"]["max_rel_error"] <= 1e-5
        assert on_disk["created"]["pytensor"]

    def test_runtime_reproduces_forge(self, mlp, tmp_path):
        forge.export(mlp, tmp_path / "m.npz")
        model = runtime.load(tmp_path / "m.npz")
        X = np.random.default_rng(0).standard_normal((5, 10)).astype(np.float32)
        expected = L.get_output(mlp, X, deterministic=True).eval()
        np.testing.assert_allclose(model(X), expected, rtol=1e-5, atol=1e-6)

    def test_multiple_outputs_and_named_layers(self, tmp_path):
        l_in = L.InputLayer((None, 4), name="x")
        l_a = L.DenseLayer(l_in, 3, name="features")
        l_b = L.DenseLayer(l_a, 2, name="scores")
        manifest = forge.export([l_b, l_a], tmp_path / "m.npz")
        assert [o["name"] for o in manifest["outputs"]] == ["scores", "features"]

    def test_duplicate_and_unsafe_names_are_made_unique(self, tmp_path):
        l_in = L.InputLayer((None, 4), name="in put")
        l_a = L.DenseLayer(l_in, 3, name="same")
        l_b = L.DenseLayer(l_a, 2, name="same")
        manifest = forge.export(l_b, tmp_path / "m.npz")
        names = [lay["name"] for lay in manifest["layers"]]
        assert names == ["in_put", "same", "same_2"]

    def test_float_metadata_must_be_json(self, mlp, tmp_path):
        with pytest.raises(ExportError, match="JSON"):
            forge.export(mlp, tmp_path / "m.npz", metadata={"x": object()})


class TestRefusals:
    def test_unknown_callable_names_layer_and_callable(self, tmp_path):
        def my_activation(x):  # a function is lowered, unless it uses an op like gamma
            return T.gamma(x) * 2
        layer = L.DenseLayer(L.InputLayer((None, 3)), 2, nonlinearity=my_activation,
                             name="head")
        with pytest.raises(ExportError, match=r"layer 'head' \(DenseLayer\).*my_activation"
                                              r".*operation Gamma"):
            forge.export(layer, tmp_path / "m.npz")
        assert not (tmp_path / "m.npz").exists()

    def test_unknown_merge_function(self, tmp_path):
        ins = [L.InputLayer((None, 3)), L.InputLayer((None, 3))]
        layer = L.ElemwiseMergeLayer(ins, merge_function=lambda a, b: T.gamma(a) * b + 1)
        with pytest.raises(ExportError, match="merge_function '<lambda>' uses the PyTensor "
                                              "operation Gamma"):
            forge.export(layer, tmp_path / "m.npz")

    def test_subclass_is_a_new_type(self, tmp_path):
        class MyDense(L.DenseLayer):
            pass
        layer = MyDense(L.InputLayer((None, 3)), 2)
        with pytest.raises(ExportError, match="MyDense.*Supported types"):
            forge.export(layer, tmp_path / "m.npz")


class TestParityCheck:
    def test_failure_leaves_destination_untouched(self, mlp, tmp_path, monkeypatch):
        path = tmp_path / "m.npz"
        path.write_bytes(b"previous bundle")
        import runtime.model

        original = runtime.model.Model.run

        def corrupted(self, feeds, outputs=None):
            return {k: v + 1.0 for k, v in original(self, feeds, outputs).items()}

        monkeypatch.setattr(runtime.model.Model, "run", corrupted)
        with pytest.raises(ParityError, match="above the tolerance"):
            forge.export(mlp, path)
        assert path.read_bytes() == b"previous bundle"
        assert os.listdir(tmp_path) == ["m.npz"]

    def test_check_false_writes_no_parity(self, mlp, tmp_path):
        manifest = forge.export(mlp, tmp_path / "m.npz", check=False)
        assert "parity" not in manifest


@pytest.mark.filterwarnings("ignore:Explicitly requested dtype:UserWarning")  # JAX without x64
def test_check_after_training_on_the_jax_backend(tmp_path):
    """Shared variables hold JAX arrays after JAX training; the check must still compile."""
    pytest.importorskip("jax", reason="JAX backend not installed (optional)")
    import pytensor

    l_in = L.InputLayer((None, 5))
    l_out = L.DenseLayer(l_in, 3, nonlinearity=forge.nonlinearities.softmax)
    loss = L.get_output(l_out).sum()
    step = pytensor.function([l_in.input_var], loss, mode="JAX",
                             updates=forge.updates.sgd(loss, L.get_all_params(l_out), 0.1))
    step(np.ones((4, 5), np.float32))
    manifest = forge.export(l_out, tmp_path / "m.npz", mode="NUMBA")
    assert manifest["parity"]["max_rel_error"] <= 1e-5
