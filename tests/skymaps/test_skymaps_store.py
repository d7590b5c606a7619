"""Chunk files: exact round trip through crsky.store, rendering, determinism, atomic writes."""

import json
import os
import re

import h5py
import healpy as hp
import numpy as np
import pytest
from skymaps_lenses import write_identity_lens_folder

from crsky.cli import main
from crsky.errors import ConfigError, InputFileError
from crsky.rng import job_rng
from crsky.sky import simulate
from crsky.sky.dataset import DatasetConfig, dataset_stream_id
from crsky.sky.simulate import SkySimulator, run_chunk
from crsky.store import (
    FORMAT_VERSION,
    LOG10_ENERGY_ORIGIN,
    LOG10_ENERGY_STEP,
    STORED_CR_COLUMNS,
    decode_energies,
    decode_pixels,
    encode_pixels,
    iter_batches,
    join_low_byte,
    open_chunk,
    pixel_lookup,
    render_counts,
    split_low_byte,
    write_chunk,
)

SMALL = {"n_maps": 300, "chunk_size": 200, "n_cr": 400, "nside": 16}


@pytest.fixture(scope="module")
def chunk_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("skymaps") / "train" / "chunk0001.h5"
    run_chunk(DatasetConfig.from_dict("train", SMALL), 1, 42, path)
    return path


def test_reader_returns_exactly_what_was_simulated(chunk_file):
    dataset = DatasetConfig.from_dict("train", SMALL)
    rng = job_rng(42, "skymaps", dataset_stream_id("train"), 1)
    expected = SkySimulator(dataset).simulate(100, rng)  # chunk 1 holds maps 200 ... 299
    with open_chunk(chunk_file) as chunk:
        assert (chunk.n_maps, chunk.n_cr, chunk.nside, chunk.dataset) == (100, 400, 16, "train")
        assert chunk.attrs["first_map"] == 200 and chunk.attrs["seed"] == 42
        assert chunk.config == dataset.config
        crs = chunk.cosmic_rays()
        labels = chunk.labels()
    assert crs.pixel.dtype == np.uint16 and crs.log10_energy.dtype == np.float32
    np.testing.assert_array_equal(crs.pixel, expected.pixel)
    np.testing.assert_array_equal(crs.log10_energy, expected.log10_energy)
    np.testing.assert_array_equal(crs.charge, expected.charge)
    np.testing.assert_array_equal(crs.is_signal, expected.is_signal)
    np.testing.assert_array_equal(labels["n_signal"], expected.n_signal)
    np.testing.assert_array_equal(
        labels["signal_fraction"], expected.signal_fraction.astype(np.float32)
    )
    np.testing.assert_array_equal(
        labels["source_direction"], expected.source_direction.astype(np.float32)
    )
    assert "deflection_axis" in labels


def test_counts_maps(chunk_file):
    with open_chunk(chunk_file) as chunk:
        ring = chunk.counts(0, 10)
        nest = chunk.counts(0, 10, nest=True)
        coarse = chunk.counts(0, 10, nside=4, nest=True)
        pixel = chunk.cosmic_rays(0, 10).pixel
    assert ring.dtype == np.float32 and ring.shape == (10, hp.nside2npix(16))
    np.testing.assert_array_equal(ring.sum(axis=1), 400)
    np.testing.assert_array_equal(ring[3], np.bincount(pixel[3], minlength=3072))
    np.testing.assert_array_equal(nest, ring[:, hp.nest2ring(16, np.arange(3072))])
    # a coarse NESTED pixel holds exactly its 16 children at nside 16
    np.testing.assert_array_equal(coarse, nest.reshape(10, 192, 16).sum(axis=2))
    np.testing.assert_array_equal(
        render_counts(pixel, 16, 4), coarse[:, hp.ring2nest(4, np.arange(192))]
    )


