"""Tests of forge.ops.conv: kernels against direct loops, gradients, backends."""
import numpy as np
import pytensor
import pytensor.tensor as T
import pytest
from hypothesis import given, strategies as st
from pytensor.compile.mode import Mode
from pytensor.gradient import verify_grad

from forge.ops import (
    Corr, CorrGradInputs, CorrGradWeights, conv, conv_output_shape, conv_transpose,
)
from forge.ops import _kernels

from .helpers import COMPILING, SETTINGS, assert_close, compile_fn, jax_or_skip, rand


# ------------------------------------------------------------------ the oracle

def out_lengths(in_size, fs, stride, pad, dilation):
    return tuple((n + p[0] + p[1] - d * (k - 1) - 1) // s + 1
                 for n, k, s, p, d in zip(in_size, fs, stride, pad, dilation))


def window_index(o, fs, stride, dilation):
    """Index arrays of the window of output position ``o`` in the padded input."""
    return np.ix_(*[oi * s + d * np.arange(k) for oi, k, s, d in zip(o, fs, stride, dilation)])


def naive_corr(x, w, stride, pad, dilation, groups):
    """Cross-correlation by its definition, one output position at a time."""
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pad))
    fs = w.shape[2:]
    cg, fg = x.shape[1] // groups, w.shape[0] // groups
    out = out_lengths(x.shape[2:], fs, stride, pad, dilation)
    y = np.zeros((x.shape[0], w.shape[0]) + out)
    for f in range(w.shape[0]):
        g = f // fg
        for o in np.ndindex(*out):
            patch = xp[:, g * cg:(g + 1) * cg][(Ellipsis,) + window_index(o, fs, stride, dilation)]
            y[(slice(None), f) + o] = (patch * w[f]).reshape(x.shape[0], -1).sum(axis=1)
    return y


def naive_corr_grad_inputs(w, dy, in_size, stride, pad, dilation, groups):
    """Every output gradient spread back over its window, one tap at a time."""
    fs = w.shape[2:]
    cg, fg = w.shape[1], w.shape[0] // groups
    padded = tuple(n + p[0] + p[1] for n, p in zip(in_size, pad))
    dxp = np.zeros((dy.shape[0], cg * groups) + padded)
    for f in range(w.shape[0]):
        g = f // fg
        for o in np.ndindex(*dy.shape[2:]):
            for k in np.ndindex(*fs):
                pos = tuple(oi * s + ki * d for oi, ki, s, d in zip(o, k, stride, dilation))
                dxp[(slice(None), slice(g * cg, (g + 1) * cg)) + pos] += (
                    dy[(slice(None), f) + o][:, None] * w[(f, slice(None)) + k][None, :])
    crop = tuple(slice(p[0], p[0] + n) for p, n in zip(pad, in_size))
    return dxp[(slice(None), slice(None)) + crop]


def naive_corr_grad_weights(x, dy, fs, stride, pad, dilation, groups):
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pad))
    cg, fg = x.shape[1] // groups, dy.shape[1] // groups
    dw = np.zeros((dy.shape[1], cg) + tuple(fs))
    for f in range(dy.shape[1]):
        g = f // fg
        for o in np.ndindex(*dy.shape[2:]):
            for k in np.ndindex(*fs):
                pos = tuple(oi * s + ki * d for oi, ki, s, d in zip(o, k, stride, dilation))
                taps = xp[(slice(None), slice(g * cg, (g + 1) * cg)) + pos]
                dw[(f, slice(None)) + k] += (dy[(slice(None), f) + o][:, None] * taps).sum(0)
    return dw


# ----------------------------------------------------------- configurations

