"""The evaluation stage: two-point pair counts, p-values and σ, the baseline, scoring with a model,
``crsky paircounts`` / ``crsky evaluate`` and their outputs, and bad input."""

import json
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from helpers import random_unit_vectors, save_tiny_model
from scipy import stats
from scipy.stats import norm

from crsky.cli import main
from crsky.errors import ConfigError, InputFileError
from crsky.evaluate.data import MapSet
from crsky.evaluate.pair_counts import read_pair_counts
from crsky.evaluate.plots import roc_curve
from crsky.evaluate.run import EvaluateJob, evaluate, output_files
from crsky.sky.dataset import DatasetConfig
from crsky.sky.simulate import run_chunk
from crsky.stats.significance import (
    SignificanceRow,
    check_isotropy_size,
    isotropic_maps_needed,
    map_p_values,
    median_p_value,
    read_significance_csv,
    sigma_crossings,
    significance_rows,
    write_significance_csv,
)
from crsky.stats.two_point import (
    baseline_scores,
    cumulative_pair_counts,
    cumulative_pair_counts_vectors,
    psi_grid_deg,
    reference_pair_counts,
    upper_rank_p_values,
)

PSI = psi_grid_deg()  # 1°, 2°, ..., 180°


# --- two-point pair counts ---------------------------------------------------------------------


