"""runtime.program: validation at load, and numpy evaluation of each operation."""
import base64
import copy
import doctest
import math
import pathlib

import numpy as np
import pytest

import runtime
import runtime.program
from runtime import BundleError
from runtime.bundle import array_digest
from runtime.nonlinearities import get_merge_function, get_nonlinearity
from runtime.program import OPS, Program

from .helpers import BundleBuilder

F32 = {"ndim": 2, "dtype": "float32"}


def ins(op, inputs=(), attrs=None, dtype="float32"):
    return {"op": op, "inputs": list(inputs), "attrs": attrs or {}, "dtype": dtype}


def const(value, dtype="float32"):
    value = np.asarray(value, dtype=dtype)
    return ins("constant", (), {"shape": list(value.shape), "value": value.tolist()}, dtype)


def program(*code, inputs=(F32,), output=None):
    output = len(inputs) + len(code) - 1 if output is None else output
    return {"inputs": list(inputs), "code": list(code), "output": output}


X = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)


class TestEvaluation:
    @pytest.mark.parametrize("op, reference", [
        ("neg", np.negative), ("exp", np.exp), ("tanh", np.tanh), ("abs", np.abs),
        ("sigmoid", lambda x: 1 / (1 + np.exp(-x))), ("softplus", lambda x: np.log1p(np.exp(x))),
        ("sqr", np.square), ("floor", np.floor), ("sign", np.sign), ("sin", np.sin),
        ("round_half_away", lambda x: np.where(x >= 0, np.floor(x + 0.5), -np.floor(0.5 - x))),
    ])
    def test_unary(self, op, reference):
        got = Program(program(ins(op, [0])))(X * 3)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, reference((X * 3).astype(np.float64)), rtol=2e-6,
                                   atol=1e-7)

    def test_erf_and_erfc_match_the_standard_library(self):
        x = np.concatenate([np.linspace(-6, 6, 2000), np.geomspace(1e-8, 0.6, 200)])
        erf = Program(program(ins("erf", [0], dtype="float64"),
                              inputs=[{"ndim": 1, "dtype": "float64"}]))(x)
        erfc = Program(program(ins("erfc", [0], dtype="float64"),
                               inputs=[{"ndim": 1, "dtype": "float64"}]))(x)
        want_erf = np.array([math.erf(v) for v in x])
        want_erfc = np.array([math.erfc(v) for v in x])
        # relative error within two float32 ulps, even for tiny erf(x) and erfc(x)
        assert np.max(np.abs(erf - want_erf) / np.abs(want_erf)) < 2.4e-7
        assert np.max(np.abs(erfc - want_erfc) / want_erfc) < 2.4e-7

    def test_variadic_add_folds_left(self):
        got = Program(program(ins("add", [0, 0, 0])))(X)
        np.testing.assert_array_equal(got, X + X + X)

    def test_reductions_accumulate_in_acc_dtype(self):
        p = Program(program(ins("sum", [0], {"axes": [1], "acc_dtype": "float64"})))
        np.testing.assert_allclose(p(X), X.astype(np.float64).sum(axis=1), rtol=1e-7)
        assert p(X).dtype == np.float32

    def test_dimshuffle_transposes_drops_and_inserts(self):
        p = Program(program(ins("dimshuffle", [0], {"order": [2, "x", 0]}),
                            inputs=[{"ndim": 3, "dtype": "float32"}]))
        x = np.arange(6, dtype=np.float32).reshape(2, 1, 3)
        np.testing.assert_array_equal(p(x), x[:, 0].T[:, None, :])
        with pytest.raises(ValueError, match="dropped axes must have size 1"):
            p(np.zeros((2, 2, 3), np.float32))

    def test_subtensor_reads_positions_from_its_inputs(self):
        code = [const(1, "int64"), const(-1, "int64"),
                ins("subtensor", [0, 1, 2, 1], {"index": [[1, None, None], 3]})]
        np.testing.assert_array_equal(Program(program(*code))(X), X[1:, 1])

    def test_shape_reshape_and_alloc(self):
        code = [ins("shape_i", [0], {"i": 0}, "int64"), const(2, "int64"),
                ins("make_vector", [1, 2, 2], {}, "int64"),
                ins("reshape", [0, 3]), const(7.0), ins("alloc", [5, 1, 2])]
        p = Program(program(*code, output=4))
        np.testing.assert_array_equal(p(X), X.reshape(3, 2, 2))
        q = Program(program(*code))
        assert q(X).shape == (3, 2) and q(X).flags.writeable and np.all(q(X) == 7)

    def test_softmax_and_join(self):
        code = [ins("softmax", [0], {"axis": 1}), ins("join", [0, 1], {"axis": 0})]
        got = Program(program(*code))(X)
        e = np.exp(X - X.max(axis=1, keepdims=True))
        np.testing.assert_allclose(got, np.concatenate([X, e / e.sum(1, keepdims=True)]),
                                   rtol=1e-6)

    def test_comparison_and_switch_keep_their_dtypes(self):
        code = [const(0.0), ins("gt", [0, 1], dtype="bool"), const(0.1), ins("mul", [0, 3]),
                ins("switch", [2, 0, 4])]
        np.testing.assert_allclose(Program(program(*code))(X), np.where(X > 0, X, 0.1 * X))

    def test_base64_constant(self):
        value = np.arange(20, dtype=np.float32).reshape(4, 5)
        data = base64.b64encode(value.astype("<f4").tobytes()).decode()
        code = [ins("constant", (), {"shape": [4, 5], "data": data,
                                     "sha256": array_digest(value)}), ins("dot", [0, 1])]
        np.testing.assert_allclose(Program(program(*code))(X), X @ value, rtol=1e-6)

    def test_wrong_rank_or_count_at_call(self):
        p = Program(program(ins("exp", [0]), inputs=[F32]))
        with pytest.raises(ValueError, match="input 0 must have 2 axes"):
            p(np.zeros(3, np.float32))
        with pytest.raises(ValueError, match="takes 1 input"):
            p(X, X)


