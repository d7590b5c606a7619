"""Shared fixtures. Helper functions live in helpers.py (two conftest modules exist, so test
modules must not import from ``conftest``)."""

import os

# The htcondor bindings warn on import when no condor_config exists (no pool here).
os.environ.setdefault("CONDOR_CONFIG", "/dev/null")

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
