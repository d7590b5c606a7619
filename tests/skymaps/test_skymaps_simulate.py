"""Whole maps: labels, signal counts, lens mode (identity, transparency), bad configurations."""

import healpy as hp
import numpy as np
import pytest
from scipy import stats
from skymaps_lenses import identity_lens

from crsky.errors import ConfigError
from crsky.sky._kernels import _xoshiro256ss, sort_rows
from crsky.sky.dataset import DATASET_DEFAULTS, DatasetConfig
from crsky.sky.simulate import SkySimulator
from crsky.store import LOG10_ENERGY_STEP

MIXTURE = {"H": 0.15, "He": 0.45, "N": 0.40}


def _dataset(**overrides) -> DatasetConfig:
    given = {"n_maps": 200, "chunk_size": 100, "n_cr": 500, "nside": 16} | overrides
    return DatasetConfig.from_dict("test", given)


def test_maps_have_their_labels(rng):
    d = _dataset(signal_fraction={"uniform": [0.0, 0.2]})
    batch = SkySimulator(d).simulate(300, rng)
    assert batch.pixel.shape == (300, 500)
    np.testing.assert_array_equal(batch.n_signal, np.rint(batch.signal_fraction * 500))
    np.testing.assert_array_equal(batch.is_signal.sum(axis=1), batch.n_signal)
    assert np.all(np.diff(batch.pixel, axis=1) >= 0)  # sorted within each map
    assert batch.pixel.min() >= 0 and batch.pixel.max() < hp.nside2npix(16)
    assert set(np.unique(batch.charge)) == {1, 2, 7}
    code = (batch.log10_energy.astype(np.float64) - 17.0) / LOG10_ENERGY_STEP
    np.testing.assert_array_equal(code, np.rint(code))
    assert batch.log10_energy.min() >= np.log10(40e18) - LOG10_ENERGY_STEP / 2
    np.testing.assert_allclose(np.linalg.norm(batch.source_direction, axis=2), 1.0, atol=1e-12)


def test_binomial_signal_counts(rng):
    d = _dataset(signal_fraction={"value": 0.1}, signal_count="binomial")
    n_signal = SkySimulator(d).simulate(400, rng).n_signal
    # binomial(500, 0.1): mean 50, standard deviation √45 per map
    assert abs(n_signal.mean() - 50) < 4 * np.sqrt(45 / 400)
    assert n_signal.std() == pytest.approx(np.sqrt(45), rel=0.2)


def test_signal_clusters_around_the_rotated_source(rng):
    d = _dataset(signal_fraction={"value": 0.2}, exposure={"model": "full_sky"})
    batch = SkySimulator(d).simulate(50, rng)
    source_pix = hp.vec2pix(16, *batch.source_direction[:, 0].T)
    direction = np.stack(hp.pix2vec(16, batch.pixel), axis=-1)
    cos_source = np.einsum("mcx,mx->mc", direction, batch.source_direction[:, 0])
    # signal CRs lie much closer to their source than isotropic ones (mean cos ≈ 0)
    assert cos_source[batch.is_signal].mean() > 0.7
    assert abs(cos_source[~batch.is_signal].mean()) < 0.05
    assert source_pix.shape == (50,)


def test_exposure_shapes_the_signal(rng):
    # a fixed source at the South Celestial Pole direction sees ω = 1; one close to the edge
    # of the field of view loses most emitted CRs but still gives its n_signal observed ones
    d = _dataset(sources={"positions": [[302.93, -27.13]]}, deflection={"mode": "none"})
    batch = SkySimulator(d).simulate(20, rng)
    np.testing.assert_array_equal(batch.is_signal.sum(axis=1), 28)


def test_unobservable_fixed_source_is_an_error(rng):
    # the North Celestial Pole (l = 122.93°, b = 27.13°) is never seen from Malargüe
    d = _dataset(sources={"positions": [[122.93, 27.13]]}, deflection={"mode": "none"})
    with pytest.raises(ConfigError, match="fixed source positions"):
        SkySimulator(d).simulate(5, rng)