@pytest.mark.parametrize("n_cr", [0, 1, 2, 7, 200])
def test_pair_counts_equal_brute_force_on_random_vectors(rng, n_cr):
    v = random_unit_vectors(rng, 30 * n_cr).reshape(30, n_cr, 3)
    counts = cumulative_pair_counts_vectors(v, PSI, threads=2)
    np.testing.assert_array_equal(counts, reference_pair_counts(v, PSI))
    # ψ = 180° holds every unordered pair
    assert np.all(counts[:, -1] == n_cr * (n_cr - 1) // 2)


@pytest.mark.parametrize("nside", [2, 64])
def test_pair_counts_equal_brute_force_on_pixelised_maps(rng, nside):
    # nside 2 (48 pixels): most pairs share a pixel (d = 1) or sit at the few distinct pixel
    # separations, so ties between pairs and many exact repeats are exercised.
    import healpy as hp

    pixels = rng.integers(0, hp.nside2npix(nside), size=(40, 300)).astype(np.uint16)
    counts = cumulative_pair_counts(pixels, nside, PSI)
    vectors = np.stack(hp.pix2vec(nside, pixels.astype(np.int64)), axis=-1)
    np.testing.assert_array_equal(counts, reference_pair_counts(vectors, PSI))


def test_pairs_exactly_at_a_bin_edge_count_as_within():
    # u = x̂ and v = (cos ψ, sin ψ, 0) have d = 1·cos ψ + 0 + 0 = cos ψ exactly in float64:
    # the convention "angle ≤ ψ" counts the pair at ψ and not at the ψ below.
    for psi in (1.0, 17.0, 90.0, 179.0):
        c = np.cos(np.deg2rad(psi))
        s = np.sqrt(1.0 - c * c)
        v = np.array([[[1.0, 0.0, 0.0], [c, s, 0.0]]])
        counts = cumulative_pair_counts_vectors(v, PSI)[0]
        k = int(psi) - 1
        assert counts[k] == 1 and (k == 0 or counts[k - 1] == 0), psi
        assert counts[-1] == 1
    # antipodal pair: d = -1 (or its rounding just below) still counts at 180° only
    u = random_unit_vectors(np.random.default_rng(1), 1)[0]
    counts = cumulative_pair_counts_vectors(np.array([[u, -u]]), PSI)[0]
    assert counts[-1] == 1 and counts[-2] == 0


def test_pair_counts_of_isotropic_maps_follow_the_solid_angle(rng):
    # For isotropic CRs a pair is within ψ with probability (1 − cos ψ) / 2 (area of a cap).
    n_maps, n_cr = 200, 100
    v = random_unit_vectors(rng, n_maps * n_cr).reshape(n_maps, n_cr, 3)
    mean = cumulative_pair_counts_vectors(v, PSI).mean(axis=0)
    expected = n_cr * (n_cr - 1) / 2 * (1 - np.cos(np.deg2rad(PSI))) / 2
    # variance of a pair count is at most that of 4950 independent pairs times (1 + n_cr·p),
    # so 6 of those standard errors bound the mean of 200 maps generously
    p = (1 - np.cos(np.deg2rad(PSI))) / 2
    sigma = np.sqrt(4950 * p * (1 - p) * (1 + n_cr * p) / n_maps)
    assert np.all(np.abs(mean - expected) <= 6 * sigma + 1e-9)


def test_pair_count_input_errors():
    with pytest.raises(ConfigError, match="power of 2"):
        cumulative_pair_counts(np.zeros((1, 3), np.int64), 3, PSI)
    with pytest.raises(ConfigError, match=r"\[0, 48\)"):
        cumulative_pair_counts(np.full((1, 3), 48), 2, PSI)
    with pytest.raises(ConfigError, match="increasing"):
        cumulative_pair_counts_vectors(np.zeros((1, 2, 3)), [5.0, 3.0])
    with pytest.raises(ConfigError, match="psi_min_deg"):
        psi_grid_deg(0.0, 180.0, 1.0)


# --- p-values and σ ----------------------------------------------------------------------------


def test_median_p_value_counts_ties_as_at_least_and_bounds_zero():
    iso = np.arange(100.0)  # scores 0 ... 99
    pv = median_p_value([49.0, 50.0, 51.0], iso)  # median 50: iso 50 ... 99 are >= it
    assert (pv.n_iso_at_least, pv.p_value, pv.p_bound, pv.sigma_bound) == (50, 0.5, "", "")
    assert pv.sigma == pytest.approx(0.0, abs=1e-12)
    top = median_p_value([1000.0], iso)
    assert (top.p_value, top.p_bound, top.sigma_bound) == (0.01, "<", ">")
    assert top.sigma == pytest.approx(norm.isf(0.01))  # 2.326: a lower bound, never inf
    bottom = median_p_value([-5.0], iso)
    assert (bottom.p_value, bottom.sigma_bound) == (1.0, "<")
    assert np.isfinite(bottom.sigma)


def test_roc_area_is_the_mann_whitney_probability_with_ties_halved(rng):
    signal = rng.integers(0, 20, 300).astype(float)  # integer scores: many ties
    isotropic = rng.integers(-5, 15, 400).astype(float)
    fpr, tpr, area = roc_curve(signal, isotropic)
    greater = (signal[:, None] > isotropic[None, :]).mean()
    ties = (signal[:, None] == isotropic[None, :]).mean()
    assert area == pytest.approx(greater + ties / 2, rel=1e-12)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert roc_curve(signal, signal)[2] == pytest.approx(0.5)


def test_isotropic_maps_needed_for_sigma():
    # one-sided Gaussian tail: p(3σ) = 1.3499e-3, p(5σ) = 2.8665e-7 (standard normal tables)
    assert isotropic_maps_needed(3.0) == 741
    assert isotropic_maps_needed(5.0) == 3_488_556
    check_isotropy_size(741, [2.0, 3.0])
    check_isotropy_size(10_000, [3.0, 5.0], "isotropy")  # 5σ extrapolated from the tail
    check_isotropy_size(200, [2.0])  # resolved empirically (44 maps needed)
    with pytest.raises(ConfigError, match=r"sigma_levels.*3488556 isotropic maps.*or 300"):
        check_isotropy_size(299, [3.0, 5.0], "isotropy")
    with pytest.raises(ConfigError, match="holds no maps"):
        check_isotropy_size(0, [3.0], "isotropy")


def _rows(sigmas, bounds=None):
    bounds = bounds or [""] * len(sigmas)
    return [
        SignificanceRow("m", 0.01 * (i + 1), 10.0 * (i + 1), 5, 0.0, 1, 1000, 0.1, "", s, b)
        for i, (s, b) in enumerate(zip(sigmas, bounds, strict=True))
    ]


def test_sigma_crossings_interpolate_linearly():
    rows = _rows([1.0, 2.0, 4.0, 6.0])
    three, five, seven = sigma_crossings(rows, [3.0, 5.0, 7.0])
    # σ = 3 halfway between (0.02, 2) and (0.03, 4); σ = 5 halfway between (0.03, 4) and (0.04, 6)
    assert three.signal_fraction == pytest.approx(0.025) and three.n_signal == pytest.approx(25)
    assert five.signal_fraction == pytest.approx(0.035) and five.status == "interpolated"
    assert seven.status == "not_reached" and seven.signal_fraction is None
    bounded = sigma_crossings(_rows([1.0, 3.5], ["", ">"]), [3.0])[0]
    assert bounded.status == "upper_limit"
    assert sigma_crossings(_rows([4.0, 5.0]), [3.0])[0].status == "below_range"


def test_significance_rows_group_by_fraction_and_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    iso = rng.normal(size=1000)
    f = np.repeat([0.0, 0.05, 0.1], 50)
    scores = rng.normal(size=f.size) + 40 * f  # shift 0, 2, 4 standard deviations
    rows = significance_rows("network", scores, f, f * 1000, iso)
    assert [r.signal_fraction for r in rows] == pytest.approx([0.0, 0.05, 0.1])
    assert [r.n_maps for r in rows] == [50, 50, 50]
    assert rows[1].sigma == pytest.approx(2.0, abs=0.35)  # median of N(2, 1) is ~2
    path = write_significance_csv(tmp_path / "significance.csv", rows)
    assert read_significance_csv(path) == rows
    with pytest.raises(ConfigError, match=r"no test map has signal fraction 0\.2"):
        significance_rows("network", scores, f, f * 1000, iso, fractions=[0.2])
    with pytest.raises(ConfigError, match="test set holds no maps"):
        significance_rows("network", [], [], [], iso)


def test_ks_uniform_p_values_two_point_isotropic_vs_isotropic():
    # Both the "test" maps and the isotropy set are isotropic: the LOE-calibrated baseline
    # p-values must be uniform. The statistic is discrete (ranks), so ties are broken at random
    # (map_p_values(rng=...)), which makes the p-value exactly uniform for exchangeable maps.
    rng = np.random.default_rng(2024)
    n_iso, n_test, n_cr = 1500, 400, 60
    pix = rng.integers(0, 3072, size=(n_iso + n_test, n_cr))
    counts = cumulative_pair_counts(pix, 16, PSI)
    scores = baseline_scores(counts[n_iso:], counts[:n_iso], PSI)
    p = map_p_values(scores.test, scores.isotropy, rng=rng)
    assert stats.kstest(p, "uniform").pvalue > 0.01
    # the local per-ψ p-values of the test maps are uniform too (here at ψ = 25°)
    local = upper_rank_p_values(counts[n_iso:], counts[:n_iso])[:, 24]
    assert np.mean(local <= 0.1) == pytest.approx(0.1, abs=0.05)


def test_planted_strong_signal_gives_more_than_five_sigma_for_the_baseline():
    # σ > 5 needs p < 2.87e-7, i.e. more than 3,488,556 isotropic maps (test above). Small maps
    # (12 CRs, full sky, nside 64) and a few ψ keep four million of them cheap.
    rng = np.random.default_rng(7)
    psi = [1.0, 3.0, 10.0, 30.0, 90.0]
    n_iso, n_cr, npix = 4_000_000, 12, 49152
    iso = rng.integers(0, npix, size=(n_iso, n_cr), dtype=np.uint16)
    iso_counts = cumulative_pair_counts(iso, 64, psi, threads=2)
    # signal maps: 8 of 12 CRs (f = 2/3) in one pixel at a random position, 4 isotropic
    signal = rng.integers(0, npix, size=(25, n_cr), dtype=np.uint16)
    signal[:, :8] = rng.integers(0, npix, size=(25, 1))
    scores = baseline_scores(cumulative_pair_counts(signal, 64, psi), iso_counts, psi)
    pv = median_p_value(scores.test, scores.isotropy)
    assert pv.sigma > 5.0 and pv.p_bound == "<" and pv.sigma_bound == ">"
    assert np.all(scores.best_psi_test_deg == 1.0)


# --- the evaluation job on real (tiny) skymap chunks --------------------------------------------

NSIDE, N_CR = 8, 60
FRACTIONS = [0.0, 0.1, 0.3]


def _dataset(name: str, n_maps: int, chunk_size: int, fraction: dict, **extra) -> DatasetConfig:
    given = {"n_maps": n_maps, "chunk_size": chunk_size, "n_cr": N_CR, "nside": NSIDE}
    return DatasetConfig.from_dict(name, {**given, "signal_fraction": fraction, **extra})


def _chunks(folder: Path, dataset: DatasetConfig) -> list[Path]:
    return [
        run_chunk(dataset, k, 11, folder / dataset.name / f"chunk{k:04d}.h5")
        for k in range(dataset.n_chunks)
    ]


@pytest.fixture(scope="module")
def sky(tmp_path_factory) -> dict[str, list[Path]]:
    """Test maps at three signal fractions, an isotropy set, and an isotropic 'test' set."""
    folder = tmp_path_factory.mktemp("skymaps")
    return {
        "test": _chunks(folder, _dataset("test", 240, 120, {"values": FRACTIONS})),
        "isotropy": _chunks(folder, _dataset("isotropy", 1000, 500, {"value": 0.0})),
        "isotest": _chunks(folder, _dataset("isotest", 400, 400, {"value": 0.0})),
    }


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny", NSIDE)


def _cli(*args) -> int:
    return main(["-q", *map(str, args)])


def test_ks_uniform_p_values_network_isotropic_vs_isotropic(sky, model_folder):
    # Network scores of isotropic "test" maps against the isotropy set: p-values uniform (KS).
    from crsky.evaluate.scoring import ModelFolder, score_maps

    model = ModelFolder.open(model_folder).load()
    test = score_maps(model, MapSet.open(sky["isotest"], "test"))
    iso = score_maps(model, MapSet.open(sky["isotropy"], "isotropy"))
    assert np.unique(iso).size > 0.99 * iso.size  # continuous scores, no ties to break
    assert stats.kstest(map_p_values(test, iso), "uniform").pvalue > 0.01


def test_trained_crsky_model_scores_as_in_the_training_input_pipeline(sky, tmp_path):
    # A real crsky model (DeepSphere with the energy channel, trained one epoch by crsky.train)
    # scored by the evaluation gives the numbers it gives on the training stage's own input
    # pipeline: the CR lists reach the model in the same layout.
    from crsky.evaluate.scoring import ModelFolder, score_maps
    from crsky.models import ModelSpec
    from crsky.train import TrainSettings
    from crsky.train.loop import TrainJob, train
    from crsky.train.pipeline import ChunkSet, validation_dataset

    spec = ModelSpec.from_config(
        {"name": "tiny", "family": "deepsphere", "depth": 1, "channels": [4], "K": 2,
         "dense_units": [8], "dropout": 0.0, "inputs": ["counts", "mean_log10_energy"]}
    )  # fmt: skip
    settings = TrainSettings.from_config({"epochs": 1, "batch_size_per_replica": 40})
    train(TrainJob(spec, settings, sky["test"], sky["isotest"], seed=3), tmp_path / "tiny")
    folder = ModelFolder.open(tmp_path / "tiny")
    assert (folder.nside, folder.ordering, folder.name) == (NSIDE, "RING", "tiny")
    model = folder.load()
    scores = score_maps(model, MapSet.open(sky["isotest"], "test"), batch_size=64)
    pipeline = validation_dataset(ChunkSet.open(sky["isotest"], "v"), True, "classification", 64)
    expected = model.predict(pipeline, verbose=0)[:, 0]
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-7)
    # a folder whose config.json disagrees with its rendering layer is refused
    config = json.loads((tmp_path / "tiny" / "config.json").read_text())
    (tmp_path / "tiny" / "config.json").write_text(json.dumps({**config, "nside": 16}))
    with pytest.raises(InputFileError, match="renders nside 8"):
        ModelFolder.open(tmp_path / "tiny").load()


