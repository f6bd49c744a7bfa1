"""``import forge``: the PyTensor version check."""
import warnings

import pytensor
import pytest

import forge


@pytest.mark.parametrize("version", ["3.0.7", "3.0.10+12.gabcdef", "3.1.0", "3.3.7"])
def test_supported_versions_import_quietly(version):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        forge._check_pytensor(version)


@pytest.mark.parametrize("version", ["2.25.0", "3.0.6", "3.4.0", "4.0", "dev"])
def test_other_versions_warn_with_the_range_to_install(version):
    with pytest.warns(UserWarning, match=rf"this is PyTensor {version}\b") as caught:
        forge._check_pytensor(version)
    assert "'pytensor>=3.0.7,<3.4'" in str(caught[0].message)


def test_the_installed_pytensor_is_a_supported_one():
    test_supported_versions_import_quietly(pytensor.__version__)
