"""Per-chunk likelihood scores (``crsky likelihood``): ``likelihood_profiled`` and
``likelihood_oracle`` (crsky.likelihood) of every map of one skymap chunk, against the signal
model of a test set. Model-independent, so one job per chunk serves every model's evaluation.

The signal model is the dataset config (and, in lens mode, the lens: attribute ``lens_folder``,
checked against the recorded ``lens_cfg``) of a chunk of the test set (``signal_chunk``); the
scored chunk must have the same background (nside, CRs per map, exposure, energy range,
spectrum). Roles:

- ``test``: the oracle at each map's own signal strength with its stored sources
  (``source_direction``, toy mode also ``deflection_axis``);
- ``isotropy``: the oracle at every tested signal fraction, each map with sources drawn as the
  simulation draws them for signal maps of that strength
  (job_rng(chunk seed, "evaluate", name_stream_id("likelihood_oracle"), dataset stream, chunk)).

File (HDF5, attribute ``format`` = "crsky-likelihood"): ``profiled_log_lr`` (n_maps,) Λ_max,
``profiled_f``, ``profiled_direction`` (n_maps, 3) float32 (NaN: f = 0 everywhere) and, toy mode,
``profiled_axis``; ``oracle_log_lr`` (n_maps,) for the test role, (n_maps, n_fractions) for the
isotropy role (−inf: the map is impossible under the signal), ``oracle_f`` (test role: the
maximum-likelihood fraction with the true sources), and for the isotropy role the drawn
``oracle_source_direction`` (n_maps, n_fractions, n_src, 3) float32 (toy:
``oracle_deflection_axis``). Attributes: ``role``, ``fractions``, ``methods``, ``chunk``,
``signal_chunk``, ``signal_dataset``, ``signal_config``, ``grid``, ``lens_folder``,
``counting``, ``crsky_version`` and ``chunk_sha256`` (the scored chunk's content hash: the
reader refuses scores of another chunk, crsky.store.check_chunk_hash).
"""

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numba
import numpy as np

from crsky import __version__
from crsky.errors import ConfigError, InputFileError
from crsky.io import atomic_h5, write_dataset
from crsky.likelihood import ProfileGrid, draw_sources, oracle_fraction, oracle_log_lr, signal_model
from crsky.rng import job_rng, name_stream_id
from crsky.sky.dataset import DatasetConfig, dataset_stream_id
from crsky.sky.simulate import SkySimulator, signal_counts_for
from crsky.store import CHUNK_HASH_ATTR, check_chunk_hash, chunk_hash, open_chunk

__all__ = [
    "FORMAT",
    "METHODS",
    "ROLES",
    "LikelihoodJob",
    "method_scores",
    "read_likelihood_scores",
    "score_chunk",
    "write_likelihood_scores",
]

FORMAT = "crsky-likelihood"
METHODS = ("profiled", "oracle")
ROLES = ("test", "isotropy")
_BATCH_MAPS = 1024
_BACKGROUND_KEYS = ("exposure", "energy_min_eev", "energy_max_eev", "spectrum")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LikelihoodJob:
    """One chunk to score (``chunk``) against the signal model of ``signal_chunk`` (a chunk of
    the test set). ``fractions``: the tested signal fractions (isotropy role). ``lens_folder``
    overrides the signal chunk's attribute."""

    chunk: Path
    signal_chunk: Path
    role: str
    fractions: tuple[float, ...] = ()
    methods: tuple[str, ...] = METHODS
    grid: ProfileGrid = field(default_factory=ProfileGrid)
    lens_folder: Path | None = None
    threads: int | None = None


def _check_job(job: LikelihoodJob) -> None:
    if job.role not in ROLES:
        raise ConfigError(f"likelihood role must be one of {ROLES}, got {job.role!r}")
    unknown = sorted(set(job.methods) - set(METHODS))
    if unknown or not job.methods:
        raise ConfigError(
            f"evaluation.likelihood.methods must be a non-empty subset of {list(METHODS)}, "
            f"got {list(job.methods)}"
        )
    if job.role == "isotropy" and "oracle" in job.methods:
        if not job.fractions:
            raise ConfigError("the oracle of an isotropy chunk needs the tested signal fractions")
        bad = [f for f in job.fractions if not 0.0 <= f <= 1.0]
        if bad:
            raise ConfigError(f"signal fractions must lie in [0, 1], got {bad}")


def _signal_dataset(signal_chunk: Path) -> tuple[DatasetConfig, dict]:
    with open_chunk(signal_chunk) as chunk:
        attrs = chunk.attrs
        return DatasetConfig.from_dict(chunk.dataset, chunk.config), attrs