def test_render_counts_with_weights_and_errors():
    pixel = np.array([[0, 0, 5], [1, 2, 2]])
    counts = render_counts(pixel, 1, weights=np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    np.testing.assert_array_equal(counts[0, [0, 5]], [3.0, 3.0])
    np.testing.assert_array_equal(counts[1, [1, 2]], [4.0, 11.0])
    with pytest.raises(ConfigError, match="only equal or lower nside"):
        render_counts(pixel, 1, nside=2)
    assert pixel_lookup(2, 1, True).tolist() == (hp.ring2nest(2, np.arange(48)) // 4).tolist()


def test_iter_batches_covers_all_maps(chunk_file):
    batches = list(iter_batches([chunk_file, chunk_file], batch_size=32, nside=8, nest=True))
    assert [b.first_map for b in batches] == [0, 32, 64, 96] * 2
    counts = np.concatenate([b.counts for b in batches[:4]])
    assert counts.shape == (100, 768)
    with open_chunk(chunk_file) as chunk:
        np.testing.assert_array_equal(counts, chunk.counts(nside=8, nest=True))
        np.testing.assert_array_equal(
            np.concatenate([b.labels["n_signal"] for b in batches[:4]]), chunk.labels()["n_signal"]
        )


def test_same_seed_same_bytes_and_chunks_differ(tmp_path, chunk_file):
    again = tmp_path / "again.h5"
    run_chunk(DatasetConfig.from_dict("train", SMALL), 1, 42, again)
    assert again.read_bytes() == chunk_file.read_bytes()
    other = tmp_path / "other.h5"
    run_chunk(DatasetConfig.from_dict("train", SMALL), 0, 42, other)
    with open_chunk(other) as a, open_chunk(chunk_file) as b:
        assert not np.array_equal(a.cosmic_rays(0, 10).pixel, b.cosmic_rays(0, 10).pixel)


def test_size_per_map_at_the_seed_scale(tmp_path):
    # issue 5 target: ≤ 3 kB per map for 1,000 CRs at nside 64 (defaults: seed 002's set-up)
    path = tmp_path / "big.h5"
    run_chunk(DatasetConfig.from_dict("train", {"n_maps": 1000}), 0, 1, path)
    assert os.path.getsize(path) / 1000 < 3000
    with h5py.File(path) as f:
        assert f.attrs["format_version"] == FORMAT_VERSION == 3
        raw = ("pixel_step_low", "energy_code_low")  # near-random bytes: not compressed
        assert all(f[name].compression == (None if name in raw else "lzf") for name in f)
        assert not any(f[name].fletcher32 for name in STORED_CR_COLUMNS)  # block CRC-32s instead
        assert all(f[name].fletcher32 for name in f if name not in STORED_CR_COLUMNS)
        assert all(f[name].dtype == np.uint8 for name in STORED_CR_COLUMNS if name != "is_signal")
        assert f["crc32"].shape == (8, 6)  # blocks of 128 maps


def test_a_changed_byte_fails_the_read_of_its_block_only(tmp_path):
    """Corruption the decompressor cannot notice (a changed value, same length) is caught by the
    block's CRC-32: reads touching that block fail with one error naming the file, others work."""
    good, bad = tmp_path / "good.h5", tmp_path / "bad.h5"
    run_chunk(DatasetConfig.from_dict("train", SMALL), 0, 42, good)  # 200 maps: 2 blocks
    bad.write_bytes(good.read_bytes())
    with h5py.File(bad, "r+") as f:
        f["charge"][150, 3] = f["charge"][150, 3] + 1
    with open_chunk(good) as chunk:
        expected = chunk.read("charge")
    with open_chunk(bad) as chunk:
        mismatch = r"bad\.h5': cannot read 'charge' \(CRC-32 mismatch in maps 128 \.\.\. 199\)"
        with pytest.raises(InputFileError, match=mismatch):
            chunk.read("charge", slice(120, 130))
        np.testing.assert_array_equal(chunk.read("charge", slice(3, 128)), expected[3:128])
        with pytest.raises(ConfigError, match="step 1"):
            chunk.read("charge", slice(0, 10, 2))


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32])
def test_pixel_and_energy_codes_round_trip_exactly(dtype, rng):
    npix = 12 * 256**2 if dtype == np.uint32 else 12 * 64**2
    pixel = np.sort(rng.integers(0, npix, (5, 1000)), axis=1).astype(dtype)
    step = encode_pixels(pixel, dtype)
    assert step.dtype == dtype and np.array_equal(decode_pixels(step), pixel)
    low, high = split_low_byte(step)
    assert low.dtype == np.uint8 and high.dtype == (np.uint8 if dtype == np.uint16 else dtype)
    joined = join_low_byte(low, high)
    assert joined.dtype == dtype and np.array_equal(joined, step)
    code = rng.integers(0, 65536, (5, 1000)).astype(np.uint16)
    energy = decode_energies(code)  # float32, exact: origin + k · 2^-9 needs < 24 bits
    back = (energy.astype(np.float64) - LOG10_ENERGY_ORIGIN) / LOG10_ENERGY_STEP
    assert energy.dtype == np.float32 and np.array_equal(back, code)
    with pytest.raises(ConfigError, match="ascend"):
        encode_pixels(pixel[:, ::-1], dtype)


def test_writer_takes_energy_codes_only(tmp_path):
    columns = {
        "pixel": np.zeros((4, 3), np.uint16),
        "energy_code": np.zeros((4, 3), np.int64),  # not uint16: could wrap silently
        "charge": np.ones((4, 3), np.uint8),
        "is_signal": np.zeros((4, 3), bool),
        "signal_fraction": np.zeros(4, np.float32),
        "n_signal": np.zeros(4, np.uint16),
        "source_direction": np.zeros((4, 1, 3), np.float32),
        "source_flux": np.ones((4, 1), np.float32),
    }
    with pytest.raises(ConfigError, match="'energy_code' must be uint16"):
        with write_chunk(tmp_path / "c.h5", 4, 3, 1, 64, deflection_axis=False) as writer:
            assert set(writer.columns) == set(columns)
            writer.write(0, columns)
    assert list(tmp_path.iterdir()) == []


