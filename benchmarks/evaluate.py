"""Two-point auto-correlation throughput against astrotools 1.5 in the same run (not a test;
prints one JSON object in the layout of benchmarks/record.py).

Cumulative pair counts within ψ = 1°…180° (1° bins) of isotropic maps of 1,000 CRs at nside 64,
on one core (numba threads = 1) and on all cores, plus the exact O(N²) numpy reference. Anchor:
astrotools' ``obs.two_pt_auto`` (cumulative, 1° bins) on the pixel centres of the first
``--astrotools-maps`` of the same maps, run by anchors/astrotools_anchor.py in its side
environment (anchors/install-astrotools.sh) on one core; its counts are compared with crsky's
(astrotools counts pairs at angles < ψ, crsky at angles ≤ ψ: they can differ only for pairs
exactly at a bin edge). Issue 7 target: ≤ 1.3 ms per map on one core.

    python benchmarks/evaluate.py [--maps 2000] [--n-cr 1000] [--nside 64] [--repeats 3]
        [--astrotools-maps 50] [--astrotools-python PATH]

Run it on an otherwise idle machine.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import healpy as hp
import numba
import numpy as np
import record

from crsky.stats.two_point import cumulative_pair_counts, psi_grid_deg, reference_pair_counts

TARGET_MS_PER_MAP = 1.3


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def astrotools_anchor(args, pixels, counts, tmp: Path) -> dict:
    """astrotools' two_pt_auto on the first maps (ms per map, one core), run now, with the
    agreement of its counts with crsky's ``counts`` of the same maps."""
    path = tmp / "pixels.npy"
    np.save(path, pixels[: args.astrotools_maps])
    anchor = record.run_anchor(
        args.astrotools_python,
        "astrotools_anchor.py",
        ["two_point", "--pixels", path, "--nside", args.nside, "--maps", args.astrotools_maps],
    )
    if "unavailable" in anchor:
        return anchor
    theirs = np.asarray(anchor.pop("counts"))
    ours = counts[: len(theirs)]
    anchor["counts_differing"] = int(np.count_nonzero(theirs != ours))
    anchor["counts_differing_at_psi_deg"] = sorted(
        {int(k) + 1 for k in np.nonzero(theirs != ours)[1]}
    )
    anchor["counts_max_abs_difference"] = int(np.abs(theirs - ours).max())
    return anchor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=2000)
    parser.add_argument("--n-cr", type=int, default=1000)
    parser.add_argument("--nside", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--astrotools-maps", type=int, default=50)
    parser.add_argument("--astrotools-python", default=None)
    args = parser.parse_args()

    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    rng = np.random.default_rng(1)
    psi = psi_grid_deg(1.0, 180.0, 1.0)
    npix = hp.nside2npix(args.nside)
    pixels = rng.integers(0, npix, size=(args.maps, args.n_cr)).astype(np.uint16)
    cumulative_pair_counts(pixels[:2], args.nside, psi, threads=1)  # compile

    one_core_s = best_of(
        args.repeats, lambda: cumulative_pair_counts(pixels, args.nside, psi, threads=1)
    )
    os.sched_setaffinity(0, cores)
    threads = numba.config.NUMBA_NUM_THREADS
    all_cores_s = best_of(
        args.repeats, lambda: cumulative_pair_counts(pixels, args.nside, psi, threads=threads)
    )
    os.sched_setaffinity(0, {min(cores)})
    vectors = np.stack(hp.pix2vec(args.nside, pixels[:5].astype(np.int64)), axis=-1)
    reference_s = best_of(1, lambda: reference_pair_counts(vectors, psi)) / 5
    exact = np.array_equal(
        cumulative_pair_counts(pixels[:5], args.nside, psi), reference_pair_counts(vectors, psi)
    )
    ms_per_map = 1e3 * one_core_s / args.maps
    counts = cumulative_pair_counts(pixels[: args.astrotools_maps], args.nside, psi, threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        anchor = astrotools_anchor(args, pixels, counts, Path(tmp))
    sizes = {"maps": args.maps, "n_cr": args.n_cr, "nside": args.nside, "psi_bins": int(psi.size)}
    ratios = []
    if "unavailable" not in anchor:
        ratios.append(
            record.ratio(
                "two-point pair counts, ms per map, one core",
                round(ms_per_map, 3),
                f"astrotools {anchor['versions']['astrotools']} obs.two_pt_auto",
                anchor["ms_per_map"],
                record.MEASURED,
                {**sizes, "psi_deg": "1, 2, ..., 180 (cumulative, angle <= psi)"},
                anchor["settings"],
                higher_is_better=False,
            )
        )
    n_pairs = args.n_cr * (args.n_cr - 1) // 2
    record.emit(
        record.record(
            "evaluate.two_point",
            sizes=sizes,
            wall_s={"one_core": round(one_core_s, 3), "all_cores": round(all_cores_s, 3)},
            throughput={
                "ms_per_map_one_core": round(ms_per_map, 3),
                "maps_per_s_one_core": round(args.maps / one_core_s, 1),
                "maps_per_s_all_cores": round(args.maps / all_cores_s, 1),
                "pairs_per_s_one_core": round(args.maps * n_pairs / one_core_s),
                "numpy_reference_ms_per_map": round(1e3 * reference_s, 2),
            },
            ratios=ratios,
            details={
                "target_ms_per_map": TARGET_MS_PER_MAP,
                "exact_vs_reference": bool(exact),
                "threads_all_cores": threads,
                "anchor": anchor,
            },
            modules=("numba", "healpy"),
            cpus_used=1,
        )
    )


if __name__ == "__main__":
    main()
