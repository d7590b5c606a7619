"""Backtracking speed at matched accuracy, crsky against CRPropa 3.2 in the same run (not a test;
prints one JSON object in the layout of benchmarks/record.py; one line per case on stderr).

For protons at 1, 10 and 100 EeV from isotropic observed directions, in each field model: the edge
directions of a converged run (crsky, tolerance 1e-12, steps 1e-8 to 0.02 kpc; checked against
CRPropa's own converged run on a subset, `reference_check`), then for every tolerance of each
engine the particles per second on one core (the fastest of `--repeats` runs, 3 by default, for
both engines alike: single short runs on this machine swing by up to 30 %) and the median and
99th-percentile angular error against that reference: each engine's error-vs-cost curve (crsky: its
three integrators, Dormand-Prince 5(4), Bogacki-Shampine 3(2) and Dormand-Prince 8(5,3)). `matched`
(in each of `details.cases`) then gives, for every CRPropa point, the fastest crsky point whose
median AND p99 errors are at most CRPropa's, and the ratio of their speeds; each matched point is
also one entry of `ratios` (measured in this run). Both engines use the same step bounds (default
0.1 pc to 1 kpc; the field model's fine regions further limit crsky's steps, and CRPropa's
everywhere, see `crsky.backtrack.crpropa_engine`). CRPropa runs its C++ candidate loop
(`ModuleList.run` on a `CandidateVector`, OMP_NUM_THREADS=1, candidates built outside the timing).
Where `import crpropa` fails, the CRPropa columns and ratios are absent and `details.anchor` says
so. `throughput.field_evaluation_ns` is the cost of one field evaluation per model (crsky: one
thread over 200,000 random points; CRPropa: its C++ `fromMagneticField` filling a 64³ grid); the
two use different point sets, so no ratio of them is claimed.

    python benchmarks/backtrack.py [--particles 2000] [--repeats 3] [--fields jf12 uf23 kst24]
        [--energies-eev 1 10 100] [--tolerances 1e-4 3e-5 1e-5 ... 1e-9]
        [--bs3-tolerances 1e-3 3e-4 ... 1e-8]
        [--dop853-tolerances 1e-6 ... 1e-10] [--crpropa-tolerances 1e-4 1e-5 1e-6 1e-7 1e-8 1e-9]

Run it on an otherwise idle machine (timings on a shared machine are meaningless).
"""

import os

# One CRPropa thread: OMP_NUM_THREADS before CRPropa (OpenMP) loads, and numba off OpenMP (its
# omp layer would set the shared OpenMP thread count to numba's when crsky runs in parallel).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

import argparse
import contextlib
import json
import sys
import time

import numba
import numpy as np
import record

from crsky.backtrack import EARTH_POSITION_KPC, Accuracy, backtrack, propagate
from crsky.backtrack.crpropa_engine import crpropa_field
from crsky.fields import _evaluate, get_field
from crsky.sphere import angle_between_deg

FIELDS = {"jf12": {}, "uf23": {"variant": "base"}, "kst24": {}}
REFERENCE = dict(tolerance=1e-12, min_step_kpc=1e-8, max_step_kpc=0.02, integrator="dopri5")


def isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1)[:, None]


def errors(edge: np.ndarray, reference: np.ndarray) -> dict:
    error = angle_between_deg(edge, reference)
    return {
        "median_error_deg": float(np.median(error)),
        "p99_error_deg": float(np.percentile(error, 99)),
    }


def run_crsky(directions, rigidity_V, field, repeats=1, **accuracy):
    """crsky's result and its fastest time (s) of ``repeats`` runs (the same tracks each time)."""
    settings = Accuracy(**accuracy)
    start_kpc = np.broadcast_to(EARTH_POSITION_KPC, directions.shape)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = propagate(start_kpc, directions, rigidity_V, -1, field, settings, threads=1)
        best = min(best, time.perf_counter() - start)
    return result, best


