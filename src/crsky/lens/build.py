"""Building a lens: one part per rigidity bin from that bin's backtracking shards, then the global
normalisation and ``lens.cfg``.

Part of bin b (a reduce over the bin's shards): M[i, j] counts the escaped particles observed in
RING pixel i (``observed_direction``) whose ``edge_direction`` lies in RING pixel j; each non-empty
row is divided by its count, so rows sum to 1 (this removes the sampling density; DESIGN.md
section 4). The per-bin job writes that row-normalised part and a statistics file with its
largest column sum. The final job divides every part by the largest column sum over all bins
(CRPropa's ``MagneticLens::normalizeLens``; PARSEC, arXiv:1302.3761), so each column sum is the
transparency (arrival probability ≤ 1) of that extragalactic direction, and writes ``lens.cfg``
last: a folder without ``lens.cfg`` is not a lens.

Deflection of a particle: the angle between ``observed_direction`` and ``edge_direction``. Each
part also carries the mean deflection of the escaped particles per observed pixel (an extra
array of its ``.npz``); the final job writes every bin's map of it, and of the transparency, as
HEALPix FITS files (``deflection.fits``, ``transparency.fits``; crsky.healpix_fits).
"""

import itertools
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import healpy as hp
import numpy as np
import scipy.sparse as sp

from crsky import __version__
from crsky.backtrack.shard import (
    BIN_ATTRS,
    SHARED_ATTRS,
    check_complete,
    check_same_run,
    check_shard,
    read_shard,
)
from crsky.errors import ConfigError, InputFileError
from crsky.healpix_fits import write_maps
from crsky.io import atomic_output
from crsky.lens.formats import (
    CFG_NAME,
    CRPROPA_CFG_NAME,
    DEFLECTION_PERCENTILES,
    DIAGNOSTICS_COLUMNS,
    DIAGNOSTICS_NAME,
    CfgEntry,
    read_npz,
    read_npz_extra,
    write_cfg,
    write_diagnostics,
    write_mldat,
    write_npz,
)
from crsky.sphere import angle_between_deg, check_nside

__all__ = [
    "DEFLECTION_MAPS_NAME",
    "PROVENANCE_NAME",
    "TRANSPARENCY_MAPS_NAME",
    "LensPart",
    "build_part",
    "column_sums",
    "finalize_lens",
    "part_file_name",
    "read_part_stats",
    "stats_path",
    "write_part",
]

log = logging.getLogger(__name__)

PROVENANCE_NAME = "provenance.json"
DEFLECTION_MAPS_NAME = "deflection.fits"  # mean deflection per observed pixel, deg, per bin
TRANSPARENCY_MAPS_NAME = "transparency.fits"  # column sums per extragalactic pixel, per bin
_DEFLECTION_KEY = "observed_deflection_deg"  # extra array of a part's .npz


@dataclass(frozen=True)
class LensPart:
    """A row-normalised lens part (npix x npix CSC, rows = observed RING pixels, columns =
    extragalactic RING pixels), its statistics (JSON-serialisable dict) and the mean deflection
    of its escaped particles per observed pixel (npix,) in degrees (NaN: none escaped)."""

    matrix: sp.csc_matrix
    stats: dict
    observed_deflection_deg: np.ndarray


def _pixels(nside: int, direction: np.ndarray) -> np.ndarray:
    d = direction.astype(np.float64)
    return hp.vec2pix(nside, d[:, 0], d[:, 1], d[:, 2], nest=False).astype(np.int64)


def _row_normalised_csc(observed_pix: np.ndarray, edge_pix: np.ndarray, npix: int):
    """(row-normalised CSC part, escaped particles per row) from per-particle pixels."""
    key = edge_pix * npix + observed_pix  # column-major: sorts by column, then row
    key.sort()
    n = key.size
    first = np.empty(n, dtype=bool)
    first[:1] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, n))
    unique = key[starts]
    cols = unique // npix
    rows = (unique - cols * npix).astype(np.int32)
    indptr = np.zeros(npix + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols, minlength=npix), out=indptr[1:])
    per_row = np.bincount(observed_pix, minlength=npix)
    data = counts / per_row[rows]
    matrix = sp.csc_matrix((data, rows, indptr.astype(np.int32)), shape=(npix, npix))
    return matrix, per_row


def column_sums(matrix: sp.csc_matrix) -> np.ndarray:
    """Column sums (npix,) of a CSC matrix: the transparency of each extragalactic pixel."""
    columns = np.repeat(np.arange(matrix.shape[1]), np.diff(matrix.indptr))
    return np.bincount(columns, weights=matrix.data, minlength=matrix.shape[1])


