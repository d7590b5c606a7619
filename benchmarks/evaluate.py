"""Two-point auto-correlation throughput (not a test; prints one JSON object).

Cumulative pair counts within ψ = 1°…180° (1° bins) of isotropic maps of 1,000 CRs at nside 64,
on one core (numba threads = 1) and on all cores, plus the exact O(N²) numpy reference for
comparison. Anchor (issue 7): astrotools' ``two_pt_auto`` takes 37.9 ms per map of 1,000 CRs;
target ≤ 1.3 ms per map on one core.

    python benchmarks/evaluate.py [--maps 2000] [--n-cr 1000] [--nside 64] [--repeats 3]
"""

import argparse
import json
import os
import platform
import time

import healpy as hp
import numba
import numpy as np

import crsky
from crsky.stats.two_point import cumulative_pair_counts, psi_grid_deg, reference_pair_counts

ASTROTOOLS_MS_PER_MAP = 37.9
TARGET_MS_PER_MAP = 1.3


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=2000)
    parser.add_argument("--n-cr", type=int, default=1000)
    parser.add_argument("--nside", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(1)
    psi = psi_grid_deg(1.0, 180.0, 1.0)
    npix = hp.nside2npix(args.nside)
    pixels = rng.integers(0, npix, size=(args.maps, args.n_cr)).astype(np.uint16)
    cumulative_pair_counts(pixels[:2], args.nside, psi, threads=1)  # compile

    one_core_s = best_of(
        args.repeats, lambda: cumulative_pair_counts(pixels, args.nside, psi, threads=1)
    )
    threads = numba.config.NUMBA_NUM_THREADS
    all_cores_s = best_of(
        args.repeats, lambda: cumulative_pair_counts(pixels, args.nside, psi, threads=threads)
    )
    vectors = np.stack(hp.pix2vec(args.nside, pixels[:5].astype(np.int64)), axis=-1)
    reference_s = best_of(1, lambda: reference_pair_counts(vectors, psi)) / 5
    exact = np.array_equal(
        cumulative_pair_counts(pixels[:5], args.nside, psi), reference_pair_counts(vectors, psi)
    )
    ms_per_map = 1e3 * one_core_s / args.maps
    n_pairs = args.n_cr * (args.n_cr - 1) // 2
    print(
        json.dumps(
            {
                "name": "evaluate.two_point",
                "sizes": {
                    "maps": args.maps,
                    "n_cr": args.n_cr,
                    "nside": args.nside,
                    "psi_bins": int(psi.size),
                },
                "wall_s": {"one_core": one_core_s, "all_cores": all_cores_s},
                "throughput": {
                    "ms_per_map_one_core": ms_per_map,
                    "maps_per_s_one_core": args.maps / one_core_s,
                    "maps_per_s_all_cores": args.maps / all_cores_s,
                    "pairs_per_s_one_core": args.maps * n_pairs / one_core_s,
                    "numpy_reference_ms_per_map": 1e3 * reference_s,
                },
                "target_ms_per_map": TARGET_MS_PER_MAP,
                "astrotools_two_pt_auto_ms_per_map": ASTROTOOLS_MS_PER_MAP,
                "speedup_vs_astrotools": ASTROTOOLS_MS_PER_MAP / ms_per_map,
                "exact_vs_reference": bool(exact),
                "threads_all_cores": threads,
                "load_average": os.getloadavg(),
                "versions": {
                    "crsky": crsky.__version__,
                    "numba": numba.__version__,
                    "numpy": np.__version__,
                    "python": platform.python_version(),
                },
                "host": {"machine": platform.machine(), "processor": platform.processor()},
            }
        )
    )


if __name__ == "__main__":
    main()
