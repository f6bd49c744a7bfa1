"""The Examples sections in runtime's docstrings run and show what they claim."""
import doctest
import importlib
import pkgutil

import pytest

import runtime

MODULES = ["runtime"] + [name for _, name, _ in pkgutil.walk_packages(runtime.__path__,
                                                                      "runtime.")]


#: Modules of optional extras, and the package each needs.
OPTIONAL = {"runtime.dask": "dask"}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name], reason=f"{name} needs the optional "
                            f"{OPTIONAL[name]} package (the [dask] extra)")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_helpers_examples():
    from tests.runtime import helpers

    assert doctest.testmod(helpers).failed == 0
