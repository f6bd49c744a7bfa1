"""Tests for forge.objectives against numpy reference implementations."""
import doctest

import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

import forge.objectives
from forge.objectives import (
    aggregate, binary_accuracy, binary_crossentropy, binary_hinge_loss,
    categorical_accuracy, categorical_crossentropy, huber_loss, multiclass_hinge_loss,
    squared_error,
)

FLOATX = pytensor.config.floatX


@pytest.fixture
def rng():
    """A fresh generator per test, so data do not depend on test order or workers."""
    return np.random.default_rng(42)


def compile_fn(inputs, output):
    return pytensor.function(inputs, output)


def probabilities(rng, *shape):
    return rng.uniform(0.05, 0.95, size=shape).astype(FLOATX)


def softmax_rows(rng, n, k):
    logits = rng.normal(size=(n, k))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(FLOATX)


def column():
    """A float matrix with one static column, like a DenseLayer with num_units=1."""
    return T.tensor(dtype=FLOATX, shape=(None, 1))


# --- numpy oracles ----------------------------------------------------------------

def np_binary_crossentropy(p, t):
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def np_categorical_crossentropy(p, t):
    if t.ndim == p.ndim - 1:
        return -np.log(np.take_along_axis(p, t[..., None], axis=-1)[..., 0])
    return -np.sum(t * np.log(p), axis=-1)


def np_multiclass_hinge(p, t, delta=1):
    n, k = p.shape
    correct = p[np.arange(n), t]
    others = np.array([np.max(np.delete(p[i], t[i])) for i in range(n)])
    return np.maximum(0, others - correct + delta)


def np_huber(p, t, delta=1):
    d = np.abs(p - t)
    return np.where(d <= delta, 0.5 * d ** 2, delta * (d - 0.5 * delta))


def one_hot(t, k):
    return np.eye(k, dtype=FLOATX)[t]


# --- losses -------------------------------------------------------------------------

class TestBinaryCrossentropy:
    def test_matches_numpy(self, rng):
        p, t = probabilities(rng, 4, 3), rng.integers(0, 2, size=(4, 3)).astype(FLOATX)
        P, Tg = T.matrix(), T.matrix()
        out = compile_fn([P, Tg], binary_crossentropy(P, Tg))(p, t)
        assert out.dtype == FLOATX
        np.testing.assert_allclose(out, np_binary_crossentropy(p, t), rtol=1e-5)

    def test_vector_targets_align_with_column_predictions(self, rng):
        p, t = probabilities(rng, 5, 1), rng.integers(0, 2, size=5).astype(FLOATX)
        P, Tg = column(), T.vector()
        out = compile_fn([P, Tg], binary_crossentropy(P, Tg))(p, t)
        assert out.shape == (5, 1)
        np.testing.assert_allclose(out, np_binary_crossentropy(p, t[:, None]),
                                   rtol=1e-5)


