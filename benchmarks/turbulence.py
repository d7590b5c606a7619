"""JF12 random field: blurring of 10 and 100 EeV protons, cost of the turbulence (not a test;
prints one JSON object in the layout of benchmarks/record.py; one line per case on stderr).

Protons from isotropic observed directions are backtracked through the regular JF12 field
(tolerance 1e-8) and through JF12 with the turbulent part (Kolmogorov 8-272 pc, JF12 random-field
strength; `--striated` adds the striation), at `--tolerance` (default 1e-5; the blurring changes
by < 0.1 deg from 1e-5 to 1e-6 at 10 EeV). Reported: mean and median angle between the two edge
directions (the published CRPropa set-up: about 7.2 deg mean, 4.6 deg median at 10 EeV and
0.65 deg at 100 EeV), particles per second on one core, mean steps, and the cost of one field
evaluation with and without turbulence.

    python benchmarks/turbulence.py [--particles 500] [--seeds 1 2] [--tolerance 1e-5]
"""

import argparse
import json
import sys
import time

import numba
import numpy as np
import record

from crsky.backtrack import backtrack
from crsky.fields import _evaluate, get_field
from crsky.sphere import angle_between_deg


def isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1)[:, None]


def evaluation_ns(field, pos) -> float:
    _evaluate(field.kernel, pos[:10], field.params)
    start = time.perf_counter()
    _evaluate(field.kernel, pos, field.params)
    return round((time.perf_counter() - start) / len(pos) * 1e9, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--n-modes", type=int, default=256)
    parser.add_argument("--striated", action="store_true")
    args = parser.parse_args()
    numba.set_num_threads(1)
    begin = time.perf_counter()
    rng = np.random.default_rng(11)
    regular = get_field("jf12")
    rows = []
    for energy in (10.0, 100.0):
        directions = isotropic(rng, args.particles)
        start = time.perf_counter()
        reference = backtrack(directions, energy * 1e18, regular, threads=1, tolerance=1e-8)
        regular_seconds = time.perf_counter() - start
        for seed in args.seeds:
            options = {"turbulence": {"seed": seed, "n_modes": args.n_modes}}
            if args.striated:
                options["striated"] = {"seed": seed}
            field = get_field("jf12", **options)
            backtrack(directions[:2], energy * 1e18, field, threads=1)  # compile
            start = time.perf_counter()
            result = backtrack(
                directions, energy * 1e18, field, threads=1, tolerance=args.tolerance
            )
            seconds = time.perf_counter() - start
            angle = angle_between_deg(result.edge_direction, reference.edge_direction)
            rows.append(
                {
                    "energy_EeV": energy,
                    "seed": seed,
                    "mean_blur_deg": round(float(angle.mean()), 3),
                    "median_blur_deg": round(float(np.median(angle)), 3),
                    "particles_per_s": round(args.particles / seconds, 1),
                    "regular_particles_per_s": round(args.particles / regular_seconds, 1),
                    "mean_steps": round(float(result.n_steps.mean()), 1),
                    "regular_mean_steps": round(float(reference.n_steps.mean()), 1),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    pos = np.random.default_rng(3).uniform(-15, 15, (100_000, 3))
    set_up = "JF12 regular + turbulent (Kolmogorov 8-272 pc, JF12 rms map)"
    record.emit(
        record.record(
            "turbulence",
            sizes={
                "set_up": set_up + (" + striated" if args.striated else ""),
                "particles": args.particles,
                "tolerance": args.tolerance,
                "n_modes": args.n_modes,
                "seeds": args.seeds,
            },
            wall_s={"total": round(time.perf_counter() - begin, 1)},
            throughput={
                "field_evaluation_ns": {
                    "jf12_regular": evaluation_ns(regular, pos),
                    "jf12_turbulent": evaluation_ns(
                        get_field("jf12", turbulence={"n_modes": args.n_modes}), pos
                    ),
                },
            },
            details={"results": rows},
            modules=("numba",),
            cpus_used=1,
        )
    )


if __name__ == "__main__":
    main()
