"""astrotools 1.5 anchors for the crsky benchmarks (runs in the side environment of
install-astrotools.sh, never in crsky's: it imports neither crsky nor anything of numpy >= 2;
prints one JSON object). Called by benchmarks/skymaps.py and benchmarks/evaluate.py in the same
run as the crsky side, pinned to one core with one BLAS thread.

``skymaps``: sets per second of ``astrotools.simulations.ObservedBound`` in memory, the
simulation chain a user of astrotools runs for seed 002's set-up (``--n-cr`` CRs per set above
``--log10e-min`` from astrotools' Auger spectrum, charges drawn from ``--composition``, Auger
exposure, signal fraction ``--signal-fraction``), for each of ``--modes``:

- ``isotropic``: set_energy, set_charges, apply_exposure, arrival_setup(0);
- ``smearing``: one random source, rigidity bins of ``--rigidity-bin`` dex, Fisher smearing
  ``--smearing-rad`` at 10 EV scaling as 1/R (``smear_sources(dynamic=True)``), exposure,
  arrival_setup (astrotools' deflection without a lens: crsky's toy mode also rotates);
- ``lens``: one random source (point-like), ``lensing_map`` with the lens of ``--lens-cfg``
  (``gamale.Lens``, parts cached after a warm-up), exposure, arrival_setup.

Each ObservedBound object holds ``--sets-per-source`` sets that share one source (astrotools
simulates a batch of sets per source configuration; crsky draws a source for every map, work
astrotools is spared here), objects are simulated until ``--sets`` sets are done.

``two_point``: milliseconds per map of ``astrotools.obs.two_pt_auto`` (1-degree bins, cumulative)
on the pixel centres of the maps in ``--pixels`` (an .npy file of (n_maps, n_cr) RING pixels at
``--nside``); the counts are returned for the caller to compare with its own.

    python astrotools_anchor.py skymaps --lens-cfg LENS/lens.cfg [--sets 4096]
    python astrotools_anchor.py two_point --pixels maps.npy --nside 64 [--maps 50]
"""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

warnings.simplefilter("ignore")  # astrotools 1.5 on numpy 1.23: deprecation warnings only

import astrotools  # noqa: E402
import healpy as hp  # noqa: E402
from astrotools import gamale, obs  # noqa: E402
from astrotools.simulations import ObservedBound  # noqa: E402


def simulate(mode: str, args, n_sets: int, lens) -> int:
    """One ObservedBound object of ``n_sets`` sets in ``mode``; a source position from which
    nothing is observed (astrotools raises "No signal probability") is drawn again, as crsky
    redraws unobservable sources. Returns the number of redraws."""
    for redraws in range(100):
        try:
            _simulate_once(mode, args, n_sets, lens)
            return redraws
        except Exception as err:  # astrotools raises a bare Exception
            if "No signal probability" not in str(err):
                raise
    raise RuntimeError("no observable source position in 100 draws")


def _simulate_once(mode: str, args, n_sets: int, lens) -> None:
    """astrotools' prints (warnings about point-like sources) are swallowed."""
    with contextlib.redirect_stdout(io.StringIO()):
        sim = ObservedBound(args.nside, n_sets, args.n_cr)
        sim.set_energy(args.log10e_min, log10e_max=args.log10e_max)
        sim.set_charges(dict(args.composition))
        if mode == "smearing":
            sim.set_sources(1)
            bins = np.arange(17.0, 21.0, args.rigidity_bin)
            sim.set_rigidity_bins(bins)
            sim.smear_sources(args.smearing_rad, dynamic=True)
        elif mode == "lens":
            sim.set_sources(1)
            sim.lensing_map(lens, cache=True)
        sim.apply_exposure(a0=args.latitude_deg, zmax=args.theta_max_deg)
        sim.arrival_setup(0.0 if mode == "isotropic" else args.signal_fraction)
        sim.get_data()


