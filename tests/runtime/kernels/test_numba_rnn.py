"""runtime.kernels._numba_rnn against the numpy reference on generated cases."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from runtime.kernels import _numpy_rnn
from runtime.nonlinearities import get_nonlinearity

numba = pytest.importorskip("numba", reason="numba not installed (optional [fast] extra)")

from runtime.kernels import _numba_rnn  # noqa: E402  (after the skip)

# float32: the kernels compute some activations in float64, numpy in float32
TOLERANCE = {"float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-12)}

#: every function the kernels compute, with parameters where it has some
FUNCTIONS = [{"name": n} for n in ("linear", "rectify", "sigmoid", "ultra_fast_sigmoid",
                                   "tanh", "hard_sigmoid", "elu", "softplus", "abs")] + [
    {"name": "leaky_rectify", "leakiness": 0.3},
    {"name": "scaled_tanh", "scale_in": 0.5, "scale_out": 1.7},
    {"name": "selu", "scale": 1.05, "scale_neg": 1.6}]


@st.composite
def cases(draw, gates):
    """Arguments shared by the kernels: projected input, W_hid, states, mask, flags."""
    dtype = draw(st.sampled_from(["float32", "float64"]))
    time, batch, units = draw(st.integers(1, 6)), draw(st.integers(1, 3)), draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((time, batch, gates * units)).astype(dtype)
    W_hid = (0.5 * rng.standard_normal((units, gates * units))).astype(dtype)
    states = [rng.standard_normal((batch, units)).astype(dtype) for _ in range(2)]
    mask = rng.random((time, batch)) < 0.7 if draw(st.booleans()) else None
    fns = [get_nonlinearity(draw(st.sampled_from(FUNCTIONS))) for _ in range(5)]
    return dict(x=x, W_hid=W_hid, states=states, mask=mask, fns=fns,
                backwards=draw(st.booleans()), rng=rng, dtype=dtype)


def check(got, expected):
    assert got.shape == expected.shape and got.dtype == expected.dtype
    # unbounded activations can blow a state up; where float32 overflows is not part of
    # the contract (the kernels keep some intermediates in float64)
    assume(np.all(np.abs(expected) < 1e4))
    # relative to the output's scale: with unbounded gate functions a state in the
    # hundreds carries float32 rounding of the steps before it into small neighbours
    tolerance = TOLERANCE[expected.dtype.name]
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=tolerance["rtol"],
                               atol=tolerance["rtol"] * scale)


@settings(max_examples=40, deadline=None)
@given(case=cases(gates=1), bias=st.booleans())
def test_rnn(case, bias):
    b = case["rng"].standard_normal(case["W_hid"].shape[1]).astype(case["dtype"]) if bias else None
    args = (case["x"], case["W_hid"], b, case["fns"][0], case["fns"][1], case["states"][0],
            case["mask"], case["backwards"])
    check(_numba_rnn.rnn(*args), _numpy_rnn.rnn(*args))


@settings(max_examples=40, deadline=None)
@given(case=cases(gates=4), peepholes=st.booleans())
def test_lstm(case, peepholes):
    units = case["W_hid"].shape[0]
    peep = case["rng"].standard_normal((3, units)).astype(case["dtype"]) if peepholes else None
    args = (case["x"], case["W_hid"], peep, tuple(case["fns"]), *case["states"],
            case["mask"], case["backwards"])
    check(_numba_rnn.lstm(*args), _numpy_rnn.lstm(*args))


@settings(max_examples=40, deadline=None)
@given(case=cases(gates=3))
def test_gru(case):
    args = (case["x"], case["W_hid"], tuple(case["fns"][:3]), case["states"][0],
            case["mask"], case["backwards"])
    check(_numba_rnn.gru(*args), _numpy_rnn.gru(*args))


def test_inputs_are_not_written():
    rng = np.random.default_rng(0)
    x, W, h = (rng.standard_normal(s).astype("f4") for s in ((3, 2, 8), (2, 8), (2, 2)))
    tanh = get_nonlinearity({"name": "tanh"})
    copies = [a.copy() for a in (x, W, h)]
    _numba_rnn.lstm(x, W, None, (tanh,) * 5, h, h)
    for a, c in zip((x, W, h), copies):
        np.testing.assert_array_equal(a, c)


def test_functions_it_does_not_compute_go_to_numpy(monkeypatch):
    calls = []
    monkeypatch.setattr(_numpy_rnn, "gru", lambda *a: calls.append(a) or "numpy")
    softmax = get_nonlinearity({"name": "softmax"})
    x, W, h = np.ones((2, 1, 3), "f4"), np.ones((1, 3), "f4"), np.zeros((1, 1), "f4")
    assert _numba_rnn.gru(x, W, (softmax,) * 3, h) == "numpy"
    assert _numba_rnn.gru(x.astype("f2"), W.astype("f2"), (softmax,) * 3, h) == "numpy"
    assert len(calls) == 2


def test_warm_cache_compiles_every_kernel():
    assert _numba_rnn.warm_cache() >= 0
    assert _numba_rnn.__all__ == _numpy_rnn.__all__


def test_large_steps_go_to_numpy(monkeypatch):
    calls = []
    monkeypatch.setattr(_numpy_rnn, "rnn", lambda *a: calls.append(a) or "numpy")
    tanh = get_nonlinearity({"name": "tanh"})
    units = int(np.sqrt(_numba_rnn.MAX_STEP_WORK)) + 1
    x, W, h = np.ones((2, 1, units), "f4"), np.ones((units, units), "f4"), np.zeros((1, units), "f4")
    assert _numba_rnn.rnn(x, W, None, tanh, tanh, h) == "numpy"
    assert isinstance(_numba_rnn.rnn(x[:, :, :4], W[:4, :4], None, tanh, tanh, h[:, :4]),
                      np.ndarray)
