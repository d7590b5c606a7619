"""The lens stage: parts from real (tiny) backtracking shards, the global normalisation, the file
formats read back from their descriptions, sampling with transparency, and bad input."""

import json
import shutil
import struct
import zipfile
from pathlib import Path

import healpy as hp
import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from crsky.backtrack import GYRO_KPC, Accuracy
from crsky.backtrack.shard import ShardJob, read_shard, run_shard
from crsky.binning import RigidityBins, Sharding
from crsky.cli import main
from crsky.errors import ConfigError, InputFileError
from crsky.lens import Lens, build_part, finalize_lens, write_part
from crsky.lens.build import column_sums, read_part_stats
from crsky.lens.formats import CfgEntry, read_diagnostics, read_mldat, write_cfg, write_npz
from crsky.lens.plots import plot_deflection, plot_deflection_maps, plot_magnification

UNIFORM_B_UGAUSS = (0.0, 0.0, 1.0)
UNIFORM_BINS = RigidityBins(19.0, 19.4, 2)  # curvature radii 10.8 ... 27 kpc in 1 µG
R_GALAXY_KPC = 20.0
EARTH_KPC = np.array([-8.5, 0.0, 0.0])


def _make_shards(
    folder: Path,
    field: str,
    options: dict,
    bins: RigidityBins,
    nside: int,
    per_bin: int,
    shard_size: int,
    accuracy: Accuracy | None = None,
) -> dict:
    """Run the real shard writer; returns {bin index: [shard paths]}."""
    sharding = Sharding(per_bin, shard_size)
    shards = {}
    for b in range(bins.n_bins):
        for s in range(sharding.n_shards):
            job = ShardJob(7, field, options, bins, b, sharding, s, nside, accuracy or Accuracy())
            path = folder / f"bin{b:03d}" / f"shard{s:04d}.h5"
            shards.setdefault(b, []).append(run_shard(job, path, threads=1))
    return shards


def _build_lens(shards: dict, field: str, nside: int, folder: Path, **options) -> Path:
    parts = []
    for b, paths in shards.items():
        parts.append(
            write_part(build_part(paths, field, nside, b), folder / "parts" / f"bin{b:03d}.npz")
        )
    finalize_lens(parts, folder / "lens", **options)
    return folder / "lens"


@pytest.fixture(scope="module")
def uniform(tmp_path_factory):
    """Uniform 1 µG field along z, nside 4, two bins of 3,072 particles in two shards each."""
    tmp = tmp_path_factory.mktemp("uniform")
    shards = _make_shards(
        tmp / "shards", "uniform", {"b_ugauss": list(UNIFORM_B_UGAUSS)}, UNIFORM_BINS, 4, 3072, 1536
    )
    return shards, _build_lens(shards, "uniform", 4, tmp)


@pytest.fixture(scope="module")
def zero(tmp_path_factory):
    """Field-free backtracking, nside 8, one bin of 4 particles per pixel."""
    tmp = tmp_path_factory.mktemp("zero")
    shards = _make_shards(tmp / "shards", "zero", {}, RigidityBins(19.0, 20.0, 1), 8, 3072, 1536)
    return shards, _build_lens(shards, "zero", 8, tmp)


# --- physics and normalisation ---------------------------------------------------------------


def test_field_free_lens_is_the_identity_up_to_pixelisation(zero):
    _, folder = zero
    lens = Lens.load(folder)
    m = lens.matrix(19.5).tocsr()
    assert m.shape == (768, 768)
    for i in range(m.shape[0]):
        cols = m.indices[m.indptr[i] : m.indptr[i + 1]]
        allowed = set(hp.get_all_neighbours(8, i, nest=False).tolist()) | {i}
        assert set(cols.tolist()) <= allowed, f"row {i} has mass outside its pixel's neighbours"
    # straight lines keep the direction exactly up to float32 storage: almost all on the diagonal
    assert m.diagonal().sum() / m.sum() > 0.999
    diag = json.loads((folder.parent / "parts" / "bin000.json").read_text())
    assert diag["escaped_fraction"] == 1.0
    assert diag["deflection_mean_deg"] < 1e-4  # float32 directions: ~1e-5 deg


