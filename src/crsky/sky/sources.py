"""Sources of a simulated sky: positions, relative fluxes, and how many CRs are signal.

- ``SignalFraction``: the fraction of a map's CRs that come from the sources, fixed (``value``),
  drawn from a list (``values``) or uniform in a range (``uniform: [lo, hi]``); all in [0, 1].
- ``signal_counts``: n_signal per map = round(f · N) (``round``), or binomial(N, f) (``binomial``:
  the Poisson-fluctuated count, bounded by N).
- ``Sources``: n sources per map at fixed Galactic (lon, lat) in degrees or drawn isotropically
  per map, with relative fluxes (equal by default). The flux is the share of the *emitted* signal
  CRs; exposure and lens transparency then decide which of them are observed
  (:mod:`crsky.sky.simulate`).
"""

from dataclasses import dataclass

import numpy as np

from crsky.errors import ConfigError
from crsky.sky.coordinates import lonlat_to_vector

__all__ = ["SIGNAL_COUNT_MODES", "SignalFraction", "Sources", "signal_counts"]

SIGNAL_COUNT_MODES = ("round", "binomial")


def _check_fraction(value, key: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"signal fraction {key!r} must be a number, got {value!r}") from err
    if not 0.0 <= f <= 1.0:
        raise ConfigError(f"signal fraction {key!r} must lie in [0, 1], got {value!r}")
    return f


@dataclass(frozen=True)
class SignalFraction:
    """Distribution of the signal fraction: ``kind`` is "value", "values" or "uniform"."""

    kind: str
    parameters: tuple[float, ...]

    @classmethod
    def from_config(cls, spec) -> "SignalFraction":
        """Exactly one of {value: f}, {values: [f, ...]}, {uniform: [lo, hi]}."""
        if not isinstance(spec, dict):
            raise ConfigError(
                f"'signal_fraction' must be {{value: f}}, {{values: [...]}} or "
                f"{{uniform: [lo, hi]}}, got {spec!r}"
            )
        given = sorted(set(spec) & {"value", "values", "uniform"})
        if len(given) != 1 or len(spec) != 1:
            raise ConfigError(
                "'signal_fraction' needs exactly one of 'value', 'values', 'uniform', "
                f"got keys {sorted(spec)}"
            )
        kind = given[0]
        if kind == "value":
            return cls(kind, (_check_fraction(spec[kind], "value"),))
        values = spec[kind]
        if not isinstance(values, list | tuple) or len(values) == 0:
            raise ConfigError(f"signal fraction {kind!r} must be a non-empty list")
        params = tuple(_check_fraction(v, kind) for v in values)
        if kind == "uniform" and (len(params) != 2 or params[0] > params[1]):
            raise ConfigError(
                f"signal fraction 'uniform' must be [lo, hi] with lo ≤ hi, got {values}"
            )
        return cls(kind, params)

    @property
    def maximum(self) -> float:
        return max(self.parameters)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n signal fractions (float64)."""
        if self.kind == "value":
            return np.full(n, self.parameters[0])
        if self.kind == "values":
            return np.asarray(self.parameters)[rng.integers(0, len(self.parameters), size=n)]
        lo, hi = self.parameters
        return rng.uniform(lo, hi, size=n)


def signal_counts(
    fraction: np.ndarray, n_cr: int, mode: str, rng: np.random.Generator
) -> np.ndarray:
    """Signal CRs per map (int64, 0 ... n_cr) for signal fractions ``fraction`` (n_maps,)."""
    if mode == "round":
        return np.rint(np.asarray(fraction) * n_cr).astype(np.int64)
    if mode == "binomial":
        return rng.binomial(n_cr, fraction).astype(np.int64)
    raise ConfigError(f"'signal_count' must be one of {SIGNAL_COUNT_MODES}, got {mode!r}")


@dataclass(frozen=True)
class Sources:
    """``n_sources`` per map; ``positions_deg`` ((lon, lat), ...) Galactic or None for isotropic
    random positions per map; ``fluxes`` relative (normalised here) or None for equal fluxes."""

    n_sources: int
    positions_deg: tuple[tuple[float, float], ...] | None = None
    fluxes: tuple[float, ...] | None = None

    def __post_init__(self):
        if int(self.n_sources) != self.n_sources or self.n_sources < 1:
            raise ConfigError(f"'n_sources' must be a positive integer, got {self.n_sources!r}")
        if self.positions_deg is not None:
            if len(self.positions_deg) != self.n_sources:
                raise ConfigError(
                    f"sources 'positions' lists {len(self.positions_deg)} positions for "
                    f"'n_sources' = {self.n_sources}"
                )
            for lon, lat in self.positions_deg:
                if not (np.isfinite(lon) and -90.0 <= lat <= 90.0):
                    raise ConfigError(f"source position ({lon}, {lat}) is not a (lon, lat) in deg")
        if self.fluxes is not None:
            f = np.asarray(self.fluxes, dtype=np.float64)
            if f.size != self.n_sources or np.any(f < 0) or not np.all(np.isfinite(f)):
                raise ConfigError(
                    f"sources 'fluxes' must be {self.n_sources} numbers ≥ 0, got {self.fluxes}"
                )
            if f.sum() <= 0:
                raise ConfigError("sources 'fluxes' are all zero")

    @classmethod
    def from_config(cls, spec: dict) -> "Sources":
        """{n_sources: k, positions: random | [[lon, lat], ...], fluxes: equal | [...]}."""
        positions = spec.get("positions", "random")
        fluxes = spec.get("fluxes", "equal")
        return cls(
            int(spec.get("n_sources", 1)),
            None if positions == "random" else tuple((float(a), float(b)) for a, b in positions),
            None if fluxes == "equal" else tuple(float(f) for f in fluxes),
        )

    @property
    def flux_share(self) -> np.ndarray:
        """Normalised relative fluxes (n_sources,)."""
        if self.fluxes is None:
            return np.full(self.n_sources, 1.0 / self.n_sources)
        f = np.asarray(self.fluxes, dtype=np.float64)
        return f / f.sum()

    def directions(self, n_maps: int, rng: np.random.Generator) -> np.ndarray:
        """Galactic unit vectors (n_maps, n_sources, 3) of the sources of each map."""
        if self.positions_deg is not None:
            fixed = lonlat_to_vector(*np.asarray(self.positions_deg, dtype=np.float64).T)
            return np.broadcast_to(fixed, (n_maps, self.n_sources, 3)).copy()
        return isotropic_directions((n_maps, self.n_sources), rng)

    def pick(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Source index (int64) of n emitted signal CRs, with probabilities = flux shares."""
        if self.n_sources == 1:
            return np.zeros(n, dtype=np.int64)
        cumulative = np.cumsum(self.flux_share)
        index = np.searchsorted(cumulative / cumulative[-1], rng.random(n), side="right")
        return np.minimum(index, self.n_sources - 1)


def isotropic_directions(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Isotropic unit vectors of shape (*shape, 3): z uniform in [-1, 1], azimuth uniform."""
    z = rng.uniform(-1.0, 1.0, size=shape)
    phi = rng.uniform(0.0, 2.0 * np.pi, size=shape)
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=-1)
