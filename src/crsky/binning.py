"""Rigidity bins and particle shards: the job grid shared by the workflow and the CLI."""

import math
from dataclasses import dataclass

import numpy as np

from crsky.errors import ConfigError

__all__ = ["LOG10_RIGIDITY_LIMITS", "RigidityBins", "Sharding"]

# Supported rigidities, log10(R / V): below 10^15 V gyroradii in µG fields are below 0.4 pc and
# tracing to 20 kpc becomes unaffordable; above 10^22 V no cosmic rays are known.
LOG10_RIGIDITY_LIMITS = (15.0, 22.0)


@dataclass(frozen=True)
class RigidityBins:
    """``n_bins`` equal bins in log10(R / V) between ``log10_rigidity_min`` and ``_max``."""

    log10_rigidity_min: float
    log10_rigidity_max: float
    n_bins: int

    def __post_init__(self):
        if not (np.isfinite(self.log10_rigidity_min) and np.isfinite(self.log10_rigidity_max)):
            raise ConfigError("rigidity bin limits must be finite log10(R / V) values")
        lo, hi = LOG10_RIGIDITY_LIMITS
        if not (lo <= self.log10_rigidity_min and self.log10_rigidity_max <= hi):
            raise ConfigError(
                f"rigidity bins 'log10_rigidity_min' .. 'log10_rigidity_max' = "
                f"{self.log10_rigidity_min} .. {self.log10_rigidity_max} must lie within "
                f"{lo} .. {hi} (log10 of R in volts)"
            )
        if self.log10_rigidity_max <= self.log10_rigidity_min:
            raise ConfigError(
                f"'log10_rigidity_max' ({self.log10_rigidity_max}) must exceed "
                f"'log10_rigidity_min' ({self.log10_rigidity_min})"
            )
        if int(self.n_bins) != self.n_bins or self.n_bins < 1:
            raise ConfigError(f"'n_bins' must be a positive integer, got {self.n_bins!r}")

    @property
    def edges(self) -> np.ndarray:
        """Bin edges in log10(R / V), shape (n_bins + 1,)."""
        return np.linspace(self.log10_rigidity_min, self.log10_rigidity_max, self.n_bins + 1)

    def bin_range(self, index: int) -> tuple[float, float]:
        """(lower, upper) edge of bin ``index`` in log10(R / V)."""
        if not 0 <= index < self.n_bins:
            raise ConfigError(
                f"rigidity bin index {index} is outside the configured 0 ... {self.n_bins - 1}"
            )
        edges = self.edges
        return float(edges[index]), float(edges[index + 1])


@dataclass(frozen=True)
class Sharding:
    """``particles_per_bin`` particles per rigidity bin, traced in shards of ``shard_size``.

    Particle k of a bin (k = 0 ... particles_per_bin - 1) belongs to shard k // shard_size.
    """

    particles_per_bin: int
    shard_size: int

    def __post_init__(self):
        for name in ("particles_per_bin", "shard_size"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ConfigError(f"{name!r} must be a positive integer, got {value!r}")

    @property
    def n_shards(self) -> int:
        return math.ceil(self.particles_per_bin / self.shard_size)

    def particle_range(self, shard: int) -> tuple[int, int]:
        """First and one-past-last particle index of ``shard`` within its bin."""
        if not 0 <= shard < self.n_shards:
            raise ConfigError(
                f"shard index {shard} is outside the configured 0 ... {self.n_shards - 1}"
            )
        start = shard * self.shard_size
        return start, min(start + self.shard_size, self.particles_per_bin)