def _helix_exit(u0: np.ndarray, rigidity_V: np.ndarray, b_ugauss: float) -> np.ndarray:
    """Path length (kpc) from the Earth to |x| = 20 kpc of an antiparticle on the analytic helix
    in B = b ẑ, and the turning rate w (rad/kpc). With w = -b / (GYRO_KPC R/EV) (charge -1,
    DESIGN.md section 7) the transverse direction c = u_x + i u_y turns as c0 exp(-i w s), so
    x + i y = X0 + c0 (1 - exp(-i w s)) / (i w) and z = u_z s. The first root is bracketed on a
    0.25 kpc grid and bisected."""
    w = -b_ugauss / (GYRO_KPC * rigidity_V / 1e18)
    c0 = u0[:, 0] + 1j * u0[:, 1]

    def radius2(s):
        xy = EARTH_KPC[0] + 1j * EARTH_KPC[1] + c0 * (1 - np.exp(-1j * w * s)) / (1j * w)
        return np.abs(xy) ** 2 + (u0[:, 2] * s) ** 2 - R_GALAXY_KPC**2

    lo = np.zeros(len(u0))
    hi = np.full(len(u0), np.nan)
    for s in np.arange(0.25, 1000.0, 0.25):
        crossed = np.isnan(hi) & (radius2(np.full(len(u0), s)) >= 0)
        hi[crossed] = s
        lo[np.isnan(hi)] = s
        if not np.isnan(hi).any():
            break
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        outside = radius2(mid) >= 0
        hi = np.where(outside, mid, hi)
        lo = np.where(outside, lo, mid)
    return hi, w


def test_uniform_field_mean_deflection_matches_the_helix(uniform):
    # Analytic: the direction turns about B by w s, so the angle between start and end is
    # 2 arcsin(sin(pitch) |sin(w s / 2)|) with s the helix path from the Earth to r = 20 kpc.
    shards, _ = uniform
    for b, paths in shards.items():
        data = [read_shard(p)[0] for p in paths]
        esc = np.concatenate([d["escaped"] for d in data])
        u0 = np.concatenate([d["observed_direction"] for d in data]).astype(float)[esc]
        u0 /= np.linalg.norm(u0, axis=1)[:, None]
        r = 10.0 ** np.concatenate([d["log10_rigidity"] for d in data]).astype(float)[esc]
        s, w = _helix_exit(u0, r, UNIFORM_B_UGAUSS[2])
        sin_pitch = np.hypot(u0[:, 0], u0[:, 1])
        expected = np.degrees(2 * np.arcsin(np.clip(sin_pitch * np.abs(np.sin(w * s / 2)), 0, 1)))
        stats_b = read_part_stats(Path(paths[0]).parents[2] / "parts" / f"bin{b:03d}.npz")
        assert stats_b["deflection_mean_deg"] == pytest.approx(expected.mean(), rel=2e-4)
        assert stats_b["deflection_median_deg"] == pytest.approx(np.median(expected), rel=2e-3)
        assert 20 < expected.mean() < 90  # a real test: deflections of tens of degrees
        # the tracer's recorded path agrees with the helix too
        recorded = np.concatenate([d["path_length_kpc"] for d in data])[esc]
        # (to 1e-3: float32 storage of the rigidity and grazing exits amplify small differences)
        np.testing.assert_allclose(recorded, s, rtol=1e-3)


def test_rows_sum_to_one_then_max_column_sum_is_one(uniform):
    shards, folder = uniform
    lens = Lens.load(folder)
    maxima, norm = [], float(lens.header["global_max_column_sum"])
    for b in shards:
        raw = sp.load_npz(folder.parent / "parts" / f"bin{b:03d}.npz")
        rows = np.asarray(raw.sum(axis=1)).ravel()
        filled = rows > 0
        np.testing.assert_allclose(rows[filled], 1.0, rtol=1e-12)
        final = lens.matrix(lens.log10_rigidity_edges[b : b + 2].mean())
        np.testing.assert_allclose(final.toarray(), raw.toarray() / norm, rtol=1e-14)
        maxima.append(column_sums(final).max())
        assert lens.transparency(lens.log10_rigidity_edges[b]).max() <= 1 + 1e-12
    assert max(maxima) == pytest.approx(1.0, rel=1e-12)
    assert norm > 1  # uneven transparency in a uniform field


