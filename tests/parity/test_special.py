"""Parity of NonlinearityLayer, BiasLayer, ScaleLayer and ExpressionLayer."""
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from forge import layers as L, nonlinearities as nl

from .helpers import assert_parity
from .strategies import ELEMENTWISE, fn_id, SETTINGS, nonlinearities, parameter, shapes


def shared_axes_for(draw, ndim):
    mode = draw(st.sampled_from(["auto", "int", "tuple"]))
    if mode == "auto":
        return "auto"
    if mode == "int":
        return draw(st.integers(0, ndim - 1))
    return tuple(draw(st.sets(st.integers(0, ndim - 1), max_size=ndim - 1)))


class TestNonlinearityLayer:
    @pytest.mark.parametrize("fn", ELEMENTWISE + [nl.softmax], ids=fn_id)
    def test_every_nonlinearity(self, fn, bundle_path):
        layer = L.NonlinearityLayer(L.InputLayer((None, 7)), nonlinearity=fn)
        # a wide input range exercises the overflow-prone branches (exp, softplus)
        assert_parity(layer, bundle_path(), scale=6.0, batch=5)

    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        trailing = data.draw(shapes(1, 3))
        layer = L.NonlinearityLayer(L.InputLayer([None] + trailing),
                                    nonlinearity=data.draw(nonlinearities(len(trailing) + 1)))
        assert_parity(layer, bundle_path(), scale=data.draw(st.sampled_from([0.1, 1.0, 10.0])))


class TestBiasAndScaleLayer:
    @settings(**SETTINGS)
    @given(data=st.data(), kind=st.sampled_from(["bias", "scale"]))
    def test_parity(self, data, kind, bundle_path):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
        trailing = data.draw(shapes(1, 3))
        ndim = len(trailing) + 1
        shared_axes = shared_axes_for(data.draw, ndim)
        l_in = L.InputLayer([None] + trailing)
        axes = ((0,) + tuple(range(2, ndim)) if shared_axes == "auto"
                else (shared_axes,) if isinstance(shared_axes, int) else shared_axes)
        shape = tuple(([None] + trailing)[a] for a in range(ndim) if a not in axes)
        assume(None not in shape)  # a parameter cannot span the free batch axis
        value = parameter(data.draw, shape, rng)
        if kind == "bias":
            layer = L.BiasLayer(l_in, b=value, shared_axes=shared_axes)
        else:
            layer = L.ScaleLayer(l_in, scales=value, shared_axes=shared_axes)
        assert_parity(layer, bundle_path())


class TestExpressionLayer:
    @pytest.mark.parametrize("fn", [nl.rectify, nl.tanh, nl.LeakyRectify(0.2), nl.softplus],
                             ids=fn_id)
    def test_named_function(self, fn, bundle_path):
        layer = L.ExpressionLayer(L.InputLayer((None, 3, 4)), fn)
        assert_parity(layer, bundle_path())