def test_evaluate_cli_writes_the_folder_and_is_reproducible(sky, model_folder, tmp_path):
    counts = {}
    for role in ("test", "isotropy"):
        counts[role] = [tmp_path / "pairs" / role / p.name for p in sky[role]]
        (tmp_path / "pairs" / role).mkdir(parents=True)
        for chunk, out in zip(sky[role], counts[role], strict=True):
            assert _cli("paircounts", "--chunk", chunk, "--output", out, "--threads", 1) == 0
    args = [
        "evaluate", "--model", model_folder, "--test", *sky["test"],
        "--isotropy", *sky["isotropy"], "--sigma-levels", "1", "2",
        "--test-pair-counts", *counts["test"], "--isotropy-pair-counts", *counts["isotropy"],
    ]  # fmt: skip
    assert _cli(*args, "--output", tmp_path / "a") == 0
    time.sleep(1.1)  # HDF5 timestamps would differ across a second
    assert _cli(*args, "--output", tmp_path / "b") == 0
    again = tmp_path / "again.h5"
    assert _cli("paircounts", "--chunk", sky["test"][0], "--output", again) == 0
    assert again.read_bytes() == counts["test"][0].read_bytes()
    for name in output_files(with_model=True, with_lens=False):
        assert (tmp_path / "a" / name).stat().st_size > 0, name
    for name in output_files(with_model=True, with_lens=False):  # tables, HDF5 and PNGs
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name

    # two evaluations of the same maps side by side: one shared baseline, one network each
    summary = tmp_path / "summary"
    assert (
        _cli("summary", "--evaluations", tmp_path / "a", tmp_path / "b", "--output", summary) == 0
    )
    lines = (summary / "summary.csv").read_text().splitlines()
    models = [line.split(",")[0:3:2] for line in lines[1:]]  # model, method
    assert models == [["a", "network"]] * 3 + [["b", "network"]] * 3 + [["-", "two_point"]] * 3
    assert lines[0].startswith("model,test_dataset,method,") and "oracle_ratio_5sigma" in lines[0]
    assert (summary / "sigma_summary.png").stat().st_size > 0

    rows = read_significance_csv(tmp_path / "a" / "significance.csv")
    assert [(r.method, r.signal_fraction) for r in rows] == [
        (m, f) for m in ("network", "two_point") for f in FRACTIONS
    ]
    baseline = {r.signal_fraction: r for r in rows if r.method == "two_point"}
    # 18 of 60 CRs from one source within a few degrees: far above every isotropic map, so p is
    # extrapolated from the isotropic tail (or a bound where no tail could be fitted)
    strong = baseline[0.3]
    assert strong.n_iso_at_least == 0 and strong.sigma > norm.isf(1 / 1000) - 1e-9
    assert strong.p_source in ("extrapolated", "bound")
    assert (strong.p_source == "bound") == (strong.p_bound == "<")
    assert baseline[0.0].sigma < 2.0
    with h5py.File(tmp_path / "a" / "scores.h5", "r") as f:
        assert f["test/network_score"].shape == (240,)
        assert f["isotropy/two_point_score"].shape == (1000,)
        np.testing.assert_array_equal(
            f["test/signal_fraction"][()],
            MapSet.open(sky["test"], "test").labels()["signal_fraction"],
        )
        table = pd.read_csv(tmp_path / "a" / "scores.csv.gz")  # the same scores, for pandas
        for role, n_maps in (("test", 240), ("isotropy", 1000)):
            rows = table[table["set"] == role]
            assert len(rows) == n_maps
            for name in ("network_score", "two_point_score"):
                np.testing.assert_allclose(rows[name], f[f"{role}/{name}"][()], rtol=1e-6)
    # the per-chunk files and computing in the job give the same counts
    psi = psi_grid_deg()
    from crsky.store import open_chunk

    with open_chunk(sky["test"][1]) as chunk:
        direct = cumulative_pair_counts(chunk.cosmic_rays().pixel, NSIDE, psi)
    np.testing.assert_array_equal(
        read_pair_counts(counts["test"][1:], psi, sky["test"][1:], [120]), direct
    )


