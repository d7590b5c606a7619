"""Energy spectra of UHECRs and inverse-CDF sampling above a threshold.

Energies are log10(E / eV) ("log10_energy") or E in EeV ("energy_eev").

``AugerCombined2019``: the combined (SD-1500 vertical + inclined + SD-750 + hybrid) spectrum of
the Pierre Auger Observatory presented at ICRC 2019 (V. Verzi for the Auger Collaboration,
PoS(ICRC2019)450) and published in Phys. Rev. D 102 (2020) 062005 and Phys. Rev. Lett. 125 (2020)
121106 (arXiv:2008.06486, 2008.06488). Shape, eq. (8) of the PRD paper:

    J(E) ∝ E^−γ1 ∏_{i=1..3} [1 + (E / E_ij)^(1/ω_ij)]^((γi − γj) ω_ij),   j = i + 1,

with the fitted values γ1 = 3.29, γ2 = 2.51, γ3 = 3.05, γ4 = 5.1, E12 = 5.0 EeV (ankle),
E23 = 13 EeV (instep), E34 = 46 EeV (suppression) and the transition widths fixed to ω_ij = 0.05.

``PowerLaw``: J(E) ∝ E^−γ.

``EnergySampler`` draws log10 energies between ``log10_energy_min`` and ``log10_energy_max`` by
inverse CDF: the CDF is integrated once on a fine grid in log10 E (trapezoids in log J, exact for
piecewise power laws), inverted onto 2^16 equal steps of probability and interpolated linearly,
so one draw costs a table look-up (the power law is also available in closed form).
"""

from dataclasses import dataclass

import numpy as np

from crsky.errors import ConfigError
from crsky.sky._kernels import table_lookup

__all__ = ["AugerCombined2019", "EnergySampler", "PowerLaw", "Spectrum", "spectrum_from_config"]

_LOG10_EEV = 18.0  # log10(1 EeV / eV)
_N_FORWARD = 200_001  # grid points of the forward CDF
_N_INVERSE = 1 << 16  # probability steps of the inverse table


@dataclass(frozen=True)
class AugerCombined2019:
    """Auger combined spectrum fit (ICRC 2019 / PRD 102, 062005): breaks in EeV, indices γ1..γ4."""

    gamma: tuple[float, float, float, float] = (3.29, 2.51, 3.05, 5.1)
    break_energy_eev: tuple[float, float, float] = (5.0, 13.0, 46.0)
    width: tuple[float, float, float] = (0.05, 0.05, 0.05)

    def log_flux(self, log10_energy: np.ndarray) -> np.ndarray:
        """ln J(E) up to a constant, for log10(E / eV) values."""
        x = np.asarray(log10_energy, dtype=np.float64)
        ln_e = (x - _LOG10_EEV) * np.log(10.0)  # ln(E / EeV)
        out = -self.gamma[0] * ln_e
        for i, (e_break, w) in enumerate(zip(self.break_energy_eev, self.width, strict=True)):
            ln_ratio = (ln_e - np.log(e_break)) / w
            out = out + (self.gamma[i] - self.gamma[i + 1]) * w * np.logaddexp(0.0, ln_ratio)
        return out


@dataclass(frozen=True)
class PowerLaw:
    """J(E) ∝ E^−spectral_index."""

    spectral_index: float

    def __post_init__(self):
        if not np.isfinite(self.spectral_index):
            raise ConfigError(f"'spectral_index' must be finite, got {self.spectral_index!r}")

    def log_flux(self, log10_energy: np.ndarray) -> np.ndarray:
        """ln J(E) up to a constant."""
        return -self.spectral_index * np.asarray(log10_energy, dtype=np.float64) * np.log(10.0)


Spectrum = AugerCombined2019 | PowerLaw


def spectrum_from_config(spec: dict) -> Spectrum:
    """{model: auger2019} or {model: power_law, spectral_index: γ}."""
    model = spec.get("model")
    if model == "auger2019":
        return AugerCombined2019()
    if model == "power_law":
        if "spectral_index" not in spec:
            raise ConfigError("spectrum 'power_law' needs 'spectral_index'")
        return PowerLaw(float(spec["spectral_index"]))
    raise ConfigError(f"spectrum 'model' must be 'auger2019' or 'power_law', got {model!r}")


class EnergySampler:
    """Draw log10(E / eV) from ``spectrum`` restricted to [log10_energy_min, log10_energy_max]."""

    def __init__(self, spectrum: Spectrum, log10_energy_min: float, log10_energy_max: float):
        if not (np.isfinite(log10_energy_min) and np.isfinite(log10_energy_max)):
            raise ConfigError("energy limits must be finite")
        if log10_energy_max <= log10_energy_min:
            raise ConfigError(
                f"the maximum energy (log10 E/eV = {log10_energy_max:.4f}) must exceed the "
                f"minimum (log10 E/eV = {log10_energy_min:.4f})"
            )
        self.spectrum = spectrum
        self.log10_energy_min = float(log10_energy_min)
        self.log10_energy_max = float(log10_energy_max)
        self._x, self._cdf = self._forward_table()
        probability = np.linspace(0.0, 1.0, _N_INVERSE + 1)
        self._inverse = np.interp(probability, self._cdf, self._x)
        self._inverse[0], self._inverse[-1] = self.log10_energy_min, self.log10_energy_max

    def _forward_table(self) -> tuple[np.ndarray, np.ndarray]:
        """CDF on a fine grid in x = log10 E, integrating dN/dx = J(E) E ln10 piecewise as
        exp-linear segments (exact for power laws between grid points)."""
        x = np.linspace(self.log10_energy_min, self.log10_energy_max, _N_FORWARD)
        log_density = self.spectrum.log_flux(x) + x * np.log(10.0)
        log_density -= log_density.max()
        f0, f1 = np.exp(log_density[:-1]), np.exp(log_density[1:])
        dx = np.diff(x)
        slope = log_density[1:] - log_density[:-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            segment = np.where(np.abs(slope) > 1e-9, (f1 - f0) / slope * dx, 0.5 * (f0 + f1) * dx)
        cdf = np.concatenate([[0.0], np.cumsum(segment)])
        return x, cdf / cdf[-1]

    @property
    def inverse_table(self) -> np.ndarray:
        """log10 E at probabilities 0, 1/K, ..., 1 (K = 2^16): the inverse CDF, read linearly."""
        return self._inverse

    def cdf(self, log10_energy: np.ndarray) -> np.ndarray:
        """P(X ≤ x) from the fine forward table (linear interpolation)."""
        return np.interp(log10_energy, self._x, self._cdf)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n log10(E / eV) values (float64) by inverse CDF."""
        return table_lookup(rng.random(n), self._inverse)
