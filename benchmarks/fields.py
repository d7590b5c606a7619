"""Field evaluation cost, one point at a time and in lockstep batches (not a test; prints one JSON
object in the layout of benchmarks/record.py).

For each model: ns per evaluation of ``FieldModel.__call__`` on (N, 3) positions (the kernel
called once per point, parameter array, 1 thread) and of a compiled loop over batches of W lanes
that calls the region kernel with the parameters as a tuple, as the tracer's lockstep loop does
(the kernel a closure variable, so numba inlines it and LLVM vectorises the lanes). Points:
uniform in the 20 kpc ball squashed to |z| < 4 kpc (seed 0); best of 7 runs.

    python benchmarks/fields.py [--models uf23:base jf12] [--points 200000] [--widths 16 64]
"""

import argparse
import time

import numba
import numpy as np
import record

from crsky._numba import njit_kernel
from crsky.fields import get_field


def lockstep_loop(region_kernel, width: int):
    """A compiled loop over consecutive batches of ``width`` lanes (each indexed from 0)."""

    @njit_kernel(cache=False)
    def run(xs, ys, zs, params, bx, by, bz, piece):
        for start in range(0, xs.shape[0] - width + 1, width):
            end = start + width
            x, y, z = xs[start:end], ys[start:end], zs[start:end]
            b_x, b_y, b_z, lane_piece = (
                bx[start:end],
                by[start:end],
                bz[start:end],
                piece[start:end],
            )
            for i in range(width):
                b_x[i], b_y[i], b_z[i], lane_piece[i] = region_kernel(x[i], y[i], z[i], params)

    return run


def best_ns(call, n_points: int, repeats: int = 7) -> float:
    call()  # compile
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return round(min(seconds) / n_points * 1e9, 2)


def measure(spec: str, pos: np.ndarray, widths: list[int]) -> tuple[dict, dict]:
    """ns per evaluation of model ``spec`` ("name" or "name:variant"), and the batch loops' largest
    deviations from the point-at-a-time values (µG; 0 when they agree bit for bit)."""
    name, _, variant = spec.partition(":")
    field = get_field(name, **({"variant": variant} if variant else {}))
    n = len(pos) // max(widths) * max(widths)
    pos = pos[:n]
    xs, ys, zs = (np.ascontiguousarray(pos[:, j]) for j in range(3))
    b = [np.empty(n) for _ in range(3)]
    piece = np.empty(n, dtype=np.int64)
    params = tuple(float(v) for v in field.params)
    timings = {f"{spec} per_point_ns": best_ns(lambda: field(pos), n)}
    deviations = {}
    reference = field(pos)
    for width in widths:
        run = lockstep_loop(field.piecewise_kernel, width)
        timings[f"{spec} batch_w{width}_ns"] = best_ns(
            lambda r=run: r(xs, ys, zs, params, *b, piece), n
        )
        deviation = np.abs(np.stack(b, axis=1) - reference).max()
        deviations[f"{spec} batch_w{width}_max_deviation_ugauss"] = float(deviation)
    return timings, deviations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["uf23:base", "jf12"])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args()
    numba.set_num_threads(1)
    begin = time.perf_counter()
    rng = np.random.default_rng(0)
    pos = rng.uniform(-20.0, 20.0, (3 * args.points, 3))
    pos = pos[np.einsum("ij,ij->i", pos, pos) < 400.0][: args.points] * [1.0, 1.0, 0.2]
    throughput, deviations = {}, {}
    for spec in args.models:
        timings, deviation = measure(spec, pos, args.widths)
        throughput.update(timings)
        deviations.update(deviation)
    record.emit(
        record.record(
            "fields",
            sizes={"points": len(pos), "widths": args.widths, "models": args.models},
            wall_s={"total": round(time.perf_counter() - begin, 1)},
            throughput=throughput,
            details={"threads": 1, "repeats": "best of 7", **deviations},
            modules=("numba",),
            cpus_used=1,
        )
    )


if __name__ == "__main__":
    main()