def build_part(
    shard_paths: list[str | Path], field_model: str, nside: int, bin_index: int | None = None
) -> LensPart:
    """Build the row-normalised lens part of one rigidity bin from all of its shards.

    Args:
        shard_paths: every shard file of the bin (HDF5, DESIGN.md section 4), in any order.
        field_model: field model the shards must have been traced in.
        nside: lens HEALPix nside (RING); the shards must have been sampled at it.
        bin_index: rigidity bin the shards must belong to (None: taken from the shards).

    Raises InputFileError naming the file for a missing, truncated or foreign shard, a missing
    shard index, or a bin without escaped particles.
    """
    paths = [Path(p) for p in shard_paths]
    if not paths:
        raise ConfigError("no backtracking shards given for the lens part")
    npix = hp.nside2npix(check_nside(nside, "lens nside"))
    observed_pix, edge_pix, deflection = [], [], []
    particles, shard_indices, versions = 0, [], set()
    ref, ref_path = None, None
    for path in paths:
        data, attrs = read_shard(path)
        check_shard(path, attrs, len(data["escaped"]), field_model, nside, bin_index)
        if ref is None:
            ref, ref_path = attrs, path
        check_same_run(path, attrs, ref_path, ref, (*SHARED_ATTRS, *BIN_ATTRS))
        shard_indices.append(attrs["shard_index"])
        versions.add(str(attrs.get("crsky_version", "unknown")))
        escaped = data["escaped"]
        particles += escaped.size
        observed_pix.append(_pixels(nside, data["observed_direction"][escaped]))
        edge_pix.append(_pixels(nside, data["edge_direction"][escaped]))
        deflection.append(
            angle_between_deg(data["observed_direction"][escaped], data["edge_direction"][escaped])
        )
        log.info("read %s: %d particles, %d escaped", path, escaped.size, int(escaped.sum()))
    check_complete(paths, shard_indices, ref["n_shards"], ref["bin_index"])
    observed_all = np.concatenate(observed_pix)
    n_escaped = observed_all.size
    if n_escaped == 0:
        raise InputFileError(
            f"rigidity bin {ref['bin_index']} has no escaped particles in its shards "
            f"{[str(p) for p in paths]}; a lens part needs at least one"
        )
    del observed_pix
    matrix, per_row = _row_normalised_csc(observed_all, np.concatenate(edge_pix), npix)
    deflection_deg = np.concatenate(deflection)
    summed = np.bincount(observed_all, weights=deflection_deg, minlength=npix)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_pixel = np.where(per_row > 0, summed / per_row, np.nan)
    percentiles = np.percentile(deflection_deg, DEFLECTION_PERCENTILES)
    lo, hi = ref["log10_rigidity_bin"]
    stats = {
        "bin_index": ref["bin_index"],
        "n_bins": ref["n_bins"],
        "log10_rigidity_min": float(lo),
        "log10_rigidity_max": float(hi),
        "nside": nside,
        "particles": particles,
        "escaped": n_escaped,
        "escaped_fraction": n_escaped / particles,
        "particles_per_row_min": int(per_row.min()),
        "particles_per_row_mean": n_escaped / npix,
        "empty_rows": int(np.count_nonzero(per_row == 0)),
        "nnz": int(matrix.nnz),
        "max_column_sum": float(column_sums(matrix).max()),
        "deflection_mean_deg": float(deflection_deg.mean()),
        "deflection_median_deg": float(np.median(deflection_deg)),
        **{
            f"deflection_p{q:02d}_deg": float(v)
            for q, v in zip(DEFLECTION_PERCENTILES, percentiles, strict=True)
        },
        "provenance": {
            "field_model": field_model,
            "field_description": ref.get("field_description", ""),
            **{key: ref[key] for key in SHARED_ATTRS},
            "n_shards": ref["n_shards"],
            "shards": sorted(p.name for p in paths),
            "backtrack_crsky_version": ", ".join(sorted(versions)),
            "crsky_version": __version__,
        },
    }
    return LensPart(matrix, stats, per_pixel)


def stats_path(part_path: str | Path) -> Path:
    """The statistics file of a per-bin part: the ``.json`` next to its ``.npz``."""
    return Path(part_path).with_suffix(".json")


