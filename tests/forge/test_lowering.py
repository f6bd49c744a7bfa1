"""forge.lowering: user functions become runtime programs, or are refused by name."""
import doctest
import json

import numpy as np
import pytensor
import pytensor.scalar as ps
import pytensor.tensor as T
import pytest
from pytensor.tensor.elemwise import Elemwise

import forge
import forge.lowering
from forge import layers as L
from forge.export import ExportError
from forge.lowering import LoweringError, lower
from runtime.program import OPS, Program

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4)).astype(np.float32)
W = pytensor.shared(RNG.standard_normal((4, 3)).astype(np.float32), name="W")


def run_both(fn, arrays, shapes=None):
    """(program, runtime result, forge result) for ``fn`` on ``arrays``."""
    shapes = shapes or [(None,) + a.shape[1:] for a in arrays]
    program = lower(fn, shapes, "float32")
    json.dumps(program, allow_nan=False)  # plain JSON, storable in a manifest
    inputs = [T.tensor(dtype="float32", shape=s) for s in shapes]
    want = pytensor.function(inputs, T.cast(fn(*inputs), "float32"))(*arrays)
    return program, Program(program)(*arrays), want


def ops_of(program):
    return {ins["op"] for ins in program["code"]}


# (id, function of x (3, 4), an op its program must contain)
CASES = [
    ("add", lambda x: x + 1.5, "add"), ("sub", lambda x: x - x[:, :1], "sub"),
    ("mul", lambda x: x * x, "mul"), ("true_div", lambda x: x / (abs(x) + 1), "true_div"),
    ("neg", lambda x: -x, "mul"),  # canonicalize writes -x as -1 * x ("exp", T.exp, "exp"),
    ("log", lambda x: T.log(abs(x) + 0.1), "log"), ("log1p", lambda x: T.log1p(abs(x)), "log1p"),
    ("expm1", T.expm1, "expm1"), ("sqrt", lambda x: T.sqrt(abs(x)), "sqrt"),
    ("abs", abs, "abs"), ("tanh", T.tanh, "tanh"), ("sigmoid", T.sigmoid, "sigmoid"),
    ("softplus", T.softplus, "softplus"), ("maximum", lambda x: T.maximum(x, 0.1 * x), "maximum"),
    ("minimum", lambda x: T.minimum(x, 0.5), "minimum"), ("pow", lambda x: abs(x) ** 1.5, "pow"),
    ("clip", lambda x: T.clip(x, -0.5, 0.5), "switch"),  # spelled out, see below
    ("switch", lambda x: T.switch(x > 0, x, 0.1 * x), "switch"),
    ("lt", lambda x: T.cast(x < 0.2, "float32"), "lt"), ("ge", lambda x: x >= 0.2, "ge"),
    ("eq", lambda x: T.eq(T.floor(x), 0), "eq"), ("neq", lambda x: T.neq(x, x[:, :1]), "neq"),
    ("sign", T.sign, "sign"), ("floor", T.floor, "floor"), ("ceil", T.ceil, "ceil"),
    ("round", lambda x: T.round(x * 3), "round_half_even"),
    ("erf", T.erf, "erf"), ("erfc", lambda x: T.erfc(x), "erfc"),
    ("sin", T.sin, "sin"), ("cos", T.cos, "cos"), ("arctan", T.arctan, "arctan"),
    ("sum", lambda x: x.sum(axis=1), "sum"), ("sum_all", lambda x: x.sum(), "sum"),
    ("mean", lambda x: x.mean(axis=0, keepdims=True), "sum"),
    ("max", lambda x: x.max(axis=1), "max"), ("min", lambda x: x.min(axis=0), "max"),  # -max(-x)
    ("prod", lambda x: T.prod(x, axis=1), "prod"), ("argmax", lambda x: T.argmax(x, axis=1), "argmax"),
    ("any", lambda x: T.any(x > 1, axis=1), "any"), ("var", lambda x: x.var(axis=1), "sum"),
    ("dot", lambda x: T.dot(x, W), "dot"), ("matmul", lambda x: T.matmul(x, W), "dot"),
    ("reshape", lambda x: x.reshape((-1, 2, 2)), "reshape"),
    ("flatten", lambda x: x.flatten(), "reshape"),
    ("transpose", lambda x: x.T, "dimshuffle"),
    ("expand", lambda x: x.dimshuffle(0, "x", 1), "dimshuffle"),
    ("squeeze", lambda x: x[:, :1].dimshuffle(0), "dimshuffle"),
    ("slice", lambda x: x[:, 1:3], "subtensor"), ("step", lambda x: x[::-1, ::2], "subtensor"),
    ("int_index", lambda x: x[:, -1], "subtensor"),
    ("symbolic_index", lambda x: x[x.shape[0] - 1], "subtensor"),
    ("advanced", lambda x: x[:, [0, 3, 3]], "subtensor"),
    ("concatenate", lambda x: T.concatenate([x, 2 * x], axis=1), "join"),
    ("cast", lambda x: T.cast(T.cast(x * 3, "int32"), "float32"), "cast"),
    ("alloc", lambda x: T.zeros((x.shape[0], 2)) + x.sum(axis=1, keepdims=True), "alloc"),
    ("softmax", lambda x: T.special.softmax(x, axis=-1), "softmax"),
    ("log_softmax", lambda x: T.special.log_softmax(x, axis=0), "log_softmax"),
    ("stack", lambda x: T.stack([x, x + 1], axis=1), "join"),
    ("tile", lambda x: T.tile(x, (2, 1)), "make_vector"),
]


