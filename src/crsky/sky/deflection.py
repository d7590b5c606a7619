"""Deflection of signal CRs on their way from a source to the Earth.

All directions are Galactic unit vectors (DESIGN.md section 3), rigidities log10(R / V), angles rad.

**Fisher blurring.** A direction is blurred with the Fisher (von Mises–Fisher on the sphere)
distribution of concentration κ = 1 / σ²: cos ψ = 1 + ln(u + (1 − u) e^(−2κ)) / κ with u uniform
and a uniform azimuth around the mean. For small σ the angular distance ψ is Rayleigh-distributed
with scale σ (mean σ √(π/2)).

**Toy model** (seed 002, Langner, Erdmann & Wirtz 2019, "minimalistic deflection model"): for each
source a random rotation axis perpendicular to the source direction is drawn; a CR of rigidity R is

1. rotated about that axis by θ = c_rot · EV / R (coherent deflection: CRs of one source line up
   on a great circle ordered by rigidity, the "rigidity-dependent multiplet"), then
2. Fisher-blurred with σ = f · 2.79 rad · EV / R (f = ``blur_fraction``, 0.5 in the talk:
   "50 % of the maximal blurring of the JF12 model").

The coherent constant c_rot (``rotation_rad_ev``) is our choice, documented here: the deflection
of a CR crossing a transverse field B over a length L is θ = L / r_g with the gyroradius
r_g = 1.081 kpc · (R / EV) / (B / µG), i.e. θ ≈ 0.925 rad · (∫B⊥ dl / µG kpc) · EV / R. A coherent
∫B⊥ dl ≈ 3 µG kpc, typical of the JF12 regular field along lines of sight out of the disk, gives
c_rot ≈ 2.8 rad; we default to c_rot = 2.79 rad, the same scale as the seed's maximal blurring
(8° for helium at 40 EeV, R = 20 EV).

**Lens mode.** A signal CR from a source at extragalactic direction s with rigidity R is

1. optionally Fisher-smeared with σ_eg = ``extragalactic_smearing_deg`` · (10 EV / R) (turbulent
   extragalactic fields; 0 disables it),
2. put into the extragalactic (edge-of-Galaxy) pixel j of s at the lens nside,
3. moved through the lens part of its rigidity bin: ``lens.sample_observed`` draws the observed
   pixel i with probability M[i, j], or loses the CR with probability 1 − Σ_i M[i, j] (the
   transparency of direction j at rigidity R).

Which emitted CRs are *observed* is decided in :mod:`crsky.sky.simulate`: a lost CR, or one
rejected by the exposure, is replaced by a fresh emitted CR (new source pick, energy, charge), so a
map keeps its n_signal; transparency and exposure thus reshape the observed signal (fewer CRs from
opaque rigidities and directions, more from transparent ones) instead of removing it.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import healpy as hp
import numpy as np

from crsky.errors import ConfigError, InputFileError
from crsky.sky._kernels import fisher_rows, perpendicular_rows, rotate_rows, toy_rows

__all__ = [
    "BLUR_RAD_EV",
    "LensDeflection",
    "LensLike",
    "ToyDeflection",
    "check_lens_coverage",
    "fisher_mean_angle",
    "fisher_sample",
    "load_lens",
    "perpendicular_axes",
    "rotate_about_axis",
]

BLUR_RAD_EV = 2.79  # maximal JF12 blurring, σ = 2.79 rad · EV / R (seed 002)


def fisher_sample(
    mean_direction: np.ndarray, sigma_rad: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Fisher-distributed unit vectors (N, 3) around ``mean_direction`` (N, 3), κ = 1 / σ²."""
    d = np.ascontiguousarray(mean_direction, dtype=np.float64)
    kappa = 1.0 / np.square(np.broadcast_to(np.asarray(sigma_rad, np.float64), d.shape[:1]))
    u = 1.0 - rng.random(d.shape[0])  # (0, 1]
    phi = rng.random(d.shape[0]) * (2.0 * np.pi)
    return fisher_rows(d, np.ascontiguousarray(kappa), u, phi)


