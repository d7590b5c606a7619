"""Skymap simulation and chunk jobs against astrotools 1.5 in the same run (not a test; prints one
JSON object in the layout of benchmarks/record.py).

Seed 002's set-up (1,000 CRs >= 40 EeV per map, nside 64, one source, 5.5 % signal, Auger
exposure) in three modes, crsky against the matching astrotools ``ObservedBound`` chain
(anchors/astrotools_anchor.py, run in its side environment, anchors/install-astrotools.sh):
isotropic against isotropic, ``toy`` (coherent rotation + Fisher blur) against ``smearing``
(Fisher blur only), ``lens`` against ``lensing_map`` with the same lens folder. Reported per mode:

- maps/s of the simulation in memory (``SkySimulator.simulate``, batches of ``BATCH_MAPS``);
- maps/s of a whole chunk job (``run_chunk``: simulation + the HDF5 chunk written atomically),
  its size on disk per map and its peak memory, in a fresh child process (VmHWM of one job);
- ratios to astrotools' sets/s (simulation in memory only: astrotools writes nothing).

Issue 5 targets: >= 10,000 sets/s per core with a lens, a 20,000-map chunk in <= 10 s, <= 3 kB
per map, <= 2 GB peak memory; issue 14: a chunk job >= 5x astrotools per core.

The lens is synthetic but real in format and size: an nside-64 lens folder (lens.cfg + .npz parts,
crsky.lens.formats, which astrotools' gamale reads too) with ``--lens-bins`` parts covering
log10(R/V) 18.75 ... 20.5 (all rigidities of CRs >= 40 EeV up to Z = 7), ~100 entries per column:
each extragalactic pixel's 100 particles are turned by θ = 2.79 rad EV/R about the Galactic z
axis and Fisher-blurred with σ = 1.4 rad EV/R, rows normalised to 1 and all parts divided by the
largest column sum (as a real lens). Everything runs on one core (affinity 0, one BLAS thread).

    python benchmarks/skymaps.py [--maps 10240] [--chunk-maps 20000] [--lens-bins 7]
        [--astrotools-sets 4096] [--astrotools-python PATH]

Run it on an otherwise idle machine.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import healpy as hp
import numpy as np
import record
import scipy.sparse as sp

from crsky.lens import Lens
from crsky.lens.formats import CfgEntry, write_cfg, write_npz
from crsky.sky.dataset import DatasetConfig
from crsky.sky.deflection import fisher_sample, rotate_about_axis
from crsky.sky.simulate import BATCH_MAPS, SkySimulator, run_chunk

NSIDE, N_CR = 64, 1000
TARGETS = {
    "simulation_maps_per_s_lens": 10_000,
    "chunk_s": 10.0,
    "bytes_per_map": 3000,
    "peak_mb": 2000,
    "chunk_job_over_astrotools": 5.0,
}


def synthetic_lens(folder: Path, n_bins: int, per_column: int, rng) -> Path:
    """An nside-64 lens folder with ``n_bins`` parts of ~per_column entries per column,
    normalised as a real lens (rows to 1, then all parts divided by the largest column sum)."""
    npix = hp.nside2npix(NSIDE)
    edges = np.linspace(18.75, 20.5, n_bins + 1)
    centre = np.stack(hp.pix2vec(NSIDE, np.arange(npix)), axis=1)
    column = np.repeat(np.arange(npix), per_column)
    start = np.repeat(centre, per_column, axis=0)
    matrices = []
    for b in range(n_bins):
        rigidity_ev = 10.0 ** (0.5 * (edges[b] + edges[b + 1]) - 18.0)
        turned = rotate_about_axis(
            start,
            np.tile([0.0, 0.0, 1.0], (start.shape[0], 1)),
            np.full(len(start), 2.79 / rigidity_ev),
        )
        observed = fisher_sample(turned, np.full(len(start), 1.4 / rigidity_ev), rng)
        row = hp.vec2pix(NSIDE, observed[:, 0], observed[:, 1], observed[:, 2])
        counts = sp.csc_matrix((np.ones(row.size), (row, column)), shape=(npix, npix))
        row_sums = np.asarray(counts.sum(axis=1)).ravel()
        matrices.append(sp.diags(1.0 / np.maximum(row_sums, 1.0)) @ counts)
    norm = max(float(m.sum(axis=0).max()) for m in matrices)
    entries = []
    for b, matrix in enumerate(matrices):
        name = f"bin{b:03d}.npz"
        write_npz(sp.csc_matrix(matrix / norm), folder / name)
        mcs = float(matrix.sum(axis=0).max()) / norm
        entries.append(CfgEntry(name, float(edges[b]), float(edges[b + 1]), 1e-7, mcs))
    write_cfg(folder / "lens.cfg", NSIDE, {"field": "synthetic benchmark lens"}, entries)
    return folder


MODES = {"isotropic": "isotropic", "toy": "smearing", "lens": "lens"}  # crsky -> astrotools


def dataset(mode: str, n_maps: int) -> DatasetConfig:
    """Seed 002's set-up (the defaults): 1,000 CRs >= 40 EeV, one source, 5.5 % signal; the
    isotropic mode has no signal."""
    if mode == "isotropic":
        options = {"signal_fraction": {"value": 0.0}}
    else:
        options = {"deflection": {"mode": mode}}
    return DatasetConfig.from_dict(mode, {"n_maps": n_maps, "chunk_size": n_maps, **options})


def sets_per_second(simulator: SkySimulator, n_maps: int, rng) -> float:
    simulator.simulate(64, rng)  # compile / load the lens parts
    start = time.perf_counter()
    for done in range(0, n_maps, BATCH_MAPS):
        simulator.simulate(min(BATCH_MAPS, n_maps - done), rng)
    return n_maps / (time.perf_counter() - start)


def child_chunk(mode: str, n_maps: int, output: str, lens_dir: str | None) -> None:
    """Runs in a fresh process: write one chunk, report wall time, size and peak memory."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    lens = Lens.load(lens_dir) if lens_dir else None
    run_chunk(dataset(mode, 64), 0, 1, output + ".warm", lens=lens, lens_folder=lens_dir)
    start = time.perf_counter()
    run_chunk(dataset(mode, n_maps), 0, 1, output, lens=lens, lens_folder=lens_dir)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "chunk_s": round(seconds, 2),
                "bytes_per_map": round(os.path.getsize(output) / n_maps),
                "peak_mb": round(record.peak_mb()),
            }
        )
    )