def skymaps(args) -> dict:
    lens = gamale.Lens(args.lens_cfg) if "lens" in args.modes else None
    rates, redraws = {}, dict.fromkeys(args.modes, 0)
    for mode in args.modes:
        simulate(mode, args, min(64, args.sets_per_source), lens)  # warm-up: loads lens parts
        start, done = time.perf_counter(), 0
        while done < args.sets:
            n = min(args.sets_per_source, args.sets - done)
            redraws[mode] += simulate(mode, args, n, lens)
            done += n
        rates[mode] = done / (time.perf_counter() - start)
    return {
        "sets_per_s": {mode: round(rate, 1) for mode, rate in rates.items()},
        "source_redraws": redraws,
        "settings": {
            "sets": args.sets,
            "sets_per_source": args.sets_per_source,
            "nside": args.nside,
            "n_cr": args.n_cr,
            "log10e_range": [args.log10e_min, args.log10e_max],
            "spectrum": "astrotools auger.rand_energy_from_auger",
            "composition": dict(args.composition),
            "signal_fraction": args.signal_fraction,
            "exposure": f"exposure_pdf(a0={args.latitude_deg}, zmax={args.theta_max_deg})",
            "smearing": f"{args.smearing_rad} rad at 10 EV, 1/R, bins {args.rigidity_bin} dex",
            "lens": args.lens_cfg,
        },
    }


def two_point(args) -> dict:
    pixels = np.load(args.pixels)[: args.maps]
    bins = np.radians(np.arange(0.0, 181.0, 1.0))
    vectors = [np.array(hp.pix2vec(args.nside, p.astype(np.int64))) for p in pixels]
    obs.two_pt_auto(vectors[0], bins=bins)  # warm-up
    start = time.perf_counter()
    counts = [obs.two_pt_auto(v, bins=bins, cumulative=True) for v in vectors]
    seconds = time.perf_counter() - start
    return {
        "ms_per_map": round(1e3 * seconds / len(pixels), 2),
        "counts": np.asarray(counts).round().astype(int).tolist(),
        "settings": {
            "maps": len(pixels),
            "n_cr": int(pixels.shape[1]),
            "nside": args.nside,
            "bins": "0, 1, ..., 180 deg (two_pt_auto, cumulative)",
            "directions": "pixel centres (healpy pix2vec, RING)",
        },
    }


def composition(text: str) -> tuple:
    """'h:0.15,he:0.45,n:0.4' -> (('h', 0.15), ...)."""
    return tuple((k, float(v)) for k, v in (item.split(":") for item in text.split(",")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sky = sub.add_parser("skymaps")
    sky.add_argument("--modes", nargs="+", default=["isotropic", "smearing", "lens"])
    sky.add_argument("--lens-cfg", default=None)
    sky.add_argument("--sets", type=int, default=4096)
    sky.add_argument("--sets-per-source", type=int, default=1024)
    sky.add_argument("--nside", type=int, default=64)
    sky.add_argument("--n-cr", type=int, default=1000)
    sky.add_argument("--log10e-min", type=float, default=np.log10(40e18))
    sky.add_argument("--log10e-max", type=float, default=np.log10(316e18))
    sky.add_argument("--composition", type=composition, default=composition("h:0.15,he:0.45,n:0.4"))
    sky.add_argument("--signal-fraction", type=float, default=0.055)
    sky.add_argument("--latitude-deg", type=float, default=-35.2)
    sky.add_argument("--theta-max-deg", type=float, default=60.0)
    sky.add_argument("--smearing-rad", type=float, default=0.5 * 2.79 / 10)
    sky.add_argument("--rigidity-bin", type=float, default=0.02)
    pairs = sub.add_parser("two_point")
    pairs.add_argument("--pixels", required=True)
    pairs.add_argument("--nside", type=int, default=64)
    pairs.add_argument("--maps", type=int, default=50)
    args = parser.parse_args()
    if args.what == "skymaps" and "lens" in args.modes and not args.lens_cfg:
        parser.error("--lens-cfg is required for mode lens")
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    np.random.seed(2026)  # noqa: NPY002 (astrotools draws from numpy's global generator)
    result = skymaps(args) if args.what == "skymaps" else two_point(args)
    result["versions"] = {
        "astrotools": astrotools.__version__,
        "numpy": np.__version__,
        "healpy": hp.__version__,
        "python": platform.python_version(),
    }
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
