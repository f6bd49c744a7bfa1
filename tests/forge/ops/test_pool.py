"""Tests of forge.ops.pool: Theano's pooling rules by direct loops, gradients, JAX."""
import numpy as np
import pytensor
import pytensor.tensor as T
import pytest
from hypothesis import given, strategies as st
from pytensor.compile.mode import Mode
from pytensor.gradient import verify_grad

from forge.ops import (
    MODES, AveragePoolGrad, MaxPoolGrad, MaxPoolGradGrad, Pool, pool, pool_output_shape,
)
from forge.ops import _kernels

from .helpers import COMPILING, SETTINGS, assert_close, compile_fn, jax_or_skip, rand


# ------------------------------------------------------------------ the oracle

def naive_out_length(n, k, s, p, ignore_border):
    """Count Theano's windows one by one along an axis of padded length n + 2p."""
    m, count, start = n + 2 * p, 0, 0
    while True:
        if ignore_border and start + k > m:
            break
        if not ignore_border and start >= m:
            break
        count += 1
        if not ignore_border and s < k and start + k >= m:
            break  # overlapping windows stop once one reaches the end
        start += s
    return count


def regions(o, config, real):
    """Slices of output position ``o``'s window in the padded input.

    ``real`` keeps only the part over the real input (what max, sum and
    average_exc_pad see); otherwise the window is only cut at the padded input's end.
    """
    slices, size = [], 1
    for oi, n, k, s, p in zip(o, config["shape"][-len(o):], config["pool_size"],
                              config["stride"], config["pad"]):
        start, end = oi * s, min(oi * s + k, n + 2 * p)
        if real:
            start, end = max(start, p), min(end, n + p)
        slices.append(slice(start, end))
        size *= end - start
    return tuple(slices), size


def padded(x, pad, value=0.0):
    nd = len(pad)
    return np.pad(x, [(0, 0)] * (x.ndim - nd) + [(p, p) for p in pad],
                  constant_values=value)


def crop(xp, pad):
    nd = len(pad)
    return xp[(Ellipsis,) + tuple(slice(p, xp.shape[x.ndim - nd + i] - p)
                                  for i, p in enumerate(pad) for x in [xp])]


def naive_pool(x, config):
    nd = len(config["pool_size"])
    out = tuple(naive_out_length(n, k, s, p, config["ignore_border"]) for n, k, s, p in
                zip(x.shape[-nd:], config["pool_size"], config["stride"], config["pad"]))
    mode = config["mode"]
    xp = padded(x, config["pad"])
    y = np.zeros(x.shape[:-nd] + out)
    for o in np.ndindex(*out):
        region, size = regions(o, config, real=mode != "average_inc_pad")
        values = xp[(Ellipsis,) + region].reshape(x.shape[:-nd] + (-1,))
        if mode == "max":
            y[(Ellipsis,) + o] = values.max(axis=-1)
        else:
            y[(Ellipsis,) + o] = values.sum(axis=-1) / (1 if mode == "sum" else size)
    return y


def naive_pool_grad(x, dy, config):
    nd = len(config["pool_size"])
    mode = config["mode"]
    xp = padded(x, config["pad"])
    y = naive_pool(x, config)
    dxp = np.zeros(xp.shape)
    for o in np.ndindex(*dy.shape[-nd:]):
        region, size = regions(o, config, real=mode != "average_inc_pad")
        index = (Ellipsis,) + region
        g = dy[(Ellipsis,) + o][(Ellipsis,) + (None,) * nd]
        if mode == "max":
            dxp[index] += (xp[index] == y[(Ellipsis,) + o][(Ellipsis,) + (None,) * nd]) * g
        else:
            dxp[index] += g / (1 if mode == "sum" else size)
    return crop(dxp, config["pad"])


# ----------------------------------------------------------- configurations

@st.composite
def pool_configs(draw, modes=MODES):
    """Odd sizes, stride past the window, padding, partial windows, extra axes."""
    nd = draw(st.integers(1, 3))
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    max_side = {1: 9, 2: 7, 3: 5}[nd]
    pool_size = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 5)) for _ in range(nd))
    ignore_border = draw(st.booleans())
    pad = tuple(draw(st.integers(0, k - 1)) if ignore_border else 0 for k in pool_size)
    shape = lead + tuple(draw(st.integers(1, max_side)) for _ in range(nd))
    return dict(shape=shape, pool_size=pool_size, stride=stride, pad=pad,
                ignore_border=ignore_border, mode=draw(st.sampled_from(modes)))