def test_matrix_orientation_follows_the_backtracking(uniform):
    # every escaped particle adds to M[pixel(observed), pixel(edge)] (DESIGN.md section 8)
    shards, folder = uniform
    lens = Lens.load(folder)
    data = read_shard(shards[1][0])[0]
    esc = data["escaped"]
    obs = hp.vec2pix(4, *data["observed_direction"][esc].astype(float).T)
    edge = hp.vec2pix(4, *data["edge_direction"][esc].astype(float).T)
    m = lens.matrix(19.3)
    assert np.all(np.asarray(m[obs, edge]).ravel() > 0)
    assert (obs != edge).mean() > 0.5  # tens of degrees: not the identity
    j = np.bincount(edge).argmax()
    column = lens.transform(np.eye(lens.npix)[j], 19.3)
    np.testing.assert_array_equal(column, m[:, j].toarray().ravel())


def test_diagnostics_table_and_plots(uniform, tmp_path):
    _, folder = uniform
    lines = (folder / "diagnostics.csv").read_text().splitlines()
    assert lines[0].split(",")[:4] == [
        "bin_index",
        "log10_rigidity_min",
        "log10_rigidity_max",
        "particles",
    ]
    rows = [dict(zip(lines[0].split(","), line.split(","), strict=True)) for line in lines[1:]]
    assert [int(r["particles"]) for r in rows] == [3072, 3072]
    # deflection falls with rigidity (about as 1/R)
    assert float(rows[0]["deflection_mean_deg"]) > float(rows[1]["deflection_mean_deg"])
    assert float(rows[0]["particles_per_row_min"]) >= 1 and int(rows[0]["empty_rows"]) == 0
    for row in rows:  # percentiles of the particles' deflections, in order
        keys = ["p05", "p16", "median", "p84", "p95"]
        values = [float(row[f"deflection_{k}_deg"]) for k in keys]
        assert values == sorted(values) and values[0] < values[-1], row
    for plot, name in (
        (plot_deflection, "d.png"),
        (plot_magnification, "t.png"),
        (plot_deflection_maps, "m.png"),
    ):
        out = plot(folder, tmp_path / name)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_fits_maps_open_with_healpy(uniform):
    """transparency.fits and deflection.fits: RING maps at the lens nside, one column per bin;
    the transparency is the lens's own column sums, the deflection the mean over the escaped
    particles observed in each pixel (NaN where none escaped)."""
    from astropy.io import fits

    shards, folder = uniform
    lens = Lens.load(folder)
    diagnostics = read_diagnostics(folder)
    for name in ("transparency.fits", "deflection.fits"):
        header = fits.getheader(folder / name, 1)
        assert header["NSIDE"] == lens.nside and header["ORDERING"] == "RING"
        assert header["COORDSYS"] == "G" and header["TFIELDS"] == lens.n_bins
    transparency = hp.read_map(folder / "transparency.fits", field=None, nest=False)
    deflection = hp.read_map(folder / "deflection.fits", field=None, nest=False)
    edges = lens.log10_rigidity_edges
    for b in range(lens.n_bins):
        centre = 0.5 * (edges[b] + edges[b + 1])
        np.testing.assert_allclose(transparency[b], lens.transparency(centre), rtol=1e-6)
        # the mean over the escaped particles observed in each pixel, straight from the shards
        data = [read_shard(p)[0] for p in shards[b]]
        observed = np.concatenate([d["observed_direction"][d["escaped"]] for d in data])
        edge = np.concatenate([d["edge_direction"][d["escaped"]] for d in data])
        angle = np.degrees(np.arccos(np.clip(np.sum(observed * edge, axis=1), -1, 1)))
        pix = hp.vec2pix(lens.nside, *observed.astype(np.float64).T, nest=False)
        n = np.bincount(pix, minlength=deflection.shape[1])
        expected = np.bincount(pix, weights=angle, minlength=n.size) / np.maximum(n, 1)
        assert np.array_equal(np.isnan(deflection[b]), n == 0)
        np.testing.assert_allclose(deflection[b][n > 0], expected[n > 0], rtol=1e-4, atol=1e-4)
        assert diagnostics["deflection_p16_deg"][b] < np.median(angle)


