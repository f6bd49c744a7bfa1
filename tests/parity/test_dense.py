"""Parity of DenseLayer and NINLayer over generated configurations."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from forge import init, layers as L

from .helpers import assert_parity
from .strategies import SETTINGS, nonlinearities, parameter, shapes


class TestDenseLayer:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        trailing = data.draw(shapes(1, 3))
        ndim = len(trailing) + 1
        leading = data.draw(st.integers(1, ndim - 1))
        if data.draw(st.booleans()):
            leading -= ndim  # the negative form counts from the end
        num_units = data.draw(st.integers(1, 6))
        kept = leading + ndim if leading < 0 else leading  # axes kept in front
        num_inputs = int(np.prod(trailing[kept - 1:]))
        l_in = L.InputLayer([None] + trailing)
        W = parameter(data.draw, (num_inputs, num_units), rng)
        b = data.draw(st.sampled_from([None, "zero", "random"]))
        b = {None: None, "zero": init.Constant(0.0),
             "random": rng.standard_normal(num_units).astype(np.float32)}[b]
        layer = L.DenseLayer(l_in, num_units=num_units, num_leading_axes=leading, W=W, b=b,
                             nonlinearity=data.draw(nonlinearities(kept + 1)))
        assert_parity(layer, bundle_path(), batch=data.draw(st.integers(1, 4)))


    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity_on_the_direct_product(self, data, bundle_path, monkeypatch):
        """Batches that fill blocks of 8 items and 48 units or more, in a process whose
        convolutions have loaded numba: the runtime multiplies with numba's direct
        product (``runtime.kernels._numba.dense``), not OpenBLAS."""
        pytest.importorskip("numba", reason="numba not installed (optional [fast] extra)")
        from runtime import kernels
        from runtime.kernels import _numba

        _numba.load()
        monkeypatch.setattr(kernels, "AUTO_MIN_WORK", 0)  # every product counts as large
        calls = []
        real = _numba._dense_direct
        monkeypatch.setattr(_numba, "_dense_direct", lambda *a: calls.append(1) or real(*a))
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        trailing = data.draw(shapes(1, 2, max_side=12))
        num_inputs = int(np.prod(trailing))
        num_units = data.draw(st.integers(48, 70))
        l_in = L.InputLayer([None] + trailing)
        layer = L.DenseLayer(l_in, num_units=num_units,
                             W=parameter(data.draw, (num_inputs, num_units), rng),
                             b=rng.standard_normal(num_units).astype(np.float32),
                             nonlinearity=data.draw(nonlinearities(2)))
        batch = data.draw(st.sampled_from([8, 13, 16, 24, 33, 40]))
        assert_parity(layer, bundle_path(), batch=batch)
        assert calls


class TestNINLayer:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        channels = data.draw(st.integers(1, 5))
        spatial = data.draw(shapes(0, 2))
        num_units = data.draw(st.integers(1, 5))
        untie = data.draw(st.booleans()) and len(spatial) > 0
        l_in = L.InputLayer([None, channels] + spatial)
        W = parameter(data.draw, (channels, num_units), rng)
        b_shape = (num_units,) + tuple(spatial) if untie else (num_units,)
        b = data.draw(st.sampled_from([None, "random"]))
        b = None if b is None else rng.standard_normal(b_shape).astype(np.float32)
        layer = L.NINLayer(l_in, num_units=num_units, untie_biases=untie, W=W, b=b,
                           nonlinearity=data.draw(nonlinearities(2 + len(spatial))))
        assert_parity(layer, bundle_path(), batch=data.draw(st.integers(1, 3)))