class TestSupportedOps:
    @pytest.mark.parametrize("fn, op", [(fn, op) for _, fn, op in CASES],
                             ids=[name for name, _, _ in CASES])
    def test_op_runs_as_in_forge(self, fn, op):
        program, got, want = run_both(fn, [X])
        assert op in ops_of(program), ops_of(program)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    def test_the_cases_cover_most_runtime_ops(self):
        covered = set().union(*(ops_of(lower(fn, [(None, 4)])) for _, fn, _ in CASES))
        assert covered <= set(OPS)
        assert len(covered) >= 45, sorted(set(OPS) - covered)

    def test_two_input_merge_function(self):
        a, b = X, RNG.standard_normal((3, 4)).astype(np.float32)
        program, got, want = run_both(lambda a, b: a * T.sigmoid(b) - T.maximum(a, b), [a, b])
        assert [spec["ndim"] for spec in program["inputs"]] == [2, 2]
        np.testing.assert_allclose(got, want, rtol=1e-6)

    @pytest.mark.parametrize("bounds", [(0.5, -0.5), (-0.5, np.nan), (np.nan, 0.5)])
    def test_clip_with_crossed_or_nan_bounds_matches_forge(self, bounds):
        """PyTensor's clip is ``lo if x < lo else hi if x > hi else x`` (np.clip is not)."""
        x = X.copy()
        x[0, 0] = np.nan
        _, got, want = run_both(lambda x: T.clip(x, *bounds), [x])
        np.testing.assert_array_equal(got, want)

    def test_broadcastable_axes_follow_the_known_shape(self):
        # size-1 axes are broadcastable, so the function may broadcast against them
        program = lower(lambda x: x + T.ones((3, 4)), [(None, 1)])
        got = Program(program)(np.full((3, 1), 2.0, np.float32))
        assert got.shape == (3, 4) and np.all(got == 3)

    def test_stabilizing_rewrites_apply(self):
        program = lower(lambda x: T.log(1 + T.exp(x)), [(None, 4)])
        assert ops_of(program) == {"softplus"}
        big = np.array([[100.0, -100.0, 0.0, 30.0]], np.float32)
        np.testing.assert_allclose(Program(program)(big), [[100.0, 0.0, np.log(2), 30.0]],
                                   rtol=1e-6, atol=1e-30)

    def test_composite_is_lowered_through_its_scalar_graph(self):
        a, b = ps.float32("a"), ps.float32("b")
        composite = ps.Composite([a, b], [ps.exp(a) * b - ps.tanh(b)])
        program, got, want = run_both(lambda x: Elemwise(composite)(x, 2 * x), [X])
        assert {"exp", "mul", "tanh", "sub"} <= ops_of(program)
        np.testing.assert_allclose(got, want, rtol=1e-5)

    def test_result_is_cast_to_float32(self):
        program = lower(lambda x: T.argmax(x, axis=1), [(None, 4)])
        assert program["code"][-1] == {"op": "cast", "inputs": [program["output"] - 1],
                                       "attrs": {}, "dtype": "float32"}