def _load_lens(dataset: DatasetConfig, attrs: dict, override, signal_chunk: Path):
    """The lens of a lens-mode signal model: ``override`` or the chunk's ``lens_folder``,
    checked against the lens.cfg recorded in the chunk."""
    if dataset.deflection_mode != "lens":
        return None, None
    from crsky.sky.deflection import load_lens

    folder = override if override is not None else attrs.get("lens_folder")
    if not folder:
        raise ConfigError(
            f"lens-mode likelihood without a lens: chunk {str(signal_chunk)!r} of dataset "
            f"{dataset.name!r} records no 'lens_folder' and no --lens was given"
        )
    lens = load_lens(folder)
    recorded = attrs.get("lens_cfg")
    current = (Path(folder) / "lens.cfg").read_text()
    if recorded is not None and recorded != current:
        raise InputFileError(
            f"lens {str(folder)!r} differs from the lens.cfg recorded in {str(signal_chunk)!r}: "
            "the maps were simulated with another lens; rebuild the maps or give that lens"
        )
    return lens, str(folder)


def _check_background(chunk, dataset: DatasetConfig, path: Path, signal_chunk: Path) -> None:
    """InputFileError unless the scored chunk's maps have the signal model's background."""
    config = chunk.config
    if chunk.nside != dataset.nside or chunk.n_cr != dataset.n_cr:
        raise InputFileError(
            f"chunk {str(path)!r} (nside {chunk.nside}, {chunk.n_cr} CRs per map) does not match "
            f"the signal model of {str(signal_chunk)!r} (nside {dataset.nside}, {dataset.n_cr} CRs)"
        )
    for key in _BACKGROUND_KEYS:
        if config.get(key) != dataset.config.get(key):
            raise InputFileError(
                f"chunk {str(path)!r} has {key} = {config.get(key)!r}, the signal model of "
                f"{str(signal_chunk)!r} {dataset.config.get(key)!r}: the likelihood needs the "
                "same background"
            )


def _check_sources(path: Path, toy: bool) -> None:
    """The oracle of signal maps needs their stored sources (and toy axes)."""
    with h5py.File(path, "r") as f:
        missing = [
            n for n in ("source_direction",) + (("deflection_axis",) if toy else ()) if n not in f
        ]
        has_signal = "n_signal" in f and bool(np.any(f["n_signal"][()] > 0))
    if missing and has_signal:
        raise InputFileError(
            f"likelihood_oracle needs the true sources of the signal maps, but chunk "
            f"{str(path)!r} stores no {missing}"
        )


def _batches(n_maps: int):
    for start in range(0, n_maps, _BATCH_MAPS):
        yield start, min(start + _BATCH_MAPS, n_maps)


def score_chunk(job: LikelihoodJob) -> tuple[dict[str, np.ndarray], dict]:
    """Every check, then the scores of every map of ``job.chunk``: (datasets, attributes) of
    the file :func:`write_likelihood_scores` writes."""
    _check_job(job)
    dataset, signal_attrs = _signal_dataset(job.signal_chunk)
    lens, lens_folder = _load_lens(dataset, signal_attrs, job.lens_folder, job.signal_chunk)
    if "oracle" in job.methods and job.role == "test":
        _check_sources(Path(job.chunk), dataset.deflection_mode == "toy")
    previous = numba.get_num_threads()
    try:
        if job.threads is not None:
            numba.set_num_threads(job.threads)
        with open_chunk(job.chunk) as chunk:
            _check_background(chunk, dataset, Path(job.chunk), Path(job.signal_chunk))
            model = signal_model(dataset, chunk.nside, lens, job.grid)
            results = _score(job, chunk, dataset, model, lens)
            attrs = _attributes(job, chunk, dataset, lens_folder)
    finally:
        numba.set_num_threads(previous)
    return results, attrs


def write_likelihood_scores(job: LikelihoodJob, output) -> Path:
    """Score every map of ``job.chunk`` and write the file atomically to ``output``."""
    begin = time.perf_counter()
    results, attrs = score_chunk(job)
    with atomic_h5(output) as f:
        for name, values in results.items():
            write_dataset(f, name, values)
        for key, value in attrs.items():
            f.attrs[key] = value
        f.attrs[CHUNK_HASH_ATTR] = chunk_hash(job.chunk)
    seconds = time.perf_counter() - begin
    n = len(next(iter(results.values())))
    log.info("%s: %d maps in %.1f s (%.1f ms/map)", job.chunk, n, seconds, 1e3 * seconds / n)
    return Path(output)


