"""``import forge``: the PyTensor version check."""
import warnings
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as T
import pytest

import forge


@pytest.mark.parametrize("version", ["3.0.7", "3.0.10+12.gabcdef", "3.3.0", "3.3.7"])
def test_supported_versions_import_quietly(version):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        forge._check_pytensor(version)


@pytest.mark.parametrize("version", ["2.25.0", "3.0.6", "3.1.3", "3.2.0", "3.4.0", "4.0", "dev"])
def test_other_versions_warn_with_the_range_to_install(version):
    with pytest.warns(UserWarning, match=rf"this is PyTensor {version}\b") as caught:
        forge._check_pytensor(version)
    assert "'pytensor>=3.0.7,!=3.1.*,!=3.2.*,<3.4'" in str(caught[0].message)


def test_the_requirement_is_the_one_pyproject_declares():
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    if not pyproject.exists():
        pytest.skip("not a source checkout: no pyproject.toml next to the tests")
    assert f'"{forge.PYTENSOR_REQUIREMENT}"' in pyproject.read_text()


def test_pytensor_3_1_and_3_2_are_refused_for_a_reason():
    """The rewrite that makes those releases unusable: a slice of a set_subtensor
    comes out with one channel instead of two. Passes on the installed version."""
    x = T.tensor("x", shape=(None, None, 1, 1))
    zeros = T.zeros((x.shape[0], x.shape[1], 1, 1))
    out = 0.5 + T.set_subtensor(zeros[:, 0:x.shape[1]], T.sqr(x))[:, 0:x.shape[1]]
    for mode in ("FAST_COMPILE", "FAST_RUN"):
        got = pytensor.function([x], out, mode=mode)(np.ones((1, 2, 1, 1), "float32"))
        np.testing.assert_array_equal(got, np.full((1, 2, 1, 1), 1.5, "float32"))


def test_the_installed_pytensor_is_a_supported_one():
    test_supported_versions_import_quietly(pytensor.__version__)