def test_killed_job_leaves_no_chunk(tmp_path, monkeypatch):
    def boom(self, n_maps, rng):
        raise RuntimeError("killed")

    monkeypatch.setattr(simulate.SkySimulator, "simulate", boom)
    target = tmp_path / "chunk0000.h5"
    with pytest.raises(RuntimeError):
        run_chunk(DatasetConfig.from_dict("train", SMALL), 0, 1, target)
    assert list(tmp_path.iterdir()) == []


def test_reader_errors(tmp_path, chunk_file):
    with pytest.raises(InputFileError, match="cannot open"):
        open_chunk(tmp_path / "missing.h5")
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["pixel"] = np.zeros((2, 3), np.uint16)
    with pytest.raises(InputFileError, match="not a crsky-skymaps file"):
        open_chunk(bad)
    with h5py.File(bad, "a") as f:  # a chunk of format 1 (gzip, plain columns)
        f.attrs["format"], f.attrs["format_version"] = "crsky-skymaps", 1
    with pytest.raises(InputFileError, match="format_version 1, this reader reads 3: delete it"):
        open_chunk(bad)
    with open_chunk(chunk_file) as chunk, pytest.raises(ConfigError, match="outside chunk"):
        chunk.labels(50, 150)


def _cli(tmp_path, *extra, datasets=None):
    datasets = {"train": SMALL} if datasets is None else datasets
    args = ["-q", "skymaps", "--output", str(tmp_path / "c.h5"), "--seed", "1"]
    return main([*args, "--datasets", json.dumps(datasets), *extra])


def test_cli_writes_a_chunk(tmp_path):
    assert _cli(tmp_path, "--dataset", "train", "--chunk", "1") == 0
    with open_chunk(tmp_path / "c.h5") as chunk:
        assert chunk.n_maps == 100


@pytest.mark.parametrize(
    ("extra", "datasets", "message"),
    [
        (["--dataset", "tests", "--chunk", "0"], None, "unknown skymaps dataset 'tests'"),
        (["--dataset", "train", "--chunk", "2"], None, "chunk index 2"),
        (
            ["--dataset", "train", "--chunk", "0"],
            {"train": {"signal_fraction": {"value": -0.1}}},
            r"\[0, 1\]",
        ),
        (
            ["--dataset", "train", "--chunk", "0"],
            {"train": {"deflection": {"mode": "lens"}}},
            "pass '--lens'",
        ),
        (
            ["--dataset", "train", "--chunk", "0", "--lens", "/nonexistent/lens"],
            {"train": {"deflection": {"mode": "lens"}}},
            "lens.cfg",
        ),
    ],
)
def test_cli_bad_input(tmp_path, capsys, extra, datasets, message):
    assert _cli(tmp_path, *extra, datasets=datasets) == 2
    err = capsys.readouterr().err
    assert "crsky skymaps: error:" in err
    assert re.search(message, err)
    assert not (tmp_path / "c.h5").exists()


def test_cli_lens_mode_with_a_real_identity_lens_folder(tmp_path):
    # crsky.lens.Lens on an identity lens: every signal CR lands in its source's pixel
    lens_dir = write_identity_lens_folder(tmp_path / "lens", 16, [18.5, 19.0, 19.5, 20.0, 20.5])
    datasets = {
        "lensed": SMALL | {"deflection": {"mode": "lens"}, "signal_fraction": {"value": 0.1}}
    }
    code = _cli(
        tmp_path, "--dataset", "lensed", "--chunk", "0", "--lens", str(lens_dir), datasets=datasets
    )
    assert code == 0
    with open_chunk(tmp_path / "c.h5") as chunk:
        crs, labels = chunk.cosmic_rays(), chunk.labels()
        assert chunk.attrs["lens_folder"] == str(lens_dir)
        assert "identity (test)" in chunk.attrs["lens_cfg"]
    source_pix = hp.vec2pix(16, *labels["source_direction"][:, 0].astype(np.float64).T)
    rows, _ = np.nonzero(crs.is_signal)
    np.testing.assert_array_equal(crs.pixel[crs.is_signal], source_pix[rows])
    np.testing.assert_array_equal(crs.is_signal.sum(axis=1), 40)


def test_cli_lens_coverage_error(tmp_path, capsys):
    lens_dir = write_identity_lens_folder(tmp_path / "lens", 16, [19.0, 20.5])
    datasets = {"lensed": SMALL | {"deflection": {"mode": "lens"}}}
    assert (
        _cli(
            tmp_path,
            "--dataset",
            "lensed",
            "--chunk",
            "0",
            "--lens",
            str(lens_dir),
            datasets=datasets,
        )
        == 2
    )
    assert "below the lens coverage" in capsys.readouterr().err
