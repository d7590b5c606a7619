"""Cost of the likelihood analyses per map, and how fine the toy profile grid must be (not a
test; prints one JSON object in the layout of benchmarks/record.py: ms per map under
``throughput.ms_per_map``, the grid study and the target under ``details``).

Issue 11 target: ``likelihood_profiled`` in lens mode <= 20 ms per map of 1,000 CRs at nside 64
on one core. Maps follow seed 002's set-up (1,000 CRs above 40 EeV, Auger exposure, 15 % H /
45 % He / 40 % CNO, one random source, 5.5 % signal) at nside 64; isotropic maps have f = 0.
The lens is benchmarks/skymaps.py's synthetic nside-64 lens (real format, read with
crsky.lens.Lens): ``--lens-bins`` parts over log10(R/V) 18.75 ... 20.5, ``--per-column``
particles per extragalactic pixel turned by 2.79 rad EV/R and blurred by 1.4 rad EV/R, so a
row (observed pixel) holds up to ~100 entries at the lowest rigidities: the cost of a map is
proportional to the entries of its CRs' rows, reported as ``sizes.row_entries_per_cr``.

Grid study (``--grid-maps``): Λ_max of planted toy maps (f = 0.03, i.e. 30 signal CRs, and
all-He) profiled on grids of increasing resolution, as the mean loss against the finest grid
(nside 128, 128 axes); the default grid is the coarsest whose loss is well below the
statistical spread of Λ_max.

Everything runs on one core (affinity and numba threads 1).

    python benchmarks/likelihood.py [--maps 200] [--lens-bins 7] [--grid-maps 20]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import record

from crsky.lens import Lens
from crsky.likelihood import ProfileGrid, draw_sources, oracle_log_lr, signal_model
from crsky.likelihood.model import ToyModel
from crsky.sky.dataset import DatasetConfig
from crsky.sky.simulate import SkySimulator

NSIDE, N_CR = 64, 1000
TARGET_MS = {"profiled_lens": 20.0}


def dataset(mode: str, fraction: float, **extra) -> DatasetConfig:
    """Seed 002's set-up (the defaults) at nside 64 in deflection ``mode``."""
    spec = {"deflection": {"mode": mode}, "signal_fraction": {"value": fraction}}
    return DatasetConfig.from_dict(mode, {**spec, **extra})


def ms_per_map(function, n_maps: int) -> float:
    start = time.perf_counter()
    function()
    return 1e3 * (time.perf_counter() - start) / n_maps


def time_model(model, signal, lens, n_maps: int, rng) -> dict:
    """ms per map: the profile of signal and isotropic maps, the oracle of signal maps (stored
    sources) and of isotropic maps at one fraction (sources drawn as for the signal)."""
    signal_sim = SkySimulator(signal, lens)
    maps = signal_sim.simulate(n_maps, rng)
    iso_set = DatasetConfig.from_dict("iso", {**signal.config, "signal_fraction": {"value": 0.0}})
    iso = SkySimulator(iso_set, lens).simulate(n_maps, rng)
    model.profile(maps.pixel[:2], maps.log10_energy[:2])  # compile, build tables
    out = {
        "profiled_signal": ms_per_map(lambda: model.profile(maps.pixel, maps.log10_energy), n_maps),
        "profiled_isotropic": ms_per_map(
            lambda: model.profile(iso.pixel, iso.log10_energy), n_maps
        ),
    }

    def oracle_signal():
        r = model.ratios(maps.pixel, maps.log10_energy, maps.source_direction, maps.deflection_axis)
        oracle_log_lr(r, maps.n_signal, maps.signal_fraction, "round")

    def oracle_isotropic():
        n = np.full(n_maps, round(0.055 * N_CR))
        sources, axes = draw_sources(signal_sim, n, rng)
        r = model.ratios(iso.pixel, iso.log10_energy, sources, axes)
        oracle_log_lr(r, n, 0.055, "round")

    oracle_signal()
    out["oracle_signal"] = ms_per_map(oracle_signal, n_maps)
    out["oracle_isotropic_per_fraction"] = ms_per_map(oracle_isotropic, n_maps)
    return {k: round(v, 2) for k, v in out.items()}