def settings_of(config):
    return (config["pool_size"], config["stride"], config["pad"], config["ignore_border"])


def distinct_values(rng, shape, dtype="float64"):
    """Values at least 0.1 apart, so max pooling has no ties and finite differences
    never cross one."""
    size = int(np.prod(shape))
    return (0.1 * rng.permutation(size).reshape(shape) - 0.05 * size).astype(dtype)


# ------------------------------------------------------------------- kernels

class TestKernels:
    @SETTINGS
    @given(config=pool_configs())
    def test_output_length_rule(self, config):
        expected = tuple(naive_out_length(n, k, s, p, config["ignore_border"])
                         for n, k, s, p in zip(config["shape"][-len(config["pad"]):],
                                               config["pool_size"], config["stride"],
                                               config["pad"]))
        shape = pool_output_shape(config["shape"], *settings_of(config))
        assert shape[-len(expected):] == expected
        assert shape[:-len(expected)] == config["shape"][:-len(expected)]

    @SETTINGS
    @given(config=pool_configs(), seed=st.integers(0, 2**16))
    def test_forward_matches_direct_loops(self, config, seed):
        x = rand(np.random.default_rng(seed), config["shape"])
        assert_close(_kernels.pool(x, *settings_of(config), config["mode"]),
                     naive_pool(x, config))

    @SETTINGS
    @given(config=pool_configs(), seed=st.integers(0, 2**16))
    def test_grad_matches_direct_loops(self, config, seed):
        rng = np.random.default_rng(seed)
        x = rand(rng, config["shape"])
        y = naive_pool(x, config)
        dy = rand(rng, y.shape)
        assert_close(_kernels.pool_grad(x, y, dy, *settings_of(config), config["mode"]),
                     naive_pool_grad(x, dy, config))

    @SETTINGS
    @given(config=pool_configs(modes=["max"]), seed=st.integers(0, 2**16))
    def test_max_grad_grad_is_the_transpose(self, config, seed):
        rng = np.random.default_rng(seed)
        x = rand(rng, config["shape"])
        y = _kernels.pool(x, *settings_of(config), "max")
        dy, ggx = rand(rng, y.shape), rand(rng, x.shape)
        dx = _kernels.pool_grad(x, y, dy, *settings_of(config), "max")
        ggy = _kernels.max_pool_grad_grad(x, y, ggx, *settings_of(config))
        np.testing.assert_allclose((dx * ggx).sum(), (dy * ggy).sum(), rtol=1e-10,
                                   atol=1e-10)

    @SETTINGS
    @given(config=pool_configs(), seed=st.integers(0, 2**16))
    def test_direct_loops_match_reduce_window(self, config, seed):
        jax_or_skip()
        from jax import lax

        x = rand(np.random.default_rng(seed), config["shape"], "float32")
        nd = len(config["pool_size"])
        out = pool_output_shape(x.shape, *settings_of(config))[-nd:]
        if 0 in out:
            return
        lead = (1,) * (x.ndim - nd)
        # Pad by the init value; at the far end, enough for the last (partial) window.
        padding = [(0, 0)] * (x.ndim - nd) + [
            (p, max(0, (o - 1) * s + k - n - p))
            for n, o, k, s, p in zip(x.shape[-nd:], out, config["pool_size"],
                                     config["stride"], config["pad"])]
        args = (lead + config["pool_size"], lead + config["stride"], padding)
        mode = config["mode"]
        if mode == "max":
            got = lax.reduce_window(x, -np.inf, lax.max, *args)
        else:
            got = lax.reduce_window(x, 0.0, lax.add, *args)
            if mode == "average_inc_pad" and config["ignore_border"]:
                got = got / np.prod(config["pool_size"])
            elif mode != "sum":  # real elements only (partial windows: both modes)
                got = got / lax.reduce_window(np.ones_like(x), 0.0, lax.add, *args)
        got = np.asarray(got)[(Ellipsis,) + tuple(slice(0, o) for o in out)]
        assert_close(naive_pool(x.astype("float64"), config).astype("float32"), got,
                     "float32")


# ----------------------------------------------------------------------- ops

