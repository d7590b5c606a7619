"""Mass composition as charge fractions; rigidity R = E / (Z e).

A composition maps element symbols to fractions of the observed CRs, e.g. seed 002's mixture
{H: 0.15, He: 0.45, N: 0.40} where N (Z = 7) stands for the CNO group. Fractions must sum to 1
(within 1e-6): no silent renormalisation.
"""

from dataclasses import dataclass

import numpy as np

from crsky.errors import ConfigError
from crsky.sky._kernels import categorical_lookup

__all__ = ["ELEMENT_CHARGE", "Composition", "log10_rigidity"]

ELEMENT_CHARGE = {
    symbol: z
    for z, symbol in enumerate(
        "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe".split(), start=1
    )
}
_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Composition:
    """Charges Z (k,) and their fractions (k,) of the CRs."""

    charges: tuple[int, ...]
    fractions: tuple[float, ...]

    def __post_init__(self):
        if len(self.charges) == 0 or len(self.charges) != len(self.fractions):
            raise ConfigError("'composition' needs one fraction per element and at least one")
        if len(set(self.charges)) != len(self.charges):
            raise ConfigError(f"'composition' lists a charge twice: {self.charges}")
        for z in self.charges:
            if not 1 <= z <= 26:
                raise ConfigError(f"'composition' charges must be 1 ... 26, got {z!r}")
        f = np.asarray(self.fractions, dtype=np.float64)
        if not np.all(np.isfinite(f)) or np.any(f < 0):
            raise ConfigError(f"'composition' fractions must be ≥ 0, got {self.fractions}")
        if abs(f.sum() - 1.0) > _SUM_TOLERANCE:
            raise ConfigError(
                f"'composition' fractions must sum to 1, got {f.sum():.6g} from {self.fractions}"
            )

    @classmethod
    def from_config(cls, spec: dict) -> "Composition":
        """From {symbol: fraction}, e.g. {"H": 0.15, "He": 0.45, "N": 0.40}."""
        if not isinstance(spec, dict) or not spec:
            raise ConfigError("'composition' must map element symbols to fractions")
        unknown = sorted(set(spec) - set(ELEMENT_CHARGE))
        if unknown:
            raise ConfigError(f"'composition' has unknown elements {unknown}; use symbols H ... Fe")
        items = sorted(spec.items(), key=lambda kv: ELEMENT_CHARGE[kv[0]])
        return cls(tuple(ELEMENT_CHARGE[s] for s, _ in items), tuple(float(f) for _, f in items))

    @property
    def charge_min(self) -> int:
        return min(z for z, f in zip(self.charges, self.fractions, strict=True) if f > 0)

    @property
    def charge_max(self) -> int:
        return max(z for z, f in zip(self.charges, self.fractions, strict=True) if f > 0)

    @property
    def cumulative(self) -> np.ndarray:
        """Cumulative fractions (k,) float64, ending at exactly 1."""
        cumulative = np.cumsum(self.fractions)
        return cumulative / cumulative[-1]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n charges (uint8) drawn with the configured fractions."""
        charges = np.asarray(self.charges, dtype=np.uint8)
        return categorical_lookup(rng.random(n), self.cumulative, charges)


def log10_rigidity(log10_energy: np.ndarray, charge: np.ndarray) -> np.ndarray:
    """log10(R / V) = log10(E / eV) − log10 Z for energies in eV and charges in units of e."""
    return np.asarray(log10_energy, dtype=np.float64) - np.log10(np.asarray(charge, np.float64))