def row_entries_per_cr(model, maps) -> float:
    """Mean number of ratio-matrix entries a CR's rows hold, summed over its charges."""
    bins = model._bins(maps.log10_energy.astype(np.float64))
    indptr = model.matrices.indptr
    pixel = maps.pixel.astype(np.int64)
    total = 0
    for k in range(bins.shape[2]):
        b = bins[:, :, k]
        ok = b >= 0
        total += int(np.sum(indptr[b[ok], pixel[ok] + 1] - indptr[b[ok], pixel[ok]]))
    return total / pixel.size


def grid_study(n_maps: int, rng) -> list[dict]:
    """Mean Λ_max loss of coarser grids against (128, 128), planted maps with 30 signal CRs, and
    the cost of each grid (ms per map)."""
    signal = dataset("toy", 0.03, composition={"He": 1.0})
    maps = SkySimulator(signal).simulate(n_maps, rng)
    finest = ToyModel(signal, NSIDE, ProfileGrid(128, 128, 5, 16))
    reference = finest.profile(maps.pixel, maps.log10_energy).log_lr
    out = []
    for nside, axes, levels in ((32, 32, 3), (64, 32, 3), (64, 64, 4), (128, 64, 4)):
        model = ToyModel(signal, NSIDE, ProfileGrid(nside, axes, levels, 16))
        model.profile(maps.pixel[:1], maps.log10_energy[:1])  # build tables
        start = time.perf_counter()
        log_lr = model.profile(maps.pixel, maps.log10_energy).log_lr
        ms = 1e3 * (time.perf_counter() - start) / n_maps
        loss = reference - log_lr
        out.append(
            {
                "grid": [nside, axes, levels, 16],
                "spacing_deg": round(float(np.degrees(model.grid.spacing_rad)), 2),
                "ms_per_map": round(ms, 2),
                "mean_loss": round(float(loss.mean()), 3),
                "max_loss": round(float(loss.max()), 3),
            }
        )
    out.append({"reference_spread_of_log_lr": round(float(reference.std(ddof=1)), 2)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=200, help="maps per timing")
    parser.add_argument("--lens-bins", type=int, default=7)
    parser.add_argument("--per-column", type=int, default=100)
    parser.add_argument(
        "--grid-maps", type=int, default=20, help="maps of the grid study (0: skip)"
    )
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    numba.set_num_threads(1)
    begin = time.perf_counter()
    rng = np.random.default_rng(11)
    from skymaps import synthetic_lens  # benchmarks/skymaps.py, the same synthetic lens

    timings, sizes, wall_s = {}, {}, {}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        lens_dir = synthetic_lens(Path(tmp) / "lens", args.lens_bins, args.per_column, rng)
        lens = Lens.load(lens_dir)
        signal = dataset("lens", 0.055)
        start = time.perf_counter()
        model = signal_model(signal, lens=lens)
        wall_s["lens_model_build"] = round(time.perf_counter() - start, 1)
        sizes["ratio_entries"] = int(model.matrices.data.size)
        timings["lens"] = time_model(model, signal, lens, args.maps, rng)
        sample = SkySimulator(signal, lens).simulate(50, rng)
        sizes["row_entries_per_cr"] = round(row_entries_per_cr(model, sample), 1)
    for name, extra in (("toy_mixed", {}), ("toy_he", {"composition": {"He": 1.0}})):
        signal = dataset("toy", 0.055, **extra)
        timings[name] = time_model(signal_model(signal), signal, None, args.maps, rng)
    signal = dataset("none", 0.055)
    timings["none"] = time_model(signal_model(signal), signal, None, args.maps, rng)
    grid = grid_study(args.grid_maps, rng) if args.grid_maps else []
    record.emit(
        record.record(
            "likelihood",
            sizes={
                "n_cr": N_CR,
                "nside": NSIDE,
                "maps_per_timing": args.maps,
                "lens_bins": args.lens_bins,
                "per_column": args.per_column,
                "default_grid": list(ProfileGrid().__dict__.values()),
                "grid_maps": args.grid_maps,
                **sizes,
            },
            wall_s={**wall_s, "total": round(time.perf_counter() - begin, 1)},
            throughput={"ms_per_map": timings},
            details={"grid_study": grid, "targets_ms": TARGET_MS},
            modules=("numba",),
            cpus_used=1,
        )
    )


if __name__ == "__main__":
    main()
