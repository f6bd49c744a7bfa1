"""runtime.layers.input."""
import numpy as np
import pytest

from runtime import BundleError

from ..helpers import build_layer


class TestInputLayer:
    def test_identity(self):
        layer = build_layer("InputLayer", {"shape": [None, 3]}, inputs=[])
        x = np.zeros((2, 3))
        assert layer(x) is x and layer.shape == (None, 3)

    @pytest.mark.parametrize("shape", [[None, -1], "3", [2.0], [True]])
    def test_bad_shape(self, shape):
        with pytest.raises(BundleError, match="shape must be a list of non-negative ints"):
            build_layer("InputLayer", {"shape": shape}, inputs=[])
