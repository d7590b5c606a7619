"""Training-stage throughput (not a test; prints one JSON object in the layout of
benchmarks/record.py).

- ``models``: maps/s of one training step (forward + backward + Adam update) of both families at
  nside 16, 32 and 64 on pre-rendered counts maps, batch ``--batch`` maps: DeepSphere with K = 5
  and channels (16, 32, 64, 64) (seed 002's order; depth 4 so that nside 16 fits), the 12-patch
  CNN of seed 000 (4 × (3×3 conv, 32 filters, max-pool), dense 768, 768);
- ``sparse_matmul``: the Chebyshev recursion T_1 … T_5 on (npix, 1024) float32 (a batch of 64 maps
  of 16 channels) with TensorFlow's CSR product (the layer) and COO ``sparse_dense_matmul``,
  forward + backward, and the DeepSphere step with either format; issue 6 quotes 3.5-6× for CSR;
- ``pipeline``: maps/s of the tf.data pipeline alone (read, permute, interleave, shuffle buffer,
  batch; CR lists out) on two 20,000-map chunks of 1,000 CRs at nside 64 simulated by the skymap
  stage (issue 6 target: >= 20,000 maps/s on 2 CPU cores; a from_generator + h5py pipeline
  reaches ~6,000), and of the rendering layer (CR lists -> counts maps) on the CPU.

Runs on every GPU that TensorFlow sees as well as on the CPU.

    python benchmarks/train.py [--batch 64] [--seconds 5] [--chunk-maps 20000]
                               [--parts models sparse pipeline]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import record
import tensorflow as tf

from crsky.models import ModelSpec
from crsky.models.deepsphere import build_deepsphere, chebyshev_terms, laplacian_matmul
from crsky.models.patches import build_patches
from crsky.models.render import RenderMaps
from crsky.models.spec import SEED000_PATCHES
from crsky.sky.dataset import DatasetConfig
from crsky.sky.simulate import run_chunk
from crsky.train.pipeline import ChunkSet, training_dataset

NSIDES = (16, 32, 64)
DEEPSPHERE = ModelSpec(
    name="deepsphere", depth=4, channels=(16, 32, 64, 64), K=5, dense_units=(64,), dropout=0.2
)
PATCHES = SEED000_PATCHES
PIPELINE_TARGET = 20_000


def timed_rate(step, items: int, seconds: float) -> float:
    """Items per second of ``step()`` (one warm-up call, then repeated for ``seconds``)."""
    step()
    n, begin = 0, time.perf_counter()
    while time.perf_counter() - begin < seconds:
        step()
        n += items
    return n / (time.perf_counter() - begin)


def model_rate(model: keras.Model, batch: int, seconds: float, rng) -> float:
    """Training maps/s of ``model`` on Poisson counts maps (mean 0.3 per pixel)."""
    model.compile(keras.optimizers.Adam(1e-4), "binary_crossentropy")
    x = rng.poisson(0.3, size=(batch, *model.input_shape[1:])).astype(np.float32)
    y = rng.integers(0, 2, size=(batch, 1)).astype(np.float32)
    return timed_rate(lambda: model.train_on_batch(x, y), batch, seconds)


def bench_models(device: str, batch: int, seconds: float, rng) -> list[dict]:
    rows = []
    for nside in NSIDES:
        builds = {
            "deepsphere": lambda n: build_deepsphere(DEEPSPHERE, n),
            "deepsphere_coo": lambda n: build_deepsphere(DEEPSPHERE, n, sparse_format="coo"),
            "patches": lambda n: build_patches(PATCHES, n),
        }
        for name, build in builds.items():
            with tf.device(device):
                model = build(nside)
                rate = model_rate(model, batch, seconds, rng)
            rows.append(
                {
                    "device": device,
                    "model": name,
                    "nside": nside,
                    "parameters": model.count_params(),
                    "batch": batch,
                    "maps_per_s": round(rate, 1),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def bench_sparse(device: str, seconds: float, rng) -> list[dict]:
    rows = []
    for nside in NSIDES:
        f = tf.constant(rng.normal(size=(12 * nside**2, 1024)).astype(np.float32))
        rates = {}
        for fmt in ("csr", "coo"):
            with tf.device(device):

                @tf.function
                def step(f=f, fmt=fmt, nside=nside):
                    matmul = laplacian_matmul(nside, fmt)  # in the graph, as in ChebConv.call
                    with tf.GradientTape() as tape:
                        tape.watch(f)
                        loss = tf.add_n([tf.reduce_sum(t) for t in chebyshev_terms(f, 5, matmul)])
                    return tape.gradient(loss, f)

                rates[fmt] = timed_rate(lambda step=step: step().numpy(), 1, seconds)
        rows.append(
            {
                "device": device,
                "nside": nside,
                "columns": 1024,
                "K": 5,
                "csr_per_s": round(rates["csr"], 2),
                "coo_per_s": round(rates["coo"], 2),
                "csr_over_coo": round(rates["csr"] / rates["coo"], 2),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def bench_pipeline(folder: Path, chunk_maps: int, batch: int, seconds: float, rng) -> dict:
    dataset = DatasetConfig.from_dict(
        "bench",
        {
            "n_maps": 2 * chunk_maps,
            "chunk_size": chunk_maps,
            "n_cr": 1000,
            "nside": 64,
            "signal_fraction": {"values": [0.0, 0.1]},
        },
    )
    paths = [run_chunk(dataset, k, 1, folder / f"chunk{k:04d}.h5") for k in range(2)]
    chunks = ChunkSet.open(paths, "training")
    out = {"chunks": 2, "maps_per_chunk": chunk_maps, "n_cr": 1000, "nside": 64, "batch": batch}
    for with_energy in (False, True):
        data, _ = training_dataset(chunks, with_energy, "classification", batch, 0, 2, 1, 10_000, 2)
        begin, n = time.perf_counter(), 0
        for _, target in data:
            n += int(target.shape[0])
        key = "pipeline_maps_per_s_pixel_and_energy" if with_energy else "pipeline_maps_per_s"
        out[key] = round(n / (time.perf_counter() - begin), 1)
    out["target_maps_per_s"] = PIPELINE_TARGET
    pixel = tf.constant(rng.integers(0, 12 * 64**2, size=(batch, 1000)).astype(np.int32))
    for nside in NSIDES:
        layer = RenderMaps("deepsphere", nside)
        render = tf.function(lambda p, layer=layer: layer({"pixel": p}))
        p = pixel % (12 * nside**2)
        out[f"render_cpu_maps_per_s_nside{nside}"] = round(
            timed_rate(lambda p=p, render=render: render(p).numpy(), batch, seconds), 1
        )
    print(json.dumps(out), file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="maps per training step")
    parser.add_argument("--seconds", type=float, default=5.0, help="timing per case")
    parser.add_argument("--chunk-maps", type=int, default=20_000, help="maps per pipeline chunk")
    parser.add_argument(
        "--parts", nargs="+", default=["models", "sparse", "pipeline"], help="what to time"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    devices = ["/CPU:0"] + [d.name for d in tf.config.list_logical_devices("GPU")]
    begin = time.perf_counter()
    models, sparse, pipeline = [], [], {}
    if "models" in args.parts:
        models = [r for d in devices for r in bench_models(d, args.batch, args.seconds, rng)]
    if "sparse" in args.parts:
        sparse = [r for d in devices for r in bench_sparse(d, args.seconds, rng)]
    if "pipeline" in args.parts:
        with tempfile.TemporaryDirectory() as tmp:
            pipeline = bench_pipeline(Path(tmp), args.chunk_maps, 128, args.seconds, rng)
    record.emit(
        record.record(
            "train",
            sizes={
                "nside": list(NSIDES),
                "batch": args.batch,
                "pipeline_chunk_maps": args.chunk_maps,
            },
            wall_s={"total": round(time.perf_counter() - begin, 1)},
            throughput={"models": models, "sparse_matmul": sparse, "pipeline": pipeline},
            details={"devices": devices},
            modules=("tensorflow", "keras"),
            cpus_used=os.cpu_count(),
        )
    )


if __name__ == "__main__":
    main()