class TestValidation:
    @pytest.mark.parametrize("mutate, message", [
        (lambda p: p["code"][0].update(op="cholesky"), "unknown op; known: abs, add"),
        (lambda p: p["code"][0].update(inputs=[1]), r"inputs must be a list of earlier slots"),
        (lambda p: p["code"][0].update(inputs=[0, 0]), "op 'exp' takes 1 to 1 inputs"),
        (lambda p: p["code"][0].update(dtype="complex64"), "dtype must be one of"),
        (lambda p: p["code"][0].update(attrs={"axis": 1}), r"op 'exp' takes attrs \[\]"),
        (lambda p: p["code"][0].pop("attrs"), "keys op, inputs, attrs and dtype"),
        (lambda p: p.update(output=5), r"output must be a slot in \[0, 2\)"),
        (lambda p: p.update(inputs=[{"ndim": -1, "dtype": "float32"}]), "each input must be"),
        (lambda p: p.update(inputs=[]), "inputs must be a non-empty list"),
        (lambda p: p.update(extra=1), "keys inputs, code and output"),
        (lambda p: p["code"].__setitem__(0, ins("sum", [0], {"axes": [1, 1]})),
         "axes must be null or a list of distinct ints"),
        (lambda p: p["code"].__setitem__(0, ins("max", [0])), r"op 'max' takes attrs \['axes'\]"),
        (lambda p: p["code"].__setitem__(0, ins("dimshuffle", [0], {"order": [0, 0]})),
         "order must be a list of distinct"),
        (lambda p: p["code"].__setitem__(0, ins("subtensor", [0], {"index": [1]})),
         r"index positions must be < 1"),
        (lambda p: p["code"].__setitem__(0, ins("subtensor", [0], {"index": [[0, None]]})),
         "index must be a list of input positions"),
        (lambda p: p["code"].__setitem__(0, const([1.0, 2.0]) | {"attrs": {
            "shape": [3], "value": [1.0, 2.0]}}), r"value must have shape \[3\]"),
        (lambda p: p["code"].__setitem__(0, ins("constant", (), {"shape": [], "value": None})),
         "value must be a number or a nested list"),
        (lambda p: p["code"].__setitem__(0, ins("constant", (), {
            "shape": [1], "data": base64.b64encode(b"\0\0\0\0").decode(), "sha256": "0" * 64})),
         "data must match its sha256"),
        (lambda p: p["code"][0].update(op=["exp"]), "unknown op"),
        (lambda p: p["code"].__setitem__(0, ins("constant", (), {"shape": [1], "value": [{}]})),
         "value must be a number or a nested list"),
        (lambda p: p["code"].__setitem__(0, ins("constant", (), {
            "shape": [1], "value": [None]}, "int32")), "value must be a number or a nested"),
        (lambda p: p["code"].__setitem__(0, ins("constant", (), {
            "shape": [], "value": 10 ** 30}, "int8")), "value must be a number or a nested"),
    ])
    def test_malformed_program_is_refused(self, mutate, message):
        spec = program(ins("exp", [0]))
        mutate(spec)
        with pytest.raises(BundleError, match=rf"^here: malformed program: .*{message}"):
            Program(spec, "here")

    def test_error_names_the_instruction(self):
        with pytest.raises(BundleError, match=r"instruction 1 \(slot 2\): unknown op"):
            Program(program(ins("exp", [0]), ins("nope", [1])))

    def test_every_op_is_documented(self):
        text = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "lowering.md").read_text()
        missing = [op for op in OPS if f"`{op}`" not in text]
        assert not missing, missing


