"""Skymap simulation throughput, chunk write time, size on disk and peak memory (not a test;
prints one JSON object).

Issue 5 targets (1,000 CRs per map, nside 64, one source, Auger exposure): >= 10,000 sets/s per
core with a lens, a 20,000-map chunk written in <= 10 s, <= 3 kB per map on disk, <= 2 GB peak
memory of a chunk job. Reference: astrotools' ObservedBound, 1,400 sets/s without a lens and
470-980 with one, 21 kB per set.

The lens is synthetic but real in format and size: an nside-64 lens folder (lens.cfg + .npz parts,
crsky.lens.formats) with ``--lens-bins`` parts covering log10(R/V) 18.75 ... 20.5 (all rigidities
of CRs >= 40 EeV up to Z = 7), ~100 entries per column: each extragalactic pixel's 100 particles
are turned by θ = 2.79 rad EV/R about the Galactic z axis and Fisher-blurred with
σ = 1.4 rad EV/R, and every column is scaled to a transparency drawn in [0.3, 1]. It is read with
crsky.lens.Lens. Everything runs on one core (affinity 0); chunk jobs run in fresh child processes
so that their peak memory (VmHWM) is that of one job.

    python benchmarks/skymaps.py [--maps 10240] [--chunk-maps 20000] [--lens-bins 7]
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import healpy as hp
import numpy as np
import scipy.sparse as sp

import crsky
from crsky.lens import Lens
from crsky.lens.formats import CfgEntry, write_cfg, write_npz
from crsky.sky.dataset import DatasetConfig
from crsky.sky.deflection import fisher_sample, rotate_about_axis
from crsky.sky.simulate import BATCH_MAPS, SkySimulator, run_chunk

NSIDE, N_CR = 64, 1000
TARGETS = {"sets_per_s_lens": 10_000, "chunk_s": 10.0, "bytes_per_map": 3000, "peak_mb": 2000}


def synthetic_lens(folder: Path, n_bins: int, per_column: int, rng) -> Path:
    """An nside-64 lens folder with ``n_bins`` parts of ~per_column entries per column."""
    npix = hp.nside2npix(NSIDE)
    edges = np.linspace(18.75, 20.5, n_bins + 1)
    centre = np.stack(hp.pix2vec(NSIDE, np.arange(npix)), axis=1)
    column = np.repeat(np.arange(npix), per_column)
    entries = []
    for b in range(n_bins):
        rigidity_ev = 10.0 ** (0.5 * (edges[b] + edges[b + 1]) - 18.0)
        start = np.repeat(centre, per_column, axis=0)
        turned = rotate_about_axis(
            start,
            np.tile([0.0, 0.0, 1.0], (start.shape[0], 1)),
            np.full(len(start), 2.79 / rigidity_ev),
        )
        observed = fisher_sample(turned, np.full(len(start), 1.4 / rigidity_ev), rng)
        row = hp.vec2pix(NSIDE, observed[:, 0], observed[:, 1], observed[:, 2])
        transparency = rng.uniform(0.3, 1.0, npix)
        value = transparency[column] / per_column
        matrix = sp.csc_matrix((value, (row, column)), shape=(npix, npix))
        name = f"bin{b:03d}.npz"
        write_npz(matrix, folder / name)
        entries.append(CfgEntry(name, float(edges[b]), float(edges[b + 1]), 1e-7, 1.0))
    write_cfg(folder / "lens.cfg", NSIDE, {"field": "synthetic benchmark lens"}, entries)
    return folder


def dataset(mode: str, n_maps: int) -> DatasetConfig:
    """Seed 002's set-up (the defaults): 1,000 CRs >= 40 EeV, one source, 5.5 % signal."""
    return DatasetConfig.from_dict(
        mode, {"n_maps": n_maps, "chunk_size": n_maps, "deflection": {"mode": mode}}
    )


