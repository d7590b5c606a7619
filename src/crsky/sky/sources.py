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
    random positions per map; ``fluxes`` relative (normalised here) or None for equal fluxes;
    ``distances_mpc`` (d_min, d_max): fluxes drawn per map instead, for sources of equal
    luminosity placed uniformly in volume between d_min and d_max (pdf ∝ d², flux ∝ 1 / d²:
    Euclidean counts N(> S) ∝ S^(−3/2); no propagation losses)."""

    n_sources: int
    positions_deg: tuple[tuple[float, float], ...] | None = None
    fluxes: tuple[float, ...] | None = None
    distances_mpc: tuple[float, float] | None = None

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
        if self.distances_mpc is not None:
            d = self.distances_mpc
            if len(d) != 2 or not (np.all(np.isfinite(d)) and 0 < d[0] <= d[1]):
                raise ConfigError(
                    "sources 'fluxes': {distances_mpc: [d_min, d_max]} needs 0 < d_min <= d_max, "
                    f"got {list(d)}"
                )

    @classmethod
    def from_config(cls, spec: dict) -> "Sources":
        """{n_sources: k, positions: random | [[lon, lat], ...], fluxes: equal | [...] |
        {distances_mpc: [d_min, d_max]}}."""
        positions = spec.get("positions", "random")
        fluxes = spec.get("fluxes", "equal")
        drawn = isinstance(fluxes, dict)
        if drawn and set(fluxes) != {"distances_mpc"}:
            raise ConfigError(
                f"sources 'fluxes' must be 'equal', a list or {{distances_mpc: [d_min, d_max]}}, "
                f"got {fluxes!r}"
            )
        return cls(
            int(spec.get("n_sources", 1)),
            None if positions == "random" else tuple((float(a), float(b)) for a, b in positions),
            None if fluxes == "equal" or drawn else tuple(float(f) for f in fluxes),
            tuple(float(d) for d in fluxes["distances_mpc"]) if drawn else None,
        )

    @property
    def drawn_fluxes(self) -> bool:
        """True when every map draws its own fluxes (``distances_mpc``)."""
        return self.distances_mpc is not None

    @property
    def flux_share(self) -> np.ndarray:
        """Normalised relative fluxes (n_sources,), the same in every map; ConfigError for
        fluxes drawn per map (they are in each map's labels, ``source_flux``)."""
        if self.drawn_fluxes and self.n_sources > 1:
            raise ConfigError(
                "sources 'fluxes' are drawn per map ({distances_mpc: ...}); there are no fixed "
                "flux shares (each map's are its 'source_flux' label)"
            )
        if self.fluxes is None:
            return np.full(self.n_sources, 1.0 / self.n_sources)  # one drawn flux: share 1
        f = np.asarray(self.fluxes, dtype=np.float64)
        return f / f.sum()

    def draw_shares(self, n_maps: int, rng: np.random.Generator) -> np.ndarray | None:
        """Flux shares (n_maps, n_sources) of maps whose fluxes are drawn (distances uniform in
        volume, flux ∝ 1 / d², normalised per map), or None for fixed fluxes (no draws)."""
        if not self.drawn_fluxes:
            return None
        lo, hi = (d**3 for d in self.distances_mpc)
        distance = np.cbrt(lo + rng.random((n_maps, self.n_sources)) * (hi - lo))
        flux = distance**-2.0
        return flux / flux.sum(axis=1, keepdims=True)

    def map_shares(self, n_maps: int, shares: np.ndarray | None) -> np.ndarray:
        """The flux shares (n_maps, n_sources) of every map: ``shares`` if drawn, else the
        fixed ones."""
        if shares is not None:
            return shares
        return np.broadcast_to(self.flux_share, (n_maps, self.n_sources))

    def directions(self, n_maps: int, rng: np.random.Generator) -> np.ndarray:
        """Galactic unit vectors (n_maps, n_sources, 3) of the sources of each map."""
        if self.positions_deg is not None:
            fixed = lonlat_to_vector(*np.asarray(self.positions_deg, dtype=np.float64).T)
            return np.broadcast_to(fixed, (n_maps, self.n_sources, 3)).copy()
        return isotropic_directions((n_maps, self.n_sources), rng)

    def pick(self, n: int, rng: np.random.Generator, shares=None) -> np.ndarray:
        """Source index (int64) of n emitted signal CRs, with probabilities = flux shares (or
        per CR the rows of ``shares`` (n, n_sources), for fluxes drawn per map)."""
        if self.n_sources == 1:
            return np.zeros(n, dtype=np.int64)
        if shares is not None:
            cumulative = np.cumsum(shares, axis=1)
            u = rng.random(n)[:, None] * cumulative[:, -1:]
            return np.minimum((cumulative <= u).sum(axis=1), self.n_sources - 1)
        cumulative = np.cumsum(self.flux_share)
        index = np.searchsorted(cumulative / cumulative[-1], rng.random(n), side="right")
        return np.minimum(index, self.n_sources - 1)


def isotropic_directions(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Isotropic unit vectors of shape (*shape, 3): z uniform in [-1, 1], azimuth uniform."""
    z = rng.uniform(-1.0, 1.0, size=shape)
    phi = rng.uniform(0.0, 2.0 * np.pi, size=shape)
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=-1)
