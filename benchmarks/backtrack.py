"""Backtracking throughput and accuracy (not a test; prints one JSON object).

For protons at 1, 10 and 100 EeV from isotropic observed directions in JF12, measures particles
per second on one core for each accuracy setting, the angular error of the edge direction against
a converged run of the same particles (tolerance 1e-11, steps <= 50 pc), and the speed-up with two
threads. Anchor (issue 3): CRPropa 3.2, tolerance 1e-4, steps 0.1-100 pc: 3.4k, 4.8k, 4.0k
particles/s/core at 1, 10, 100 EeV; median/p99 error 0.008/0.53 deg at 10 EeV and 0.0007/0.021
deg at 100 EeV.

    python benchmarks/backtrack.py [--particles 2000] [--tolerances 1e-6 1e-7]
"""

import argparse
import json
import platform
import time

import numba
import numpy as np

import crsky
from crsky.backtrack import Accuracy, backtrack
from crsky.fields import get_field
from crsky.sphere import angle_between_deg

CRPROPA_PER_CORE = {1e18: 3400.0, 1e19: 4800.0, 1e20: 4000.0}
CRPROPA_ERROR_DEG = {1e19: (0.008, 0.53), 1e20: (0.0007, 0.021)}


def isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1)[:, None]


def timed(directions, rigidity_V, field, threads, **accuracy):
    start = time.perf_counter()
    result = backtrack(directions, rigidity_V, field, threads=threads, **accuracy)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=2000)
    parser.add_argument("--tolerances", type=float, nargs="+", default=[1e-6, 1e-7])
    parser.add_argument("--max-step-kpc", type=float, default=Accuracy.max_step_kpc)
    args = parser.parse_args()
    field = get_field("jf12")
    rng = np.random.default_rng(2026)
    backtrack(isotropic(rng, 8), 1e19, field, threads=1)  # compile
    rows = []
    for rigidity_V in CRPROPA_PER_CORE:
        directions = isotropic(rng, args.particles)
        converged, _ = timed(
            directions,
            rigidity_V,
            field,
            None,
            tolerance=1e-11,
            min_step_kpc=1e-8,
            max_step_kpc=0.05,
        )
        for tolerance in args.tolerances:
            settings = dict(tolerance=tolerance, max_step_kpc=args.max_step_kpc)
            one, seconds_1 = timed(directions, rigidity_V, field, 1, **settings)
            _, seconds_2 = timed(directions, rigidity_V, field, 2, **settings)
            ok = one.escaped & converged.escaped
            error = angle_between_deg(one.edge_direction[ok], converged.edge_direction[ok])
            per_core = args.particles / seconds_1
            anchor_error = CRPROPA_ERROR_DEG.get(rigidity_V, (None, None))
            rows.append(
                {
                    "energy_EeV": rigidity_V / 1e18,
                    "tolerance": tolerance,
                    "max_step_kpc": args.max_step_kpc,
                    "particles": args.particles,
                    "particles_per_s_1_thread": round(per_core, 1),
                    "particles_per_s_2_threads": round(args.particles / seconds_2, 1),
                    "speedup_2_threads": round(seconds_1 / seconds_2, 2),
                    "ratio_to_crpropa_per_core": round(per_core / CRPROPA_PER_CORE[rigidity_V], 2),
                    "mean_steps": round(float(one.n_steps.mean()), 1),
                    "escaped_fraction": float(one.escaped.mean()),
                    "median_error_deg": float(np.median(error)),
                    "p99_error_deg": float(np.percentile(error, 99)),
                    "crpropa_median_error_deg": anchor_error[0],
                    "crpropa_p99_error_deg": anchor_error[1],
                }
            )
    print(
        json.dumps(
            {
                "benchmark": "backtrack",
                "field": "jf12",
                "engine": "builtin (Dormand-Prince 5(4), numba)",
                "results": rows,
                "crsky": crsky.__version__,
                "numba": numba.__version__,
                "numpy": np.__version__,
                "host": platform.node(),
                "cpu": platform.processor() or platform.machine(),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
