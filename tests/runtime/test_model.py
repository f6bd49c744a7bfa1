"""runtime.model: loading, specs, running, input errors and thread safety."""
import io
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import runtime
from runtime import BundleError, InputError, Model, TensorSpec

from .helpers import BundleBuilder, mlp_builder, mlp_reference, read_manifest


@pytest.fixture
def model(mlp):
    return runtime.load(mlp[0])


@pytest.fixture
def two_branch():
    """Inputs a (None, 3) and b (None, 3): a_out = tanh(a), b_out = 2a + b; merged = a_out + b."""
    b = BundleBuilder()
    b.input("a", [None, 3])
    b.input("b", [None, 3])
    b.layer("NonlinearityLayer", ["a"], {"nonlinearity": {"name": "tanh"}}, shape=[None, 3],
            name="a_out")
    b.layer("ElemwiseSumLayer", ["a", "b"], {"coeffs": [2.0, 1.0], "cropping": None},
            shape=[None, 3], name="b_out")
    b.output("a_out", "b_out")
    return b.load()


class TestLoad:
    def test_specs(self, model):
        assert model.inputs == [TensorSpec("input", (None, 4), np.dtype("float32"))]
        assert model.outputs == [TensorSpec("output", (None, 2), np.dtype("float32"))]
        assert isinstance(model.inputs[0].dtype, np.dtype)
        assert str(model.inputs[0]) == "input: float32 (None, 4)"

    def test_properties(self, model, mlp):
        assert model.format_version == runtime.FORMAT_VERSION == 1
        assert model.dtype == np.float32
        assert model.metadata == {"labels": ["no", "yes"]}
        assert list(model.layers) == ["input", "dense_1", "output"]
        assert model.manifest["layers"][1]["name"] == "dense_1"
        assert model.path == str(mlp[0])
        assert model.num_params == 4 * 3 + 3 + 3 * 2 + 2

    def test_returned_containers_are_copies(self, model):
        model.metadata["labels"].append("maybe")
        model.manifest["layers"].clear()
        model.inputs.clear()
        model.layers.clear()
        assert model.metadata == {"labels": ["no", "yes"]}
        assert len(model.manifest["layers"]) == 3 and len(model.inputs) == 1
        assert len(model.layers) == 3

    def test_specs_are_frozen(self, model):
        with pytest.raises(AttributeError):
            model.inputs[0].name = "other"

    def test_parameters_are_read_only(self, model):
        with pytest.raises(ValueError, match="read-only"):
            model.layers["dense_1"].W[0, 0] = 1.0

    def test_unknown_layer_type_names_it_and_the_known_ones(self, make_bundle):
        b = BundleBuilder()
        b.input("x", [None, 2])
        b.layer("NeuralODELayer", ["x"], {}, shape=[None, 2])
        with pytest.raises(BundleError, match=r"unknown layer type 'NeuralODELayer'; this runtime "
                                              r"knows .*DenseLayer.*InputLayer") as info:
            runtime.load(make_bundle(b, "lstm.npz"))
        assert "lstm.npz" in str(info.value)

    @pytest.mark.parametrize("config, params, match", [
        ({"num_units": 3, "num_leading_axes": 1, "nonlinearity": {"name": "rectify"}},
         {"W": np.zeros((2, 4)), "b": None}, r"W must have shape \(inputs, 3\)"),
        ({"num_units": 3, "num_leading_axes": 1, "nonlinearity": {"name": "swish"}},
         {"W": np.zeros((2, 3)), "b": None}, "unknown nonlinearity 'swish'"),
        ({"num_units": 3, "nonlinearity": {"name": "rectify"}},
         {"W": np.zeros((2, 3)), "b": None}, "missing config key 'num_leading_axes'"),
        ({"num_units": 3, "num_leading_axes": 1, "nonlinearity": {"name": "linear"}, "p": 1},
         {"W": np.zeros((2, 3)), "b": None}, "unexpected config key 'p'"),
        ({"num_units": 3, "num_leading_axes": 1, "nonlinearity": {"name": "linear"}},
         {"W": None, "b": None}, "parameter 'W' is required but null"),
        ({"num_units": 3, "num_leading_axes": 1, "nonlinearity": {"name": "linear"}},
         {"W": np.zeros((2, 3))}, "missing parameter 'b'"),
    ])
    def test_bad_layer_entries_name_the_layer(self, make_bundle, config, params, match):
        b = BundleBuilder()
        b.input("x", [None, 2])
        b.layer("DenseLayer", ["x"], config, params, shape=[None, 3], name="fc")
        with pytest.raises(BundleError, match=r"layer 'fc' \(DenseLayer\): " + match):
            runtime.load(make_bundle(b))

    def test_wrong_number_of_inputs(self, make_bundle):
        b = BundleBuilder()
        b.input("x", [None, 2])
        b.input("y", [None, 2])
        b.layer("NonlinearityLayer", ["x", "y"], {"nonlinearity": {"name": "tanh"}},
                shape=[None, 2], name="nl")
        with pytest.raises(BundleError, match=r"layer 'nl' \(NonlinearityLayer\): takes 1 "
                                              r"input\(s\), got 2"):
            runtime.load(make_bundle(b))

    def test_load_from_a_file_object(self, mlp):
        model = runtime.load(io.BytesIO(mlp[0].read_bytes()))
        assert model.path is None
        assert model(np.zeros((1, 4))).shape == (1, 2)

    def test_verify_false_skips_digests_only(self, mlp, tmp_path):
        from .helpers import rewrite_zip
        from .test_bundle import npy_bytes

        W = mlp[1]["W1"] * 0
        bad = rewrite_zip(mlp[0], tmp_path / "bad.npz", replace={"dense_1.W.npy": npy_bytes(W)})
        with pytest.raises(BundleError, match="does not match its sha256"):
            runtime.load(bad)
        np.testing.assert_array_equal(runtime.load(bad, verify=False).layers["dense_1"].W, W)

    def test_model_from_manifest_and_arrays_in_memory(self):
        manifest, arrays = mlp_builder()[0].build()
        from runtime.bundle import array_digest
        manifest["arrays"] = {k: {"shape": list(a.shape), "dtype": a.dtype.name,
                                  "sha256": array_digest(a)} for k, a in arrays.items()}
        model = Model(manifest, arrays)
        assert model.path is None and "(in memory)" in repr(model)
        assert model(np.zeros((1, 4))).shape == (1, 2)

    def test_shared_arrays_are_counted_once(self, make_bundle):
        b = BundleBuilder()
        b.input("x", [None, 3])
        W = np.eye(3, dtype=np.float32) * 2
        first = b.layer("DenseLayer", ["x"], {"num_units": 3, "num_leading_axes": 1,
                                               "nonlinearity": {"name": "linear"}},
                        {"W": W, "b": None}, shape=[None, 3], name="first")
        b.layer("DenseLayer", [first], {"num_units": 3, "num_leading_axes": 1,
                                         "nonlinearity": {"name": "linear"}},
                {"W": "first.W", "b": None}, shape=[None, 3], name="second")
        model = runtime.load(make_bundle(b))
        assert model.num_params == 9
        np.testing.assert_array_equal(model(np.ones((1, 3))), [[4, 4, 4]])