def fisher_mean_angle(sigma_rad: float) -> float:
    """Mean angular distance E[ψ] in rad of the Fisher distribution with κ = 1 / σ².

    The density of ψ is κ sin ψ e^(κ cos ψ) / (2 sinh κ); integrated numerically on a fine grid.
    """
    kappa = 1.0 / sigma_rad**2
    psi = np.linspace(0.0, np.pi, 200_001)
    log_density = np.log(np.sin(psi) + 1e-300) + kappa * (np.cos(psi) - 1.0)
    density = np.exp(log_density - log_density.max())
    return float(np.trapezoid(psi * density, psi) / np.trapezoid(density, psi))


def perpendicular_axes(direction: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random unit vectors (N, 3) perpendicular to ``direction`` (N, 3), uniform in azimuth."""
    d = np.ascontiguousarray(direction, dtype=np.float64)
    return perpendicular_rows(d, rng.random(d.shape[0]) * (2.0 * np.pi))


def rotate_about_axis(direction: np.ndarray, axis: np.ndarray, angle_rad: np.ndarray) -> np.ndarray:
    """Rotate unit vectors (N, 3) about unit ``axis`` (N, 3) by ``angle_rad`` (N,) (Rodrigues)."""
    v = np.ascontiguousarray(direction, dtype=np.float64)
    k = np.ascontiguousarray(axis, dtype=np.float64)
    angle = np.ascontiguousarray(np.broadcast_to(angle_rad, v.shape[:1]), dtype=np.float64)
    return rotate_rows(v, k, angle)


@dataclass(frozen=True)
class ToyDeflection:
    """Seed 002's toy model: coherent rotation θ = rotation_rad_ev · EV / R about a per-source
    axis, then Fisher blurring with σ = blur_fraction · 2.79 rad · EV / R."""

    blur_fraction: float = 0.5
    rotation_rad_ev: float = BLUR_RAD_EV

    def __post_init__(self):
        for name in ("blur_fraction", "rotation_rad_ev"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ConfigError(f"deflection {name!r} must be a number ≥ 0, got {value!r}")

    def rotation_angle_rad(self, log10_rigidity: np.ndarray) -> np.ndarray:
        """Coherent deflection angle θ (rad) for log10(R / V)."""
        return self.rotation_rad_ev * 10.0 ** (18.0 - np.asarray(log10_rigidity, np.float64))

    def sigma_rad(self, log10_rigidity: np.ndarray) -> np.ndarray:
        """Blurring width σ (rad) for log10(R / V)."""
        return self.blur_fraction * BLUR_RAD_EV * 10.0 ** (18.0 - np.asarray(log10_rigidity))

    def rotated(
        self, source_direction: np.ndarray, axis: np.ndarray, log10_rigidity: np.ndarray
    ) -> np.ndarray:
        """Source directions (N, 3) after the coherent rotation only."""
        return rotate_about_axis(source_direction, axis, self.rotation_angle_rad(log10_rigidity))

    def apply(
        self,
        source_direction: np.ndarray,
        axis: np.ndarray,
        log10_rigidity: np.ndarray,
        rng: np.random.Generator,
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """Arrival directions (N, 3) of N CRs with log10(R / V) ``log10_rigidity`` (N,) from
        sources ``source_direction`` (M, 3) with rotation axes ``axis`` (M, 3): CR i comes from
        source ``rows[i]`` (default: CR i from source i, M = N). One compiled pass; draws 2 N
        uniforms when blurring, none otherwise."""
        v = np.ascontiguousarray(source_direction, dtype=np.float64)
        log10_rigidity = np.asarray(log10_rigidity, np.float64)
        n = v.shape[0] if rows is None else np.size(rows)
        rows = np.arange(n) if rows is None else np.ascontiguousarray(rows, dtype=np.int64)
        ev_over_r = np.ascontiguousarray(
            np.broadcast_to(10.0 ** (18.0 - log10_rigidity), (n,)), dtype=np.float64
        )
        blur_rad_ev = self.blur_fraction * BLUR_RAD_EV
        u = phi = np.zeros(0)
        if blur_rad_ev > 0:
            u = 1.0 - rng.random(n)  # (0, 1]
            phi = rng.random(n) * (2.0 * np.pi)
        return toy_rows(
            v,
            np.ascontiguousarray(axis, dtype=np.float64),
            rows,
            ev_over_r,
            u,
            phi,
            self.rotation_rad_ev,
            blur_rad_ev,
        )


class LensLike(Protocol):
    """What lens mode needs of :class:`crsky.lens.Lens` (the lens stage)."""

    nside: int
    log10_rigidity_edges: np.ndarray

    def matrix(self, log10_rigidity: float): ...

    def sample_observed(
        self,
        extragalactic_pixel: np.ndarray,
        log10_rigidity: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray: ...


def load_lens(folder: str | Path) -> LensLike:
    """Load a lens folder with :meth:`crsky.lens.Lens.load`; InputFileError if it is missing."""
    path = Path(folder)
    if not (path / "lens.cfg").is_file():
        raise InputFileError(
            f"lens folder {str(path)!r} has no lens.cfg (missing or incomplete lens)"
        )
    try:
        from crsky.lens import Lens
    except ImportError as err:  # the lens stage is not installed in this checkout
        raise ConfigError(f"deflection 'lens' needs crsky.lens.Lens: {err}") from err
    return Lens.load(path)


def check_lens_coverage(
    lens: LensLike,
    log10_energy_min: float,
    log10_energy_max: float,
    charges: tuple[int, ...],
    margin_dex: float = 0.0,
) -> None:
    """ConfigError unless every CR rigidity log10(E / Z) for E in [min, max] (± margin) and Z in
    ``charges`` lies inside the lens bins."""
    edges = np.asarray(lens.log10_rigidity_edges, dtype=np.float64)
    low = log10_energy_min - margin_dex - np.log10(max(charges))
    high = log10_energy_max + margin_dex - np.log10(min(charges))
    if low < edges[0]:
        raise ConfigError(
            f"the energy threshold log10(E/eV) = {log10_energy_min:.3f} gives rigidities down to "
            f"log10(R/V) = {low:.3f} for Z = {max(charges)}, below the lens coverage starting at "
            f"{edges[0]:.3f}: raise 'energy_min_eev' or extend the lens bins"
        )
    if high > edges[-1]:
        raise ConfigError(
            f"the maximum energy log10(E/eV) = {log10_energy_max:.3f} gives rigidities up to "
            f"log10(R/V) = {high:.3f} for Z = {min(charges)}, above the lens coverage ending at "
            f"{edges[-1]:.3f}: lower 'energy_max_eev' or extend the lens bins"
        )


@dataclass(frozen=True)
class LensDeflection:
    """Lens mode: extragalactic source direction -> observed pixel at ``lens.nside`` (or -1)."""

    lens: LensLike
    extragalactic_smearing_deg: float = 0.0

    def __post_init__(self):
        if not (
            np.isfinite(self.extragalactic_smearing_deg) and self.extragalactic_smearing_deg >= 0
        ):
            raise ConfigError(
                "deflection 'extragalactic_smearing_deg' must be ≥ 0, got "
                f"{self.extragalactic_smearing_deg!r}"
            )

    def observed_pixels(
        self,
        source_direction: np.ndarray,
        log10_rigidity: np.ndarray,
        rng: np.random.Generator,
        source_pixel: np.ndarray | None = None,
    ) -> np.ndarray:
        """Observed RING pixels (N,) int64 at ``lens.nside`` of CRs from ``source_direction``
        (N, 3) with log10(R / V) ``log10_rigidity`` (N,); -1 where the CR is lost.
        ``source_pixel`` (N,), the lens-nside RING pixels of the directions, may be passed to
        save their computation (it is ignored when smearing); with it and no smearing
        ``source_direction`` is not used and may be None."""
        direction = source_direction
        if self.extragalactic_smearing_deg > 0:
            direction = np.asarray(direction, dtype=np.float64)
            sigma = np.radians(self.extragalactic_smearing_deg) * 10.0 ** (
                19.0 - np.asarray(log10_rigidity)
            )
            direction = fisher_sample(direction, sigma, rng)
            source_pixel = None
        if source_pixel is None:
            pixel = hp.vec2pix(self.lens.nside, direction[:, 0], direction[:, 1], direction[:, 2])
        else:
            pixel = np.asarray(source_pixel)
        observed = self.lens.sample_observed(
            pixel.astype(np.int64), np.asarray(log10_rigidity, np.float64), rng
        )
        return np.asarray(observed, dtype=np.int64)