class TestCategoricalCrossentropy:
    def test_integer_targets(self, rng):
        p, t = softmax_rows(rng, 6, 4), rng.integers(0, 4, size=6).astype("int32")
        P, Tg = T.matrix(), T.ivector()
        out = compile_fn([P, Tg], categorical_crossentropy(P, Tg))(p, t)
        assert out.shape == (6,) and out.dtype == FLOATX
        np.testing.assert_allclose(out, np_categorical_crossentropy(p, t), rtol=1e-5)

    def test_one_hot_and_soft_targets(self, rng):
        p = softmax_rows(rng, 6, 4)
        t_int = rng.integers(0, 4, size=6)
        P, Tg = T.matrix(), T.matrix()
        fn = compile_fn([P, Tg], categorical_crossentropy(P, Tg))
        np.testing.assert_allclose(fn(p, one_hot(t_int, 4)),
                                   np_categorical_crossentropy(p, t_int), rtol=1e-5)
        soft = softmax_rows(rng, 6, 4)
        np.testing.assert_allclose(fn(p, soft), np_categorical_crossentropy(p, soft),
                                   rtol=1e-5)

    def test_integer_targets_for_3d_predictions(self, rng):
        logits = rng.normal(size=(2, 3, 4))
        p = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(FLOATX)
        t = rng.integers(0, 4, size=(2, 3)).astype("int32")
        P, Tg = T.tensor3(), T.imatrix()
        out = compile_fn([P, Tg], categorical_crossentropy(P, Tg))(p, t)
        np.testing.assert_allclose(out, np_categorical_crossentropy(p, t), rtol=1e-5)

    def test_gradient_of_integer_form_matches_one_hot_form(self, rng):
        p, t = softmax_rows(rng, 3, 4), np.int32([0, 3, 1])
        P = T.matrix()
        g_int = pytensor.grad(categorical_crossentropy(P, t).sum(), P)
        g_hot = pytensor.grad(categorical_crossentropy(P, one_hot(t, 4)).sum(), P)
        np.testing.assert_allclose(compile_fn([P], g_int)(p), compile_fn([P], g_hot)(p),
                                   rtol=1e-5)

    def test_rank_mismatch(self):
        with pytest.raises(ValueError, match="got 3-dimensional targets for "
                                             "2-dimensional predictions"):
            categorical_crossentropy(T.matrix(), T.tensor3())
        # Lasagne raised TypeError here; code catching that still works.
        with pytest.raises(TypeError):
            categorical_crossentropy(T.matrix(), T.scalar())

    def test_float_class_indices_rejected(self):
        with pytest.raises(ValueError, match="integer dtype; got dtype=float32"):
            categorical_crossentropy(T.matrix(), T.vector(dtype="float32"))


def test_squared_error(rng):
    a = rng.normal(size=(3, 4)).astype(FLOATX)
    b = rng.normal(size=(3, 4)).astype(FLOATX)
    A, B = T.matrix(), T.matrix()
    np.testing.assert_allclose(compile_fn([A, B], squared_error(A, B))(a, b),
                               (a - b) ** 2, rtol=1e-5)
    A, B = column(), T.vector()
    out = compile_fn([A, B], squared_error(A, B))(a[:, :1], b[:, 0])
    np.testing.assert_allclose(out, (a[:, :1] - b[:, :1]) ** 2, rtol=1e-5)


class TestBinaryHingeLoss:
    @pytest.mark.parametrize("delta", [1, 0.5])
    def test_log_odds_and_binary_targets(self, rng, delta):
        logits = rng.normal(scale=2, size=8).astype(FLOATX)
        t01 = rng.integers(0, 2, size=8).astype(FLOATX)
        P, Tg = T.vector(), T.vector()
        out = compile_fn([P, Tg], binary_hinge_loss(P, Tg, delta=delta,
                                                    log_odds=True))(logits, t01)
        np.testing.assert_allclose(out, np.maximum(0, delta - logits * (2 * t01 - 1)),
                                   rtol=1e-5)

    def test_probabilities_and_signed_targets(self, rng):
        p = probabilities(rng, 8)
        t_signed = rng.choice([-1.0, 1.0], size=8).astype(FLOATX)
        P, Tg = T.vector(), T.vector()
        out = compile_fn([P, Tg], binary_hinge_loss(P, Tg, log_odds=False,
                                                    binary=False))(p, t_signed)
        expected = np.maximum(0, 1 - np.log(p / (1 - p)) * t_signed)
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6)

    def test_column_predictions(self):
        P, Tg = column(), T.vector()
        out = compile_fn([P, Tg], binary_hinge_loss(P, Tg, log_odds=True))(
            np.float32([[2.0], [0.5]]), np.float32([1, 0]))
        np.testing.assert_allclose(out, [[0.0], [1.5]])

    def test_log_odds_must_be_given(self):
        with pytest.raises(FutureWarning, match="got log_odds=None"):
            binary_hinge_loss(T.vector(), T.vector())


