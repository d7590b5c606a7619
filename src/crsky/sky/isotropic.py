"""Isotropic background: CRs drawn on the observed sky, weighted by the exposure.

Isotropic skies are drawn directly on the observed sky (not by tracing isotropic emission through
the Galaxy: Liouville's theorem keeps an isotropic flux isotropic; DESIGN.md section 8). A CR lands
in HEALPix pixel p with probability proportional to the pixel-averaged relative exposure
(:meth:`crsky.sky.exposure.Exposure.pixel_exposure`); pixels are drawn with an alias table, O(1)
per CR (acceptance thresholds stored as 32-bit fractions: probabilities exact to 2^-32).
"""

import numpy as np

from crsky.errors import ConfigError
from crsky.sky._kernels import alias_lookup, build_alias_table, pack_alias_table
from crsky.sky.exposure import Exposure
from crsky.sphere import check_nside

__all__ = ["PixelSampler", "isotropic_sampler"]


class PixelSampler:
    """Draw pixel indices 0 ... k-1 with probabilities ∝ ``weights`` (k,) (alias method)."""

    def __init__(self, weights: np.ndarray):
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ConfigError("pixel weights must be a non-empty 1-d array of finite values ≥ 0")
        if w.sum() <= 0:
            raise ConfigError("pixel weights are all zero: no pixel can be drawn")
        self.probability = w / w.sum()
        self._table = pack_alias_table(*build_alias_table(w))
        self._uniform = bool(np.all(w == w[0]))

    @property
    def alias_table(self) -> np.ndarray:
        """The packed alias table (k,) uint64 (crsky.sky._kernels.pack_alias_table)."""
        return self._table

    @property
    def size(self) -> int:
        return self.probability.size

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n pixel indices (int64)."""
        if self._uniform:
            return rng.integers(0, self.size, size=n, dtype=np.int64)
        return alias_lookup(rng.random(n), self._table)


def isotropic_sampler(nside: int, exposure: Exposure) -> PixelSampler:
    """Sampler of RING pixels at ``nside`` for an isotropic flux seen with ``exposure``."""
    return PixelSampler(exposure.pixel_exposure(check_nside(nside), nest=False))