def test_same_shards_give_the_same_bytes(uniform, tmp_path):
    shards, folder = uniform
    again = _build_lens(shards, "uniform", 4, tmp_path)
    names = sorted(
        p.name for p in folder.iterdir() if p.suffix in {".npz", ".mldat", ".cfg", ".csv", ".json"}
    )
    assert "lens.cfg" in names and "bin001.mldat" in names
    for name in names:
        assert (again / name).read_bytes() == (folder / name).read_bytes(), name


# --- file formats, read with readers written from the format descriptions ---------------------


def test_npz_has_exactly_the_scipy_and_astrotools_keys(uniform):
    _, folder = uniform
    path = folder / "bin000.npz"
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == [
            "data.npy",
            "format.npy",
            "indices.npy",
            "indptr.npy",
            "shape.npy",
        ]
    with np.load(
        path
    ) as f:  # astrotools gamale.load_lens_part: csc_matrix((data, indices, indptr), shape)
        assert f["format"].item() == b"csc" and f["data"].dtype == np.float64
        assert f["indices"].dtype == np.int32 and f["indptr"].dtype == np.int32
        gamale = sp.csc_matrix((f["data"], f["indices"], f["indptr"]), shape=f["shape"])
    lens = Lens.load(folder)
    assert (gamale != lens.matrix(19.0)).nnz == 0
    assert (sp.load_npz(path) != gamale).nnz == 0


def test_mldat_follows_the_crpropa_layout_byte_for_byte(uniform):
    # CRPropa ModelMatrix.cpp deserialize: uint32 nnz, nrows, ncols, then (uint32 row,
    # uint32 col, float64 value) records; little-endian on the platforms CRPropa runs on
    _, folder = uniform
    raw = (folder / "bin001.mldat").read_bytes()
    nnz, nrows, ncols = struct.unpack_from("<III", raw, 0)
    assert (nrows, ncols) == (192, 192) and len(raw) == 12 + 16 * nnz
    triplets = list(struct.iter_unpack("<IId", raw[12:]))
    m = Lens.load(folder).matrix(19.3).tocoo()
    expected = sorted(zip(m.row.tolist(), m.col.tolist(), m.data.tolist(), strict=True))
    assert sorted(triplets) == expected
    assert (read_mldat(folder / "bin001.mldat") != m.tocsc()).nnz == 0


def test_lens_cfg_reads_in_astrotools_and_crpropa_ways(uniform):
    _, folder = uniform
    text = (folder / "lens.cfg").read_text()
    assert not text.endswith("\n") and "\n\n" not in text  # CRPropa parses every line without '#'
    lines = text.split("\n")
    assert lines[0] == "# nside : 4"
    # astrotools gamale.Lens.load: header lines containing 'nside'/'stat' give int(split()[2])
    header = [line for line in lines if line.startswith("#")]
    assert [int(h[1:].split()[2]) for h in header if "nside" in h or "stat" in h] == [4]
    # ... and numpy.genfromtxt with (fname, lR0, lR1, tol, MCS) columns
    table = np.atleast_1d(
        np.genfromtxt(
            folder / "lens.cfg",
            dtype=[
                ("fname", "S1000"),
                ("lR0", float),
                ("lR1", float),
                ("tol", float),
                ("MCS", float),
            ],
        )
    )
    np.testing.assert_allclose(table["lR0"], [19.0, 19.2])
    np.testing.assert_allclose(table["lR1"], [19.2, 19.4])
    assert table["MCS"].max() == pytest.approx(1.0)
    # CRPropa MagneticLens::loadLens: lines without '#' are "file log10Rmin log10Rmax ..."
    for cfg, suffix in (("lens.cfg", ".npz"), ("lens_crpropa.cfg", ".mldat")):
        body = [line.split() for line in (folder / cfg).read_text().split("\n") if "#" not in line]
        assert [t[0] for t in body] == [f"bin000{suffix}", f"bin001{suffix}"]
        assert all((folder / t[0]).is_file() and float(t[1]) < float(t[2]) for t in body)