def test_baseline_only_evaluation_library(sky, tmp_path):
    job = EvaluateJob(tuple(sky["test"]), tuple(sky["isotropy"]), sigma_levels=(2.0,))
    out = evaluate(job, tmp_path / "eval")
    rows = read_significance_csv(out / "significance.csv")
    assert {r.method for r in rows} == {"two_point"}
    sigma = [r.sigma for r in rows]
    assert sigma == sorted(sigma)  # stronger signal, larger σ


# --- bad input ---------------------------------------------------------------------------------


def _evaluate_error(capsys, *args) -> str:
    assert _cli("evaluate", "--output", "unused", *args) == 2
    return capsys.readouterr().err


def test_model_with_other_nside_or_ordering_is_rejected(sky, tmp_path, capsys):
    wrong_nside = save_tiny_model(tmp_path / "n16", nside=16)
    err = _evaluate_error(
        capsys, "--model", wrong_nside, "--test", *sky["test"], "--isotropy", *sky["isotropy"],
        "--sigma-levels", "1",
    )  # fmt: skip
    assert "reads maps at nside 16" in err and "is at nside 8" in err
    nested = save_tiny_model(tmp_path / "nest", NSIDE, ordering="NESTED")
    err = _evaluate_error(
        capsys, "--model", nested, "--test", *sky["test"], "--isotropy", *sky["isotropy"],
        "--sigma-levels", "1",
    )  # fmt: skip
    assert "reads NESTED pixels" in err and "RING ordering" in err