@st.composite
def conv_configs(draw, max_nd=3):
    """Odd sizes, strides past the filter, pads past half the filter, dilation, groups.
    Half of them have unit strides, which the kernels compute another way."""
    nd = draw(st.integers(1, max_nd))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    max_side = {1: 9, 2: 7, 3: 5}[nd]
    fs = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = (1,) * nd if draw(st.booleans()) else tuple(
        draw(st.integers(1, 4)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    pad = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(nd))
    in_size = tuple(
        max(draw(st.integers(1, max_side)), d * (k - 1) + 1 - p[0] - p[1])
        for k, d, p in zip(fs, dilation, pad))
    return dict(
        batch=draw(st.integers(1, 2)), channels=groups * draw(st.integers(1, 2)),
        filters=groups * draw(st.integers(1, 2)), in_size=in_size, fs=fs,
        settings=(stride, pad, dilation, groups))


def arrays(config, seed, dtype="float64"):
    rng = np.random.default_rng(seed)
    stride, pad, dilation, groups = config["settings"]
    x = rand(rng, (config["batch"], config["channels"]) + config["in_size"], dtype)
    w = rand(rng, (config["filters"], config["channels"] // groups) + config["fs"], dtype)
    out = out_lengths(config["in_size"], config["fs"], stride, pad, dilation)
    dy = rand(rng, (config["batch"], config["filters"]) + out, dtype)
    return x, w, dy


def tensor(dtype, ndim):
    return T.tensor(dtype=dtype, shape=(None,) * ndim)


# ------------------------------------------------------------------- kernels

class TestKernels:
    @SETTINGS
    @given(config=conv_configs(), seed=st.integers(0, 2**16))
    def test_forward_matches_direct_loops(self, config, seed):
        x, w, _ = arrays(config, seed)
        assert_close(_kernels.corr(x, w, *config["settings"]),
                     naive_corr(x, w, *config["settings"]))

    @SETTINGS
    @given(config=conv_configs(), seed=st.integers(0, 2**16))
    def test_grad_inputs_matches_direct_loops(self, config, seed):
        _, w, dy = arrays(config, seed)
        args = (config["in_size"],) + config["settings"]
        assert_close(_kernels.corr_grad_inputs(w, dy, *args),
                     naive_corr_grad_inputs(w, dy, *args))

    @SETTINGS
    @given(config=conv_configs(), seed=st.integers(0, 2**16))
    def test_grad_weights_matches_direct_loops(self, config, seed):
        x, _, dy = arrays(config, seed)
        args = (config["fs"],) + config["settings"]
        assert_close(_kernels.corr_grad_weights(x, dy, *args),
                     naive_corr_grad_weights(x, dy, *args))

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @pytest.mark.parametrize("order_a, order_b", [("C", "C"), ("F", "C"), ("C", "F"),
                                                  ("F", "F"), ("strided", "C")])
    def test_scipy_blas_products_match_numpy(self, dtype, order_a, order_b):
        rng = np.random.default_rng(3)

        def operand(shape, order):
            m = rng.standard_normal((shape[0], 2 * shape[1])).astype(dtype)[:, ::2]
            return m if order == "strided" else np.asarray(m, order=order)

        a, b = operand((5, 7), order_a), operand((7, 4), order_b)
        got = _kernels._scipy_matmul(a, b)
        assert got.dtype == a.dtype and got.shape == (5, 4) and got.flags.c_contiguous
        assert_close(got, a @ b, dtype)

    def test_scipy_blas_products_apply_within_the_context_only(self):
        config = CASES["2d-unit-stride-groups"]
        x, w, _ = arrays(config, 2, "float32")
        expected = _kernels.corr(x, w, *config["settings"])
        assert _kernels._products.get() is np.matmul
        with _kernels.scipy_blas_products():
            assert _kernels._products.get() is _kernels._scipy_matmul
            assert_close(_kernels.corr(x, w, *config["settings"]), expected, "float32")
        assert _kernels._products.get() is np.matmul
        # mixed dtypes and other ranks fall back to numpy
        assert _kernels._scipy_matmul(np.ones((2, 3), "float32"), np.ones(3)).dtype == "float64"

    @pytest.mark.parametrize("settings", [
        ((1, 1), ((1, 0), (2, 1)), (1, 2), 2),  # unit strides: the shifted im2col
        ((2, 1), ((1, 0), (2, 1)), (1, 2), 2),
    ])
    def test_batch_chunks_match_direct_loops(self, monkeypatch, settings):
        """Chunks of one item (a 1-byte budget) give the same sums as one chunk."""
        config = dict(batch=5, channels=4, filters=6, in_size=(6, 7), fs=(3, 2),
                      settings=settings)
        x, w, dy = arrays(config, 11)
        monkeypatch.setattr(_kernels, "CHUNK_BYTES", 1)
        assert_close(_kernels.corr(x, w, *settings), naive_corr(x, w, *settings))
        assert_close(_kernels.corr_grad_inputs(w, dy, (6, 7), *settings),
                     naive_corr_grad_inputs(w, dy, (6, 7), *settings))
        assert_close(_kernels.corr_grad_weights(x, dy, (3, 2), *settings),
                     naive_corr_grad_weights(x, dy, (3, 2), *settings))

    @SETTINGS
    @given(config=conv_configs(), seed=st.integers(0, 2**16))
    def test_direct_loops_match_lax(self, config, seed):
        jax_or_skip()
        from jax import lax

        x, w, _ = arrays(config, seed, "float32")
        stride, pad, dilation, groups = config["settings"]
        spatial = "DHW"[3 - len(stride):]
        expected = lax.conv_general_dilated(
            x, w, window_strides=stride, padding=pad, rhs_dilation=dilation,
            dimension_numbers=("NC" + spatial, "OI" + spatial, "NC" + spatial),
            feature_group_count=groups)
        assert_close(naive_corr(x.astype("float64"), w.astype("float64"),
                                *config["settings"]).astype("float32"),
                     np.asarray(expected), "float32")


# ----------------------------------------------------------------------- ops

CASES = {
    "1d-stride-dilation": dict(batch=2, channels=2, filters=3, in_size=(9,), fs=(3,),
                               settings=((2,), ((1, 2),), (2,), 1)),
    "2d-groups": dict(batch=1, channels=4, filters=2, in_size=(5, 6), fs=(2, 3),
                      settings=((2, 1), ((0, 1), (2, 0)), (1, 2), 2)),
    "2d-stride-past-filter": dict(batch=2, channels=1, filters=2, in_size=(7, 5),
                                  fs=(2, 1), settings=((3, 4), ((2, 2), (0, 3)), (1, 1), 1)),
    "3d": dict(batch=1, channels=3, filters=3, in_size=(3, 4, 3), fs=(2, 2, 1),
               settings=((1, 2, 1), ((1, 0), (1, 1), (0, 2)), (1, 1, 2), 3)),
    # Unit strides (the kernels' shifted im2col), with padding, dilation and groups.
    "1d-unit-stride-padded": dict(batch=2, channels=3, filters=2, in_size=(8,), fs=(3,),
                                  settings=((1,), ((2, 1),), (1,), 1)),
    "2d-unit-stride-groups": dict(batch=2, channels=4, filters=6, in_size=(6, 7),
                                  fs=(3, 2), settings=((1, 1), ((1, 2), (0, 1)), (2, 1), 2)),
    # Unpadded: on the CPU the JAX lowering pads the last axis and cuts the extra output
    # column off again (forge/ops/_jax.py), with or without an extra column to cut.
    "1d-unpadded-dilated": dict(batch=2, channels=2, filters=2, in_size=(10,), fs=(3,),
                                settings=((3,), ((0, 0),), (2,), 1)),
    "2d-unpadded-stride": dict(batch=2, channels=3, filters=4, in_size=(7, 8), fs=(3, 3),
                               settings=((1, 2), ((0, 0), (0, 0)), (1, 1), 1)),
    "3d-unpadded-groups": dict(batch=1, channels=4, filters=2, in_size=(3, 4, 5),
                               fs=(2, 2, 2), settings=((1, 1, 1), ((0, 0),) * 3, (1, 1, 1), 2)),
}
CASE_IDS = list(CASES)


def build(config, dtype="float64"):
    """Symbolic input, filters and output gradient, with conv and its transpose."""
    nd = len(config["fs"])
    x, w, dy = tensor(dtype, nd + 2), tensor(dtype, nd + 2), tensor(dtype, nd + 2)
    stride, pad, dilation, groups = config["settings"]
    y = conv(x, w, stride, pad, dilation, groups)
    dx = conv_transpose(dy, w, config["in_size"], stride, pad, dilation, groups)
    return x, w, dy, y, dx


class TestOps:
    @pytest.mark.parametrize("case", CASE_IDS)
    def test_forward_and_transpose(self, case):
        config = CASES[case]
        x, w, dy, y, dx = build(config)
        xv, wv, dyv = arrays(config, 0)
        got_y, got_dx = compile_fn([x, w, dy], [y, dx], mode="FAST_COMPILE")(xv, wv, dyv)
        assert_close(got_y, naive_corr(xv, wv, *config["settings"]))
        assert_close(got_dx, naive_corr_grad_inputs(wv, dyv, config["in_size"],
                                                     *config["settings"]))

    @pytest.mark.parametrize("case", CASE_IDS)
    def test_gradients_are_the_fused_ops(self, case):
        config = CASES[case]
        x, w, dy, y, _ = build(config)
        gx, gw = pytensor.grad((y * dy).sum(), [x, w])
        assert isinstance(gx.owner.op, CorrGradInputs)
        assert isinstance(gw.owner.op, CorrGradWeights)
        xv, wv, dyv = arrays(config, 1)
        got_gx, got_gw = compile_fn([x, w, dy], [gx, gw], "FAST_COMPILE")(xv, wv, dyv)
        args = config["settings"]
        assert_close(got_gx, naive_corr_grad_inputs(wv, dyv, config["in_size"], *args))
        assert_close(got_gw, naive_corr_grad_weights(xv, dyv, config["fs"], *args))

    def test_static_shapes_propagate(self):
        x = T.tensor(dtype="float32", shape=(None, 4, 9, 8))
        w = T.tensor(dtype="float32", shape=(6, 2, 3, 3))
        y = conv(x, w, (2, 1), ((1, 1), (0, 2)), (1, 2), num_groups=2)
        assert y.type.shape == (None, 6, 5, 6)
        dx = conv_transpose(y, w, (9, 8), (2, 1), ((1, 1), (0, 2)), (1, 2), num_groups=2)
        assert dx.type.shape == (None, 4, 9, 8)
        gw = pytensor.grad(y.sum(), w)
        assert gw.type.shape == (6, 2, 3, 3)

    def test_shape_inference_does_not_run_the_ops(self):
        config = CASES["2d-groups"]
        x, w, dy, y, dx = build(config)
        gw = pytensor.grad((y * dy).sum(), w)
        fn = pytensor.function([x, w, dy], [y.shape, dx.shape, gw.shape],
                               mode=Mode(linker="py", optimizer="fast_run"))
        ops = {type(node.op) for node in fn.maker.fgraph.apply_nodes}
        assert not ops & {Corr, CorrGradInputs, CorrGradWeights}
        xv, wv, dyv = arrays(config, 2)
        shapes = [tuple(s) for s in fn(xv, wv, dyv)]
        assert shapes == [dyv.shape, xv.shape, wv.shape]

    def test_dtypes_are_upcast(self):
        x = T.tensor(dtype="float32", shape=(None,) * 3)
        w = T.tensor(dtype="float64", shape=(None,) * 3)
        assert conv(x, w, 1, 0, 1).type.dtype == "float64"

    def test_cvm_linker_runs_perform(self):
        config = CASES["1d-stride-dilation"]
        x, w, dy, y, dx = build(config)
        xv, wv, dyv = arrays(config, 3)
        got = compile_fn([x, w, dy], [y, dx], mode="CVM")(xv, wv, dyv)
        assert_close(got[0], naive_corr(xv, wv, *config["settings"]))


class TestGradients:
    """verify_grad in float64 for the three ops, so for every order of gradient."""

    @pytest.mark.parametrize("case", CASE_IDS)
    def test_corr(self, case):
        config = CASES[case]
        x, w, _ = arrays(config, 4)
        op = Corr(*config["settings"])
        with pytensor.config.change_flags(floatX="float64"):
            verify_grad(op, [x, w], rng=np.random.default_rng(0))

    @pytest.mark.parametrize("case", CASE_IDS)
    def test_corr_grad_inputs(self, case):
        config = CASES[case]
        _, w, dy = arrays(config, 5)
        op = CorrGradInputs(*config["settings"])
        with pytensor.config.change_flags(floatX="float64"):
            verify_grad(lambda w, dy: op(w, dy, *config["in_size"]), [w, dy],
                        rng=np.random.default_rng(0))

    @pytest.mark.parametrize("case", CASE_IDS)
    def test_corr_grad_weights(self, case):
        config = CASES[case]
        x, _, dy = arrays(config, 6)
        op = CorrGradWeights(*config["settings"])
        with pytensor.config.change_flags(floatX="float64"):
            verify_grad(lambda x, dy: op(x, dy, *config["fs"]), [x, dy],
                        rng=np.random.default_rng(0))


class TestJAXMode:
    """mode="JAX" against the numpy path, forward, gradients and second order."""

    @pytest.mark.parametrize("case", CASE_IDS)
    def test_matches_numpy(self, case):
        jax_or_skip()
        config = CASES[case]
        x, w, dy, y, dx = build(config, "float32")
        gx, gw = pytensor.grad((y * dy).sum(), [x, w])
        # Second order: through the pullbacks of CorrGradInputs and CorrGradWeights.
        ggw = pytensor.grad((gx ** 2).sum() + (gw ** 2).sum(), w)
        outputs = [y, dx, gx, gw, ggw]
        data = arrays(config, 7, "float32")
        expected = compile_fn([x, w, dy], outputs, "FAST_COMPILE")(*data)
        got = compile_fn([x, w, dy], outputs, "JAX")(*data)
        for g, e in zip(got, expected):
            assert_close(np.asarray(g), e, "float32")

    @COMPILING
    @given(config=conv_configs(), seed=st.integers(0, 2**16))
    def test_generated_configurations_match_numpy(self, config, seed):
        jax_or_skip()
        x, w, dy, y, dx = build(config, "float32")
        outputs = [y, dx, *pytensor.grad((y * dy).sum(), [x, w])]
        data = arrays(config, seed, "float32")
        expected = compile_fn([x, w, dy], outputs, "FAST_COMPILE")(*data)
        got = compile_fn([x, w, dy], outputs, "JAX")(*data)
        for g, e in zip(got, expected):
            assert_close(np.asarray(g), e, "float32")

    def test_unpadded_convolution_is_padded_on_the_cpu(self):
        """XLA's CPU kernel for unpadded convolutions is 3-4x slower than its padded
        one: the lowering must keep sending them the padded way (and the slice back)."""
        jax_or_skip()
        import jax

        from forge.ops import _jax

        if jax.default_backend() != "cpu":
            pytest.skip("the widening applies to the CPU backend only")
        op = Corr((1, 1), 0, (1, 1))
        x, w = np.ones((2, 3, 6, 7), "float32"), np.ones((4, 3, 3, 3), "float32")
        jaxpr = str(jax.make_jaxpr(_jax._corr_fn(op))(x, w))
        assert "padding=((0, 0), (0, 1))" in jaxpr
        assert _jax._corr_fn(op)(x, w).shape == (2, 4, 4, 5)
        assert "padding=((0, 0), (0, 0))" in str(
            jax.make_jaxpr(_jax._corr_fn(op, widen=False))(x, w))


    @pytest.mark.parametrize("batch", [1, 8, 9, 19, 24])
    def test_filter_gradient_is_summed_over_chunks_on_the_cpu(self, batch):
        """XLA's CPU filter gradient runs 2-4x faster over a few items at a time: the
        lowering sums one convolution per chunk of CPU_FILTER_GRADIENT_ITEMS items (the
        last one shorter), and gives the numpy kernel's values."""
        jax_or_skip()
        import jax

        from forge.ops import _jax

        if jax.default_backend() != "cpu":
            pytest.skip("the chunking applies to the CPU backend only")
        settings = ((1, 1), ((1, 0), (0, 2)), (1, 1), 1)
        x_var, dy_var = tensor("float32", 4), tensor("float32", 4)
        node = CorrGradWeights(*settings)(x_var, dy_var, 3, 2).owner
        rng = np.random.default_rng(batch)
        x = rng.standard_normal((batch, 3, 9, 8)).astype("float32")
        dy = rng.standard_normal((batch, 4, 8, 9)).astype("float32")
        gradient = _jax._funcify_corr_grad_weights(node.op, node)
        chunks = -(-batch // _jax.CPU_FILTER_GRADIENT_ITEMS)
        compiled = jax.jit(gradient, static_argnums=(2, 3)).lower(x, dy, 3, 2).compile()
        assert compiled.as_text().count(" convolution(") == chunks  # after XLA's clean-up
        assert_close(np.asarray(gradient(x, dy, 3, 2)),
                     _kernels.corr_grad_weights(x, dy, (3, 2), *settings), "float32")


class TestShapesAndErrors:
    def test_conv_output_shape(self):
        assert conv_output_shape((None, 3, 28, 27), (16, 3, 5, 5), (2, 2),
                                 ((2, 2), (2, 2)), (1, 1)) == (None, 16, 14, 14)
        assert conv_output_shape((2, 4, None, 7), (8, 2, 3, 3), 1, 0, 1) == (2, 8, None, 5)
        assert conv_output_shape((1, 1, 10), (1, 1, 3), 3, ((0, 2),), 2) == (1, 1, 3)

    @SETTINGS
    @given(config=conv_configs())
    def test_conv_output_shape_matches_kernel(self, config):
        x, w, _ = arrays(config, 0)
        stride, pad, dilation, _ = config["settings"]
        assert (conv_output_shape(x.shape, w.shape, stride, pad, dilation)
                == _kernels.corr(x, w, *config["settings"]).shape)

    @pytest.mark.parametrize("kwargs, match", [
        (dict(stride=(0, 1)), r"stride must be positive, got stride=\(0, 1\)"),
        (dict(stride=(1, 1, 1)), r"tuple of 2 ints .* got stride=\(1, 1, 1\)"),
        (dict(pad=((1, -1), 0)), r"non-negative .* got pad="),
        (dict(num_groups=0), r"num_groups must be a positive int, got num_groups=0"),
        (dict(num_groups=3), r"divisible by num_groups, got 6 filters and num_groups=3"
         r"|input has 4 channels"),
    ])
    def test_bad_settings(self, kwargs, match):
        x = T.tensor(dtype="float32", shape=(None, 4, 8, 8))
        w = T.tensor(dtype="float32", shape=(6, 2, 3, 3))
        args = dict(stride=(1, 1), pad=0, dilation=(1, 1), num_groups=2) | kwargs
        with pytest.raises(ValueError, match=match):
            conv(x, w, **args)

    def test_rank_mismatch(self):
        with pytest.raises(ValueError, match="2-d filters need a 4-dimensional input"):
            conv(T.tensor3(), T.tensor4(), 1, 0, 1)

    def test_input_smaller_than_filter(self):
        x = T.tensor(dtype="float32", shape=(1, 1, 2, 9))
        w = T.tensor(dtype="float32", shape=(1, 1, 3, 3))
        with pytest.raises(ValueError, match="has no output"):
            conv(x, w, 1, 0, 1)

    def test_channel_mismatch_at_run_time(self):
        x, w = T.tensor4(), T.tensor4()
        fn = pytensor.function([x, w], conv(x, w, 1, 0, 1), mode="FAST_COMPILE")
        with pytest.raises(ValueError, match="input has 3 channels"):
            fn(np.ones((1, 3, 4, 4), "float32"), np.ones((2, 2, 3, 3), "float32"))

    def test_transpose_output_shape_must_fit(self):
        dy = T.tensor(dtype="float32", shape=(1, 2, 4))
        w = T.tensor(dtype="float32", shape=(2, 1, 3))
        with pytest.raises(ValueError, match="gives 5, but the input has 4"):
            conv_transpose(dy, w, (7,), (1,), 0, (1,))
        with pytest.raises(ValueError, match=r"tuple of 1 sizes"):
            conv_transpose(dy, w, 6, (1,), 0, (1,))
