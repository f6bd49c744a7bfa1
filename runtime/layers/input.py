"""The graph's entry points."""
from .base import Layer, check, is_int, register

__all__ = ["InputLayer"]


@register
class InputLayer(Layer):
    """Where a fed array enters the graph; the model checks and converts it first."""

    config_keys = ("shape",)
    num_inputs = 0

    def __init__(self, name, inputs, shape):
        super().__init__(name, inputs)
        check(isinstance(shape, list) and all(s is None or is_int(s, 0) for s in shape),
              f"shape must be a list of non-negative ints and nulls, got {shape!r}")
        self.shape = tuple(shape)

    def __call__(self, x):
        return x
