"""The sphere: HEALPix resolutions and angles between directions (shared by every stage).

>>> check_nside(64)
64
>>> float(angle_between_deg([[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])[0])
90.0
"""

import healpy as hp
import numpy as np

from crsky.errors import ConfigError

__all__ = ["angle_between_deg", "check_nside"]


def check_nside(nside, key: str = "nside") -> int:
    """``nside`` as an int if it is a HEALPix nside (an integer power of 2, 1 ... 2^29), else
    ConfigError naming ``key``."""
    valid = isinstance(nside, int | np.integer) and not isinstance(nside, bool | np.bool_)
    if not (valid and hp.isnsideok(int(nside), nest=True)):
        raise ConfigError(f"{key} must be a power of 2 (1, 2, 4, ..., 2^29), got {nside!r}")
    return int(nside)


def angle_between_deg(a, b) -> np.ndarray:
    """Angle in degrees between the rows of two (N, 3) arrays of directions (normalised here),
    as 2 atan2(|â − b̂|, |â + b̂|): accurate near 0° and 180°, where arccos of the dot product
    loses half its digits."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(
        2.0 * np.arctan2(np.linalg.norm(a - b, axis=-1), np.linalg.norm(a + b, axis=-1))
    )
