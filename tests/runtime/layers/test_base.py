"""runtime.layers.base: the registry and the shared construction checks."""
import numpy as np
import pytest

from runtime import BundleError
from runtime.layers import Layer, known_types, layer_class, register
from runtime.layers.base import check, is_int

from ..helpers import build_layer

CONTRACT_TYPES = {
    "InputLayer", "DenseLayer", "NINLayer", "NonlinearityLayer", "BiasLayer", "ScaleLayer",
    "ExpressionLayer", "DropoutLayer", "GaussianNoiseLayer", "FlattenLayer", "ReshapeLayer",
    "DimshuffleLayer", "SliceLayer", "PadLayer", "ConcatLayer", "ElemwiseSumLayer",
    "ElemwiseMergeLayer", "Conv1DLayer", "Conv2DLayer", "Conv3DLayer", "DilatedConv2DLayer",
    "TransposedConv2DLayer", "TransposedConv3DLayer", "LocallyConnected2DLayer", "Pool1DLayer",
    "Pool2DLayer", "Pool3DLayer", "MaxPool1DLayer", "MaxPool2DLayer", "MaxPool3DLayer",
    "GlobalPoolLayer", "Upscale1DLayer", "Upscale2DLayer", "Upscale3DLayer", "FeaturePoolLayer",
    "FeatureWTALayer", "SpatialPyramidPoolingLayer", "BatchNormLayer",
    "LocalResponseNormalization2DLayer", "StandardizationLayer",
    "ParametricRectifierLayer", "RandomizedRectifierLayer", "InverseLayer", "TransformerLayer",
    "TPSTransformerLayer", "EmbeddingLayer", "CustomRecurrentLayer", "RecurrentLayer",
    "LSTMLayer", "GRULayer",
}


def test_every_contract_type_is_registered():
    assert set(known_types()) == CONTRACT_TYPES
    for name in CONTRACT_TYPES:
        assert layer_class(name).__name__ == name


def test_unknown_type_names_it_and_the_known_ones():
    with pytest.raises(BundleError, match=r"unknown layer type 'NeuralODELayer'; this runtime "
                                          r"knows BatchNormLayer, BiasLayer, ConcatLayer"):
        layer_class("NeuralODELayer")


def test_registering_a_second_class_under_a_taken_name_fails():
    with pytest.raises(ValueError, match="'DenseLayer' is registered twice"):
        register(type("DenseLayer", (Layer,), {}))


def test_registering_the_same_class_again_is_harmless():
    cls = layer_class("DropoutLayer")
    assert register(cls) is cls


def test_from_config_sets_name_inputs_and_read_only_params():
    W = np.ones((2, 3), np.float32)
    layer = build_layer("DenseLayer", {"num_units": 3, "num_leading_axes": 1,
                                       "nonlinearity": {"name": "linear"}},
                        {"W": W, "b": None}, inputs=["x"], name="fc")
    assert layer.name == "fc" and layer.inputs == ("x",)
    assert dict(layer.params) == {"W": W} and layer.num_params == 6
    assert repr(layer) == "<DenseLayer 'fc'>"
    with pytest.raises(TypeError):
        layer.params["b"] = W


@pytest.mark.parametrize("type_name, inputs, match", [
    ("InputLayer", ["x"], r"takes 0 input\(s\), got 1"),
    ("DropoutLayer", [], r"takes 1 input\(s\), got 0"),
    ("ConcatLayer", [], r"takes one or more input\(s\), got 0"),
])
def test_number_of_inputs(type_name, inputs, match):
    config = {"InputLayer": {"shape": [None]}, "DropoutLayer": {},
              "ConcatLayer": {"axis": 1, "cropping": None}}[type_name]
    with pytest.raises(BundleError, match=rf"layer 'layer' \({type_name}\): " + match):
        build_layer(type_name, config, inputs=inputs)


def test_wrongly_typed_config_values_become_bundle_errors():
    with pytest.raises(BundleError, match=r"layer 'layer' \(FlattenLayer\): outdim must be"):
        build_layer("FlattenLayer", {"outdim": "2"})


def test_base_layer_is_abstract():
    with pytest.raises(NotImplementedError):
        Layer("l", [])(np.zeros(1))


def test_helpers():
    assert is_int(3) and is_int(3, 3) and not is_int(2, 3) and not is_int(True)
    assert not is_int(3.0)
    check(True, "unused")
    with pytest.raises(BundleError, match="boom"):
        check(False, "boom")
