"""Point-cloud family against DeepSphere: training maps/s from CR lists (not a test; prints one
JSON object in the layout of benchmarks/record.py, rows under ``throughput.models``; one line per
row on stderr).

One training step (forward + backward + Adam update) per call, both networks fed the same CR
lists (``pixel`` RING at ``--nside``, ``--n-cr`` CRs per map, batch ``--batch``): DeepSphere
behind its rendering layer (seed 002's order: depth 4, K = 5, channels 16, 32, 64, 64, dense 64)
and the pointcloud network (K = 5 scales, channels 32, 32, dense 64), at equal batch. The
pointcloud cost grows as N² per map (the Gram matrix of its CRs), DeepSphere's as npix.
Every device TensorFlow sees is measured (the CPU here; on a GPU host also the GPUs).

    python benchmarks/pointcloud.py [--nside 64] [--n-cr 1000] [--batch 64] [--seconds 5]
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import record
import tensorflow as tf

from crsky.models import ModelSpec
from crsky.train.loop import build_cr_model

SPECS = {
    "deepsphere": ModelSpec(
        name="deepsphere", depth=4, channels=(16, 32, 64, 64), K=5, dense_units=(64,)
    ),
    "pointcloud": ModelSpec(
        name="pointcloud", family="pointcloud", depth=2, channels=(32, 32), K=5, dense_units=(64,)
    ),
}


def step_rate(model: keras.Model, crs: dict, seconds: float) -> float:
    """Training maps/s of ``model`` on the CR lists ``crs`` (one warm-up step)."""
    model.compile(keras.optimizers.Adam(1e-4), "binary_crossentropy")
    batch = crs["pixel"].shape[0]
    y = (np.arange(batch) % 2).astype(np.float32)[:, None]
    model.train_on_batch(crs, y)
    n, begin = 0, time.perf_counter()
    while time.perf_counter() - begin < seconds:
        model.train_on_batch(crs, y)
        n += batch
    return n / (time.perf_counter() - begin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nside", type=int, default=64)
    parser.add_argument("--n-cr", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    begin = time.perf_counter()
    rng = np.random.default_rng(1)
    crs = {"pixel": rng.integers(0, 12 * args.nside**2, (args.batch, args.n_cr)).astype(np.int32)}
    devices = ["/CPU:0"] + [
        d.name.replace("physical_device:", "") for d in tf.config.list_physical_devices("GPU")
    ]
    rows = []
    for device in devices:
        for name, spec in SPECS.items():
            with tf.device(device):
                model = build_cr_model(spec, args.nside)
                rate = step_rate(model, crs, args.seconds)
            rows.append(
                {
                    "device": device,
                    "model": name,
                    "nside": args.nside,
                    "n_cr": args.n_cr,
                    "batch": args.batch,
                    "parameters": model.count_params(),
                    "maps_per_s": round(rate, 1),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    record.emit(
        record.record(
            "pointcloud",
            sizes={
                "nside": args.nside,
                "n_cr": args.n_cr,
                "batch": args.batch,
                "seconds_per_case": args.seconds,
            },
            wall_s={"total": round(time.perf_counter() - begin, 1)},
            throughput={"models": rows},
            details={"devices": devices},
            modules=("tensorflow", "keras"),
            cpus_used=os.cpu_count(),
        )
    )


if __name__ == "__main__":
    main()
