"""DropoutLayer and GaussianNoiseLayer export as the identity of deterministic mode."""
from hypothesis import given, settings, strategies as st

from forge import layers as L

from .helpers import assert_parity
from .strategies import SETTINGS, shapes


class TestNoiseLayers:
    @settings(**SETTINGS)
    @given(data=st.data())
    def test_parity(self, data, bundle_path):
        trailing = data.draw(shapes(1, 3))
        net = L.InputLayer([None] + trailing)
        net = L.DenseLayer(net, num_units=data.draw(st.integers(1, 5)), num_leading_axes=1)
        kind = data.draw(st.sampled_from(["dropout", "channels", "locations", "gauss"]))
        if kind == "dropout":
            net = L.DropoutLayer(net, p=data.draw(st.floats(0.0, 0.9)),
                                 rescale=data.draw(st.booleans()))
        elif kind == "channels":
            net = L.dropout_channels(L.ReshapeLayer(net, ([0], 1, -1)), p=0.3)
        elif kind == "locations":
            net = L.dropout_locations(L.ReshapeLayer(net, ([0], 1, -1)), p=0.3)
        else:
            net = L.GaussianNoiseLayer(net, sigma=data.draw(st.floats(0.01, 2.0)))
        assert_parity(net, bundle_path())
