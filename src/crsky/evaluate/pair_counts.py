"""Per-chunk two-point pair counts (``crsky paircounts``): one job per skymap chunk, so the
baseline of a large isotropy set runs in parallel and is shared by every model's evaluation.

File (HDF5): ``counts`` (n_maps, K) int32, the number of CR pairs within each ψ of ``psi_deg``
per map (crsky.stats.two_point conventions); attributes ``format`` ("crsky-paircounts"),
``psi_deg``, ``chunk`` (the skymap chunk it was computed from), ``chunk_sha256`` (that chunk's
content hash: the reader refuses counts of any other chunk, even one of the same name and size),
``dataset``, ``nside``, ``n_cr``.
"""

import logging
import time
from pathlib import Path

import h5py
import numpy as np

from crsky import __version__
from crsky.errors import InputFileError
from crsky.io import atomic_h5, write_dataset
from crsky.stats.two_point import cumulative_pair_counts
from crsky.store import CHUNK_HASH_ATTR, check_chunk_hash, chunk_hash, open_chunk

__all__ = ["FORMAT", "read_pair_counts", "write_pair_counts"]

FORMAT = "crsky-paircounts"
_BATCH_MAPS = 4096

log = logging.getLogger(__name__)


def write_pair_counts(chunk_path, output, psi_deg, threads: int | None = None) -> Path:
    """Count the pairs of every map of a skymap chunk and write them atomically to ``output``."""
    psi = np.asarray(psi_deg, dtype=np.float64)
    begin = time.perf_counter()
    made_from = chunk_hash(chunk_path)
    with open_chunk(chunk_path) as chunk, atomic_h5(output) as f:
        n_maps, n_cr, nside = chunk.n_maps, chunk.n_cr, chunk.nside
        if n_cr * (n_cr - 1) // 2 > np.iinfo(np.int32).max:
            raise InputFileError(f"{str(chunk_path)!r}: {n_cr} CRs per map overflow int32 counts")
        counts = write_dataset(f, "counts", np.zeros((n_maps, psi.size), np.int32))
        for start in range(0, n_maps, _BATCH_MAPS):
            stop = min(start + _BATCH_MAPS, n_maps)
            pixel = chunk.cosmic_rays(start, stop).pixel
            counts[start:stop] = cumulative_pair_counts(pixel, nside, psi, threads=threads)
        f.attrs["format"] = FORMAT
        f.attrs["psi_deg"] = psi
        f.attrs["chunk"] = str(chunk_path)
        f.attrs[CHUNK_HASH_ATTR] = made_from
        f.attrs["dataset"] = chunk.dataset
        f.attrs["nside"] = nside
        f.attrs["n_cr"] = n_cr
        f.attrs["crsky_version"] = __version__
    seconds = time.perf_counter() - begin
    log.info("%s: %d maps in %.1f s (%.0f maps/s)", chunk_path, n_maps, seconds, n_maps / seconds)
    return Path(output)


def read_pair_counts(paths, psi_deg, chunk_paths, n_maps) -> np.ndarray:
    """(sum n_maps, K) int32 counts from per-chunk files, in order; InputFileError naming the
    file if it is not a pair-count file, was made with other ψ, or belongs to another chunk than
    the one at the same position of ``chunk_paths`` (content hash) with ``n_maps`` maps."""
    psi = np.asarray(psi_deg, dtype=np.float64)
    parts = []
    for path, chunk_path, expected in zip(paths, chunk_paths, n_maps, strict=True):
        try:
            with h5py.File(path, "r") as f:
                if f.attrs.get("format") != FORMAT:
                    raise InputFileError(f"{str(path)!r} is not a {FORMAT} file")
                stored = np.asarray(f.attrs["psi_deg"], dtype=np.float64)
                if stored.shape != psi.shape or not np.array_equal(stored, psi):
                    raise InputFileError(
                        f"{str(path)!r} holds pair counts for other ψ ({stored.size} angles "
                        f"{stored[:1]} ... {stored[-1:]}) than requested ({psi.size} angles)"
                    )
                made_from = f.attrs.get(CHUNK_HASH_ATTR)
                counts = f["counts"][()]
        except (OSError, KeyError) as err:
            if isinstance(err, InputFileError):
                raise
            raise InputFileError(f"cannot read pair counts {str(path)!r}: {err}") from err
        check_chunk_hash(path, made_from, chunk_path)
        if counts.shape[0] != expected:
            raise InputFileError(
                f"{str(path)!r} has pair counts of {counts.shape[0]} maps, its chunk {expected}"
            )
        parts.append(counts)
    return np.concatenate(parts)