@contextlib.contextmanager
def stdout_to_stderr():
    """File descriptor 1 onto 2 for the block: CRPropa's C++ ``ModuleList.run`` prints its
    thread count on stdout, which carries only the benchmark's JSON object."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def run_crpropa(
    crpropa, directions, rigidity_V, field, tolerance, min_step_kpc, max_step_kpc, repeats=1
):
    """Edge directions and the fastest time (s) of ``repeats`` runs of CRPropa's PropagationCK
    (C++ loop, one thread; fresh candidates each run, built outside the timing)."""
    kpc = crpropa.kpc
    max_step_kpc = min([max_step_kpc, *np.asarray(field.fine_regions)[:, 4]])
    modules = crpropa.ModuleList()
    modules.add(
        crpropa.PropagationCK(
            crpropa_field(field, crpropa),
            tolerance,
            min(min_step_kpc, max_step_kpc) * kpc,
            max_step_kpc * kpc,
        )
    )
    boundary = crpropa.SphericalBoundary(crpropa.Vector3d(0.0), 20.0 * kpc)
    boundary.setMargin(0.0)
    modules.add(boundary)
    modules.add(crpropa.MaximumTrajectoryLength(1000.0 * kpc))
    seconds = np.inf
    for _ in range(repeats):
        candidates = crpropa.CandidateVector()
        for d in directions:
            state = crpropa.ParticleState()
            state.setId(-crpropa.nucleusId(1, 1))
            state.setEnergy(rigidity_V * crpropa.eV)
            state.setPosition(crpropa.Vector3d(*EARTH_POSITION_KPC) * kpc)
            state.setDirection(crpropa.Vector3d(*d))
            candidates.push_back(crpropa.CandidateRefPtr(crpropa.Candidate(state)))
        with stdout_to_stderr():
            start = time.perf_counter()
            modules.run(candidates)
            seconds = min(seconds, time.perf_counter() - start)
    edge = np.array(
        [
            [u.x, u.y, u.z]
            for u in (candidates[i].current.getDirection() for i in range(len(directions)))
        ]
    )
    return edge, seconds


def field_costs(crpropa, names) -> dict:
    rng = np.random.default_rng(7)
    r = 20 * np.sqrt(rng.random(200_000))
    phi = rng.uniform(-np.pi, np.pi, r.size)
    pos = np.column_stack([r * np.cos(phi), r * np.sin(phi), rng.uniform(-4, 4, r.size)])
    out = {}
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        for name in names:
            field = get_field(name, **FIELDS.get(name, {}))
            _evaluate(field.kernel, pos[:10], field.params)
            start = time.perf_counter()
            _evaluate(field.kernel, pos, field.params)
            entry = {"crsky": round((time.perf_counter() - start) / len(pos) * 1e9, 1)}
            if crpropa is not None:
                n = 64
                origin = crpropa.Vector3d(-20, -20, -4) * crpropa.kpc
                spacing = crpropa.Vector3d(40 / n, 40 / n, 8 / n) * crpropa.kpc
                grid = crpropa.Grid3f(origin, n, n, n, spacing)
                model = crpropa_field(field, crpropa)
                start = time.perf_counter()
                crpropa.fromMagneticField(grid, model)
                entry["crpropa"] = round((time.perf_counter() - start) / n**3 * 1e9, 1)
            out[name] = entry
    finally:
        numba.set_num_threads(previous)
    return out


def matched(crsky_rows, crpropa_rows) -> list[dict]:
    """For each CRPropa point: the fastest crsky point at no larger median and p99 error."""
    out = []
    for theirs in crpropa_rows:
        fits = [
            ours
            for ours in crsky_rows
            if ours["median_error_deg"] <= theirs["median_error_deg"]
            and ours["p99_error_deg"] <= theirs["p99_error_deg"]
        ]
        best = max(fits, key=lambda row: row["particles_per_s"]) if fits else None
        out.append(
            {
                "crpropa_tolerance": theirs["tolerance"],
                "crpropa_particles_per_s": theirs["particles_per_s"],
                "crsky_integrator": best["integrator"] if best else None,
                "crsky_tolerance": best["tolerance"] if best else None,
                "crsky_particles_per_s": best["particles_per_s"] if best else None,
                "speedup": round(best["particles_per_s"] / theirs["particles_per_s"], 2)
                if best
                else None,
            }
        )
    return out


def ratios(cases: list[dict], anchor: str, steps: dict) -> list[dict]:
    """Every matched point of every case as a crsky-vs-CRPropa ratio of particles/s (points that
    no crsky setting matches stay in the case's ``matched`` with ``speedup`` None)."""
    out = []
    for case in cases:
        where = f"{case['field']}, {case['energy_EeV']:g} EeV"
        theirs = {row["tolerance"]: row for row in case.get("crpropa", [])}
        ours = {(row["integrator"], row["tolerance"]): row for row in case["crsky"]}
        for point in case.get("matched", []):
            if point["speedup"] is None:
                continue
            mine = ours[(point["crsky_integrator"], point["crsky_tolerance"])]
            other = theirs[point["crpropa_tolerance"]]
            what = f"{where}, CRPropa tolerance {other['tolerance']:g}"
            out.append(
                record.ratio(
                    f"backtracking particles/s at matched accuracy, {what}",
                    point["crsky_particles_per_s"],
                    anchor,
                    point["crpropa_particles_per_s"],
                    record.MEASURED,
                    {**_accuracy(mine), "integrator": mine["integrator"], **steps, "threads": 1},
                    {**_accuracy(other), **steps, "omp_threads": 1},
                )
            )
    return out


def _accuracy(row: dict) -> dict:
    keys = ("tolerance", "median_error_deg", "p99_error_deg")
    return {key: row[key] for key in keys}


def half_decades(first: int, last: int) -> list[float]:
    """Tolerances 10^first, 3·10^(first-1), 10^(first-1), ... 10^last: crsky's curve at half
    decades, so the fastest setting at CRPropa's accuracy is found to within a factor ~3."""
    out = [float(f"1e{first}")]
    for exponent in range(first - 1, last - 1, -1):
        out += [float(f"3e{exponent}"), float(f"1e{exponent}")]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=2000)
    parser.add_argument("--fields", nargs="+", default=list(FIELDS), choices=list(FIELDS))
    parser.add_argument("--energies-eev", type=float, nargs="+", default=[1.0, 10.0, 100.0])
    parser.add_argument(
        "--tolerances",
        type=float,
        nargs="+",
        default=half_decades(-4, -9),
        help="tolerances of the Dormand-Prince 5(4) pair",
    )
    parser.add_argument(
        "--bs3-tolerances",
        type=float,
        nargs="+",
        default=half_decades(-3, -8),
        help="tolerances of the Bogacki-Shampine 3(2) pair",
    )
    parser.add_argument(
        "--dop853-tolerances",
        type=float,
        nargs="+",
        default=[1e-6, 1e-7, 1e-8, 1e-9, 1e-10],
        help="tolerances of the Dormand-Prince 8(5,3) pair",
    )
    parser.add_argument("--crpropa-tolerances", type=float, nargs="+",
                        default=[1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9])  # fmt: skip
    parser.add_argument("--min-step-kpc", type=float, default=1e-4)
    parser.add_argument("--max-step-kpc", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per setting and engine; the fastest time counts")  # fmt: skip
    parser.add_argument("--reference-check", type=int, default=200,
                        help="particles also traced by CRPropa at tolerance 1e-10")  # fmt: skip
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats: expected a whole number >= 1, got {args.repeats}")
    try:
        import crpropa
    except ImportError:
        crpropa = None
    steps = dict(min_step_kpc=args.min_step_kpc, max_step_kpc=args.max_step_kpc)
    begin = time.perf_counter()
    rng = np.random.default_rng(2026)
    cases = []
    for name in args.fields:
        field = get_field(name, **FIELDS[name])
        warm_up = isotropic(rng, 4)
        for integrator in ("dopri5", "bs3", "dop853"):  # the tracer compiles once per pair
            backtrack(warm_up, 1e19, field, threads=1, integrator=integrator)
        for energy in args.energies_eev:
            rigidity = energy * 1e18
            directions = isotropic(rng, args.particles)
            reference, _ = run_crsky(directions, rigidity, field, **REFERENCE)
            case = {"field": name, "energy_EeV": energy, "particles": args.particles}
            rows = []
            runs = [("dopri5", t) for t in args.tolerances]
            runs += [("bs3", t) for t in args.bs3_tolerances]
            runs += [("dop853", t) for t in args.dop853_tolerances]
            for integrator, tolerance in runs:
                result, seconds = run_crsky(
                    directions,
                    rigidity,
                    field,
                    args.repeats,
                    tolerance=tolerance,
                    integrator=integrator,
                    **steps,
                )
                rows.append({
                    "integrator": integrator,
                    "tolerance": tolerance,
                    "particles_per_s": round(args.particles / seconds, 1),
                    "mean_steps": round(float(result.n_steps.mean()), 1),
                    "mean_evaluations": round(float(result.n_evaluations.mean()), 1),
                    **errors(result.final_direction, reference.final_direction),
                })  # fmt: skip
            case["crsky"] = rows
            if crpropa is not None:
                theirs = []
                for tolerance in args.crpropa_tolerances:
                    edge, seconds = run_crpropa(
                        crpropa, directions, rigidity, field, tolerance, **steps,
                        repeats=args.repeats,
                    )  # fmt: skip
                    theirs.append({
                        "tolerance": tolerance,
                        "particles_per_s": round(args.particles / seconds, 1),
                        **errors(edge, reference.final_direction),
                    })  # fmt: skip
                case["crpropa"] = theirs
                case["matched"] = matched(rows, theirs)
                k = min(args.reference_check, args.particles)
                edge, _ = run_crpropa(crpropa, directions[:k], rigidity, field, 1e-10,
                                      1e-8, 0.02)  # fmt: skip
                case["reference_check"] = {
                    "particles": k,
                    **errors(edge, reference.final_direction[:k]),
                }
            cases.append(case)
            print(json.dumps(case), file=sys.stderr, flush=True)
    costs = field_costs(crpropa, args.fields)
    anchor = f"CRPropa {crpropa.g_GIT_DESC} PropagationCK (Cash-Karp)" if crpropa else None
    step_bounds = {"step_bounds_kpc": [args.min_step_kpc, args.max_step_kpc]}
    measured = []
    if crpropa:
        measured = ratios(cases, anchor, step_bounds)
    rec = record.record(
        "backtrack",
        sizes={
            "particles": args.particles,
            "repeats": args.repeats,
            "fields": {name: FIELDS[name] for name in args.fields},
            "energies_EeV": args.energies_eev,
            "tolerances_dopri5": args.tolerances,
            "tolerances_bs3": args.bs3_tolerances,
            "tolerances_dop853": args.dop853_tolerances,
            "tolerances_crpropa": args.crpropa_tolerances,
            **step_bounds,
            "reference_check_particles": args.reference_check,
        },
        wall_s={"total": round(time.perf_counter() - begin, 1)},
        throughput={"field_evaluation_ns": costs},
        ratios=measured,
        details={
            "engine": "builtin (Dormand-Prince 5(4), Bogacki-Shampine 3(2), Dormand-Prince "
            "8(5,3); numba) vs CRPropa "
            "PropagationCK (Cash-Karp)",
            "anchor": anchor or "CRPropa not importable: no CRPropa column, no ratio",
            "reference": REFERENCE,
            "cases": cases,
        },
        modules=("numba",),
        cpus_used=1,
    )
    if crpropa:
        rec["versions"]["crpropa"] = crpropa.g_GIT_DESC
    record.emit(rec)


if __name__ == "__main__":
    main()