def run_child(mode: str, n_maps: int, output: Path, lens_dir: Path | None) -> dict:
    command = [sys.executable, __file__, "--child-chunk", mode, n_maps, output]
    return record.run_child(command + ([lens_dir] if lens_dir is not None else []))


def ratios(sim: dict, chunk: dict, anchor: dict, crsky_settings: dict) -> list[dict]:
    """crsky's simulation and chunk job against astrotools' simulation, mode by mode."""
    out = []
    if "unavailable" in anchor:
        return out
    for mode, theirs in MODES.items():
        name = f"astrotools {anchor['versions']['astrotools']} ObservedBound ({theirs})"
        rate = anchor["sets_per_s"][theirs]
        for what, ours in ((f"simulation in memory, {mode}", sim[mode]),
                           (f"chunk job (simulation + write), {mode}", chunk[mode])):  # fmt: skip
            out.append(
                record.ratio(
                    f"{what}: maps/s",
                    round(ours, 1),
                    name,
                    rate,
                    record.MEASURED,
                    {**crsky_settings, "mode": mode},
                    {**anchor["settings"], "mode": theirs},
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=10 * BATCH_MAPS, help="maps per rate")
    parser.add_argument("--chunk-maps", type=int, default=20_000)
    parser.add_argument("--lens-bins", type=int, default=7)
    parser.add_argument("--per-column", type=int, default=100)
    parser.add_argument("--astrotools-sets", type=int, default=4096)
    parser.add_argument("--astrotools-python", default=None)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--child-chunk", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_chunk:
        mode, n_maps, output, *lens_dir = args.child_chunk
        child_chunk(mode, int(n_maps), output, lens_dir[0] if lens_dir else None)
        return
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rng = np.random.default_rng(5)
    begin = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        lens_dir = synthetic_lens(tmp / "lens", args.lens_bins, args.per_column, rng)
        lens_build_s = time.perf_counter() - start
        lens = Lens.load(lens_dir)
        sim = {
            mode: sets_per_second(
                SkySimulator(dataset(mode, 1), lens if mode == "lens" else None), args.maps, rng
            )
            for mode in MODES
        }
        chunks = {
            mode: run_child(
                mode, args.chunk_maps, tmp / f"{mode}.h5", lens_dir if mode == "lens" else None
            )
            for mode in MODES
        }
        anchor = record.run_anchor(
            args.astrotools_python,
            "astrotools_anchor.py",
            ["skymaps", "--sets", args.astrotools_sets, "--lens-cfg", lens_dir / "lens.cfg"],
        )
    nnz = sum(
        lens.matrix(0.5 * (a + b)).nnz
        for a, b in zip(lens.log10_rigidity_edges[:-1], lens.log10_rigidity_edges[1:], strict=True)
    )
    chunk_rate = {mode: args.chunk_maps / c["chunk_s"] for mode, c in chunks.items()}
    settings = {
        "n_cr": N_CR,
        "nside": NSIDE,
        "n_sources": 1,
        "signal_fraction": 0.055,
        "log10e_min": round(float(np.log10(40e18)), 4),
        "composition": "seed 002 defaults (config/config.yaml)",
        "exposure": "Auger (a0 = -35.2 deg, theta_max = 60 deg)",
        "lens_bins": args.lens_bins,
        "lens_entries": int(nnz),
    }
    record.emit(
        record.record(
            "skymaps",
            sizes={**settings, "maps_per_rate": args.maps, "chunk_maps": args.chunk_maps},
            wall_s={
                "lens_build": round(lens_build_s, 1),
                **{f"chunk_{mode}": c["chunk_s"] for mode, c in chunks.items()},
                "total": round(time.perf_counter() - begin, 1),
            },
            throughput={
                **{f"simulation_maps_per_s_{m}": round(v) for m, v in sim.items()},
                **{f"chunk_job_maps_per_s_{m}": round(v) for m, v in chunk_rate.items()},
            },
            ratios=ratios(sim, chunk_rate, anchor, settings),
            details={
                "chunks": chunks,
                "targets": TARGETS,
                "anchor": anchor,
            },
            modules=("scipy", "healpy", "h5py", "numba"),
            cpus_used=1,
        )
    )


if __name__ == "__main__":
    main()
