"""Skies with many sources (seed 002's outlook: 10, 50, 250 sources): every source recorded in
the labels, signal CRs shared by flux (fixed or drawn per map for sources uniform in volume), and
the likelihood oracle consistent with the simulation for several sources."""

import numpy as np
import pytest
from scipy import stats

from crsky.errors import ConfigError
from crsky.likelihood import oracle_log_lr, signal_model
from crsky.sky.dataset import DatasetConfig
from crsky.sky.simulate import SkySimulator
from crsky.sky.sources import Sources

_FULL_SKY = {"exposure": {"model": "full_sky"}, "deflection": {"mode": "none"}}


def _dataset(n_sources, fluxes="equal", fraction=0.2, **extra) -> DatasetConfig:
    spec = {
        "n_maps": 10,
        "chunk_size": 10,
        "n_cr": 200,
        "nside": 16,
        "signal_fraction": {"value": fraction},
        "sources": {"n_sources": n_sources, "fluxes": fluxes},
    }
    return DatasetConfig.from_dict("many", {**spec, **_FULL_SKY, **extra})


def _source_pixel_counts(maps, nside=16) -> tuple[np.ndarray, np.ndarray]:
    """Observed and expected signal CRs per (map, pixel holding a source) without deflection:
    each signal CR sits in its source's pixel, which it reaches with probability = the
    source's flux share (shares of sources in one pixel add)."""
    import healpy as hp

    d = maps.source_direction.reshape(-1, 3)
    pixel = hp.vec2pix(nside, d[:, 0], d[:, 1], d[:, 2]).reshape(maps.source_direction.shape[:2])
    observed, expected = [], []
    for m in range(pixel.shape[0]):
        where, index = np.unique(pixel[m], return_inverse=True)
        share = np.bincount(index, weights=maps.source_flux[m].astype(np.float64))
        signal = maps.pixel[m][maps.is_signal[m]]
        observed.append(np.array([np.count_nonzero(signal == p) for p in where]))
        expected.append(maps.n_signal[m] * share)
    return np.concatenate(observed), np.concatenate(expected)


def _pearson_p(observed, expected, n_maps) -> float:
    """p-value of Pearson's statistic of multinomial counts (one constraint per map)."""
    keep = expected > 0
    chi2 = np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep])
    return float(stats.chi2.sf(chi2, keep.sum() - n_maps))


@pytest.mark.parametrize("n_sources", [10, 50, 250])
def test_every_source_is_recorded_and_emits_its_flux_share(n_sources, rng):
    maps = SkySimulator(_dataset(n_sources)).simulate(40, rng)
    assert maps.source_direction.shape == (40, n_sources, 3)
    np.testing.assert_allclose(np.linalg.norm(maps.source_direction, axis=2), 1.0, atol=1e-6)
    np.testing.assert_allclose(maps.source_flux, 1.0 / n_sources, rtol=1e-6)
    assert np.all(maps.n_signal == 40) and np.all(maps.is_signal.sum(axis=1) == 40)
    observed, expected = _source_pixel_counts(maps)
    assert observed.sum() == 40 * 40  # every signal CR in a source pixel
    assert _pearson_p(observed, expected, 40) > 1e-3


def test_drawn_fluxes_follow_sources_uniform_in_volume(rng):
    sources = Sources.from_config({"n_sources": 5, "fluxes": {"distances_mpc": [3.0, 30.0]}})
    shares = sources.draw_shares(20000, rng)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    # flux ∝ 1 / d²: d_i / d_j = sqrt(share_j / share_i); the nearest of 5 sources uniform in
    # volume has P(d_min > x) = (1 - F(x))^5 with F(x) = (x³ - 3³) / (30³ - 3³); test the
    # ratio d_max / d_min instead of d itself (the shares lose the scale): bounded by 10
    ratio = np.sqrt(shares.max(axis=1) / shares.min(axis=1))
    assert ratio.max() <= 10.0 + 1e-9 and ratio.min() >= 1.0
    reference = np.cbrt(27.0 + rng.random((20000, 5)) * (27000.0 - 27.0))
    expected = reference.max(axis=1) / reference.min(axis=1)
    assert stats.ks_2samp(ratio, expected).pvalue > 1e-3
    with pytest.raises(ConfigError, match="drawn per map"):
        _ = sources.flux_share
    with pytest.raises(ConfigError, match="0 < d_min <= d_max"):
        Sources.from_config({"n_sources": 2, "fluxes": {"distances_mpc": [30.0, 3.0]}})