class TestMulticlassHingeLoss:
    @pytest.mark.parametrize("delta", [1, 0.25])
    def test_integer_and_one_hot_targets(self, rng, delta):
        p = rng.normal(size=(7, 5)).astype(FLOATX)
        t = rng.integers(0, 5, size=7).astype("int32")
        P = T.matrix()
        Ti, Th = T.ivector(), T.matrix()
        expected = np_multiclass_hinge(p, t, delta)
        out_int = compile_fn([P, Ti], multiclass_hinge_loss(P, Ti, delta))(p, t)
        out_hot = compile_fn([P, Th], multiclass_hinge_loss(P, Th, delta))(
            p, one_hot(t, 5))
        np.testing.assert_allclose(out_int, expected, rtol=1e-5)
        np.testing.assert_allclose(out_hot, expected, rtol=1e-5)

    def test_gradient_is_finite(self):
        P = T.matrix()
        grad = pytensor.grad(multiclass_hinge_loss(P, np.int32([0, 1])).sum(), P)
        got = compile_fn([P], grad)(np.float32([[0.0, 0.5, 0.2], [1.0, 0.0, 0.2]]))
        np.testing.assert_allclose(got, [[-1, 1, 0], [1, -1, 0]])

    def test_rank_mismatch(self):
        with pytest.raises(ValueError, match="got 3-dimensional targets"):
            multiclass_hinge_loss(T.matrix(), T.tensor3())


@pytest.mark.parametrize("delta", [1, 0.3, 2.5])
def test_huber_loss(rng, delta):
    p = rng.normal(scale=2, size=20).astype(FLOATX)
    t = rng.normal(size=20).astype(FLOATX)
    P, Tg = T.vector(), T.vector()
    out = compile_fn([P, Tg], huber_loss(P, Tg, delta=delta))(p, t)
    np.testing.assert_allclose(out, np_huber(p, t, delta), rtol=1e-5, atol=1e-6)


# --- aggregation --------------------------------------------------------------------

class TestAggregate:
    loss = np.random.default_rng(1).uniform(size=(4, 3)).astype(FLOATX)
    weights = np.float32([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 1, 0]]).astype(FLOATX)

    @pytest.mark.parametrize("mode, expected", [
        ("mean", lambda l, w: l.mean()),
        ("sum", lambda l, w: l.sum()),
    ])
    def test_unweighted(self, mode, expected):
        L = T.matrix()
        out = compile_fn([L], aggregate(L, mode=mode))(self.loss)
        np.testing.assert_allclose(out, expected(self.loss, None), rtol=1e-5)

    @pytest.mark.parametrize("mode, expected", [
        ("mean", lambda l, w: (l * w).mean()),
        ("sum", lambda l, w: (l * w).sum()),
        ("normalized_sum", lambda l, w: (l * w).sum() / w.sum()),
    ])
    def test_weighted(self, mode, expected):
        L, W = T.matrix(), T.matrix()
        out = compile_fn([L, W], aggregate(L, W, mode=mode))(self.loss, self.weights)
        np.testing.assert_allclose(out, expected(self.loss, self.weights), rtol=1e-5)

    def test_default_is_mean_and_numpy_weights(self):
        L = T.matrix()
        out = compile_fn([L], aggregate(L, self.weights))(self.loss)
        np.testing.assert_allclose(out, (self.loss * self.weights).mean(), rtol=1e-5)

    def test_bad_mode_is_shown(self):
        with pytest.raises(ValueError, match="got mode='avg'"):
            aggregate(T.matrix(), mode="avg")

    def test_normalized_sum_needs_weights(self):
        with pytest.raises(ValueError, match="needs weights; got weights=None"):
            aggregate(T.matrix(), mode="normalized_sum")


# --- accuracy -----------------------------------------------------------------------

