"""Lens build and sampling throughput (not a test; prints one JSON object in the layout of
benchmarks/record.py).

Issue 4 target: one nside-64 lens part from 5,000,000 particles (read shards, count, normalise,
write) in <= 10 s on one core with <= 2 GB peak memory; and draws per second of
``Lens.sample_observed``. The default, 5,013,504 particles, is the nearest multiple of the 49,152
pixels (every lens row gets the same number of particles: 102).

The shards are synthetic but in the real format (datasets of ``crsky.backtrack.shard`` and the
attributes of ``ShardJob.attributes()``): observed directions stratified over the pixels by the
backtracking's own sampler, edge directions = observed directions turned by a random angle
(Rayleigh, sigma 3 deg) in a random direction, 95 % escaped. Nothing is traced, so the numbers
are those of the lens stage alone. The build runs in a fresh child process, so its peak memory
(VmHWM) is that of one lens-part job.

    python benchmarks/lens.py [--particles 5013504] [--shards 10] [--nside 64] [--workdir DIR]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import healpy as hp
import numpy as np
import record

from crsky.backtrack import Accuracy
from crsky.backtrack.sampling import sample_log_uniform_rigidity, sample_stratified_directions
from crsky.backtrack.shard import ShardJob, write_shard
from crsky.binning import RigidityBins, Sharding
from crsky.fields import get_field
from crsky.lens import Lens, build_part, finalize_lens, write_part

FIELD = "uniform"  # a registered model name; the deflections are synthetic (not traced)
BINS = RigidityBins(19.0, 19.02, 1)
TARGET_SECONDS, TARGET_PEAK_MB = 10.0, 2000.0


def turned(direction: np.ndarray, rng: np.random.Generator, sigma_deg: float) -> np.ndarray:
    """Unit vectors at a Rayleigh-distributed angle from ``direction`` (N, 3), random azimuth."""
    helper = np.where(np.abs(direction[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    e1 = np.cross(direction, helper)
    e1 /= np.linalg.norm(e1, axis=1)[:, None]
    e2 = np.cross(direction, e1)
    theta = rng.rayleigh(np.radians(sigma_deg), len(direction))[:, None]
    phi = rng.uniform(0, 2 * np.pi, len(direction))[:, None]
    turn = np.cos(phi) * e1 + np.sin(phi) * e2
    return np.cos(theta) * direction + np.sin(theta) * turn


def write_synthetic_shards(folder: Path, particles: int, n_shards: int, nside: int) -> list[Path]:
    """Shard files of one bin, in the backtracking shard format, without tracing."""
    sharding = Sharding(particles, -(-particles // n_shards))
    field = get_field(FIELD)
    paths = []
    for s in range(sharding.n_shards):
        job = ShardJob(1, FIELD, {}, BINS, 0, sharding, s, nside, Accuracy())
        attrs = {**job.attributes(field), "field_description": "synthetic (benchmarks/lens.py)"}
        first, stop = attrs["particle_range"]
        rng = np.random.default_rng([1, s])
        observed, _ = sample_stratified_directions(nside, first, stop - first, rng)
        columns = {
            "observed_direction": observed,
            "edge_direction": turned(observed, rng, 3.0),
            "log10_rigidity": sample_log_uniform_rigidity(*BINS.bin_range(0), stop - first, rng),
            "path_length_kpc": rng.uniform(11.5, 28.5, stop - first),
            "escaped": rng.random(stop - first) < 0.95,
        }
        paths.append(write_shard(folder / f"shard{s:04d}.h5", columns, attrs))
    return paths


def child_build(shards: list[str], nside: int, part: str, lens_dir: str) -> None:
    """Runs in a fresh process: time the part job and the lens.cfg job, report peak memory."""
    start = time.perf_counter()
    write_part(build_part(shards, FIELD, nside, 0), part)
    part_seconds = time.perf_counter() - start
    peak_part_mb = record.peak_mb()
    start = time.perf_counter()
    finalize_lens([part], lens_dir)
    cfg_seconds = time.perf_counter() - start
    peak_mb = record.peak_mb()
    print(
        json.dumps(
            {
                "part_s": part_seconds,
                "part_peak_mb": peak_part_mb,
                "cfg_s": cfg_seconds,
                "peak_mb": peak_mb,
            }
        )
    )


def sampling_rates(lens: Lens, rng: np.random.Generator, n: int) -> dict:
    """Draws per second: one call of n draws, and calls of 1,000 (one skymap's CRs)."""
    pix = rng.integers(0, lens.npix, n)
    lr = np.full(n, lens.log10_rigidity_edges[0])
    lens.sample_observed(pix[:10], lr[:10], rng)  # loads the part and its running sum
    start = time.perf_counter()
    out = lens.sample_observed(pix, lr, rng)
    one_call = n / (time.perf_counter() - start)
    calls = min(n // 1000, 2000)
    start = time.perf_counter()
    for k in range(calls):
        lens.sample_observed(pix[k * 1000 : (k + 1) * 1000], lr[k * 1000 : (k + 1) * 1000], rng)
    per_1000 = calls * 1000 / (time.perf_counter() - start)
    return {
        "draws_per_s": round(one_call),
        "draws_per_s_calls_of_1000": round(per_1000),
        "observed_fraction": float((out >= 0).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=102 * 49152)
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument("--nside", type=int, default=64)
    parser.add_argument("--draws", type=int, default=10_000_000)
    parser.add_argument("--workdir", default=None, help="folder for the shards (default: temp)")
    parser.add_argument("--child-build", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_build:
        part, lens_dir, *shards = args.child_build
        child_build(shards, args.nside, part, lens_dir)
        return
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        shards = write_synthetic_shards(tmp, args.particles, args.shards, args.nside)
        part, lens_dir = tmp / "parts" / "bin000.npz", tmp / "lens"
        command = [
            sys.executable,
            __file__,
            "--nside",
            str(args.nside),
            "--child-build",
            str(part),
            str(lens_dir),
            *map(str, shards),
        ]
        child = record.run_child(command)
        lens = Lens.load(lens_dir)
        nnz = lens.matrix(lens.log10_rigidity_edges[0]).nnz
        sizes = {p.name: p.stat().st_size for p in sorted(lens_dir.glob("bin000.*"))}
        rates = sampling_rates(lens, np.random.default_rng(5), args.draws)
    record.emit(
        record.record(
            "lens",
            sizes={
                "nside": args.nside,
                "npix": hp.nside2npix(args.nside),
                "particles": args.particles,
                "shards": args.shards,
                "nnz": int(nnz),
                "draws": args.draws,
            },
            wall_s={"part": round(child["part_s"], 2), "cfg_one_bin": round(child["cfg_s"], 2)},
            throughput={
                "part_particles_per_s": round(args.particles / child["part_s"]),
                "draws_per_s": rates["draws_per_s"],
                "draws_per_s_calls_of_1000": rates["draws_per_s_calls_of_1000"],
            },
            details={
                "part_peak_memory_mb": round(child["part_peak_mb"]),
                "peak_memory_mb": round(child["peak_mb"]),
                "target_part_seconds": TARGET_SECONDS,
                "target_peak_memory_mb": TARGET_PEAK_MB,
                "meets_targets": child["part_s"] <= TARGET_SECONDS
                and child["peak_mb"] <= TARGET_PEAK_MB,
                "file_bytes": sizes,
                "observed_fraction": rates["observed_fraction"],
            },
            modules=("scipy", "healpy", "h5py"),
            cpus_used=1,
        )
    )


if __name__ == "__main__":
    main()
