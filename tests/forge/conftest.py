"""Fixtures for the forge tests."""
import numpy as np
import pytest

from forge import random as forge_random


@pytest.fixture(autouse=True)
def _restore_forge_rng():
    """Give every test forge's default generator back, whatever it set."""
    previous = forge_random.get_rng()
    yield
    forge_random.set_rng(previous)


@pytest.fixture
def seeded():
    """Seed forge's generator for a reproducible test."""
    forge_random.set_rng(np.random.RandomState(42))