@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_binary_accuracy(rng, threshold):
    p, t = probabilities(rng, 10), rng.integers(0, 2, size=10).astype(FLOATX)
    P, Tg = T.vector(), T.vector()
    out = compile_fn([P, Tg], binary_accuracy(P, Tg, threshold=threshold))(p, t)
    np.testing.assert_array_equal(out, (p >= threshold) == t)
    P = column()
    out = compile_fn([P, Tg], binary_accuracy(P, Tg, threshold))(p[:, None], t)
    np.testing.assert_array_equal(out, ((p >= threshold) == t)[:, None])


class TestCategoricalAccuracy:
    p = np.random.default_rng(2).normal(size=(30, 5)).astype(FLOATX)
    t = np.random.default_rng(3).integers(0, 5, size=30).astype("int32")

    @pytest.mark.parametrize("top_k", [1, 2, 4, 5])
    def test_integer_and_one_hot_targets(self, top_k):
        ranks = np.argsort(np.argsort(-self.p, axis=1), axis=1)
        expected = ranks[np.arange(30), self.t] < top_k
        P, Ti, Th = T.matrix(), T.ivector(), T.matrix()
        out_int = compile_fn([P, Ti], categorical_accuracy(P, Ti, top_k=top_k))(
            self.p, self.t)
        out_hot = compile_fn([P, Th], categorical_accuracy(P, Th, top_k=top_k))(
            self.p, one_hot(self.t, 5))
        np.testing.assert_array_equal(out_int, expected)
        np.testing.assert_array_equal(out_hot, expected)
        assert 0 < expected.sum() <= 30  # the data exercises both outcomes for k < 5

    def test_rank_mismatch(self):
        with pytest.raises(ValueError, match="got 0-dimensional targets for "
                                             "2-dimensional predictions"):
            categorical_accuracy(T.matrix(), T.iscalar())

    @pytest.mark.parametrize("top_k", [0, -1, 1.5, True])
    def test_bad_top_k(self, top_k):
        with pytest.raises(ValueError, match=f"got top_k={top_k!r}"):
            categorical_accuracy(T.matrix(), T.ivector(), top_k=top_k)


def test_lasagne_style_usage(rng):
    """Names as a Lasagne script writes them: objectives.<fn> then aggregate."""
    import forge as lasagne

    P, Tg = T.matrix(), T.ivector()
    loss = lasagne.objectives.categorical_crossentropy(P, Tg)
    loss = lasagne.objectives.aggregate(loss, mode="mean")
    acc = T.mean(lasagne.objectives.categorical_accuracy(P, Tg), dtype=FLOATX)
    p, t = softmax_rows(rng, 8, 3), rng.integers(0, 3, size=8).astype("int32")
    got_loss, got_acc = compile_fn([P, Tg], [loss, acc])(p, t)
    np.testing.assert_allclose(got_loss, np_categorical_crossentropy(p, t).mean(),
                               rtol=1e-5)
    np.testing.assert_allclose(got_acc, np.mean(p.argmax(1) == t), rtol=1e-6)


def test_docstring_examples():
    result = doctest.testmod(forge.objectives, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize("loss", [categorical_crossentropy, multiclass_hinge_loss])
def test_integer_targets_of_a_large_batch_work_on_jax(loss):
    # T.arange(n) has int8 bounds, and jnp.arange overflowed on them for n >= 128
    pytest.importorskip("jax", reason="the JAX backend needs jax (the [dev] extra)")
    rng = np.random.default_rng(0)
    batch, classes = 300, 130
    p = rng.uniform(0.05, 1, (batch, classes)).astype(np.float32)
    p /= p.sum(axis=1, keepdims=True)
    t = rng.integers(0, classes, batch).astype(np.int32)
    P, Y = T.matrix("p"), T.ivector("t")
    default = pytensor.function([P, Y], loss(P, Y))(p, t)
    jax_result = pytensor.function([P, Y], loss(P, Y), mode="JAX")(p, t)
    np.testing.assert_allclose(jax_result, default, rtol=1e-5)