def test_random_sources_are_redrawn_where_unobservable(rng):
    d = _dataset(deflection={"mode": "none"}, signal_fraction={"value": 0.1})
    batch = SkySimulator(d).simulate(400, rng)
    # no signal source may sit beyond the field of view (δ > 24.8° + the pixel size)
    from crsky.sky.coordinates import galactic_declination

    dec = np.degrees(galactic_declination(batch.source_direction[:, 0]))
    assert dec.max() < 27.0
    assert batch.n_source_redraws > 0


# --- lens mode -------------------------------------------------------------------------------
LENS_EDGES = [18.5, 19.0, 19.5, 20.0, 20.5]


def _lens_dataset(**overrides) -> DatasetConfig:
    return _dataset(
        deflection={"mode": "lens"},
        exposure={"model": "full_sky"},
        signal_fraction={"value": 0.1},
        **overrides,
    )


def test_identity_lens_equals_no_deflection(rng):
    # with an identity lens every signal CR arrives in its source's pixel, as without deflection,
    # and with full-sky exposure and transparency 1 no emitted CR is lost
    lens = identity_lens(16, LENS_EDGES)
    for simulator in (
        SkySimulator(_lens_dataset(), lens),
        SkySimulator(
            _dataset(
                deflection={"mode": "none"},
                exposure={"model": "full_sky"},
                signal_fraction={"value": 0.1},
            )
        ),
    ):
        batch = simulator.simulate(40, rng)
        source_pix = hp.vec2pix(16, *batch.source_direction[:, 0].T)
        rows, _ = np.nonzero(batch.is_signal)
        np.testing.assert_array_equal(batch.pixel[batch.is_signal], source_pix[rows])
        assert batch.is_signal.sum() == 40 * 50
    assert lens.draws >= 40 * 50 and lens.lost == 0


def test_half_transparent_bins_redistribute_the_signal(rng):
    # Bins 0 and 1 (log10 R 18.5 ... 19.5) transmit half the CRs, bins 2 and 3 all of them.
    # Lost CRs are replaced (documented method), so each map keeps n_signal and the observed
    # signal shifts to transparent rigidities: with a power law E^-γ in protons, the emitted
    # share p of bins 0-1 becomes 0.5 p / (0.5 p + 1 - p) observed, and a fraction
    # 1 - (0.5 p + 1 - p) of the emitted CRs is lost.
    gamma = 2.0
    d = _lens_dataset(
        composition={"H": 1.0},
        energy_min_eev=10.0**0.5,  # log10 E = 18.5
        energy_max_eev=10.0**2.5,
        spectrum={"model": "power_law", "spectral_index": gamma},
    )
    lens = identity_lens(16, LENS_EDGES, transparency=[0.5, 0.5, 1.0, 1.0])
    batch = SkySimulator(d, lens).simulate(200, rng)
    np.testing.assert_array_equal(batch.is_signal.sum(axis=1), 50)
    share = 1 - 10.0 ** (-(gamma - 1))  # emitted fraction in 18.5 ... 19.5 (one decade of two)
    share /= 1 - 10.0 ** (-2 * (gamma - 1))
    expected = 0.5 * share / (0.5 * share + 1 - share)
    low = batch.log10_energy[batch.is_signal] < 19.5
    n = low.size
    assert abs(low.mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / n)
    kept = 1 - lens.lost / lens.draws
    assert abs(kept - (0.5 * share + 1 - share)) < 4 * np.sqrt(0.25 / lens.draws)


def test_lens_mode_needs_coverage_and_resolution():
    lens = identity_lens(8, LENS_EDGES)
    with pytest.raises(ConfigError, match="exceeds the lens nside"):
        SkySimulator(_lens_dataset(), lens)
    lens = identity_lens(16, [19.0, 20.5])
    with pytest.raises(ConfigError, match="below the lens coverage"):
        SkySimulator(_lens_dataset(composition=MIXTURE), lens)
    with pytest.raises(ConfigError, match="no lens"):
        SkySimulator(_lens_dataset())


