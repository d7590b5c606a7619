"""Charge fractions and rigidities."""

import numpy as np
import pytest

from crsky.errors import ConfigError
from crsky.sky.composition import Composition, log10_rigidity


def test_charge_fractions_within_three_sigma():
    # seed 002's mixture: 15 % H, 45 % He, 40 % CNO (as N, Z = 7)
    composition = Composition.from_config({"H": 0.15, "He": 0.45, "N": 0.40})
    n = 1_000_000
    charge = composition.sample(n, np.random.default_rng(11))
    assert charge.dtype == np.uint8
    assert set(np.unique(charge)) == {1, 2, 7}
    for z, p in ((1, 0.15), (2, 0.45), (7, 0.40)):
        sigma = np.sqrt(n * p * (1 - p))
        assert abs(np.count_nonzero(charge == z) - n * p) < 3 * sigma


def test_rigidity_is_energy_over_charge():
    # 40 EeV helium: R = 20 EV, log10(R / V) = log10(2e19)
    assert log10_rigidity(np.log10(40e18), 2) == pytest.approx(np.log10(2e19), abs=1e-12)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"H": 0.15, "He": 0.45, "N": 0.30}, "sum to 1"),
        ({"H": 1.2, "He": -0.2}, "≥ 0"),
        ({"Xx": 1.0}, "unknown elements"),
        ({}, "map element symbols"),
    ],
)
def test_bad_composition(spec, match):
    with pytest.raises(ConfigError, match=match):
        Composition.from_config(spec)
