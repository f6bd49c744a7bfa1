"""forge.layers.dnn: Lasagne's cuDNN names as forge's layers."""
import pytest

from forge import layers as L
from forge.layers import dnn


def test_convolutions_correlate_by_default():
    l_in = L.InputLayer((None, 3, 8, 8, 8))
    conv = dnn.Conv3DDNNLayer(l_in, 2, 3)
    assert type(conv) is L.Conv3DLayer and conv.flip_filters is False
    conv = dnn.Conv2DDNNLayer(L.InputLayer((None, 3, 8, 8)), 2, 3, flip_filters=True, pad=1)
    assert type(conv) is L.Conv2DLayer and conv.flip_filters and conv.output_shape[2:] == (8, 8)


@pytest.mark.parametrize("factory, cls, ndim", [
    (dnn.Pool2DDNNLayer, L.Pool2DLayer, 2), (dnn.Pool3DDNNLayer, L.Pool3DLayer, 3),
    (dnn.MaxPool2DDNNLayer, L.MaxPool2DLayer, 2), (dnn.MaxPool3DDNNLayer, L.MaxPool3DLayer, 3)])
def test_pooling(factory, cls, ndim):
    l_in = L.InputLayer((None, 2) + (5,) * ndim)
    layer = factory(l_in, 2)
    assert type(layer) is cls and layer.output_shape == (None, 2) + (2,) * ndim
    with pytest.raises(NotImplementedError, match="whole pooling windows only"):
        factory(l_in, 2, ignore_border=False)


def test_same_classes():
    assert dnn.BatchNormDNNLayer is L.BatchNormLayer
    assert dnn.batch_norm_dnn is L.batch_norm
    assert dnn.SpatialPyramidPoolingDNNLayer is L.SpatialPyramidPoolingLayer


def test_module_examples():
    import doctest

    from forge.layers import dnn as module

    assert doctest.testmod(module).failed == 0