# --- configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"signal_fraction": {"value": 1.5}}, r"\[0, 1\]"),
        ({"signal_fraction": {"uniform": [-0.1, 0.2]}}, r"\[0, 1\]"),
        ({"signal_fraction": {"value": 0.1, "values": [0.2]}}, "exactly one"),
        ({"composition": {"H": 0.5, "He": 0.4}}, "sum to 1"),
        ({"n_cr": 0}, r"\.n_cr must be"),
        ({"nside": 12}, "power of 2"),
        ({"deflection": {"mode": "magic"}}, r"deflection\.mode must be"),
        ({"colour": "red"}, "unknown key"),
        ({"exposure": {"latitude": 3}}, "unknown key"),
        ({"signal_count": "poisson"}, r"\.signal_count must be"),
        ({"sources": {"n_sources": 2, "positions": [[0.0, 0.0]]}}, "positions"),
    ],
)
def test_bad_dataset_config(overrides, match):
    with pytest.raises(ConfigError, match=match):
        DatasetConfig.from_dict("test", overrides)


def test_chunks_cover_the_dataset():
    d = DatasetConfig.from_dict("train", {"n_maps": 250, "chunk_size": 100})
    assert d.n_chunks == 3
    assert [d.chunk_range(k) for k in range(3)] == [(0, 100), (100, 200), (200, 250)]
    with pytest.raises(ConfigError, match="chunk index 3"):
        d.chunk_range(3)
    with pytest.raises(ConfigError, match="dataset name"):
        DatasetConfig.from_dict("../evil", {})


def test_defaults_are_the_seed_setup():
    # seed 002: 1,000 CRs above 40 EeV, 5.5 % signal from one source, 15/45/40 % H/He/CNO,
    # toy blurring f = 0.5; Auger exposure a0 = −35.2°, θmax = 60° (DESIGN.md section 5)
    d = DatasetConfig.from_dict("x", {})
    assert d.n_cr == 1000 and d.config["energy_min_eev"] == 40.0
    assert d.config["signal_fraction"] == {"value": 0.055}
    assert d.config["composition"] == MIXTURE
    assert d.config["deflection"]["blur_fraction"] == 0.5
    assert d.config["exposure"] == {
        "model": "sommers",
        "latitude_deg": -35.2,
        "theta_max_deg": 60.0,
    }
    assert DATASET_DEFAULTS["chunk_size"] == 20000


def test_lens_acceptance_table():
    # identity parts with transparencies [0.5, 0.5, 1, 1] over log10 R 18.5 ... 20.5 and a
    # power law E^-2 in protons from 10^18.5 to 10^20.5 eV: a share p = 10/11 of the CRs falls
    # in the first decade, so every pixel keeps 0.5 p + (1 - p); with the Auger exposure the
    # expected acceptance of an identity lens is the pixel's relative exposure
    from crsky.sky.exposure import Exposure
    from crsky.sky.simulate import lens_acceptance

    spec = {
        "composition": {"H": 1.0},
        "energy_min_eev": 10.0**0.5,
        "energy_max_eev": 10.0**2.5,
        "spectrum": {"model": "power_law", "spectral_index": 2.0},
        "nside": 4,
    }
    d = DatasetConfig.from_dict("x", spec)
    half = identity_lens(4, LENS_EDGES, transparency=[0.5, 0.5, 1.0, 1.0])
    ones = np.ones(192)
    p = 10 / 11
    np.testing.assert_allclose(lens_acceptance(d, half, ones), 0.5 * p + 1 - p, rtol=1e-6)
    exposure = Exposure().pixel_exposure(4)
    np.testing.assert_allclose(
        lens_acceptance(d, identity_lens(4, LENS_EDGES), exposure), exposure, rtol=1e-9
    )