class TestRun:
    def test_call_matches_the_reference(self, model, mlp):
        x = np.random.default_rng(1).standard_normal((7, 4)).astype(np.float32)
        y = model(x)
        assert y.shape == (7, 2) and y.dtype == np.float32
        np.testing.assert_allclose(y, mlp_reference(x, mlp[1])[1], rtol=1e-5, atol=1e-6)

    def test_run_returns_a_dict_of_the_declared_outputs(self, model):
        result = model.run({"input": np.zeros((2, 4))})
        assert list(result) == ["output"]

    def test_intermediate_outputs(self, model, mlp):
        x = np.random.default_rng(2).standard_normal((3, 4))
        result = model.run({"input": x}, outputs=["dense_1", "output", "input"])
        assert list(result) == ["dense_1", "output", "input"]
        hidden, probabilities = mlp_reference(x.astype(np.float32), mlp[1])
        np.testing.assert_allclose(result["dense_1"], hidden, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(result["output"], probabilities, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(result["input"], x.astype(np.float32))

    def test_only_the_needed_layers_run(self, two_branch):
        a = np.ones((2, 3))
        assert list(two_branch.run({"a": a}, outputs=["a_out"])) == ["a_out"]
        with pytest.raises(InputError, match="missing input 'b'"):
            two_branch.run({"a": a})

    def test_a_branch_that_would_fail_is_not_evaluated(self, make_bundle):
        b = BundleBuilder()
        b.input("x", [None, 3])
        b.layer("DimshuffleLayer", ["x"], {"pattern": [0]}, shape=[None], name="bad")
        b.layer("NonlinearityLayer", ["x"], {"nonlinearity": {"name": "abs"}}, shape=[None, 3],
                name="good")
        b.output("good", "bad")
        model = runtime.load(make_bundle(b))
        np.testing.assert_array_equal(model.run({"x": -np.ones((2, 3))}, ["good"])["good"],
                                      np.ones((2, 3)))
        with pytest.raises(InputError, match=r"layer 'bad' \(DimshuffleLayer\) cannot take "
                                             r"input of shape \(2, 3\): .*drops axis 1"):
            model.run({"x": np.ones((2, 3))})

    def test_float64_bundle_computes_in_float64(self, make_bundle):
        builder, params = mlp_builder(dtype="float64")
        model = runtime.load(make_bundle(builder))
        x = np.random.default_rng(3).standard_normal((5, 4))
        y = model(x.astype(np.float32))
        assert model.dtype == np.float64 and y.dtype == np.float64
        np.testing.assert_allclose(y, mlp_reference(x.astype(np.float32), params)[1],
                                   rtol=1e-12)

    def test_float32_when_the_bundle_names_no_dtype(self, tmp_path):
        from .helpers import rewrite_zip

        builder, _ = mlp_builder(dtype="float64")
        path = builder.write(tmp_path / "m.npz")
        manifest = read_manifest(path)
        del manifest["dtype"]
        for spec in manifest["inputs"] + manifest["outputs"]:
            spec["dtype"] = "float32"
        model = runtime.load(rewrite_zip(path, tmp_path / "no-dtype.npz", manifest=manifest))
        assert model.dtype == np.float32
        assert model.layers["dense_1"].W.dtype == np.float32
        assert model(np.ones((1, 4))).dtype == np.float32

    @pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int64, np.uint8, bool])
    def test_real_inputs_are_converted_to_the_declared_dtype(self, model, mlp, dtype):
        x = (np.arange(8).reshape(2, 4) % 3).astype(dtype)
        y = model(x)
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, mlp_reference(x.astype(np.float32), mlp[1])[1],
                                   rtol=1e-5, atol=1e-6)

    def test_nested_lists_are_accepted(self, model):
        assert model([[0, 1, 2, 3]]).shape == (1, 2)

    def test_empty_batch(self, model):
        assert model(np.zeros((0, 4))).shape == (0, 2)

    def test_the_callers_arrays_are_not_modified(self, make_bundle):
        b = BundleBuilder()
        b.input("x", [None, 3])
        b.layer("DropoutLayer", ["x"], {}, shape=[None, 3], name="drop")
        b.layer("ElemwiseSumLayer", ["drop"], {"coeffs": [1], "cropping": None},
                shape=[None, 3], name="sum")
        model = runtime.load(make_bundle(b))
        x = np.arange(6, dtype=np.float32).reshape(2, 3)
        result = model.run({"x": x}, outputs=["x", "drop", "sum"])
        for name, value in result.items():
            assert value.flags.writeable and not np.shares_memory(value, x), name
            value += 100
        np.testing.assert_array_equal(x, np.arange(6).reshape(2, 3))

    def test_results_are_fresh_arrays_each_call(self, model):
        x = np.ones((2, 4))
        first = model(x)
        first[:] = -1
        assert (model(x) >= 0).all()

    @pytest.mark.filterwarnings("error")
    def test_extreme_inputs_raise_no_warnings(self, model):
        y = model(np.array([[1e38, -1e38, 3e38, -3e38], [np.inf, 0, 0, 0]]))
        assert y.shape == (2, 2)

    def test_a_layer_producing_an_undeclared_shape_is_a_bundle_error(self, make_bundle):
        b = BundleBuilder()
        b.input("x", [None, 3])
        b.layer("FlattenLayer", ["x"], {"outdim": 1}, shape=[4], name="flat")
        model = runtime.load(make_bundle(b))
        with pytest.raises(BundleError, match=r"layer 'flat' \(FlattenLayer\) computed shape "
                                              r"\(6,\), but the bundle declares \(4,\)"):
            model(np.zeros((2, 3)))