def write_part(part: LensPart, path: str | Path) -> Path:
    """Write the row-normalised part (``.npz``, with the per-pixel deflection) and then its
    statistics (``.json``), atomically."""
    write_npz(part.matrix, path, extra={_DEFLECTION_KEY: part.observed_deflection_deg})
    with atomic_output(stats_path(path)) as tmp:
        tmp.write_text(json.dumps(part.stats, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return Path(path)


def read_part_stats(part_path: str | Path) -> dict:
    """Statistics of a per-bin part (InputFileError naming the file if missing or invalid)."""
    path = stats_path(part_path)
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputFileError(
            f"cannot read lens part statistics {str(path)!r}: {err.strerror}"
        ) from err
    except json.JSONDecodeError as err:
        raise InputFileError(
            f"lens part statistics {str(path)!r} are not valid JSON: {err}"
        ) from err
    missing = [
        c for c in (*DIAGNOSTICS_COLUMNS[:-1], "n_bins", "nside", "provenance") if c not in stats
    ]
    if missing:
        raise InputFileError(f"lens part statistics {str(path)!r} lack {missing}")
    return stats


def part_file_name(bin_index: int, suffix: str = ".npz") -> str:
    """File name of a bin's part inside the lens folder, e.g. ``bin007.npz``."""
    return f"bin{bin_index:03d}{suffix}"


_LENS_PROVENANCE = ("field_model", *SHARED_ATTRS)


def _ordered_parts(part_paths: list[Path]) -> list[tuple[Path, dict]]:
    """Parts sorted by bin, checked to be one complete, contiguous lens of one run."""
    parts = [(p, read_part_stats(p)) for p in part_paths]
    if not parts:
        raise ConfigError("no lens parts given")
    ref_path, ref = parts[0]
    for path, stats in parts:
        for key in ("nside", "n_bins"):
            if stats[key] != ref[key]:
                raise InputFileError(
                    f"lens parts {str(ref_path)!r} and {str(path)!r} differ in {key!r}: "
                    f"{ref[key]!r} vs {stats[key]!r}"
                )
        for key in _LENS_PROVENANCE:
            if stats["provenance"].get(key) != ref["provenance"].get(key):
                raise InputFileError(
                    f"lens parts {str(ref_path)!r} and {str(path)!r} come from different runs: "
                    f"{key!r} is {ref['provenance'].get(key)!r} vs {stats['provenance'].get(key)!r}"
                )
    parts.sort(key=lambda item: item[1]["bin_index"])
    indices = [stats["bin_index"] for _, stats in parts]
    if indices != list(range(ref["n_bins"])):
        missing = sorted(set(range(ref["n_bins"])) - set(indices))
        duplicate = sorted({i for i in indices if indices.count(i) > 1})
        raise InputFileError(
            f"a lens needs exactly one part per rigidity bin 0 ... {ref['n_bins'] - 1}; "
            f"missing bins {missing}, duplicate bins {duplicate} "
            f"(given: {[str(p) for p in part_paths]})"
        )
    for (p0, s0), (p1, s1) in itertools.pairwise(parts):
        if not math.isclose(s0["log10_rigidity_max"], s1["log10_rigidity_min"], abs_tol=1e-9):
            raise InputFileError(
                f"lens parts {str(p0)!r} and {str(p1)!r} are not adjacent in rigidity: "
                f"{s0['log10_rigidity_max']} vs {s1['log10_rigidity_min']}"
            )
    return parts


def _field_provenance(field_model: str, options_json: str) -> dict:
    """The field options a lens user asks for first, as their own lens.cfg lines: the model
    variant (UF23 model, PT11 disk) and the seeds of the random parts ('none' when absent),
    with the model's defaults filled in (the model is rebuilt from its options: no tracing)."""
    from crsky.fields import get_field

    options = get_field(field_model, **json.loads(options_json)).options
    turbulence = options.get("turbulence") or {}
    striated = options.get("striated") or {}
    return {
        "field_variant": options.get("variant", options.get("disk", "none")) or "none",
        "turbulence_seed": turbulence.get("seed", "none"),
        "striation_seed": striated.get("seed", "none"),
    }


def _cfg_header(parts: list[tuple[Path, dict]], norm: float) -> dict:
    stats = [s for _, s in parts]
    prov = stats[0]["provenance"]
    npix = hp.nside2npix(stats[0]["nside"])
    per_pixel = prov["particles_per_bin"] / npix
    return {
        "particles_per_pixel": int(per_pixel) if per_pixel == int(per_pixel) else per_pixel,
        "ordering": "RING, Galactic frame (lon = atan2(y, x), lat = asin(z))",
        "matrix": "M[i, j], row i = observed pixel, column j = extragalactic pixel",
        "normalisation": "rows to 1, then divided by global_max_column_sum",
        "global_max_column_sum": norm,
        "field_model": prov["field_model"],
        "field_options": prov["field_options"],
        **_field_provenance(prov["field_model"], prov["field_options"]),
        "engine": prov["engine"],
        "seed": prov["seed"],
        "n_bins": stats[0]["n_bins"],
        "particles_per_bin": prov["particles_per_bin"],
        "particles_traced": sum(s["particles"] for s in stats),
        "particles_escaped": sum(s["escaped"] for s in stats),
        "tolerance": prov["accuracy_tolerance"],
        "min_step_kpc": prov["accuracy_min_step_kpc"],
        "max_step_kpc": prov["accuracy_max_step_kpc"],
        "max_path_length_kpc": prov["accuracy_max_path_length_kpc"],
        "r_galaxy_kpc": prov["accuracy_r_galaxy_kpc"],
        "backtrack_crsky_version": ", ".join(
            sorted({s["provenance"]["backtrack_crsky_version"] for s in stats})
        ),
        "crsky_version": __version__,
    }


def finalize_lens(
    part_paths: list[str | Path],
    folder: str | Path,
    write_mldat_files: bool = True,
    compress: bool = False,
) -> Path:
    """Divide all row-normalised parts by their global maximum column sum and write the lens
    folder: ``binNNN.npz`` (+ ``binNNN.mldat`` and ``lens_crpropa.cfg``), ``diagnostics.csv``,
    ``provenance.json``, the HEALPix maps ``transparency.fits`` and ``deflection.fits`` (one
    column per bin) and, last, ``lens.cfg``. Returns the path of ``lens.cfg``.
    """
    folder = Path(folder)
    parts = _ordered_parts([Path(p) for p in part_paths])
    for name in (CFG_NAME, CRPROPA_CFG_NAME):  # an interrupted rebuild must not look complete
        (folder / name).unlink(missing_ok=True)
    norm = max(stats["max_column_sum"] for _, stats in parts)
    npix = hp.nside2npix(parts[0][1]["nside"])
    entries, mldat_entries, rows, transparency, deflection = [], [], [], {}, {}
    for path, stats in parts:
        matrix = read_npz(path, npix)
        column = f"log10R_{stats['log10_rigidity_min']:.2f}-{stats['log10_rigidity_max']:.2f}"
        deflection[column] = read_npz_extra(path, _DEFLECTION_KEY)
        part_max = float(column_sums(matrix).max()) if matrix.nnz else 0.0
        if not math.isclose(part_max, stats["max_column_sum"], rel_tol=1e-12):
            raise InputFileError(
                f"lens part {str(path)!r} has maximum column sum {part_max!r} but its statistics "
                f"{str(stats_path(path))!r} say {stats['max_column_sum']!r}; rebuild that bin"
            )
        matrix.data /= norm
        transparency[column] = column_sums(matrix)
        name = part_file_name(stats["bin_index"])
        write_npz(matrix, folder / name, compress=compress)
        lo, hi = stats["log10_rigidity_min"], stats["log10_rigidity_max"]
        tolerance = stats["provenance"]["accuracy_tolerance"]
        mcs = stats["max_column_sum"] / norm
        entries.append(CfgEntry(name, lo, hi, tolerance, mcs))
        if write_mldat_files:
            mldat = part_file_name(stats["bin_index"], ".mldat")
            write_mldat(matrix, folder / mldat)
            mldat_entries.append(CfgEntry(mldat, lo, hi, tolerance, mcs))
        rows.append({**stats, "max_column_sum": mcs, "file": name})
        log.info("bin %d: %s written (max column sum %.4g)", stats["bin_index"], name, mcs)
    write_diagnostics(folder / DIAGNOSTICS_NAME, rows)
    write_maps(
        folder / TRANSPARENCY_MAPS_NAME,
        transparency,
        "",
        "lens transparency per extragalactic pixel (column sums)",
    )
    write_maps(
        folder / DEFLECTION_MAPS_NAME,
        deflection,
        "deg",
        "mean deflection per observed pixel (NaN: no escaped particle)",
    )
    provenance = {
        "global_max_column_sum": norm,
        "bins": [{"bin_index": s["bin_index"], **s["provenance"]} for _, s in parts],
    }
    with atomic_output(folder / PROVENANCE_NAME) as tmp:
        tmp.write_text(json.dumps(provenance, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    header = _cfg_header(parts, norm)
    nside = parts[0][1]["nside"]
    if write_mldat_files:
        write_cfg(folder / CRPROPA_CFG_NAME, nside, header, mldat_entries)
    return write_cfg(folder / CFG_NAME, nside, header, entries)
