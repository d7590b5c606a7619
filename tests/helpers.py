"""Helpers shared by test modules (imported as ``helpers``; conftest.py holds only fixtures)."""

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def random_unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    """n isotropic unit vectors (n, 3)."""
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1)[:, None]


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between rows of two (N, 3) arrays of unit vectors (robust near 0)."""
    return np.degrees(2 * np.arctan2(np.linalg.norm(a - b, axis=1), np.linalg.norm(a + b, axis=1)))
