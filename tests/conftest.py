"""Shared fixtures. Helper functions live in helpers.py (two conftest modules exist, so test
modules must not import from ``conftest``)."""

import os

# The htcondor bindings warn on import when no condor_config exists (no pool here).
os.environ.setdefault("CONDOR_CONFIG", "/dev/null")

from pathlib import Path

import numpy as np
import pytest
from helpers import build_tiny_inputs, workflow_copy


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def checkout(tmp_path_factory) -> Path:
    """A fresh copy of the workflow files without results/ (shared by the dry-run tests, which
    write nothing but Snakemake's metadata)."""
    return workflow_copy(tmp_path_factory.mktemp("checkout"))


@pytest.fixture(scope="session")
def tiny_inputs(tmp_path_factory) -> dict:
    """Real, tiny inputs of every stage (helpers.build_tiny_inputs), built once per session."""
    return build_tiny_inputs(tmp_path_factory.mktemp("tiny_inputs"))