# --- Lens: coverage, transform, sampling ------------------------------------------------------


def _toy_lens(folder: Path) -> Lens:
    """nside 1 lens with two bins; column 5 of bin 0 has sum 0.3, column 6 sum 1, column 0 none."""
    m0 = sp.lil_matrix((12, 12))
    m0[1, 5], m0[7, 5], m0[3, 6] = 0.1, 0.2, 1.0
    m1 = sp.lil_matrix((12, 12))
    m1[9, 5] = 0.5
    write_npz(m0, folder / "a.npz")
    write_npz(m1, folder / "b.npz")
    entries = [CfgEntry("a.npz", 18.0, 18.5, 1e-7, 1.0), CfgEntry("b.npz", 18.5, 19.0, 1e-7, 0.5)]
    write_cfg(folder / "lens.cfg", 1, {"particles_per_pixel": 1}, entries)
    return Lens.load(folder)


def test_sampling_respects_transparency_and_rows(tmp_path):
    lens = _toy_lens(tmp_path)
    n = 200_000
    out = lens.sample_observed(np.full(n, 5), np.full(n, 18.2), np.random.default_rng(1))
    observed = out >= 0
    # binomial: observed with probability 0.3, sigma = sqrt(0.3 * 0.7 / n) ≈ 0.001
    assert abs(observed.mean() - 0.3) < 5 * np.sqrt(0.21 / n)
    assert set(np.unique(out[observed]).tolist()) == {1, 7}
    assert abs((out[observed] == 7).mean() - 2 / 3) < 5 * np.sqrt(2 / 9 / observed.sum())
    assert np.all(
        lens.sample_observed(np.full(50, 6), np.full(50, 18.0), np.random.default_rng(2)) == 3
    )
    assert np.all(
        lens.sample_observed(np.zeros(50, int), np.full(50, 18.3), np.random.default_rng(2)) == -1
    )
    # mixed rigidities use each CR's own bin; results do not depend on the order of bins
    lr = np.where(np.arange(n) % 2 == 0, 18.2, 18.7)
    mixed = lens.sample_observed(np.full(n, 5), lr, np.random.default_rng(3))
    assert set(np.unique(mixed[1::2]).tolist()) == {-1, 9}
    assert abs((mixed[1::2] == 9).mean() - 0.5) < 5 * np.sqrt(0.25 / (n / 2))
    again = lens.sample_observed(np.full(n, 5), lr, np.random.default_rng(3))
    np.testing.assert_array_equal(mixed, again)


def test_sampling_follows_a_real_column(uniform):
    _, folder = uniform
    lens = Lens.load(folder)
    m = lens.matrix(19.1)
    sums = column_sums(m)
    partly = (sums > 0.1) & (sums < 0.9)  # a column that loses some CRs...
    j = int(np.argmax(np.where(partly, np.diff(m.indptr), -1)))  # ...with the most entries
    n = 100_000
    out = lens.sample_observed(np.full(n, j), np.full(n, 19.1), np.random.default_rng(4))
    p = m[:, j].toarray().ravel()
    counts = np.bincount(out[out >= 0], minlength=lens.npix)
    assert set(np.flatnonzero(counts)) <= set(np.flatnonzero(p))
    assert abs((out >= 0).mean() - p.sum()) < 5 * np.sqrt(p.sum() * (1 - p.sum()) / n)
    rows = p > 0
    chi2 = stats.chisquare(counts[rows], counts[rows].sum() * p[rows] / p.sum())
    assert chi2.pvalue > 1e-3