def sets_per_second(simulator: SkySimulator, n_maps: int, rng) -> float:
    simulator.simulate(64, rng)  # compile / load the lens parts
    start = time.perf_counter()
    for done in range(0, n_maps, BATCH_MAPS):
        simulator.simulate(min(BATCH_MAPS, n_maps - done), rng)
    return n_maps / (time.perf_counter() - start)


def peak_mb() -> float:
    """Peak resident memory of this process in MB: VmHWM (Linux), which starts afresh at exec,
    unlike ru_maxrss, which a child inherits from the parent it was forked from."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_chunk(mode: str, n_maps: int, output: str, lens_dir: str | None) -> None:
    """Runs in a fresh process: write one chunk, report wall time, size and peak memory."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    lens = Lens.load(lens_dir) if lens_dir else None
    d = dataset(mode, n_maps)
    run_chunk(dataset(mode, 64), 0, 1, output + ".warm", lens=lens, lens_folder=lens_dir)
    start = time.perf_counter()
    run_chunk(d, 0, 1, output, lens=lens, lens_folder=lens_dir)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "chunk_s": round(seconds, 2),
                "bytes_per_map": round(os.path.getsize(output) / n_maps),
                "peak_mb": round(peak_mb()),
            }
        )
    )


def run_child(mode: str, n_maps: int, output: Path, lens_dir: Path | None) -> dict:
    command = [sys.executable, __file__, "--child-chunk", mode, str(n_maps), str(output)]
    if lens_dir is not None:
        command.append(str(lens_dir))
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=10 * BATCH_MAPS, help="maps per rate")
    parser.add_argument("--chunk-maps", type=int, default=20_000)
    parser.add_argument("--lens-bins", type=int, default=7)
    parser.add_argument("--per-column", type=int, default=100)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--child-chunk", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_chunk:
        mode, n_maps, output, *lens_dir = args.child_chunk
        child_chunk(mode, int(n_maps), output, lens_dir[0] if lens_dir else None)
        return
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rng = np.random.default_rng(5)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        lens_dir = synthetic_lens(tmp / "lens", args.lens_bins, args.per_column, rng)
        lens_build_s = time.perf_counter() - start
        lens = Lens.load(lens_dir)
        rates = {
            "sets_per_s_isotropic": sets_per_second(
                SkySimulator(DatasetConfig.from_dict("iso", {"signal_fraction": {"value": 0.0}})),
                args.maps,
                rng,
            ),
            "sets_per_s_toy": sets_per_second(SkySimulator(dataset("toy", 1)), args.maps, rng),
            "sets_per_s_lens": sets_per_second(
                SkySimulator(dataset("lens", 1), lens), args.maps, rng
            ),
        }
        chunks = {
            mode: run_child(
                mode, args.chunk_maps, tmp / f"{mode}.h5", lens_dir if mode == "lens" else None
            )
            for mode in ("toy", "lens")
        }
    nnz = sum(
        lens.matrix(0.5 * (a + b)).nnz
        for a, b in zip(lens.log10_rigidity_edges[:-1], lens.log10_rigidity_edges[1:], strict=True)
    )
    print(
        json.dumps(
            {
                "name": "skymaps",
                "sizes": {
                    "n_cr": N_CR,
                    "nside": NSIDE,
                    "n_sources": 1,
                    "signal_fraction": 0.055,
                    "exposure": "Auger (a0 = -35.2 deg, theta_max = 60 deg)",
                    "maps_per_rate": args.maps,
                    "chunk_maps": args.chunk_maps,
                    "lens_bins": args.lens_bins,
                    "lens_entries": int(nnz),
                },
                "wall_s": {"lens_build": round(lens_build_s, 1)},
                "throughput": {k: round(v) for k, v in rates.items()},
                "chunks": chunks,
                "targets": TARGETS,
                "versions": {
                    "crsky": crsky.__version__,
                    "python": platform.python_version(),
                    "numpy": np.__version__,
                },
                "host": {"machine": platform.machine(), "cpus_used": 1},
            }
        )
    )


if __name__ == "__main__":
    main()
