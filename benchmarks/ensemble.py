"""Cost of a field ensemble's lenses at a config's scale (not a test; prints one JSON object in
the layout of benchmarks/record.py).

For every lens of the merged config files (merged key by key as Snakemake merges
``--configfile``), the backtracking throughput of the builtin engine on one core at the config's
accuracy settings: protons from isotropic observed directions at the centres of every k-th
rigidity bin (and the last), ``--particles`` each. The backtracking stage's core-hours per lens
are the sum over all bins of particles_per_bin / rate, the rate interpolated linearly in
log10(rate) against log10(R) between the sampled bins. The job counts per lens follow from the
config (bins x shards backtrack jobs, one lens_part job per bin). Lens parts, skymaps, training
and evaluation are not included (benchmarks/lens.py, skymaps.py, train.py, evaluate.py).
Reported: the measured rates (``throughput.particles_per_s_one_core``, per lens and log10(R/V)),
the seconds each lens's measurement took (``wall_s``), and the estimates derived from them
(``details``: core-hours per lens and in total, job counts).

    python benchmarks/ensemble.py --configfile config/production.yaml config/ensemble.yaml \
        [--particles 100] [--every 25]

Run it on an otherwise idle machine (timings on a shared machine are meaningless).
"""

import os

os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import record
import yaml

from crsky.backtrack import Accuracy, backtrack
from crsky.binning import RigidityBins, Sharding
from crsky.ensemble import lens_fields
from crsky.fields import get_field

REPO = Path(__file__).resolve().parents[1]


def merged_config(files) -> dict:
    """config/config.yaml, then ``files`` over it, key by key (nested mappings merged, every
    other value replaced), as Snakemake merges --configfile."""

    def merge(a: dict, b: dict) -> dict:
        out = copy.deepcopy(a)
        for key, value in b.items():
            both = isinstance(value, dict) and isinstance(out.get(key), dict)
            out[key] = merge(out[key], value) if both else copy.deepcopy(value)
        return out

    config: dict = {}
    for name in [REPO / "config/config.yaml", *files]:
        config = merge(config, yaml.safe_load(Path(name).read_text()))
    return config


def sampled_bins(bins: RigidityBins, every: int) -> list[int]:
    return sorted({*range(0, bins.n_bins, every), bins.n_bins - 1})


def lens_rates(field, log10_rigidities, n: int, accuracy: Accuracy) -> list[float]:
    """Protons per second on one core at each log10(R / V)."""
    rng = np.random.default_rng(11)
    directions = rng.normal(size=(n, 3))
    directions /= np.linalg.norm(directions, axis=1)[:, None]
    backtrack(directions[:2], 1e19, field, threads=1, **vars(accuracy))  # compile
    rates = []
    for log10_r in log10_rigidities:
        start = time.perf_counter()
        backtrack(directions, 10.0**log10_r, field, threads=1, **vars(accuracy))
        rates.append(n / (time.perf_counter() - start))
    return rates


def core_hours(bins: RigidityBins, sampled: list[int], rates: list[float], per_bin: int) -> float:
    centres = 0.5 * (bins.edges[:-1] + bins.edges[1:])
    log_rate = np.interp(centres, centres[sampled], np.log10(rates))
    return float(np.sum(per_bin / 10.0**log_rate) / 3600.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", nargs="+", default=["config/production.yaml"])
    parser.add_argument("--particles", type=int, default=100)
    parser.add_argument("--every", type=int, default=25, help="sample every k-th rigidity bin")
    args = parser.parse_args()

    begin = time.perf_counter()
    config = merged_config(args.configfile)
    bins = RigidityBins(**config["rigidity_bins"])
    backtrack_config = config["backtrack"]
    sharding = Sharding(backtrack_config["particles_per_bin"], backtrack_config["shard_size"])
    accuracy = Accuracy(
        **{k: backtrack_config[k] for k in vars(Accuracy()) if k in backtrack_config}
    )
    sampled = sampled_bins(bins, args.every)
    centres = 0.5 * (bins.edges[:-1] + bins.edges[1:])
    rates, seconds, hours = {}, {}, {}
    for name, lens in lens_fields(config).items():
        start = time.perf_counter()
        field = get_field(lens.model, **lens.options)
        sampled_rates = lens_rates(field, centres[sampled], args.particles, accuracy)
        hours[name] = round(
            core_hours(bins, sampled, sampled_rates, backtrack_config["particles_per_bin"]), 1
        )
        rates[name] = {
            f"{centres[b]:.2f}": round(r, 1) for b, r in zip(sampled, sampled_rates, strict=True)
        }
        seconds[name] = round(time.perf_counter() - start, 1)
    n_lenses = len(rates)
    record.emit(
        record.record(
            "ensemble",
            sizes={
                "configfiles": args.configfile,
                "particles_per_sampled_bin": args.particles,
                "sampled_log10_rigidity": [round(float(centres[b]), 2) for b in sampled],
                "accuracy": vars(accuracy),
                "particles_per_bin": backtrack_config["particles_per_bin"],
                "n_bins": bins.n_bins,
                "lenses": list(rates),
            },
            wall_s={
                **{f"lens_{name}": value for name, value in seconds.items()},
                "total": round(time.perf_counter() - begin, 1),
            },
            throughput={"particles_per_s_one_core": rates},
            details={
                "backtrack_core_hours": hours,
                "backtrack_core_hours_total": round(sum(hours.values()), 1),
                "jobs": {
                    "backtrack": n_lenses * bins.n_bins * sharding.n_shards,
                    "lens_part": n_lenses * bins.n_bins,
                    "lens": n_lenses,
                },
            },
            modules=("numba",),
            cpus_used=1,
        )
    )


if __name__ == "__main__":
    main()
