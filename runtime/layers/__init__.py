"""Callable layers, one module per layer family as in forge, and the registry.

Importing this package registers every layer type; :func:`layer_class` finds the class
for a bundle's ``type`` name.
"""
from .base import Layer, known_types, layer_class, register
from .input import InputLayer
from .dense import DenseLayer, NINLayer
from .special import (BiasLayer, ExpressionLayer, InverseLayer, NonlinearityLayer,
                      ParametricRectifierLayer, RandomizedRectifierLayer, ScaleLayer,
                      TPSTransformerLayer, TransformerLayer)
from .noise import DropoutLayer, GaussianNoiseLayer
from .shape import DimshuffleLayer, FlattenLayer, PadLayer, ReshapeLayer, SliceLayer
from .merge import ConcatLayer, ElemwiseMergeLayer, ElemwiseSumLayer
from .conv import (Conv1DLayer, Conv2DLayer, Conv3DLayer, DilatedConv2DLayer,
                   LocallyConnected2DLayer, TransposedConv2DLayer, TransposedConv3DLayer)
from .pool import (FeaturePoolLayer, FeatureWTALayer, GlobalPoolLayer, MaxPool1DLayer,
                   MaxPool2DLayer, MaxPool3DLayer, Pool1DLayer, Pool2DLayer, Pool3DLayer,
                   SpatialPyramidPoolingLayer, Upscale1DLayer, Upscale2DLayer, Upscale3DLayer)
from .normalization import BatchNormLayer, LocalResponseNormalization2DLayer, StandardizationLayer
from .embedding import EmbeddingLayer
from .recurrent import CustomRecurrentLayer, GRULayer, LSTMLayer, RecurrentLayer

__all__ = [
    "Layer", "register", "layer_class", "known_types",
    "InputLayer", "DenseLayer", "NINLayer", "NonlinearityLayer", "ExpressionLayer",
    "BiasLayer", "ScaleLayer", "DropoutLayer", "GaussianNoiseLayer", "FlattenLayer",
    "ReshapeLayer", "DimshuffleLayer", "SliceLayer", "PadLayer", "ConcatLayer",
    "ElemwiseSumLayer", "ElemwiseMergeLayer", "Conv1DLayer", "Conv2DLayer", "Conv3DLayer",
    "DilatedConv2DLayer", "TransposedConv2DLayer", "TransposedConv3DLayer",
    "LocallyConnected2DLayer", "Pool1DLayer", "Pool2DLayer", "Pool3DLayer", "MaxPool1DLayer",
    "MaxPool2DLayer", "MaxPool3DLayer", "GlobalPoolLayer", "Upscale1DLayer", "Upscale2DLayer",
    "Upscale3DLayer", "FeaturePoolLayer", "FeatureWTALayer", "SpatialPyramidPoolingLayer",
    "BatchNormLayer", "LocalResponseNormalization2DLayer", "StandardizationLayer",
    "ParametricRectifierLayer", "RandomizedRectifierLayer", "InverseLayer", "TransformerLayer",
    "TPSTransformerLayer",
]
__all__ += ["EmbeddingLayer", "CustomRecurrentLayer", "RecurrentLayer", "LSTMLayer", "GRULayer"]
