"""runtime.layers.noise: identity at inference."""
import numpy as np
import pytest

from runtime import BundleError

from ..helpers import build_layer, check_layer


@pytest.mark.parametrize("type_name", ["DropoutLayer", "GaussianNoiseLayer"])
class TestNoiseLayers:
    def test_identity(self, type_name):
        check_layer(type_name, {}, {}, [(3, 4, 2)], lambda x: x)

    def test_config_holds_nothing(self, type_name):
        with pytest.raises(BundleError, match=rf"\({type_name}\): unexpected config key 'p'; "
                                              "it takes none"):
            build_layer(type_name, {"p": 0.5})

    def test_returns_its_input_unchanged(self, type_name):
        x = np.arange(3.0)
        assert build_layer(type_name, {})(x) is x
