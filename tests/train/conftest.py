"""Fixtures of the training-stage tests (helpers: train_toy.py)."""

from pathlib import Path

import pytest
from train_toy import TOY_SIZES, write_dataset


@pytest.fixture(scope="session")
def toy_chunks(tmp_path_factory) -> dict[str, list[Path]]:
    """{"train": [2 chunks], "validation": [1], "test": [1]} of the strong-signal toy set."""
    folder = tmp_path_factory.mktemp("toy_skymaps")
    return {name: write_dataset(folder, name, *size) for name, size in TOY_SIZES.items()}
