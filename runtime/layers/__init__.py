"""Callable layers, one module per layer family as in forge, and the registry.

Importing this package registers every layer type; :func:`layer_class` finds the class
for a bundle's ``type`` name.
"""
from .base import Layer, known_types, layer_class, register
from .input import InputLayer
from .dense import DenseLayer, NINLayer
from .special import BiasLayer, ExpressionLayer, NonlinearityLayer, ScaleLayer
from .noise import DropoutLayer, GaussianNoiseLayer
from .shape import DimshuffleLayer, FlattenLayer, PadLayer, ReshapeLayer, SliceLayer
from .merge import ConcatLayer, ElemwiseMergeLayer, ElemwiseSumLayer

__all__ = [
    "Layer", "register", "layer_class", "known_types",
    "InputLayer", "DenseLayer", "NINLayer", "NonlinearityLayer", "ExpressionLayer",
    "BiasLayer", "ScaleLayer", "DropoutLayer", "GaussianNoiseLayer", "FlattenLayer",
    "ReshapeLayer", "DimshuffleLayer", "SliceLayer", "PadLayer", "ConcatLayer",
    "ElemwiseSumLayer", "ElemwiseMergeLayer",
]
