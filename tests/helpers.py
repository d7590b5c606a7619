"""Helpers shared by test modules (imported as ``helpers``; conftest.py holds only fixtures)."""

import json
import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import yaml

from crsky.backtrack import Accuracy
from crsky.backtrack.shard import ShardJob, run_shard
from crsky.binning import RigidityBins, Sharding
from crsky.cli._config import merge_configs
from crsky.evaluate.pair_counts import write_pair_counts
from crsky.lens import Lens, build_part, finalize_lens, write_part
from crsky.sky.dataset import DatasetConfig
from crsky.sky.simulate import run_chunk
from crsky.stats.two_point import psi_grid_deg

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
BIN = Path(sys.executable).parent
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "profiles", "envs", "pyproject.toml")


def random_unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    """n isotropic unit vectors (n, 3)."""
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1)[:, None]


def run_snakemake(*args: str, cwd: Path, check: bool = True) -> tuple[int, str]:
    """(exit status, stdout + stderr) of ``snakemake ARGS`` in ``cwd``, with this venv's
    ``crsky`` on the PATH. ``check``: raise AssertionError with the output on failure."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(
        [str(BIN / "snakemake"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{output}")
    return result.returncode, output


def snakemake(*args: str, cwd: Path, check: bool = True) -> str:
    """stdout + stderr of ``snakemake ARGS`` in ``cwd`` (see :func:`run_snakemake`)."""
    return run_snakemake(*args, cwd=cwd, check=check)[1]


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a (dry-)run."""
    table = output.split("Job stats:")[1]
    return {
        m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"
    }


def workflow_copy(folder: Path, overrides: dict | None = None) -> Path:
    """A user's checkout without results: the workflow files copied into ``folder``, plus
    config/test.yaml with ``overrides`` if given. Every test that runs Snakemake runs in such a
    copy, never in the repository (where ``make run`` may have left results/ and logs/)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / name)
    if overrides:
        (folder / "config" / "test.yaml").write_text(yaml.safe_dump(overrides))
    return folder


def merged_config(*files: str) -> dict:
    """Config files of the repository merged the way Snakemake merges --configfile (mappings
    key by key)."""
    config: dict = {}
    for name in files:
        config = merge_configs(config, yaml.safe_load((REPO / name).read_text()))
    return config


# --- real, tiny inputs of every stage (tests of bad input and faults) ----------------------
TINY_SEED = 5
TINY_BINS = RigidityBins(19.0, 20.0, 2)
_SKY = {"n_cr": 20, "nside": 4, "exposure": {"model": "full_sky"}}
TINY_DATASETS = {
    "test": {**_SKY, "n_maps": 20, "chunk_size": 10, "signal_fraction": {"values": [0.0, 0.5]}},
    "isotropy": {**_SKY, "n_maps": 20, "chunk_size": 20, "signal_fraction": {"value": 0.0}},
    "coarse": {**_SKY, "nside": 2, "n_maps": 20, "chunk_size": 20, "signal_fraction": {"value": 0}},
    "lensed": {
        **_SKY,
        "n_maps": 4,
        "chunk_size": 4,
        "nside": 1,
        "composition": {"H": 1.0},
        "energy_min_eev": 10.0,
        "energy_max_eev": 100.0,
        "deflection": {"mode": "lens"},
    },
}


def build_tiny_inputs(root: Path) -> dict:
    """Real, tiny inputs of every stage in ``root``: backtracking shards (2 bins x 2 shards of the
    zero field, nside 1), the lens built from them, skymap chunks of TINY_DATASETS (nside 4, 20
    CRs per map; 'lensed' through that lens) and the pair counts of 'test' and 'isotropy'."""
    sharding = Sharding(24, 12)  # 2 particles per nside-1 pixel
    shards = {}
    for b in range(TINY_BINS.n_bins):
        for s in range(sharding.n_shards):
            job = ShardJob(TINY_SEED, "zero", {}, TINY_BINS, b, sharding, s, 1, Accuracy())
            path = root / "shards" / f"bin{b:03d}" / f"shard{s:04d}.h5"
            shards.setdefault(b, []).append(run_shard(job, path, threads=1))
    parts = [
        write_part(build_part(paths, "zero", 1, b), root / "parts" / f"bin{b:03d}.npz")
        for b, paths in shards.items()
    ]
    finalize_lens(parts, root / "lens")
    chunks = {}
    for name, spec in TINY_DATASETS.items():
        dataset = DatasetConfig.from_dict(name, spec)
        lens = Lens.load(root / "lens") if name == "lensed" else None
        chunks[name] = [
            run_chunk(dataset, k, TINY_SEED, root / name / f"chunk{k:04d}.h5", lens, root / "lens")
            for k in range(dataset.n_chunks)
        ]
    psi = psi_grid_deg()
    pairs = {
        name: [
            write_pair_counts(c, root / "pairs" / name / c.name, psi, threads=1)
            for c in chunks[name]
        ]
        for name in ("test", "isotropy")
    }
    return {"root": root, "shards": shards, "parts": parts, "chunks": chunks, "pairs": pairs}


def flip_bytes(path: Path, fraction: float = 0.5, n: int = 64) -> Path:
    """Corrupt a file without truncating it: invert ``n`` bytes at ``fraction`` of its length."""
    raw = bytearray(path.read_bytes())
    at = int(len(raw) * fraction)
    raw[at : at + n] = bytes(b ^ 0xFF for b in raw[at : at + n])
    path.write_bytes(bytes(raw))
    return path


def flip_dataset_bytes(path: Path, name: str, n: int = 16) -> Path:
    """Corrupt the stored bytes of dataset ``name`` (its first HDF5 chunk) in place, leaving the
    file's structure intact: what a bad disk sector or a partial copy does."""
    with h5py.File(path, "r") as f:
        info = f[name].id.get_chunk_info(0)
    offset = info.byte_offset + info.size // 2
    with open(path, "r+b") as f:
        f.seek(offset)
        raw = f.read(n)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in raw))
    return path


def limit_file_size(limit_bytes: int):
    """A ``preexec_fn`` for subprocess: in the child, writing a file beyond ``limit_bytes``
    fails with EFBIG (RLIMIT_FSIZE; Python ignores SIGXFSZ), like a full disk."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def save_tiny_model(folder: Path, nside: int, **config) -> Path:
    """A tiny deterministic Keras model on CR lists: the mean over a map's CRs of a random
    per-pixel weight (an embedding), through a sigmoid. Its score is a continuous function of
    the map, like a network's, so p-values of isotropic maps are uniform. ``config``: more keys
    of its config.json (e.g. ``training``, the chunks it was trained on)."""
    import keras

    keras.utils.set_random_seed(5)
    pixel = keras.Input((None,), dtype="int32", name="pixel")
    weights = keras.layers.Embedding(12 * nside * nside, 1, name="pixel_weight")(pixel)
    pooled = keras.layers.GlobalAveragePooling1D()(weights)
    score = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Rescaling(20.0)(pooled))
    model = keras.Model(pixel, score)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    (folder / "config.json").write_text(json.dumps({"nside": nside, **config}))
    (folder / "history.csv").write_text(
        "epoch,loss,auc,val_loss,val_auc,learning_rate\n"
        "1,0.69,0.55,0.68,0.56,0.001\n2,0.61,0.71,0.63,0.69,0.001\n"
    )
    return folder
