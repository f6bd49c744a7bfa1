"""Small helpers shared by the op tests."""
import numpy as np
import pytensor
import pytest
from hypothesis import HealthCheck, settings

#: Hypothesis settings for the kernel-level tests: no deadline (first calls import
#: and warm up numpy/JAX), a modest number of examples to keep the suite quick.
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

#: For tests that compile two functions per example (JAX against FAST_COMPILE): fewer
#: examples. A one-off run of 60 per op (PyTensor 3.0.7 and 3.3.7) found no mismatch.
COMPILING = settings(SETTINGS, max_examples=25)


def jax_or_skip():
    """Import jax or skip the test.

    JAX computes in float32 here (PyTensor's JAX backend turns float64 off when
    floatX is float32, and flipping it would leak into other tests), so the JAX
    comparisons use float32 data and tolerances.
    """
    return pytest.importorskip("jax", reason="JAX backend not installed (optional)")


def compile_fn(inputs, outputs, mode):
    return pytensor.function(inputs, outputs, mode=mode, on_unused_input="ignore")


def rand(rng, shape, dtype="float64"):
    return rng.standard_normal(shape).astype(dtype)


def assert_close(actual, expected, dtype="float64"):
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    tol = 1e-10 if dtype == "float64" else 2e-4
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)
