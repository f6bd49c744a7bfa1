"""Noise layers: random only in training, so the identity at inference."""
from .base import Layer, register

__all__ = ["DropoutLayer", "GaussianNoiseLayer"]


@register
class DropoutLayer(Layer):
    """Identity (dropout is off at inference)."""

    def __call__(self, x):
        return x


@register
class GaussianNoiseLayer(Layer):
    """Identity (no noise at inference)."""

    def __call__(self, x):
        return x
