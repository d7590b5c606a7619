"""One backtracking shard: sample, trace, and write the HDF5 file of DESIGN.md section 4. This
module owns the format: the writer (:func:`run_shard`), the reader with its content checks
(:func:`read_shard`) and the attribute checks the lens stage applies to a bin's shards.

Datasets carry HDF5 Fletcher-32 checksums, so flipped bytes are caught when read; the reader also
refuses contents that a valid HDF5 file can still hold but a tracer never writes (non-finite or
non-unit directions, rigidities outside the shard's bin, negative or non-finite path lengths).
"""

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from crsky import __version__
from crsky.backtrack import Accuracy, backtrack, resolved_integrator
from crsky.backtrack.sampling import (
    check_particles_per_bin,
    sample_log_uniform_rigidity,
    sample_stratified_directions,
)
from crsky.binning import RigidityBins, Sharding
from crsky.errors import ConfigError, InputFileError
from crsky.fields import FieldModel, get_field
from crsky.io import atomic_h5, write_dataset
from crsky.rng import job_rng

__all__ = [
    "BIN_ATTRS",
    "SHARD_DATASETS",
    "SHARED_ATTRS",
    "ShardJob",
    "check_complete",
    "check_same_run",
    "check_shard",
    "read_shard",
    "run_shard",
    "write_shard",
]

log = logging.getLogger(__name__)

SHARD_DATASETS = {
    "observed_direction": ("float32", 2),
    "edge_direction": ("float32", 2),
    "log10_rigidity": ("float32", 1),
    "path_length_kpc": ("float32", 1),
    "escaped": ("bool", 1),
}
_BATCH = 4096  # particles per progress line
_UNIT_ATOL = 1e-4  # |d| of a stored float32 unit vector (rounding: ~1e-7)
_LOG10_R_ATOL = 1e-5  # float32 rounding of log10(R / V) ~ 20 (~2e-6)
# Attributes that all shards of a lens must share (besides field model and nside).
SHARED_ATTRS = (
    "field_options",
    "engine",
    "seed",
    "n_bins",
    "particles_per_bin",
    "accuracy_tolerance",
    "accuracy_min_step_kpc",
    "accuracy_max_step_kpc",
    "accuracy_max_path_length_kpc",
    "accuracy_r_galaxy_kpc",
)
BIN_ATTRS = ("bin_index", "log10_rigidity_bin", "n_shards")
_REQUIRED_ATTRS = (
    "field_model",
    "nside",
    "shard_index",
    "particle_range",
    *SHARED_ATTRS,
    *BIN_ATTRS,
)


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
            "integrator": resolved_integrator(self.accuracy, field)
            if self.engine == "builtin"
            else "crpropa PropagationCK (Cash-Karp)",
            "crsky_version": __version__,
        }


def run_shard(job: ShardJob, output: str | Path, threads: int | None = None) -> Path:
    """Sample the shard's particles, backtrack them, and write ``output`` atomically."""
    field = get_field(job.field_model, **job.field_options)
    check_particles_per_bin(job.sharding.particles_per_bin, job.nside)
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
    return write_shard(output, columns, attrs)


def write_shard(output: str | Path, columns: dict[str, np.ndarray], attrs: dict) -> Path:
    """Write a shard file atomically: every dataset of SHARD_DATASETS from ``columns`` (by name,
    converted to the stored dtype, with Fletcher-32 checksums) and the attributes ``attrs``
    (:meth:`ShardJob.attributes`)."""
    with atomic_h5(output) as f:
        for name, (dtype, _) in SHARD_DATASETS.items():
            write_dataset(f, name, np.asarray(columns[name]).astype(dtype), fletcher32=True)
        for key, value in attrs.items():
            f.attrs[key] = value
    return Path(output)