@pytest.mark.parametrize("shape", [(3, 0), (2, 1), (4, 7), (50, 1000)])
def test_radix_row_sort_equals_numpy_sort(shape, rng):
    keys = rng.integers(0, 2**64 - 1, shape, dtype=np.uint64)
    keys[:, ::3] &= np.uint64(0xFFFF_0000_FFFF)  # bytes that vary in some keys only
    expected = np.sort(keys, axis=1)
    sort_rows(keys)
    assert np.array_equal(keys, expected)
    constant = np.full((2, 5), 7, np.uint64)
    sort_rows(constant)
    assert np.array_equal(constant, np.full((2, 5), 7, np.uint64))


def _xoshiro256ss_reference(state: list[int], n: int) -> list[int]:
    """xoshiro256** written out with Python integers (Blackman & Vigna 2018)."""
    mask = (1 << 64) - 1

    def rotl(x: int, k: int) -> int:
        return ((x << k) | (x >> (64 - k))) & mask

    s = list(state)
    out = []
    for _ in range(n):
        out.append(rotl(s[1] * 5 & mask, 7) * 9 & mask)
        t = s[1] << 17 & mask
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
    return out


def test_background_stream_is_xoshiro256ss():
    state = [np.uint64(x) for x in (1, 2, 3, 0xFFFF_FFFF_FFFF_FFFF)]
    got = []
    for _ in range(20):
        r, *state = _xoshiro256ss(*state)
        state = [np.uint64(x % 2**64) for x in state]  # numba returns them as Python ints
        got.append(int(r) % 2**64)
    assert got == _xoshiro256ss_reference([1, 2, 3, 2**64 - 1], 20)
    assert _xoshiro256ss(*(np.uint64(x) for x in (1, 2, 3, 4)))[0] == 11520  # by hand: 2·5 ≪ 7 · 9


def test_isotropic_background_follows_exposure_spectrum_and_composition(rng):
    # 200,000 isotropic CRs: chi-square of declination bands against ω(δ) cos δ (pixel
    # probabilities of the exposure), of energy bins against the spectrum's CDF and of the
    # charges against the composition, each at a fixed seed
    d = _dataset(signal_fraction={"value": 0.0}, composition=MIXTURE, n_cr=1000)
    batch = SkySimulator(d).simulate(200, rng)
    probability = d.exposure.pixel_exposure(16, nest=False)
    probability = probability / probability.sum()
    band = np.digitize(hp.pix2ang(16, np.arange(probability.size))[0], np.linspace(0, np.pi, 13))
    expected_band = np.bincount(band, probability, minlength=13)[1:] * batch.pixel.size
    seen = expected_band > 0
    observed_band = np.bincount(band[batch.pixel.ravel()], minlength=13)[1:]
    # stored energies are rounded to the 2^-9 dex grid: a stored value >= a grid edge e was
    # drawn >= e - step / 2
    edges = np.unique(np.quantile(batch.log10_energy, np.linspace(0, 1, 11))[1:-1])
    below = np.r_[-np.inf, edges - LOG10_ENERGY_STEP / 2, np.inf]
    expected_energy = np.diff(d.energy_sampler.cdf(below)) * batch.pixel.size
    observed_energy = np.bincount(np.digitize(batch.log10_energy.ravel(), edges), minlength=10)
    charges = np.array([1, 2, 7])
    expected_charge = np.array(list(MIXTURE.values())) * batch.pixel.size
    observed_charge = (batch.charge.ravel()[:, None] == charges).sum(axis=0)
    for observed, expected in (
        (observed_band[seen], expected_band[seen]),
        (observed_energy, expected_energy),
        (observed_charge, expected_charge),
    ):
        chi2 = np.sum((observed - expected) ** 2 / expected)
        assert stats.chi2.sf(chi2, observed.size - 1) > 1e-3