class TestConstantsAndSharedVariables:
    def test_small_constant_is_stored_inline(self):
        program = lower(lambda x: x * 0.25, [(None, 4)])
        constants = [i for i in program["code"] if i["op"] == "constant"]
        assert constants == [{"op": "constant", "inputs": [], "dtype": "float32",
                              "attrs": {"shape": [1, 1], "value": [[0.25]]}}]

    def test_closure_over_a_shared_variable_is_evaluated_at_export(self):
        slope = pytensor.shared(np.float32(0.3))
        program = lower(lambda x: T.maximum(x, slope * x), [(None, 4)])
        slope.set_value(np.float32(0.9))  # later changes do not reach the program
        np.testing.assert_allclose(Program(program)(X), np.maximum(X, 0.3 * X), rtol=1e-6)

    def test_large_or_non_finite_constants_are_base64_with_a_digest(self):
        table = pytensor.shared(RNG.standard_normal((4, 5)).astype(np.float32))
        program = lower(lambda x: T.dot(x, table) + T.switch(x[:, :1] > 9, -np.inf, 0),
                        [(None, 4)])
        stored = [i["attrs"] for i in program["code"] if i["op"] == "constant"]
        assert any("data" in a and len(a["sha256"]) == 64 and a["shape"] == [4, 5]
                   for a in stored)
        np.testing.assert_allclose(Program(program)(X), X @ table.get_value(), rtol=1e-5)

    def test_equal_constants_are_stored_once(self):
        program = lower(lambda x: x * 2.0 + x[:, 0:1] * 2.0, [(None, 4)])
        values = [json.dumps(i["attrs"]) for i in program["code"] if i["op"] == "constant"]
        assert len(values) == len(set(values))

    def test_too_many_constant_bytes_are_refused(self, monkeypatch):
        monkeypatch.setattr(forge.lowering, "MAX_CONSTANT_BYTES", 64)
        table = pytensor.shared(np.zeros((4, 5), np.float32))
        with pytest.raises(LoweringError, match="80 B|MiB of constants"):
            lower(lambda x: T.dot(x, table), [(None, 4)])

    def test_free_variable_is_refused(self):
        scale = T.scalar("scale", dtype="float32")
        with pytest.raises(LoweringError, match="depends on the variable scale"):
            lower(lambda x: x * scale, [(None, 4)])


class TestRefusals:
    def test_unsupported_op_names_the_op_and_lists_the_supported(self):
        with pytest.raises(LoweringError, match=r"function '<lambda>' uses the PyTensor "
                                                r"operation Cholesky, which the runtime "
                                                r"cannot run; supported operations: abs, add"):
            lower(lambda x: T.linalg.cholesky(T.dot(x.T, x)), [(None, 4)])

    def test_random_ops_are_refused(self):
        srng = pytensor.tensor.random.RandomStream(1)
        with pytest.raises(LoweringError, match="operation NormalRV"):
            lower(lambda x: x + srng.normal(size=x.shape), [(None, 4)])

    def test_export_error_names_the_layer(self, tmp_path):
        layer = L.ExpressionLayer(L.InputLayer((None, 4)),
                                  lambda x: T.linalg.cholesky(T.dot(x.T, x)), name="expr1")
        with pytest.raises(ExportError, match=r"^layer 'expr1' \(ExpressionLayer\): function "
                                              r"'<lambda>' uses the PyTensor operation Cholesky"):
            forge.export(layer, tmp_path / "m.npz")

    def test_merge_function_refusal_names_the_layer(self, tmp_path):
        ins = [L.InputLayer((None, 3)), L.InputLayer((None, 3))]
        layer = L.ElemwiseMergeLayer(ins, lambda a, b: T.gammaln(a) + b, name="mix")
        with pytest.raises(ExportError, match=r"layer 'mix' \(ElemwiseMergeLayer\): "
                                              r"merge_function '<lambda>' uses the PyTensor "
                                              r"operation GammaLn"):
            forge.export(layer, tmp_path / "m.npz")

    def test_dtype_the_runtime_lacks_is_an_export_error(self, tmp_path):
        layer = L.ExpressionLayer(L.InputLayer((None, 4)),
                                  lambda x: T.cast(T.cast(x, "float16"), "float32"),
                                  name="half")
        with pytest.raises(ExportError, match=r"^layer 'half' \(ExpressionLayer\): .*float16"):
            forge.export(layer, tmp_path / "m.npz")

    def test_function_failing_on_symbolic_input(self):
        def needs_numbers(x):
            return float(x) * 2
        with pytest.raises(LoweringError, match="calling the nonlinearity 'needs_numbers'"):
            lower(needs_numbers, [(None, 4)], what="nonlinearity")


class TestExport:
    def test_custom_nonlinearity_is_stored_as_a_program(self, tmp_path):
        layer = L.DenseLayer(L.InputLayer((None, 5)), 3, nonlinearity=lambda x: x * T.sigmoid(x))
        manifest = forge.export(layer, tmp_path / "m.npz")
        spec = manifest["layers"][1]["config"]["nonlinearity"]
        assert spec["name"] == "program" and spec["program"]["inputs"] == [
            {"ndim": 2, "dtype": "float32"}]
        assert manifest["parity"]["max_rel_error"] <= 1e-5

    def test_named_builtins_stay_named(self, tmp_path):
        layer = L.ElemwiseMergeLayer([L.InputLayer((None, 3))] * 2, T.mul)
        manifest = forge.export(layer, tmp_path / "m.npz")
        assert manifest["layers"][-1]["config"]["merge_function"] == "mul"


def test_docstring_examples():
    result = doctest.testmod(forge.lowering, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
