"""forge.layers.corrmm: Conv2DMMLayer as forge's Conv2DLayer."""
from forge import layers as L
from forge.layers.corrmm import Conv2DMMLayer


def test_conv2dmm_is_a_correlating_conv2d():
    layer = Conv2DMMLayer(L.InputLayer((None, 3, 8, 8)), 4, (3, 2), stride=2)
    assert type(layer) is L.Conv2DLayer and layer.flip_filters is False
    assert layer.output_shape == (None, 4, 3, 4)


def test_module_examples():
    import doctest

    from forge.layers import corrmm as module

    assert doctest.testmod(module).failed == 0