CASES = {
    "2d-max-pad": dict(shape=(2, 3, 7, 6), pool_size=(3, 3), stride=(2, 2), pad=(1, 2),
                       ignore_border=True, mode="max"),
    "2d-max-partial": dict(shape=(1, 2, 7, 5), pool_size=(3, 2), stride=(2, 3),
                           pad=(0, 0), ignore_border=False, mode="max"),
    "1d-sum-stride": dict(shape=(3, 9), pool_size=(2,), stride=(3,), pad=(1,),
                          ignore_border=True, mode="sum"),
    "2d-inc-pad": dict(shape=(2, 5, 6), pool_size=(3, 2), stride=(1, 2), pad=(2, 1),
                       ignore_border=True, mode="average_inc_pad"),
    "2d-exc-pad": dict(shape=(1, 1, 6, 7), pool_size=(3, 3), stride=(2, 2), pad=(1, 1),
                       ignore_border=True, mode="average_exc_pad"),
    "2d-avg-partial": dict(shape=(2, 5, 7), pool_size=(2, 3), stride=(1, 2), pad=(0, 0),
                           ignore_border=False, mode="average_inc_pad"),
    "3d-max": dict(shape=(1, 2, 4, 5, 3), pool_size=(2, 2, 2), stride=(1, 2, 2),
                   pad=(1, 0, 1), ignore_border=True, mode="max"),
    "3d-exc-partial": dict(shape=(2, 3, 4, 5), pool_size=(2, 3, 2), stride=(2, 2, 1),
                           pad=(0, 0, 0), ignore_border=False, mode="average_exc_pad"),
}
CASE_IDS = list(CASES)


def build(config, dtype="float64"):
    x = T.tensor(dtype=dtype, shape=(None,) * len(config["shape"]))
    return x, pool(x, *settings_of(config), mode=config["mode"])


class TestOps:
    @pytest.mark.parametrize("case", CASE_IDS)
    def test_forward_and_gradient(self, case):
        config = CASES[case]
        x, y = build(config)
        rng = np.random.default_rng(0)
        xv = rand(rng, config["shape"])
        dy = T.tensor(dtype="float64", shape=(None,) * xv.ndim)
        gx = pytensor.grad((y * dy).sum(), x)
        expected_type = MaxPoolGrad if config["mode"] == "max" else AveragePoolGrad
        assert isinstance(gx.owner.op, expected_type)
        dyv = rand(rng, naive_pool(xv, config).shape)
        got_y, got_gx = compile_fn([x, dy], [y, gx], "FAST_COMPILE")(xv, dyv)
        assert_close(got_y, naive_pool(xv, config))
        assert_close(got_gx, naive_pool_grad(xv, dyv, config))

    def test_max_gradient_goes_to_every_tie(self):
        x = T.matrix()
        gx = pytensor.grad(pool(x, (2, 2)).sum(), x)
        got = compile_fn([x], gx, "FAST_COMPILE")(np.ones((2, 4), "float32"))
        np.testing.assert_array_equal(got, np.ones((2, 4)))

    def test_padding_never_wins_a_max(self):
        x = T.matrix()
        y = pool(x, (3, 3), stride=(1, 1), pad=(2, 2))
        got = compile_fn([x], y, "FAST_COMPILE")(-np.ones((2, 2), "float32"))
        np.testing.assert_array_equal(got, -np.ones((4, 4)))

    def test_zero_size_output(self):
        x = T.tensor3()
        y = pool(x, (4, 4), ignore_border=True)
        gx = pytensor.grad(y.sum(), x)
        got_y, got_gx = compile_fn([x], [y, gx], "FAST_COMPILE")(np.ones((2, 3, 5), "float32"))
        assert got_y.shape == (2, 0, 1)
        np.testing.assert_array_equal(got_gx, np.zeros((2, 3, 5)))

    def test_static_shapes_and_inference(self):
        x = T.tensor(dtype="float32", shape=(None, 8, 14, 13))
        y = pool(x, (3, 3), stride=(2, 2), ignore_border=False)
        assert y.type.shape == (None, 8, 7, 6)
        x = T.tensor4()
        y = pool(x, (3, 2), stride=(2, 2), ignore_border=False, mode="average_exc_pad")
        gx = pytensor.grad(y.sum(), x)
        fn = pytensor.function([x], [y.shape, gx.shape],
                               mode=Mode(linker="py", optimizer="fast_run"))
        ops = {type(node.op) for node in fn.maker.fgraph.apply_nodes}
        assert not ops & {Pool, AveragePoolGrad}
        got = [tuple(s) for s in fn(np.zeros((2, 3, 8, 5), "float32"))]
        assert got == [(2, 3, 4, 3), (2, 3, 8, 5)]

    @pytest.mark.parametrize("kwargs, match", [
        (dict(pad=(1, 1), ignore_border=False), r"padding needs ignore_border=True"),
        (dict(pad=(2, 0)), r"smaller than the pool size .* pad=\(2, 0\) and pool_size=\(2, 2\)"),
        (dict(mode="mean"), r"mode must be one of .* got mode='mean'"),
        (dict(stride=(0, 1)), r"stride must be positive"),
        (dict(pool_size=2), r"pool_size must be a tuple"),
    ])
    def test_bad_settings(self, kwargs, match):
        args = dict(pool_size=(2, 2), stride=None, pad=0, ignore_border=True,
                    mode="max") | kwargs
        with pytest.raises(ValueError, match=match):
            pool(T.tensor4(), **args)

    def test_rank_too_small(self):
        with pytest.raises(TypeError, match="pooling 3 axes needs an input of 3 or more"):
            pool(T.matrix(), (2, 2, 2))


