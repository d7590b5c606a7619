"""Helpers of the training-stage tests: tiny toy-deflection skymap chunks written by the real
skymap stage (crsky.sky.simulate, seed 002's toy model), tiny models, and ``crsky train`` runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

from crsky.sky.dataset import DatasetConfig
from crsky.sky.simulate import run_chunk

# Strong-signal toy set of the issue: nside 16, half the maps isotropic and half with 20 % of
# their CRs from one source (toy deflection: coherent rotation ∝ 1/R, then blurring
# σ = 0.5 · 2.79 rad EeV / R; 15/45/40 % H/He/N above 40 EeV, Auger exposure).
TOY = {"n_cr": 100, "nside": 16, "signal_fraction": {"values": [0.0, 0.2]}}
TOY_SIZES = {"train": (2000, 1000), "validation": (500, 500), "test": (1000, 1000)}
SEED = 20191127

# Tiny models used by the training tests (dropout 0 so that runs compare number by number).
TINY_DEEPSPHERE = {
    "name": "tiny_deepsphere",
    "family": "deepsphere",
    "depth": 2,
    "channels": [8, 16],
    "K": 3,
    "dense_units": [32],
    "dropout": 0.0,
}
TINY_PATCHES = {
    "name": "tiny_patches",
    "family": "patches",
    "depth": 3,
    "channels": 8,
    "dense_units": [32],
    "dropout": 0.0,
}


def write_dataset(folder: Path, name: str, n_maps: int, chunk_size: int, **overrides) -> list[Path]:
    """Chunk files of a toy dataset ``name`` (real skymap simulation, fixed seed)."""
    dataset = DatasetConfig.from_dict(
        name, {**TOY, "n_maps": n_maps, "chunk_size": chunk_size, **overrides}
    )
    return [
        run_chunk(dataset, k, SEED, folder / name / f"chunk{k:04d}.h5")
        for k in range(dataset.n_chunks)
    ]


def train_command(output: Path, model: dict, settings: dict, chunks: dict, *extra: str) -> list:
    """The ``crsky train`` command line for one model."""
    return [
        sys.executable,
        "-m",
        "crsky.cli",
        "train",
        "--output",
        str(output),
        "--model",
        json.dumps(model),
        "--train-settings",
        json.dumps(settings),
        "--training",
        *map(str, chunks["train"]),
        "--validation",
        *map(str, chunks["validation"]),
        "--seed",
        str(SEED),
        *extra,
    ]


def run_train(*args, **kwargs) -> subprocess.CompletedProcess:
    """Run ``crsky train`` in a fresh process (TensorFlow fixes its devices at start-up), with
    the environment a user has (TensorFlow's log level is crsky's default)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        train_command(*args, **kwargs), capture_output=True, text=True, check=False, env=env
    )


def check_explain(folder: Path, test_chunk: Path, output: Path, n_maps: int) -> None:
    """``crsky explain`` of a model trained on the toy set, on ``n_maps`` test maps with 20 %
    signal CRs: the share of the positive relevance on the signal CRs is over twice theirs."""
    import csv

    from crsky.cli import main

    args = ["explain", "--model", folder, "--test", test_chunk, "--output", output]
    assert main([*args, "--maps-per-fraction", str(n_maps), "--examples", "2"]) == 0
    with open(output / "relevance.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))  # fractions 0 (nothing to explain) and 0.2
    assert float(row["signal_fraction"]) == 0.2 and int(row["n_maps"]) == n_maps
    assert float(row["relevance_on_signal"]) > 2 * float(row["signal_cr_share"])
    assert (output / "relevance.png").stat().st_size > 10_000
