"""Run the Examples sections of forge.ops' docstrings, so that they stay true."""
import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["forge.ops.conv", "forge.ops.pool"])
def test_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
