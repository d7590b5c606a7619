"""Energy spectra: the Auger ICRC 2019 shape and inverse-CDF sampling (KS tests)."""

import itertools

import numpy as np
import pytest
from scipy import integrate, interpolate, stats

from crsky.errors import ConfigError
from crsky.sky.spectrum import AugerCombined2019, EnergySampler, PowerLaw, spectrum_from_config


def _local_index(spectrum, energy_eev: float) -> float:
    x = 18.0 + np.log10(energy_eev)
    h = 1e-4
    slope = (spectrum.log_flux(x + h) - spectrum.log_flux(x - h)) / (2 * h * np.log(10.0))
    return -float(slope)


@pytest.mark.parametrize(
    ("energy_eev", "gamma"),
    # Auger, PRD 102 (2020) 062005 / PoS(ICRC2019)450: γ1 = 3.29 below the ankle (5.0 EeV),
    # γ2 = 2.51 up to 13 EeV, γ3 = 3.05 up to 46 EeV, γ4 = 5.1 above
    [(2.5, 3.29), (8.0, 2.51), (25.0, 3.05), (150.0, 5.1)],
)
def test_auger_local_spectral_index(energy_eev, gamma):
    assert _local_index(AugerCombined2019(), energy_eev) == pytest.approx(gamma, abs=0.01)


def test_auger_break_is_halfway_in_log_slope():
    # with the smooth-break form, the local index at E_ij is the mean of γi and γj
    assert _local_index(AugerCombined2019(), 13.0) == pytest.approx((2.51 + 3.05) / 2, abs=0.02)


def _reference_cdf(spectrum, x_min, x_max):
    """Independent CDF in log10 E by adaptive quadrature of J(E) E ln10 on a grid of nodes."""
    nodes = np.linspace(x_min, x_max, 301)

    def density(x):
        return np.exp(spectrum.log_flux(x) + x * np.log(10.0) - spectrum.log_flux(x_min) - x_min)

    pieces = [
        integrate.quad(density, a, b, epsabs=0, epsrel=1e-11)[0]
        for a, b in itertools.pairwise(nodes)
    ]
    cdf = np.concatenate([[0.0], np.cumsum(pieces)])
    return interpolate.PchipInterpolator(nodes, cdf / cdf[-1])


@pytest.mark.parametrize(
    "spectrum", [AugerCombined2019(), PowerLaw(4.2)], ids=["auger2019", "power_law"]
)
def test_sampled_energies_follow_the_spectrum(spectrum):
    x_min, x_max = 18.0 + np.log10(40.0), 20.5
    sampler = EnergySampler(spectrum, x_min, x_max)
    x = sampler.sample(200_000, np.random.default_rng(7))
    assert x.min() >= x_min and x.max() <= x_max
    result = stats.kstest(x, _reference_cdf(spectrum, x_min, x_max))
    assert result.pvalue > 0.01


def test_power_law_matches_closed_form_cdf():
    # F(E) = (1 − (E/Emin)^(1−γ)) / (1 − (Emax/Emin)^(1−γ)) for J ∝ E^−γ
    gamma, x_min, x_max = 3.0, 19.0, 20.0
    sampler = EnergySampler(PowerLaw(gamma), x_min, x_max)
    x = np.linspace(x_min, x_max, 11)
    ratio = 10.0 ** ((x - x_min) * (1 - gamma))
    expected = (1 - ratio) / (1 - 10.0 ** ((x_max - x_min) * (1 - gamma)))
    np.testing.assert_allclose(sampler.cdf(x), expected, atol=1e-9)
    sample = sampler.sample(100_000, np.random.default_rng(3))
    cdf = lambda v: (1 - 10.0 ** ((v - x_min) * (1 - gamma))) / (1 - 10.0 ** (1 - gamma))  # noqa: E731
    assert stats.kstest(sample, cdf).pvalue > 0.01


def test_bad_spectrum_config():
    with pytest.raises(ConfigError, match="'model'"):
        spectrum_from_config({"model": "agasa"})
    with pytest.raises(ConfigError, match="spectral_index"):
        spectrum_from_config({"model": "power_law"})
    with pytest.raises(ConfigError, match="must exceed"):
        EnergySampler(PowerLaw(3.0), 20.0, 19.5)