def test_coverage_is_strict(tmp_path):
    lens = _toy_lens(tmp_path)
    np.testing.assert_array_equal(lens.log10_rigidity_edges, [18.0, 18.5, 19.0])
    # bins are (lo, hi] as in CRPropa's MagneticLens; the first also holds its lower edge
    np.testing.assert_array_equal(
        lens.bin_index([18.0, 18.4999, 18.5, 18.5001, 19.0]), [0, 0, 0, 1, 1]
    )
    for bad in (17.999, 19.0001, float("nan")):
        with pytest.raises(ConfigError, match="outside the lens coverage"):
            lens.matrix(bad)
    with pytest.raises(ConfigError, match="outside the lens coverage"):
        lens.sample_observed(np.array([5, 5]), np.array([18.2, 19.5]), np.random.default_rng(0))
    with pytest.raises(ConfigError, match="extragalactic_pixel"):
        lens.sample_observed(np.array([12]), np.array([18.2]), np.random.default_rng(0))
    with pytest.raises(ConfigError, match="extragalactic_pixel"):
        lens.sample_observed(np.array([1.5]), np.array([18.2]), np.random.default_rng(0))
    with pytest.raises(ConfigError, match="extragalactic_map"):
        lens.transform(np.ones(48), 18.2)
    np.testing.assert_allclose(lens.transform(np.ones(12), 18.2)[[1, 3, 7]], [0.1, 1.0, 0.2])


# --- bad input ------------------------------------------------------------------------------


def test_missing_and_truncated_shards_name_the_file(uniform, tmp_path):
    shards, _ = uniform
    missing = tmp_path / "shard0001.h5"
    with pytest.raises(InputFileError, match=r"shard0001\.h5"):
        build_part([shards[0][0], missing], "uniform", 4, 0)
    truncated = tmp_path / "truncated.h5"
    raw = Path(shards[0][1]).read_bytes()
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputFileError, match=r"truncated\.h5"):
        build_part([shards[0][0], truncated], "uniform", 4, 0)
    with pytest.raises(InputFileError, match=r"shards \[1\] are missing"):
        build_part([shards[0][0]], "uniform", 4, 0)


def test_foreign_shards_are_rejected(uniform, zero):
    shards, _ = uniform
    with pytest.raises(
        InputFileError, match=r"shard0000.h5.*field model 'uniform', expected 'zero'"
    ):
        build_part(shards[0], "zero", 4, 0)
    with pytest.raises(InputFileError, match=r"nside 4, expected the lens nside 8"):
        build_part(shards[0], "uniform", 8, 0)
    with pytest.raises(InputFileError, match="belongs to rigidity bin 1, expected bin 0"):
        build_part([shards[0][0], shards[1][1]], "uniform", 4, 0)
    with pytest.raises(InputFileError, match="differ in 'bin_index'"):
        build_part([shards[0][0], shards[1][1]], "uniform", 4)


def test_bin_without_escaped_particles_is_an_error(tmp_path):
    trapped = Accuracy(max_path_length_kpc=1.0)  # nobody reaches r = 20 kpc within 1 kpc
    shards = _make_shards(tmp_path, "zero", {}, RigidityBins(19.0, 20.0, 1), 2, 96, 48, trapped)
    with pytest.raises(InputFileError, match=r"no escaped particles.*shard0000.h5"):
        build_part(shards[0], "zero", 2, 0)


def test_partial_lens_folders_never_look_complete(uniform, tmp_path, monkeypatch):
    _, folder = uniform
    with pytest.raises(InputFileError, match=r"lens\.cfg"):
        Lens.load(tmp_path)
    parts = [folder.parent / "parts" / f"bin{b:03d}.npz" for b in (0, 1)]
    lens_dir = tmp_path / "lens"
    finalize_lens(parts, lens_dir)
    assert Lens.load(lens_dir).n_bins == 2
    # a rebuild killed half-way leaves no lens.cfg behind, old or new
    import crsky.lens.build as build

    calls = []

    def failing_write(matrix, path, compress=False):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return write_npz(matrix, path, compress)

    monkeypatch.setattr(build, "write_npz", failing_write)
    with pytest.raises(OSError, match="disk full"):
        finalize_lens(parts, lens_dir)
    assert not (lens_dir / "lens.cfg").exists() and not (lens_dir / "lens_crpropa.cfg").exists()
    with pytest.raises(InputFileError, match=r"lens\.cfg"):
        Lens.load(lens_dir)
    monkeypatch.undo()
    # a part missing from a written folder, or a missing bin, is named
    finalize_lens(parts, lens_dir)
    (lens_dir / "bin001.npz").unlink()
    with pytest.raises(InputFileError, match=r"bin001\.npz"):
        Lens.load(lens_dir)
    with pytest.raises(InputFileError, match=r"missing bins \[1\]"):
        finalize_lens(parts[:1], tmp_path / "other")


