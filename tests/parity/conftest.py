import os
import tempfile

import pytest


@pytest.fixture
def bundle_path():
    """A fresh bundle path per call (hypothesis runs many examples in one test)."""
    folder = tempfile.mkdtemp(prefix="forge-parity-")
    counter = iter(range(10**6))

    def make():
        return os.path.join(folder, f"model_{next(counter)}.npz")

    return make