class TestInBundles:
    def test_program_nonlinearity_and_merge_function(self):
        spec = {"name": "program", "program": program(ins("tanh", [0]))}
        assert isinstance(get_nonlinearity(spec), Program)
        merge = {"name": "program", "program": program(
            ins("maximum", [0, 1]), inputs=[F32, F32])}
        np.testing.assert_array_equal(get_merge_function(merge)(X, -X), np.abs(X))
        with pytest.raises(BundleError, match="takes 1 input"):
            get_nonlinearity(merge | {})
        with pytest.raises(BundleError, match="takes 2 input"):
            get_merge_function(spec)
        with pytest.raises(BundleError, match="keys name and program"):
            get_nonlinearity(spec | {"leakiness": 0.1})

    def build(self, nonlinearity):
        b = BundleBuilder()
        x = b.input("x", [None, 3])
        b.layer("DenseLayer", [x], {"num_units": 2, "num_leading_axes": 1,
                                    "nonlinearity": nonlinearity},
                {"W": np.ones((3, 2), np.float32), "b": None}, shape=[None, 2], name="hidden")
        return b

    def test_dense_layer_runs_a_program_nonlinearity(self):
        code = [const(0.5), ins("mul", [0, 1]), ins("maximum", [0, 2])]
        model = self.build({"name": "program", "program": program(*code)}).load()
        np.testing.assert_allclose(model(np.array([[1, -2, -1]], np.float32)), [[-1.0, -1.0]])

    def test_a_program_nonlinearity_gets_a_single_item_as_a_row(self):
        """The batch-1 product is 1-D inside the kernel; a program, which may name axes,
        still gets the (1, units) row (softmax over axis 0 of one row is all ones)."""
        code = [ins("softmax", [0], {"axis": 0})]
        model = self.build({"name": "program", "program": program(*code)}).load()
        np.testing.assert_allclose(model(np.array([[1, -2, -1]], np.float32)), [[1.0, 1.0]])
        np.testing.assert_allclose(model(np.ones((2, 3), np.float32)), [[0.5, 0.5]] * 2)

    def test_malformed_program_in_a_bundle_is_refused_at_load(self, tmp_path):
        bad = {"name": "program", "program": program(ins("exp", [3]))}
        path = self.build(copy.deepcopy(bad)).write(str(tmp_path / "m.npz"))
        with pytest.raises(BundleError, match=r"layer 'hidden' \(DenseLayer\): nonlinearity: "
                                              r"malformed program: instruction 0 \(slot 1\): "
                                              r"inputs must be a list of earlier slots"):
            runtime.load(path)


def test_docstring_examples():
    result = doctest.testmod(runtime.program)
    assert result.attempted > 0 and result.failed == 0