def test_part_and_statistics_must_agree(uniform, tmp_path):
    _, folder = uniform
    parts = []
    for b in (0, 1):
        src = folder.parent / "parts" / f"bin{b:03d}"
        for suffix in (".npz", ".json"):
            shutil.copy(src.with_suffix(suffix), tmp_path / f"bin{b:03d}{suffix}")
        parts.append(tmp_path / f"bin{b:03d}.npz")
    shutil.copy(parts[0], parts[1])  # bin 1's matrix replaced by bin 0's
    with pytest.raises(InputFileError, match=r"bin001\.npz.*rebuild that bin"):
        finalize_lens(parts, tmp_path / "lens")


def test_cli_reports_bad_input_with_exit_status_2(uniform, tmp_path, capsys):
    shards, _ = uniform
    argv = [
        "lens",
        "part",
        "--shards",
        str(shards[0][0]),
        str(tmp_path / "gone.h5"),
        "--field",
        "uniform",
        "--nside",
        "4",
        "--bin",
        "0",
        "--output",
        str(tmp_path / "p.npz"),
    ]
    assert main(argv) == 2
    assert "gone.h5" in capsys.readouterr().err
    assert not (tmp_path / "p.npz").exists()
    argv[argv.index(str(tmp_path / "gone.h5"))] = str(shards[0][1])
    assert main(argv) == 0
    assert (tmp_path / "p.json").is_file()
    assert (
        main(["lens", "cfg", "--parts", str(tmp_path / "p.npz"), "--lens-dir", str(tmp_path / "l")])
        == 2
    )
    assert "missing bins [1]" in capsys.readouterr().err


def test_bad_lens_index_is_rejected(tmp_path):
    # a header line with "stat" or "nside" would be parsed as a number by astrotools' gamale
    with pytest.raises(ConfigError, match="gamale"):
        write_cfg(tmp_path / "lens.cfg", 1, {"field_options": '{"state": 1}'}, [])
    _toy_lens(tmp_path)
    cfg = tmp_path / "lens.cfg"
    text = cfg.read_text()
    cfg.write_text(text.replace("b.npz 18.5", "b.npz 18.6"))  # a gap between the bins
    with pytest.raises(InputFileError, match="adjacent"):
        Lens.load(tmp_path)
    cfg.write_text(text + "\nc.npz 19.0")
    with pytest.raises(InputFileError, match=r"line \d+: expected 'file log10Rmin log10Rmax"):
        Lens.load(tmp_path)
    cfg.write_text(text.replace("# nside : 1", "# nside : 3"))
    with pytest.raises(InputFileError, match="not a power of 2"):
        Lens.load(tmp_path)


@pytest.mark.parametrize(
    ("field", "options", "expected"),
    [
        ("uf23", {"variant": "expX"}, ("expX", "none", "none")),
        ("uf23", {}, ("base", "none", "none")),  # the model's default, filled in
        ("pt11", {"disk": "bss"}, ("bss", "none", "none")),
        (
            "jf12",
            {"turbulence": {"seed": 5, "n_modes": 16}, "striated": {"seed": 3}},
            ("none", "5", "3"),
        ),
        ("jf12", {"turbulence": {"n_modes": 16}}, ("none", "1", "none")),
    ],
)
def test_lens_cfg_records_field_variant_and_random_seeds(tmp_path, field, options, expected):
    bins = RigidityBins(20.0, 20.5, 1)
    shards = _make_shards(tmp_path / "shards", field, options, bins, 1, 12, 12)
    lens = Lens.load(_build_lens(shards, field, 1, tmp_path))
    header = lens.header
    assert header["field_model"] == field
    assert json.loads(header["field_options"]) == options
    assert (
        header["field_variant"],
        header["turbulence_seed"],
        header["striation_seed"],
    ) == expected
