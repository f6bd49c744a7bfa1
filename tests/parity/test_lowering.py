"""Parity of lowered user functions: random compositions of supported operations used as
a nonlinearity, a merge function and an ExpressionLayer function."""
import numpy as np
import pytensor
import pytensor.tensor as T
from hypothesis import given, settings, strategies as st

from forge import layers as L

from .helpers import assert_parity
from .strategies import SETTINGS, shapes

# Operations whose value never jumps (no floor, sign or comparison), keeping magnitudes
# moderate, so that float32 rounding differences cannot be amplified past the contract.
UNARY = {
    "tanh": T.tanh, "sigmoid": T.sigmoid, "sin": T.sin, "cos": T.cos, "erf": T.erf,
    "abs": abs, "neg": lambda e: -e, "softplus": lambda e: T.softplus(T.tanh(e)),
    "exp_tanh": lambda e: T.exp(T.tanh(e)), "log1p_abs": lambda e: T.log1p(abs(e)),
    "sqrt": lambda e: T.sqrt(abs(e) + 1), "sqr": lambda e: T.sqr(T.tanh(e)),
    "scale": lambda e: 0.5 * e + 0.25, "clip": lambda e: T.clip(e, -0.7, 0.9),
    "leaky": lambda e: T.maximum(e, 0.2 * e),
}
BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "maximum": T.maximum, "minimum": T.minimum, "div": lambda a, b: a / (abs(b) + 1),
}


@st.composite
def compositions(draw, arity, depth=3):
    """(text, function of ``arity`` variables) built from UNARY and BINARY."""
    def build(level):
        kind = draw(st.sampled_from(["leaf", "unary", "binary"] if level else ["leaf"]))
        if kind == "leaf":
            k = draw(st.integers(0, arity - 1))
            return f"x{k}", lambda xs: xs[k]
        if kind == "unary":
            name = draw(st.sampled_from(sorted(UNARY)))
            text, inner = build(level - 1)
            return f"{name}({text})", lambda xs: UNARY[name](inner(xs))
        name = draw(st.sampled_from(sorted(BINARY)))
        (ta, a), (tb, b) = build(level - 1), build(level - 1)
        return f"{name}({ta}, {tb})", lambda xs: BINARY[name](a(xs), b(xs))

    text, body = build(depth)
    return text, lambda *xs: body(xs)


# Shape-changing tails for ExpressionLayer functions (input: (batch, a, b) or more).
TAILS = {
    "mean_last": lambda e: e.mean(axis=-1),
    "sum_keep": lambda e: e.sum(axis=1, keepdims=True),
    "max": lambda e: e.max(axis=-1),
    "softmax": lambda e: T.special.softmax(e, axis=-1),
    "centre": lambda e: e - e.mean(axis=-1, keepdims=True),
    "transpose": lambda e: e.dimshuffle(0, *range(e.ndim - 1, 0, -1)),
    "flatten": lambda e: e.flatten(2),
    "slice": lambda e: e[:, ::-1, :1],
    "concat": lambda e: T.concatenate([e, T.tanh(e)], axis=1),
    "first": lambda e: e[:, 0],
    "none": lambda e: e,
}


class TestLoweredNonlinearity:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_dense_layer(self, data, bundle_path):
        text, fn = data.draw(compositions(1))
        num_units = data.draw(st.integers(1, 6))
        layer = L.DenseLayer(L.InputLayer((None, data.draw(st.integers(1, 5)))), num_units,
                             nonlinearity=fn)
        assert_parity(layer, bundle_path(), scale=data.draw(st.sampled_from([0.5, 2.0])))

    @settings(**dict(SETTINGS, max_examples=10))
    @given(data=st.data())
    def test_conv_and_nonlinearity_layers(self, data, bundle_path):
        text, fn = data.draw(compositions(1, depth=2))
        conv = L.Conv2DLayer(L.InputLayer((None, 2, 5, 5)), 3, 3, nonlinearity=fn)
        assert_parity(L.NonlinearityLayer(conv, nonlinearity=fn), bundle_path())

    @settings(**dict(SETTINGS, max_examples=10))
    @given(data=st.data())
    def test_closure_over_a_parameter(self, data, bundle_path):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        units = data.draw(st.integers(1, 5))
        slope = pytensor.shared(rng.uniform(0, 1, units).astype(np.float32))
        layer = L.DenseLayer(L.InputLayer((None, 4)), units,
                             nonlinearity=lambda x: T.switch(x > 0, x, slope * x))
        assert_parity(layer, bundle_path())


class TestLoweredMergeFunction:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        text, fn = data.draw(compositions(2))
        trailing = data.draw(shapes(1, 3))
        ins = [L.InputLayer([None] + trailing) for _ in range(data.draw(st.integers(2, 4)))]
        assert_parity(L.ElemwiseMergeLayer(ins, fn), bundle_path())


class TestLoweredExpression:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_auto_output_shape(self, data, bundle_path):
        text, body = data.draw(compositions(1))
        tail = TAILS[data.draw(st.sampled_from(sorted(TAILS)))]
        trailing = data.draw(shapes(2, 3, min_side=2))
        layer = L.ExpressionLayer(L.InputLayer([None] + trailing),
                                  lambda x: tail(body(x)), output_shape="auto")
        assert_parity(layer, bundle_path(), batch=data.draw(st.sampled_from([1, 3])))

    def test_declared_output_shape(self, bundle_path):
        layer = L.ExpressionLayer(L.InputLayer((None, 3, 4)),
                                  lambda x: T.dot(x.sum(axis=1), T.ones((4, 2))),
                                  output_shape=lambda shape: (None, 2))
        assert_parity(layer, bundle_path())