def _score(job, chunk, dataset, model, lens) -> dict[str, np.ndarray]:
    n_maps = chunk.n_maps
    out: dict[str, list] = {}

    def add(name, values):
        out.setdefault(name, []).append(values)

    simulator = rng = None
    if "oracle" in job.methods and job.role == "isotropy":
        simulator = SkySimulator(dataset, lens)
        rng = job_rng(
            int(chunk.attrs["seed"]),
            "evaluate",
            name_stream_id("likelihood_oracle"),
            dataset_stream_id(chunk.dataset),
            int(chunk.attrs["chunk"]),
        )
    for start, stop in _batches(n_maps):
        crs = chunk.cosmic_rays(start, stop)
        if "profiled" in job.methods:
            profile = model.profile(crs.pixel, crs.log10_energy)
            add("profiled_log_lr", profile.log_lr)
            add("profiled_f", profile.f_hat)
            add("profiled_direction", profile.direction.astype(np.float32))
            if profile.axis is not None:
                add("profiled_axis", profile.axis.astype(np.float32))
        if "oracle" not in job.methods:
            continue
        if job.role == "test":
            labels = chunk.labels(start, stop)
            r = model.ratios(
                crs.pixel,
                crs.log10_energy,
                labels["source_direction"],
                labels.get("deflection_axis"),
            )
            n_signal = labels["n_signal"].astype(np.int64)
            add(
                "oracle_log_lr",
                oracle_log_lr(
                    r, n_signal, labels["signal_fraction"], dataset.config["signal_count"]
                ),
            )
            add("oracle_f", oracle_fraction(r)[1])
        else:
            log_lr, sources, axes = [], [], []
            for f in job.fractions:
                n_signal = signal_counts_for(dataset, np.full(stop - start, f), rng)
                s, a = draw_sources(simulator, n_signal, rng)
                if f > 0.0:
                    r = model.ratios(crs.pixel, crs.log10_energy, s, a)
                    log_lr.append(oracle_log_lr(r, n_signal, f, dataset.config["signal_count"]))
                else:  # no signal: the likelihood ratio is 1
                    log_lr.append(np.zeros(stop - start))
                sources.append(s.astype(np.float32))
                if a is not None:
                    axes.append(a.astype(np.float32))
            add("oracle_log_lr", np.stack(log_lr, axis=1))
            add("oracle_source_direction", np.stack(sources, axis=1))
            if axes:
                add("oracle_deflection_axis", np.stack(axes, axis=1))
        log.info("%s: scored maps %d ... %d", job.chunk, start, stop - 1)
    return {name: np.concatenate(parts) for name, parts in out.items()}


def _attributes(job, chunk, dataset, lens_folder) -> dict:
    return {
        "format": FORMAT,
        "role": job.role,
        "fractions": np.asarray(job.fractions, dtype=np.float64),
        "methods": json.dumps(list(job.methods)),
        "chunk": str(job.chunk),
        "dataset": chunk.dataset,
        "signal_chunk": str(job.signal_chunk),
        "signal_chunk_sha256": chunk_hash(job.signal_chunk),
        "signal_dataset": dataset.name,
        "signal_config": json.dumps(dataset.config, sort_keys=True),
        "grid": json.dumps(asdict(job.grid), sort_keys=True),
        "lens_folder": lens_folder or "",
        "deflection_mode": dataset.deflection_mode,
        "counting": dataset.config["signal_count"],
        "crsky_version": __version__,
    }


def method_scores(data: dict, stored_fractions, role: str, fractions, where: str) -> dict:
    """Scores per method from one chunk's datasets: ``profiled`` (TS = 2 Λ_max),
    ``profiled_f`` and ``oracle`` (isotropy role: the columns of ``fractions``)."""
    out = {}
    if "profiled_log_lr" in data:
        out["profiled"] = 2.0 * data["profiled_log_lr"]
        out["profiled_f"] = data["profiled_f"]
    if "oracle_log_lr" in data:
        oracle = data["oracle_log_lr"]
        if role == "isotropy":
            stored = np.asarray(stored_fractions, dtype=np.float64)
            columns = []
            for value in fractions:
                hit = np.flatnonzero(np.isclose(stored, value, rtol=0.0, atol=1e-6))
                if hit.size == 0:
                    raise InputFileError(
                        f"{where} has oracle scores at fractions {stored.tolist()}, not at "
                        f"{value:g}"
                    )
                columns.append(oracle[:, hit[0]])
            oracle = np.stack(columns, axis=1)
        out["oracle"] = oracle
    return out


def read_likelihood_scores(
    paths, chunk_paths, n_maps, role: str, fractions=None
) -> dict[str, np.ndarray]:
    """Concatenated :func:`method_scores` of per-chunk files (one per chunk of ``chunk_paths``,
    ``n_maps`` each, in order). InputFileError naming the file if it is not a likelihood file of
    that role, was computed from another chunk (content hash), misses a fraction or has another
    number of maps than its chunk."""
    parts: dict[str, list] = {}
    for path, chunk_path, expected in zip(paths, chunk_paths, n_maps, strict=True):
        try:
            with h5py.File(path, "r") as f:
                if f.attrs.get("format") != FORMAT or f.attrs.get("role") != role:
                    raise InputFileError(f"{str(path)!r} is not a {FORMAT} file of role {role!r}")
                stored = np.asarray(f.attrs["fractions"], dtype=np.float64)
                made_from = f.attrs.get(CHUNK_HASH_ATTR)
                data = {name: f[name][()] for name in f}
        except OSError as err:
            if isinstance(err, InputFileError):
                raise
            raise InputFileError(f"cannot read likelihood scores {str(path)!r}: {err}") from err
        check_chunk_hash(path, made_from, chunk_path)
        for name, values in data.items():
            if values.shape[0] != expected:
                raise InputFileError(
                    f"{str(path)!r} has {name} of {values.shape[0]} maps, its chunk {expected}"
                )
        for name, values in method_scores(data, stored, role, fractions, repr(str(path))).items():
            parts.setdefault(name, []).append(values)
    return {name: np.concatenate(values) for name, values in parts.items()}