def _native(value):
    """HDF5 attribute value -> plain Python (for JSON and comparisons)."""
    if isinstance(value, np.ndarray):
        return [_native(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    return value


def read_shard(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a shard: (datasets by name, attributes as plain Python values). Raises
    InputFileError naming the file if it is missing, unreadable or corrupt (checksum), lacks a
    documented dataset or attribute, or holds values a tracer never writes."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            data = {name: f[name][()] for name in SHARD_DATASETS if name in f}
            attrs = {key: _native(value) for key, value in f.attrs.items()}
    except (OSError, KeyError) as err:
        raise InputFileError(f"cannot read backtracking shard {str(path)!r}: {err}") from err
    where = f"backtracking shard {str(path)!r}"
    missing = sorted(set(SHARD_DATASETS) - set(data))
    if missing:
        raise InputFileError(f"{where} lacks datasets {missing}")
    missing = [key for key in _REQUIRED_ATTRS if key not in attrs]
    if missing:
        raise InputFileError(f"{where} lacks the attributes {missing}")
    n = len(data["escaped"])
    for name, (dtype, ndim) in SHARD_DATASETS.items():
        expected = (n, 3) if ndim == 2 else (n,)
        if data[name].shape != expected or data[name].dtype != np.dtype(dtype):
            raise InputFileError(
                f"{where}: dataset {name!r} is {data[name].dtype} {data[name].shape}, expected "
                f"{dtype} {expected}"
            )
    _check_contents(where, data, attrs)
    return data, attrs


def _check_contents(where: str, data: dict[str, np.ndarray], attrs: dict) -> None:
    for name in ("observed_direction", "edge_direction"):
        norm = np.linalg.norm(data[name].astype(np.float64), axis=1)
        bad = ~(np.abs(norm - 1.0) <= _UNIT_ATOL)  # also NaN
        if bad.any():
            k = int(np.argmax(bad))
            raise InputFileError(
                f"{where}: {name!r} of particle {k} has length {float(norm[k])!r}, not a unit "
                f"vector ({int(bad.sum())} such rows; corrupt file)"
            )
    lo, hi = attrs["log10_rigidity_bin"]
    log10_r = data["log10_rigidity"].astype(np.float64)
    bad = ~((log10_r >= lo - _LOG10_R_ATOL) & (log10_r <= hi + _LOG10_R_ATOL))
    if bad.any():
        k = int(np.argmax(bad))
        raise InputFileError(
            f"{where}: log10_rigidity {float(log10_r[k])!r} of particle {k} lies outside its bin "
            f"{lo!r} ... {hi!r} ({int(bad.sum())} such particles; corrupt file)"
        )
    path_kpc = data["path_length_kpc"]
    bad = ~(path_kpc >= 0)  # also NaN
    if bad.any() or not np.all(np.isfinite(path_kpc)):
        raise InputFileError(f"{where}: path_length_kpc has negative or non-finite values")


def check_shard(path: Path, attrs: dict, n: int, field_model: str, nside: int, bin_index) -> None:
    """InputFileError unless the shard at ``path`` (``n`` particles, attributes ``attrs``) was
    traced in ``field_model`` at lens ``nside`` for rigidity bin ``bin_index`` (None: any) and
    holds its whole particle range."""
    where = f"backtracking shard {str(path)!r}"
    if attrs["field_model"] != field_model:
        raise InputFileError(
            f"{where} was traced in field model {attrs['field_model']!r}, expected {field_model!r}"
        )
    if attrs["nside"] != nside:
        raise InputFileError(
            f"{where} was sampled at nside {attrs['nside']}, expected the lens nside {nside}"
        )
    if bin_index is not None and attrs["bin_index"] != bin_index:
        raise InputFileError(
            f"{where} belongs to rigidity bin {attrs['bin_index']}, expected bin {bin_index}"
        )
    first, stop = attrs["particle_range"]
    if n != stop - first:
        raise InputFileError(
            f"{where} holds {n} particles but its particle_range {first} ... {stop} needs "
            f"{stop - first} (truncated or altered file)"
        )
    try:
        check_particles_per_bin(attrs["particles_per_bin"], nside)
    except ConfigError as err:
        raise InputFileError(f"{where}: {err}") from None


def check_same_run(path: Path, attrs: dict, ref_path: Path, ref: dict, keys) -> None:
    """InputFileError unless shard ``path`` agrees with shard ``ref_path`` in ``keys``."""
    for key in keys:
        if attrs[key] != ref[key]:
            raise InputFileError(
                f"backtracking shards {str(ref_path)!r} and {str(path)!r} differ in {key!r}: "
                f"{ref[key]!r} vs {attrs[key]!r}; all shards of a bin must come from one run"
            )


def check_complete(paths: list[Path], shard_indices: list[int], n_shards: int, bin_index) -> None:
    """InputFileError unless ``paths`` hold each shard 0 ... n_shards - 1 of the bin once."""
    seen: dict[int, Path] = {}
    for path, index in zip(paths, shard_indices, strict=True):
        if index in seen:
            raise InputFileError(
                f"backtracking shards {str(seen[index])!r} and {str(path)!r} are both shard "
                f"{index} of bin {bin_index}"
            )
        seen[index] = path
    missing = sorted(set(range(n_shards)) - set(seen))
    if missing:
        raise InputFileError(
            f"rigidity bin {bin_index} has {n_shards} shards but shards {missing} are missing "
            f"(given: {[str(p) for p in paths]})"
        )