class TestGradients:
    """verify_grad in float64 for every mode and border rule, and the second order."""

    @pytest.mark.parametrize("case", CASE_IDS)
    def test_pool(self, case):
        config = CASES[case]
        x = distinct_values(np.random.default_rng(1), config["shape"])
        op = Pool(*settings_of(config), mode=config["mode"])
        with pytensor.config.change_flags(floatX="float64"):
            verify_grad(op, [x], rng=np.random.default_rng(0))

    @pytest.mark.parametrize("case", CASE_IDS)
    def test_pool_gradient(self, case):
        config = CASES[case]
        rng = np.random.default_rng(2)
        x = distinct_values(rng, config["shape"])
        y = _kernels.pool(x, *settings_of(config), config["mode"])
        dy = rand(rng, y.shape)
        settings = settings_of(config)
        with pytensor.config.change_flags(floatX="float64"):
            if config["mode"] == "max":
                verify_grad(lambda dy: MaxPoolGrad(*settings)(x, y, dy), [dy],
                            rng=np.random.default_rng(0))
                verify_grad(lambda ggx: MaxPoolGradGrad(*settings)(x, y, ggx), [x],
                            rng=np.random.default_rng(0))
            else:
                verify_grad(lambda dy: AveragePoolGrad(*settings, mode=config["mode"])(
                    x, dy), [dy], rng=np.random.default_rng(0))

    @pytest.mark.parametrize("case", ["2d-max-pad", "3d-exc-partial"])
    def test_second_order_through_the_graph(self, case):
        config = CASES[case]
        x = distinct_values(np.random.default_rng(3), config["shape"])

        def grad_of_square(x):
            y = Pool(*settings_of(config), mode=config["mode"])(x)
            return pytensor.grad((y ** 2).sum(), x)

        with pytensor.config.change_flags(floatX="float64"):
            verify_grad(grad_of_square, [x], rng=np.random.default_rng(0))


class TestJAXMode:
    """mode="JAX" against the numpy path: forward, gradient and second order."""

    @pytest.mark.parametrize("case", CASE_IDS)
    def test_matches_numpy(self, case):
        jax_or_skip()
        config = CASES[case]
        x, y = build(config, "float32")
        gx = pytensor.grad((y ** 2).sum(), x)
        ggx = pytensor.grad((gx * T.cos(x)).sum(), x)
        xv = distinct_values(np.random.default_rng(4), config["shape"], "float32")
        expected = compile_fn([x], [y, gx, ggx], "FAST_COMPILE")(xv)
        got = compile_fn([x], [y, gx, ggx], "JAX")(xv)
        for g, e in zip(got, expected):
            assert_close(np.asarray(g), e, "float32")

    @COMPILING
    @given(config=pool_configs(), seed=st.integers(0, 2**16))
    def test_generated_configurations_match_numpy(self, config, seed):
        jax_or_skip()
        x, y = build(config, "float32")
        gx = pytensor.grad((y ** 2).sum(), x)
        xv = distinct_values(np.random.default_rng(seed), config["shape"], "float32")
        expected = compile_fn([x], [y, gx], "FAST_COMPILE")(xv)
        for g, e in zip(compile_fn([x], [y, gx], "JAX")(xv), expected):
            assert_close(np.asarray(g), e, "float32")

    def test_max_gradient_goes_to_every_tie(self):
        jax_or_skip()
        x = T.matrix()
        gx = pytensor.grad(pool(x, (2, 2), stride=(1, 1)).sum(), x)
        xv = np.ones((3, 3), "float32")
        assert_close(np.asarray(compile_fn([x], gx, "JAX")(xv)),
                     compile_fn([x], gx, "FAST_COMPILE")(xv), "float32")
