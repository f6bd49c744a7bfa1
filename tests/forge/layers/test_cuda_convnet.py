"""forge.layers.cuda_convnet: the bc01 names as forge's layers, c01b refused."""
import pytest

from forge import layers as L
from forge.layers import cuda_convnet as cc


def test_conv_bc01():
    layer = cc.Conv2DCCLayer(L.InputLayer((None, 3, 8, 8)), 16, 3, partial_sum=4)
    assert type(layer) is L.Conv2DLayer and layer.flip_filters is False
    with pytest.raises(NotImplementedError, match="square filters"):
        cc.Conv2DCCLayer(L.InputLayer((None, 3, 8, 8)), 16, (3, 2))
    with pytest.raises(NotImplementedError, match="c01b layout"):
        cc.Conv2DCCLayer(L.InputLayer((None, 3, 8, 8)), 16, 3, dimshuffle=False)


def test_max_pool_keeps_partial_windows():
    layer = cc.MaxPool2DCCLayer(L.InputLayer((None, 3, 7, 7)), 3, stride=2)
    assert type(layer) is L.MaxPool2DLayer and layer.ignore_border is False
    assert layer.output_shape == (None, 3, 3, 3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(ignore_border=True), "ignore_border=True"), (dict(pad=1), "pad=1"),
    (dict(stride=3), "no larger than the window"), (dict(dimshuffle=False), "c01b")])
def test_max_pool_refusals(kwargs, message):
    with pytest.raises(NotImplementedError, match=message):
        cc.MaxPool2DCCLayer(L.InputLayer((None, 3, 7, 7)), 2, **kwargs)


def test_shuffles_round_trip():
    l_in = L.InputLayer((2, 3, 4, 5))
    c01b = cc.bc01_to_c01b(l_in)
    assert c01b.output_shape == (3, 4, 5, 2)
    assert cc.c01b_to_bc01(c01b).output_shape == (2, 3, 4, 5)
    assert cc.ShuffleC01BToBC01Layer is cc.c01b_to_bc01


def test_nin_c01b_is_refused():
    with pytest.raises(NotImplementedError, match="c01b layout"):
        cc.NINLayer_c01b(L.InputLayer((3, 4, 5, 2)), 8)


def test_module_examples():
    import doctest

    from forge.layers import cuda_convnet as module

    assert doctest.testmod(module).failed == 0