def test_signal_follows_the_drawn_fluxes_of_each_map(rng):
    dataset = _dataset(10, {"distances_mpc": [1.0, 10.0]}, fraction=0.5)
    maps = SkySimulator(dataset).simulate(200, rng)
    assert not np.allclose(maps.source_flux[0], maps.source_flux[1])  # per map
    np.testing.assert_allclose(maps.source_flux.sum(axis=1), 1.0, rtol=1e-6)
    observed, expected = _source_pixel_counts(maps)
    assert observed.sum() == maps.n_signal.sum()
    assert _pearson_p(observed, expected, 200) > 1e-3
    # the same test rejects equal shares: the drawn ones shape the signal
    n_src = maps.source_flux.shape[1]
    equal = maps.source_flux.copy()
    equal[:] = 1.0 / n_src
    flat = type(maps)(**{**maps.__dict__, "source_flux": equal})
    observed, expected = _source_pixel_counts(flat)
    assert _pearson_p(observed, expected, 200) < 1e-6
    # the same seed gives the same maps
    again = SkySimulator(dataset).simulate(200, np.random.default_rng(12345))
    first = SkySimulator(dataset).simulate(200, np.random.default_rng(12345))
    assert np.array_equal(again.pixel, first.pixel)
    assert np.array_equal(again.source_flux, first.source_flux)
    # the likelihood analyses need fixed flux shares: refused with one line
    with pytest.raises(ConfigError, match="drawn per map"):
        signal_model(dataset).ratios(
            maps.pixel, maps.log10_energy, maps.source_direction, maps.deflection_axis
        )


@pytest.mark.parametrize("fluxes", ["equal", [5, 1, 1, 1, 1, 1, 1, 1, 1, 3]])
def test_oracle_of_ten_sources_matches_the_simulation(fluxes, rng):
    # E_signal[1 / LR] = P_iso(LR > 0) = 1 in toy mode (the Fisher kernels reach every pixel):
    # holds only if the oracle mixes the ten sources with the simulation's flux shares
    spec = {"n_maps": 10, "chunk_size": 10, "n_cr": 200, "nside": 16}
    dataset = DatasetConfig.from_dict(
        "ten",
        {
            **spec,
            "signal_fraction": {"value": 0.005},
            "sources": {"n_sources": 10, "fluxes": fluxes},
        },
    )
    maps = SkySimulator(dataset).simulate(3000, rng)
    assert np.all(maps.n_signal == 1)
    model = signal_model(dataset)
    r = model.ratios(maps.pixel, maps.log10_energy, maps.source_direction, maps.deflection_axis)
    w = np.exp(-oracle_log_lr(r, maps.n_signal, maps.signal_fraction, "round"))
    assert w.mean() == pytest.approx(1.0, abs=4 * w.std() / np.sqrt(w.size))


def test_likelihood_refuses_what_it_cannot_model_before_any_work(tmp_path, capsys):
    # the oracle needs fixed flux shares, the profiled analysis one source: one line each
    from crsky.cli import main
    from crsky.sky.simulate import run_chunk

    for fluxes, methods, message in (
        ({"distances_mpc": [1.0, 10.0]}, "oracle", "drawn per map (distances_mpc)"),
        ("equal", "profiled", "likelihood_profiled profiles one source"),
    ):
        chunk = run_chunk(_dataset(3, fluxes), 0, 1, tmp_path / f"{methods}.h5")
        output = tmp_path / f"{methods}_scores.h5"
        args = ["likelihood", "--chunk", chunk, "--signal-chunk", chunk, "--role", "test"]
        assert main([*args, "--output", output, "--methods", methods]) == 2
        error = capsys.readouterr().err.strip()
        assert message in error and len(error.splitlines()) == 1, error
        assert not output.exists()


def test_many_sources_config_plans_one_model_per_source_count(checkout):
    from helpers import job_counts, snakemake

    output = snakemake("-n", "--configfile", "config/many_sources.yaml", cwd=checkout)
    counts = job_counts(output)
    assert counts["train"] == counts["evaluate"] == counts["explain"] == 6
    for n in (10, 50, 250):
        assert f"results/skymaps/test_{n}/chunk0000.h5" in output
        assert f"results/explain/pointcloud_{n}/relevance.csv" in output