class TestInputErrors:
    """Every input error names the input, what was expected and what was given."""

    @pytest.mark.parametrize("feeds, match", [
        ({}, r"missing input 'input' \(expected float32 \(None, 4\)\); this model's inputs "
             r"are \[input: float32 \(None, 4\)\]"),
        ({"input": np.zeros((1, 4)), "extra": np.zeros(2)},
         r"unexpected input 'extra'; this model's inputs are \[input: float32 \(None, 4\)\]"),
        ({"input": np.zeros(4)},
         r"input 'input': expected shape \(None, 4\) \(2 axes\), got shape \(4,\) \(1 axis\)"),
        ({"input": np.zeros((1, 1, 4))},
         r"expected shape \(None, 4\) \(2 axes\), got shape \(1, 1, 4\) \(3 axes\)"),
        ({"input": np.zeros((2, 5))},
         r"input 'input': expected shape \(None, 4\), got \(2, 5\): axis 1 must have size 4"),
        ({"input": np.zeros((2, 4), complex)},
         r"input 'input': expected real numbers \(float32 \(None, 4\)\), got dtype complex128"),
        ({"input": np.array([["a", "b", "c", "d"]])}, r"input 'input': .*got dtype <U1"),
        ({"input": np.array([[None] * 4])}, r"input 'input': .*got dtype object"),
        ({"input": [[1, 2, 3, 4], [1, 2]]},
         r"input 'input': expected float32 \(None, 4\), got a value that is not an array"),
        ({"input": np.zeros((2, 4), dtype="datetime64[s]")}, r"got dtype datetime64\[s\]"),
    ])
    def test_run(self, model, feeds, match):
        with pytest.raises(InputError, match=match):
            model.run(feeds)

    def test_errors_are_value_errors(self):
        assert issubclass(InputError, ValueError)

    def test_feeds_must_be_a_mapping(self, model):
        with pytest.raises(InputError, match="feeds must be a dict of input name -> array, "
                                             "got ndarray; for a one-input model, model"):
            model.run(np.zeros((1, 4)))

    def test_call_checks_the_input_too(self, model):
        with pytest.raises(InputError, match="axis 1 must have size 4, not 3"):
            model(np.zeros((1, 3)))

    def test_unknown_output_lists_the_layers(self, model):
        with pytest.raises(InputError, match="unknown output 'dense_9'; outputs can name any "
                                             "layer: input, dense_1, output"):
            model.run({"input": np.zeros((1, 4))}, outputs=["dense_9"])

    def test_outputs_as_a_string(self, model):
        with pytest.raises(InputError, match=r"use outputs=\['output'\]"):
            model.run({"input": np.zeros((1, 4))}, outputs="output")

    def test_free_axes_the_layers_cannot_combine(self, two_branch):
        with pytest.raises(InputError, match=r"layer 'b_out' \(ElemwiseSumLayer\) cannot take "
                                             r"input of shape \(2, 3\), \(5, 3\)"):
            two_branch.run({"a": np.zeros((2, 3)), "b": np.zeros((5, 3))})

    def test_call_on_a_multi_output_model_says_to_use_run(self, two_branch):
        with pytest.raises(TypeError, match=r"inputs \['a', 'b'\] and outputs "
                                            r"\['a_out', 'b_out'\]: use model.run"):
            two_branch(np.zeros((1, 3)))

    def test_call_on_a_multi_output_one_input_model(self, make_bundle):
        builder, _ = mlp_builder()
        builder.output("dense_1", "output")
        model = runtime.load(make_bundle(builder))
        with pytest.raises(TypeError, match=r"outputs \['dense_1', 'output'\]: use model.run"):
            model(np.zeros((1, 4)))