def test_isotropy_set_too_small_for_the_sigma_levels(sky, tmp_path, capsys):
    # 100 isotropic maps resolve p >= 0.01 (2.3 sigma) and are too few for a tail fit (300)
    few = _chunks(tmp_path, _dataset("isotropy", 100, 100, {"value": 0.0}))
    err = _evaluate_error(capsys, "--test", *sky["test"], "--isotropy", *few)
    assert "has 100 maps, too few for σ = 5" in err and "or 300 for an extrapolated tail" in err


def test_empty_test_sets_are_rejected(sky, tmp_path):
    with pytest.raises(ConfigError, match="test set is empty"):
        evaluate(EvaluateJob((), tuple(sky["isotropy"]), sigma_levels=(1.0,)), tmp_path / "eval")
    empty = tmp_path / "empty.h5"
    shutil.copy(sky["test"][0], empty)
    with h5py.File(empty, "r+") as f:
        for name in list(f):
            data = f[name][:0]
            del f[name]
            f.create_dataset(name, data=data)
    with pytest.raises(InputFileError, match="holds no maps"):
        evaluate(
            EvaluateJob((empty,), tuple(sky["isotropy"]), sigma_levels=(1.0,)), tmp_path / "eval"
        )


def test_mismatched_sets_and_fractions_are_rejected(sky, tmp_path):
    # the test maps as "isotropy" set: they contain signal
    with pytest.raises(InputFileError, match="maps with signal CRs"):
        evaluate(
            EvaluateJob(tuple(sky["isotest"]), tuple(sky["test"]), sigma_levels=(1.0,)), tmp_path
        )
    other = _chunks(tmp_path, _dataset("iso40", 100, 100, {"value": 0.0}, n_cr=40))
    with pytest.raises(InputFileError, match=r"has n_cr 60.*has 40"):
        evaluate(
            EvaluateJob(tuple(sky["test"]), tuple(other), sigma_levels=(1.0,)), tmp_path / "eval"
        )
    with pytest.raises(ConfigError, match=r"no test map has signal fraction 0\.2"):
        job = EvaluateJob(
            tuple(sky["test"]), tuple(sky["isotropy"]), sigma_levels=(1.0,), signal_fractions=(0.2,)
        )
        evaluate(job, tmp_path / "eval")
    pairs = _pair_file(sky, tmp_path)
    with pytest.raises(InputFileError, match="other ψ"):
        read_pair_counts([pairs], psi_grid_deg(2.0, 180.0, 2.0), sky["test"][:1], [120])
    # counts of another chunk with as many maps (test chunk 1): refused by content hash
    with pytest.raises(InputFileError, match="computed from another chunk than"):
        read_pair_counts([pairs], psi_grid_deg(), sky["test"][1:2], [120])


def _pair_file(sky, tmp_path) -> Path:
    out = tmp_path / "pairs.h5"
    assert _cli("paircounts", "--chunk", sky["test"][0], "--output", out) == 0
    return out
