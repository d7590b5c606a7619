"""Sommers exposure, the Galactic/equatorial rotation and the isotropic background sampler."""

import itertools

import healpy as hp
import numpy as np
import pytest
from scipy import integrate, stats

from crsky.errors import ConfigError
from crsky.sky.coordinates import (
    galactic_declination,
    north_celestial_pole_galactic,
    vector_to_lonlat,
)
from crsky.sky.exposure import Exposure, sommers_exposure
from crsky.sky.isotropic import PixelSampler, isotropic_sampler


def test_north_celestial_pole_in_galactic_coordinates():
    # J2000: the NCP lies at l = 122.932°, b = 27.128° (IAU Galactic frame)
    lon, lat = vector_to_lonlat(north_celestial_pole_galactic())
    assert lon == pytest.approx(122.932, abs=2e-3)
    assert lat == pytest.approx(27.128, abs=2e-3)


def test_sommers_reference_values():
    # Sommers 2001 eq. 2 with a0 = −35.2°, θmax = 60°: the field of view ends at
    # δ = a0 + θmax = 24.8°; at the south celestial pole ω = π sin|a0| (always visible)
    assert sommers_exposure(np.radians(24.9), -35.2, 60.0) == 0.0
    assert sommers_exposure(np.radians(24.7), -35.2, 60.0) > 0.0
    assert sommers_exposure(-np.pi / 2, -35.2, 60.0) == pytest.approx(
        np.pi * np.sin(np.radians(35.2))
    )
    exposure = Exposure()
    assert exposure.of_declination(-np.pi / 2) == pytest.approx(1.0)  # the maximum for Auger
    assert np.all(exposure.pixel_exposure(8) <= 1.0)


def test_direction_and_declination_agree(rng):
    v = rng.normal(size=(1000, 3))
    v /= np.linalg.norm(v, axis=1)[:, None]
    exposure = Exposure()
    np.testing.assert_allclose(
        exposure.of_direction(v), exposure.of_declination(galactic_declination(v)), atol=1e-12
    )


def _jitter_in_pixel(nside, pixel_ring, rng):
    """Uniform positions within RING pixels: a random NESTED descendant at nside 2^20."""
    depth = 20 - int(np.log2(nside))
    nest = hp.ring2nest(nside, pixel_ring).astype(np.int64)
    fine = (nest << (2 * depth)) + rng.integers(0, 1 << (2 * depth), size=nest.size)
    return np.stack(hp.pix2vec(1 << 20, fine, nest=True), axis=1)


def test_isotropic_declinations_follow_sommers_curve():
    # 10^6 isotropic CRs with the Auger exposure: the declination histogram must match
    # dN/dδ ∝ ω(δ) cos δ (Sommers 2001) by a chi-square test at a fixed seed.
    rng = np.random.default_rng(2024)
    nside, n = 64, 1_000_000
    exposure = Exposure(-35.2, 60.0)
    pixel = isotropic_sampler(nside, exposure).sample(n, rng)
    dec = np.degrees(galactic_declination(_jitter_in_pixel(nside, pixel, rng)))
    # beyond the field of view (24.8°) only the last pixels' extent (< 1°) may reach
    assert dec.max() < 26.0
    edges = np.arange(-90.0, 26.0, 5.0)
    edges[-1] = 26.0
    observed, _ = np.histogram(dec, edges)

    def density(d):
        return sommers_exposure(np.radians(d), -35.2, 60.0) * np.cos(np.radians(d))

    expected = np.array([integrate.quad(density, a, b)[0] for a, b in itertools.pairwise(edges)])
    expected *= n / expected.sum()
    chi2 = np.sum((observed - expected) ** 2 / expected)
    assert stats.chi2.sf(chi2, len(expected) - 1) > 0.001


def test_full_sky_is_uniform(rng):
    sampler = isotropic_sampler(4, Exposure(full_sky=True))
    counts = np.bincount(sampler.sample(192_000, rng), minlength=192)
    assert stats.chisquare(counts).pvalue > 0.001


def test_pixel_sampler_probabilities(rng):
    weights = np.array([0.0, 1.0, 2.0, 7.0])
    counts = np.bincount(PixelSampler(weights).sample(400_000, rng), minlength=4)
    assert counts[0] == 0
    assert stats.chisquare(counts[1:], 400_000 * weights[1:] / 10).pvalue > 0.001


def test_bad_exposure():
    with pytest.raises(ConfigError, match="latitude_deg"):
        Exposure(latitude_deg=-95.0)
    with pytest.raises(ConfigError, match="theta_max_deg"):
        Exposure(theta_max_deg=0.0)
    with pytest.raises(ConfigError, match="'model'"):
        Exposure.from_config({"model": "telescope"})
    with pytest.raises(ConfigError, match="all zero"):
        PixelSampler(np.zeros(3))
