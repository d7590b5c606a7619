"""Relative exposure of a ground array as a function of declination (Sommers 2001).

For a detector at geographic latitude a0 that keeps events with zenith angle below θmax and has a
uniform acceptance in right ascension (full sidereal days), the exposure per solid angle is
(P. Sommers, Astropart. Phys. 14 (2001) 271, eq. 2; DESIGN.md section 5)

    ω(δ) ∝ cos a0 cos δ sin αm + αm sin a0 sin δ,
    ξ = (cos θmax − sin a0 sin δ) / (cos a0 cos δ),
    αm = 0 if ξ > 1,  π if ξ < −1,  arccos ξ otherwise.

Auger (surface detector, vertical events): a0 = −35.2°, θmax = 60°. Everything here is *relative*
exposure, normalised to a maximum of 1 over the sky. ``full_sky`` is the uniform case ω = 1.
Declinations are in radians; directions are Galactic unit vectors (:mod:`crsky.sky.coordinates`).
"""

from dataclasses import dataclass
from functools import cache

import healpy as hp
import numpy as np

from crsky.errors import ConfigError
from crsky.sky._kernels import sommers_rows
from crsky.sky.coordinates import north_celestial_pole_galactic
from crsky.sphere import check_nside

__all__ = ["AUGER_LATITUDE_DEG", "AUGER_THETA_MAX_DEG", "Exposure", "sommers_exposure"]

AUGER_LATITUDE_DEG = -35.2  # Malargüe (Sommers 2001; DESIGN.md section 5)
AUGER_THETA_MAX_DEG = 60.0  # vertical events; 80° with inclined ones
_SUBPIXEL_LEVELS = 3  # pixel exposure = mean over 4**3 = 64 sub-pixels
_BLOCK = 1 << 20


def sommers_exposure(declination_rad: np.ndarray, latitude_deg: float, theta_max_deg: float):
    """Unnormalised Sommers exposure ω(δ) (same shape as ``declination_rad``), ≥ 0."""
    dec = np.asarray(declination_rad, dtype=np.float64)
    a0 = np.radians(latitude_deg)
    cos_dec = np.cos(dec)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = (np.cos(np.radians(theta_max_deg)) - np.sin(a0) * np.sin(dec)) / (np.cos(a0) * cos_dec)
    # cos δ = 0 at the poles: ξ = ±inf (or nan for 0/0), handled by the clip below
    xi = np.where(np.isnan(xi), np.inf, xi)
    alpha_m = np.arccos(np.clip(xi, -1.0, 1.0))
    omega = np.cos(a0) * cos_dec * np.sin(alpha_m) + alpha_m * np.sin(a0) * np.sin(dec)
    return np.maximum(omega, 0.0)


@dataclass(frozen=True)
class Exposure:
    """Relative exposure (maximum 1): Sommers' formula, or uniform when ``full_sky``."""

    latitude_deg: float = AUGER_LATITUDE_DEG
    theta_max_deg: float = AUGER_THETA_MAX_DEG
    full_sky: bool = False

    def __post_init__(self):
        if self.full_sky:
            return
        if not -90.0 <= self.latitude_deg <= 90.0:
            raise ConfigError(
                f"exposure 'latitude_deg' must lie in [-90, 90], got {self.latitude_deg!r}"
            )
        if not 0.0 < self.theta_max_deg <= 90.0:
            raise ConfigError(
                f"exposure 'theta_max_deg' must lie in (0, 90], got {self.theta_max_deg!r}"
            )

    @classmethod
    def from_config(cls, spec: dict) -> "Exposure":
        """From the dataset config ``exposure`` section: {model: sommers|full_sky, ...}."""
        model = spec.get("model", "sommers")
        if model == "full_sky":
            return cls(full_sky=True)
        if model != "sommers":
            raise ConfigError(f"exposure 'model' must be 'sommers' or 'full_sky', got {model!r}")
        return cls(float(spec["latitude_deg"]), float(spec["theta_max_deg"]))

    def of_declination(self, declination_rad: np.ndarray) -> np.ndarray:
        """Relative exposure ω(δ) / max ω, same shape as ``declination_rad``."""
        if self.full_sky:
            return np.ones_like(np.asarray(declination_rad, dtype=np.float64))
        raw = sommers_exposure(declination_rad, self.latitude_deg, self.theta_max_deg)
        return raw / _sommers_max(self.latitude_deg, self.theta_max_deg)

    def of_direction(self, direction: np.ndarray) -> np.ndarray:
        """Relative exposure of Galactic unit vectors (N, 3) -> (N,) (compiled loop)."""
        d = np.ascontiguousarray(direction, dtype=np.float64)
        if self.full_sky:
            return np.ones(d.shape[0])
        return sommers_rows(
            d,
            np.ascontiguousarray(north_celestial_pole_galactic()),
            np.radians(self.latitude_deg),
            np.cos(np.radians(self.theta_max_deg)),
            _sommers_max(self.latitude_deg, self.theta_max_deg),
        )

    def pixel_exposure(self, nside: int, nest: bool = False) -> np.ndarray:
        """Mean relative exposure over each HEALPix pixel (npix,), from 64 sub-pixels each.

        Proportional to the probability that an isotropic CR is observed in the pixel (pixels
        are equal-area); the maximum over pixels is ≤ 1.
        """
        nside = check_nside(nside)
        values = _pixel_exposure_nest(self, nside)
        if not nest:
            values = values[hp.ring2nest(nside, np.arange(hp.nside2npix(nside)))]
        out = values.copy()
        out.setflags(write=False)
        return out


@cache
def _sommers_max(latitude_deg: float, theta_max_deg: float) -> float:
    """Maximum of the unnormalised exposure over declination (fine grid, then refined)."""
    dec = np.linspace(-np.pi / 2, np.pi / 2, 200_001)
    omega = sommers_exposure(dec, latitude_deg, theta_max_deg)
    best = float(omega.max())
    if best <= 0.0:
        raise ConfigError(
            f"exposure with latitude {latitude_deg} deg and theta_max {theta_max_deg} deg "
            "sees no part of the sky"
        )
    return best


@cache
def _pixel_exposure_nest(exposure: Exposure, nside: int) -> np.ndarray:
    npix = hp.nside2npix(nside)
    if exposure.full_sky:
        return np.ones(npix)
    fine_nside = nside << _SUBPIXEL_LEVELS
    n_sub = 1 << (2 * _SUBPIXEL_LEVELS)
    total = np.empty(npix * n_sub)
    for start in range(0, total.size, _BLOCK):
        fine = np.arange(start, min(start + _BLOCK, total.size))
        direction = np.stack(hp.pix2vec(fine_nside, fine, nest=True), axis=1)
        total[start : start + fine.size] = exposure.of_direction(direction)
    return total.reshape(npix, n_sub).mean(axis=1)
