"""Observed directions and rigidities of backtracked particles.

Directions are stratified over HEALPix pixels: particle k of a rigidity bin is placed in RING pixel
k mod 12 nside^2, uniformly within that pixel, so every pixel gets the same count (up to one) and
every lens row has statistics. Uniform within a pixel is realised by drawing one of its NESTED
descendants at nside 2^29 uniformly (HEALPix pixels are equal-area at every level) and taking the
descendant's centre: the discreteness is below 1 milliarcsecond.
"""

import healpy as hp
import numpy as np

from crsky.errors import ConfigError

__all__ = ["sample_log_uniform_rigidity", "sample_stratified_directions"]

_NSIDE_FINE = 2**29  # the finest HEALPix resolution healpy supports


def sample_stratified_directions(
    nside: int, first_index: int, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (n, 3) for particles ``first_index ... first_index + n - 1`` of a bin, and
    their RING pixel indices (n,) at ``nside``.

    Galactic frame: lon = atan2(y, x), lat = asin(z).
    """
    if not hp.isnsideok(nside, nest=True):
        raise ConfigError(f"'nside' must be a power of 2 up to 2^29, got {nside!r}")
    npix = hp.nside2npix(nside)
    pixel_ring = (np.arange(first_index, first_index + n, dtype=np.int64)) % npix
    depth = int(np.log2(_NSIDE_FINE // nside))
    pixel_nest = hp.ring2nest(nside, pixel_ring).astype(np.int64)
    fine = (pixel_nest << (2 * depth)) + rng.integers(0, 1 << (2 * depth), size=n, dtype=np.int64)
    direction = np.stack(hp.pix2vec(_NSIDE_FINE, fine, nest=True), axis=1)
    return direction, pixel_ring


def sample_log_uniform_rigidity(
    log10_rigidity_min: float, log10_rigidity_max: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """log10(R / V) (n,) drawn uniformly in [min, max): rigidities log-uniform within the bin."""
    return rng.uniform(log10_rigidity_min, log10_rigidity_max, size=n)