class TestThreads:
    def test_concurrent_calls_give_the_sequential_results(self, model):
        rng = np.random.default_rng(4)
        batches = [rng.standard_normal((int(n), 4)) for n in rng.integers(1, 50, size=64)]
        expected = [model.run({"input": x}, outputs=["dense_1", "output"]) for x in batches]
        barrier = threading.Barrier(8)

        def work(i):
            if i < 8:
                barrier.wait()
            return model.run({"input": batches[i]}, outputs=["dense_1", "output"])

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(work, range(len(batches))))
        for got, want in zip(results, expected):
            for name in want:
                np.testing.assert_array_equal(got[name], want[name])

    def test_concurrent_errors_do_not_disturb_other_calls(self, model):
        good = np.ones((3, 4))
        want = model(good)

        def work(i):
            if i % 2:
                with pytest.raises(InputError):
                    model(np.ones((3, 5)))
                return None
            return model(good)

        with ThreadPoolExecutor(max_workers=8) as pool:
            for result in pool.map(work, range(64)):
                if result is not None:
                    np.testing.assert_array_equal(result, want)


class TestDescribe:
    def test_describe(self, model):
        text = model.describe()
        assert "format_version 1, float32, 23 parameters" in text
        assert "input: float32 (None, 4)" in text and "output: float32 (None, 2)" in text
        lines = text.splitlines()
        header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["layer", "type"])
        rows = [line.split() for line in lines[header + 1:]]
        assert rows == [["input", "InputLayer", "-", "(None,", "4)", "0"],
                        ["dense_1", "DenseLayer", "input", "(None,", "3)", "15"],
                        ["output", "DenseLayer", "dense_1", "(None,", "2)", "8"]]

    def test_repr(self, model):
        text = repr(model)
        assert text.startswith("<Model '") and "mlp.npz" in text
        assert "inputs=['input: float32 (None, 4)']" in text and "layers=3" in text
