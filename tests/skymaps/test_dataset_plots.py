"""Figures and the mean counts map of a dataset (crsky.sky.plots), from real tiny chunks."""

import healpy as hp
import numpy as np
import pytest

from crsky.cli import main
from crsky.errors import InputFileError
from crsky.sky.dataset import DatasetConfig
from crsky.sky.plots import exposure_boundaries, summarize_dataset
from crsky.store import open_chunk


def test_summary_counts_every_cr_and_the_fits_map_is_the_mean(tiny_inputs, tmp_path):
    chunks = tiny_inputs["chunks"]["test"]
    summary = summarize_dataset(chunks)
    pixels = []
    for path in chunks:
        with open_chunk(path) as chunk:
            crs = chunk.cosmic_rays()
            pixels.append(crs.pixel.ravel())
            nside = chunk.nside
    pixels = np.concatenate(pixels)
    assert summary.n_maps == 20
    assert summary.energy_all.sum() == summary.charges.sum() == pixels.size
    out = {name: tmp_path / name for name in ("s.png", "c.png", "e.png", "mean.fits")}
    args = ["dataset-plots", "--chunks", *map(str, chunks)]
    options = ("--spectrum-png", "--charges-png", "--exposure-png", "--mean-counts-fits")
    for option, name in zip(options, out, strict=True):
        args += [option, str(out[name])]
    assert main(args) == 0
    for name in ("s.png", "c.png", "e.png"):
        assert out[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mean, header = hp.read_map(out["mean.fits"], nest=False, h=True)
    header = dict(header)
    assert header["NSIDE"] == nside and header["ORDERING"] == "RING"
    expected = np.bincount(pixels, minlength=hp.nside2npix(nside)) / 20
    np.testing.assert_allclose(mean, expected, rtol=1e-6)


def test_exposure_boundary_is_at_the_declination_limit():
    spec = {"n_maps": 1, "chunk_size": 1, "exposure": {"latitude_deg": -35.2, "theta_max_deg": 80}}
    dataset = DatasetConfig.from_dict("auger", spec)
    (line,) = exposure_boundaries(dataset)  # δ = -35.2 + 80 = 44.8°; -115.2° is beyond the pole
    from crsky.sky.coordinates import equatorial_to_galactic_matrix

    equatorial = line @ equatorial_to_galactic_matrix()  # back to equatorial
    np.testing.assert_allclose(np.degrees(np.arcsin(equatorial[:, 2])), 44.8, atol=1e-9)


def test_chunks_of_two_datasets_are_one_line(tiny_inputs):
    mixed = [tiny_inputs["chunks"]["test"][0], tiny_inputs["chunks"]["isotropy"][0]]
    with pytest.raises(InputFileError, match="belongs to another dataset config"):
        summarize_dataset(mixed)
