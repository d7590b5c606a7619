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
from crsky.sphere import check_nside

__all__ = [
    "check_particles_per_bin",
    "sample_log_uniform_rigidity",
    "sample_stratified_directions",
]

_NSIDE_FINE = 2**29  # the finest HEALPix resolution healpy supports


def check_particles_per_bin(
    particles_per_bin: int, nside: int, key: str = "particles_per_bin"
) -> None:
    """ConfigError unless ``particles_per_bin`` is a positive multiple of the 12 nside² pixels:
    particle k lies in pixel k mod 12 nside², so only then does every lens row get the same
    number of particles (fewer than 12 nside² leave rows without any)."""
    npix = 12 * check_nside(nside) ** 2
    n = particles_per_bin
    if n < 1 or n % npix:
        below, above = max(n // npix, 1) * npix, (n // npix + 1) * npix
        raise ConfigError(
            f"{key} = {n}: must be a multiple of the {npix} pixels of nside {nside} (every "
            f"lens row needs the same number of particles), e.g. "
            f"{below} or {above}"
        )


def sample_stratified_directions(
    nside: int, first_index: int, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (n, 3) for particles ``first_index ... first_index + n - 1`` of a bin, and
    their RING pixel indices (n,) at ``nside``.

    Galactic frame: lon = atan2(y, x), lat = asin(z).
    """
    npix = hp.nside2npix(check_nside(nside))
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
