"""Fisher blurring and the toy deflection model (seed 002)."""

import numpy as np
import pytest
from helpers import random_unit_vectors
from skymaps_lenses import identity_lens

from crsky.errors import ConfigError, InputFileError
from crsky.sky.composition import Composition, log10_rigidity
from crsky.sky.deflection import (
    ToyDeflection,
    check_lens_coverage,
    fisher_mean_angle,
    fisher_sample,
    load_lens,
    perpendicular_axes,
)
from crsky.sky.spectrum import AugerCombined2019, EnergySampler
from crsky.sphere import angle_between_deg


def test_fisher_mean_angle_small_sigma_is_rayleigh():
    # κ = 1/σ² ≫ 1: ψ is Rayleigh-distributed with scale σ, mean σ √(π/2)
    assert fisher_mean_angle(0.01) == pytest.approx(0.01 * np.sqrt(np.pi / 2), rel=1e-3)


def test_fisher_mean_angle_isotropic_limit():
    # σ → ∞: uniform on the sphere, E[ψ] = π / 2
    assert fisher_mean_angle(100.0) == pytest.approx(np.pi / 2, rel=1e-3)


@pytest.mark.parametrize("sigma_rad", [0.02, 0.2, 0.8])
def test_fisher_sample_mean_angle(rng, sigma_rad):
    n = 100_000
    mean = random_unit_vectors(rng, n)
    out = fisher_sample(mean, np.full(n, sigma_rad), rng)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-12)
    psi = np.radians(angle_between_deg(out, mean))
    assert abs(psi.mean() - fisher_mean_angle(sigma_rad)) < 4 * psi.std() / np.sqrt(n)


def test_coherent_rotation_angle_and_axis(rng):
    toy = ToyDeflection(blur_fraction=0.0, rotation_rad_ev=2.79)
    source = random_unit_vectors(rng, 1000)
    axis = perpendicular_axes(source, rng)
    np.testing.assert_allclose(np.sum(axis * source, axis=1), 0.0, atol=1e-12)
    log10_r = rng.uniform(18.5, 20.0, 1000)
    rotated = toy.apply(source, axis, log10_r, rng)
    # θ = 2.79 rad · EV / R; the rotation moves the source within the plane ⊥ axis
    np.testing.assert_allclose(
        np.radians(angle_between_deg(rotated, source)), 2.79 / 10.0 ** (log10_r - 18.0), rtol=1e-9
    )
    np.testing.assert_allclose(np.sum(axis * rotated, axis=1), 0.0, atol=1e-12)


def test_toy_blurring_matches_sigma_for_the_charges_drawn(rng):
    # seed 002: σ = f · 2.79 rad · EV / R with f = 0.5, for CRs of the 15/45/40 % mixture above
    # 40 EeV; the mean angular distance from the rotated position must match E[ψ | σ] per CR
    n = 50_000
    energy = EnergySampler(AugerCombined2019(), np.log10(40e18), 20.5).sample(n, rng)
    charge = Composition.from_config({"H": 0.15, "He": 0.45, "N": 0.40}).sample(n, rng)
    log10_r = log10_rigidity(energy, charge)
    toy = ToyDeflection(blur_fraction=0.5)
    source = random_unit_vectors(rng, n)
    axis = perpendicular_axes(source, rng)
    arrival = toy.apply(source, axis, log10_r, rng)
    psi = np.radians(angle_between_deg(arrival, toy.rotated(source, axis, log10_r)))
    sigma = toy.sigma_rad(log10_r)
    np.testing.assert_allclose(sigma, 0.5 * 2.79 * 1e18 / 10.0**log10_r)
    grid = np.geomspace(sigma.min(), sigma.max(), 60)
    expected = np.interp(sigma, grid, [fisher_mean_angle(s) for s in grid])
    assert abs(psi.mean() - expected.mean()) < 4 * (psi - expected).std() / np.sqrt(n)
    assert 0.05 < sigma.mean() < 0.2  # rad: 3 ... 11 degrees, the seed's regime


def test_lens_coverage_errors():
    lens = identity_lens(1, [18.5, 19.0, 20.5])
    check_lens_coverage(lens, np.log10(40e18), 20.5, (1, 2, 7))
    with pytest.raises(ConfigError, match="below the lens coverage"):
        check_lens_coverage(lens, np.log10(40e18), 20.5, (1, 26))
    with pytest.raises(ConfigError, match="above the lens coverage"):
        check_lens_coverage(lens, np.log10(40e18), 20.6, (1, 2))


def test_missing_lens_folder(tmp_path):
    with pytest.raises(InputFileError, match=r"lens\.cfg"):
        load_lens(tmp_path / "nowhere")


def test_bad_toy_parameters():
    with pytest.raises(ConfigError, match="blur_fraction"):
        ToyDeflection(blur_fraction=-1.0)
