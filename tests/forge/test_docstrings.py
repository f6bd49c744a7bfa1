"""Run the Examples sections of the docstrings, so that they stay true."""
import doctest
import importlib

import pytest

MODULES = [
    "forge.random", "forge.utils", "forge.init", "forge.nonlinearities",
    "forge.layers.base", "forge.layers.input", "forge.layers.dense",
    "forge.layers.special", "forge.layers.noise", "forge.layers.shape",
    "forge.layers.merge", "forge.layers.helper", "forge.layers.dnn", "forge.layers.corrmm",
    "forge.layers.cuda_convnet", "forge.lowering", "forge.layers.recurrent",
    "forge.layers.embedding",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
