"""One backtracking shard: sample, trace, and write the HDF5 file of DESIGN.md section 4."""

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from crsky import __version__
from crsky.backtrack import Accuracy, backtrack
from crsky.backtrack.sampling import sample_log_uniform_rigidity, sample_stratified_directions
from crsky.binning import RigidityBins, Sharding
from crsky.errors import InputFileError
from crsky.fields import FieldModel, get_field
from crsky.io import atomic_h5, write_dataset
from crsky.rng import job_rng

__all__ = ["SHARD_DATASETS", "ShardJob", "read_shard", "run_shard"]

log = logging.getLogger(__name__)

SHARD_DATASETS = {
    "observed_direction": ("float32", 2),
    "edge_direction": ("float32", 2),
    "log10_rigidity": ("float32", 1),
    "path_length_kpc": ("float32", 1),
    "escaped": ("bool", 1),
}
_BATCH = 4096  # particles per progress line


@dataclass(frozen=True)
class ShardJob:
    """Everything that determines the bytes of one shard."""

    seed: int
    field_model: str
    field_options: dict
    bins: RigidityBins
    bin_index: int
    sharding: Sharding
    shard_index: int
    nside: int
    accuracy: Accuracy
    engine: str = "builtin"

    def attributes(self, field: FieldModel) -> dict:
        """HDF5 attributes of the shard (provenance); ``field`` is the job's field model.

        Raises ConfigError for a bin or shard index outside the configured grid.
        """
        lo, hi = self.bins.bin_range(self.bin_index)
        first, stop = self.sharding.particle_range(self.shard_index)
        return {
            "field_model": self.field_model,
            "field_options": json.dumps(self.field_options, sort_keys=True),
            "field_description": field.description,
            "engine": self.engine,
            "seed": self.seed,
            "bin_index": self.bin_index,
            "log10_rigidity_bin": [lo, hi],
            "n_bins": self.bins.n_bins,
            "shard_index": self.shard_index,
            "n_shards": self.sharding.n_shards,
            "particle_range": [first, stop],
            "particles_per_bin": self.sharding.particles_per_bin,
            "nside": self.nside,
            **{f"accuracy_{k}": v for k, v in asdict(self.accuracy).items()},
            "crsky_version": __version__,
        }


def run_shard(job: ShardJob, output: str | Path, threads: int | None = None) -> Path:
    """Sample the shard's particles, backtrack them, and write ``output`` atomically."""
    field = get_field(job.field_model, **job.field_options)
    attrs = job.attributes(field)  # validates bin and shard indices first
    lo, hi = attrs["log10_rigidity_bin"]
    first, stop = attrs["particle_range"]
    n = stop - first
    rng = job_rng(job.seed, "backtrack", job.bin_index, job.shard_index)
    observed, _ = sample_stratified_directions(job.nside, first, n, rng)
    log10_r = sample_log_uniform_rigidity(lo, hi, n, rng)
    edge = np.empty((n, 3))
    escaped = np.empty(n, dtype=bool)
    path = np.empty(n)
    start = time.perf_counter()
    for begin in range(0, n, _BATCH):
        end = min(begin + _BATCH, n)
        result = backtrack(
            observed[begin:end],
            10.0 ** log10_r[begin:end],
            field,
            job.engine,
            threads,
            **asdict(job.accuracy),
        )
        edge[begin:end] = result.edge_direction
        escaped[begin:end] = result.escaped
        path[begin:end] = result.path_length_kpc
        elapsed = time.perf_counter() - start
        log.info(
            "bin %d shard %d: %d/%d particles (%.0f /s, %.0f s left)",
            job.bin_index,
            job.shard_index,
            end,
            n,
            end / elapsed,
            (n - end) * elapsed / end,
        )
    columns = {
        "observed_direction": observed,
        "edge_direction": edge,
        "log10_rigidity": log10_r,
        "path_length_kpc": path,
        "escaped": escaped,
    }
    with atomic_h5(output) as f:
        for name, (dtype, _) in SHARD_DATASETS.items():
            write_dataset(f, name, columns[name].astype(dtype))
        for key, value in attrs.items():
            f.attrs[key] = value
    return Path(output)


def read_shard(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a shard: (datasets by name, attributes). Raises InputFileError naming the file if it
    is missing, unreadable, or lacks a dataset of the documented shape."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            data = {name: f[name][()] for name in SHARD_DATASETS if name in f}
            attrs = dict(f.attrs)
    except (OSError, KeyError) as err:
        raise InputFileError(f"cannot read backtracking shard {str(path)!r}: {err}") from err
    missing = sorted(set(SHARD_DATASETS) - set(data))
    if missing:
        raise InputFileError(f"backtracking shard {str(path)!r} lacks datasets {missing}")
    n = len(data["escaped"])
    for name, (_, ndim) in SHARD_DATASETS.items():
        expected = (n, 3) if ndim == 2 else (n,)
        if data[name].shape != expected:
            raise InputFileError(
                f"backtracking shard {str(path)!r}: dataset {name!r} has shape "
                f"{data[name].shape}, expected {expected}"
            )
    return data, attrs
