import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

from forge import nonlinearities as nl

SELU_SCALE = 1.0507009873554805
SELU_SCALE_NEG = 1.6732632423543772


# numpy references
def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def np_selu(x, scale, scale_neg):
    return scale * np.where(x > 0, x, scale_neg * np.expm1(np.minimum(x, 0)))


CASES = [
    (nl.sigmoid, np_sigmoid),
    (nl.ultra_fast_sigmoid, np_sigmoid),
    (nl.softmax, np_softmax),
    (nl.tanh, np.tanh),
    (nl.ScaledTanH(scale_in=0.5, scale_out=2.4), lambda x: 2.4 * np.tanh(0.5 * x)),
    (nl.ScaledTanh(), np.tanh),
    (nl.rectify, lambda x: np.maximum(x, 0)),
    (nl.LeakyRectify(0.3), lambda x: np.where(x > 0, x, 0.3 * x)),
    (nl.leaky_rectify, lambda x: np.where(x > 0, x, 0.01 * x)),
    (nl.very_leaky_rectify, lambda x: np.where(x > 0, x, x / 3)),
    (nl.elu, np_elu),
    (nl.SELU(), np_elu),
    (nl.SELU(scale=2, scale_neg=3), lambda x: np_selu(x, 2, 3)),
    (nl.selu, lambda x: np_selu(x, SELU_SCALE, SELU_SCALE_NEG)),
    (nl.softplus, lambda x: np.log1p(np.exp(x))),
    (nl.linear, lambda x: x),
    (nl.identity, lambda x: x),
]


@pytest.mark.parametrize("function, reference", CASES,
                         ids=lambda f: getattr(f, "__name__", repr(f)))
def test_matches_numpy_reference(function, reference):
    x = T.matrix("x")
    f = pytensor.function([x], function(x))
    data = np.random.RandomState(0).uniform(-5, 5, (4, 6)).astype(x.dtype)
    out = f(data)
    assert out.dtype == x.dtype
    np.testing.assert_allclose(out, reference(data.astype(np.float64)), rtol=1e-5, atol=1e-6)


class TestSoftmax:
    def test_rows_sum_to_one(self):
        x = T.matrix("x")
        out = pytensor.function([x], nl.softmax(x))(np.zeros((3, 5), dtype=x.dtype))
        np.testing.assert_allclose(out.sum(axis=1), np.ones(3), rtol=1e-6)

    def test_stable_for_large_inputs(self):
        x = T.matrix("x")
        data = np.array([[1000.0, 999.0, -1000.0]], dtype=x.dtype)
        out = pytensor.function([x], nl.softmax(x))(data)
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out, np_softmax(data.astype(np.float64)), rtol=1e-5)


class TestGradientsStayFinite:
    @pytest.mark.parametrize("function", [nl.elu, nl.selu], ids=["elu", "selu"])
    def test_large_positive_inputs(self, function):
        x = T.vector("x")
        grad = pytensor.grad(function(x).sum(), x)
        out = pytensor.function([x], grad)(np.array([200.0, -3.0], dtype=x.dtype))
        assert np.isfinite(out).all()


class TestParametersAreAttributes:
    """forge.export reads these attributes."""

    def test_leaky_rectify(self):
        assert nl.LeakyRectify(0.2).leakiness == 0.2
        assert nl.LeakyRectify().leakiness == 0.01
        assert nl.leaky_rectify.leakiness == 0.01
        assert nl.very_leaky_rectify.leakiness == pytest.approx(1 / 3)

    def test_scaled_tanh(self):
        f = nl.ScaledTanH(scale_in=2 / 3, scale_out=1.7159)
        assert (f.scale_in, f.scale_out) == (2 / 3, 1.7159)
        assert nl.ScaledTanh is nl.ScaledTanH

    def test_selu(self):
        assert (nl.SELU().scale, nl.SELU().scale_neg) == (1, 1)
        assert nl.selu.scale == pytest.approx(SELU_SCALE, abs=1e-15)
        assert nl.selu.scale_neg == pytest.approx(SELU_SCALE_NEG, abs=1e-15)


def test_identity_is_linear():
    assert nl.identity is nl.linear
