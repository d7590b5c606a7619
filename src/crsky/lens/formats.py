"""Lens files (DESIGN.md section 4): matrix parts as scipy CSC ``.npz`` and CRPropa ``.mldat``,
the ``lens.cfg`` index and the ``diagnostics.csv`` table (one row per bin, columns
``DIAGNOSTICS_COLUMNS``), each with its writer and reader here.

``.npz``: a zip of ``.npy`` arrays named ``indices``, ``indptr``, ``format`` (``b"csc"``),
``shape`` and ``data``, exactly the keys ``scipy.sparse.save_npz`` writes for a CSC matrix and
``astrotools.gamale.load_lens_part`` reads (``csc_matrix((data, indices, indptr), shape)``).
Members carry a fixed time stamp, so the same matrix gives the same bytes.

``.mldat`` (CRPropa ``MagneticLens``, ``deserialize`` in ModelMatrix.cpp): little-endian uint32
nnz, nrows, ncols, then nnz records of (uint32 row, uint32 col, float64 value), here in
column-major order.

``lens.cfg``: header lines ``# key : value`` (``# nside : 64`` first), then one line per part
``file log10Rmin log10Rmax tolerance max_column_sum``. CRPropa reads the first three columns of
every line without ``#``; astrotools' ``gamale.Lens`` reads all five and scans header lines that
contain "nside" or "stat" for an integer in the third token (so no other header line may contain
those words; particles per pixel are written as ``particles_per_pixel``, since gamale compares a
"stat" value with the integer part of the largest row sum, which is below 1 in a normalised lens).
"""

import csv
import io
import re
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from crsky.errors import ConfigError, InputFileError
from crsky.io import atomic_output

__all__ = [
    "CFG_NAME",
    "CRPROPA_CFG_NAME",
    "DEFLECTION_PERCENTILES",
    "DIAGNOSTICS_COLUMNS",
    "DIAGNOSTICS_NAME",
    "CfgEntry",
    "LensCfg",
    "read_cfg",
    "read_diagnostics",
    "read_mldat",
    "read_npz",
    "read_npz_extra",
    "write_cfg",
    "write_diagnostics",
    "write_mldat",
    "write_npz",
]

CFG_NAME = "lens.cfg"
CRPROPA_CFG_NAME = "lens_crpropa.cfg"  # the same lens, listing the .mldat parts
DIAGNOSTICS_NAME = "diagnostics.csv"
DIAGNOSTICS_COLUMNS = (
    "bin_index",
    "log10_rigidity_min",
    "log10_rigidity_max",
    "particles",
    "escaped",
    "escaped_fraction",
    "particles_per_row_min",
    "particles_per_row_mean",
    "empty_rows",
    "nnz",
    "max_column_sum",
    "deflection_mean_deg",
    "deflection_median_deg",
    "deflection_p05_deg",
    "deflection_p16_deg",
    "deflection_p84_deg",
    "deflection_p95_deg",
    "file",
)
# percentiles of the deflection per bin in diagnostics.csv (column deflection_pNN_deg)
DEFLECTION_PERCENTILES = (5, 16, 84, 95)
_NPZ_KEYS = ("indices", "indptr", "format", "shape", "data")  # scipy.sparse.save_npz order
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # earliest zip time stamp: reproducible bytes
_MLDAT_HEADER = struct.Struct("<III")
_MLDAT_RECORD = np.dtype([("row", "<u4"), ("col", "<u4"), ("value", "<f8")])
_GAMALE_KEYWORDS = ("nside", "stat")


def _as_csc(matrix: sp.spmatrix) -> sp.csc_matrix:
    m = sp.csc_matrix(matrix)
    m.sort_indices()
    return m


def write_npz(
    matrix: sp.spmatrix, path: str | Path, compress: bool = False, extra: dict | None = None
) -> Path:
    """Write ``matrix`` as a scipy CSC ``.npz`` (int32 indices, float64 data) atomically.
    ``extra``: further named arrays stored after the matrix's (scipy and astrotools read only
    the matrix's keys; crsky's per-bin parts carry their per-pixel deflection this way)."""
    m = _as_csc(matrix)
    extra = extra or {}
    arrays = {
        "indices": m.indices.astype(np.int32),
        "indptr": m.indptr.astype(np.int32),
        "format": np.array(b"csc"),
        "shape": np.array(m.shape, dtype=np.int64),
        "data": m.data.astype(np.float64),
    }
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_output(path) as tmp, zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
        for key, value in [*((k, arrays[k]) for k in _NPZ_KEYS), *extra.items()]:
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.compress_type = method
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
    return Path(path)


def read_npz_extra(path: str | Path, key: str) -> np.ndarray:
    """The extra array ``key`` of an ``.npz`` written with :func:`write_npz` (``extra``);
    InputFileError naming the file if it is unreadable or lacks it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            if key not in f.files:
                raise InputFileError(
                    f"{str(path)!r} lacks the array {key!r} (written by an older crsky: rebuild it)"
                )
            return f[key]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        if isinstance(err, InputFileError):
            raise
        raise InputFileError(f"cannot read {str(path)!r}: {err}") from err


def read_npz(path: str | Path, npix: int | None = None) -> sp.csc_matrix:
    """Read a CSC ``.npz`` part; InputFileError naming the file if it is missing, truncated,
    corrupt (a member's CRC-32), not CSC, not square (``npix`` x ``npix`` when given) or has
    negative or non-finite values."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:  # numpy reads members without their CRC-32
            broken = archive.testzip()
        if broken is not None:
            raise InputFileError(f"lens part {str(path)!r} is corrupt: {broken} fails its CRC-32")
        with np.load(path, allow_pickle=False) as f:
            missing = sorted(set(_NPZ_KEYS) - set(f.files))
            if missing:
                raise InputFileError(f"lens part {str(path)!r} lacks the arrays {missing}")
            arrays = {key: f[key] for key in _NPZ_KEYS}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        if isinstance(err, InputFileError):
            raise
        raise InputFileError(f"cannot read lens part {str(path)!r}: {err}") from err
    if arrays["format"].item() not in (b"csc", "csc"):
        raise InputFileError(
            f"lens part {str(path)!r} has format {arrays['format'].item()!r}, expected b'csc'"
        )
    shape = tuple(int(s) for s in arrays["shape"])
    try:
        matrix = sp.csc_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
        matrix.check_format(full_check=True)
    except ValueError as err:
        raise InputFileError(f"lens part {str(path)!r} is not a valid CSC matrix: {err}") from err
    _check_matrix(matrix, path, npix)
    return matrix


def _check_matrix(matrix: sp.csc_matrix, path: Path, npix: int | None) -> None:
    rows, cols = matrix.shape
    if rows != cols or (npix is not None and rows != npix):
        expected = f"{npix} x {npix}" if npix is not None else "square"
        raise InputFileError(
            f"lens part {str(path)!r} has shape {rows} x {cols}, expected {expected}"
        )
    data = matrix.data
    if data.size and not (np.all(np.isfinite(data)) and data.min() >= 0):
        raise InputFileError(f"lens part {str(path)!r} has negative or non-finite entries")


def write_mldat(matrix: sp.spmatrix, path: str | Path) -> Path:
    """Write ``matrix`` in CRPropa's ``.mldat`` layout (column-major records) atomically."""
    m = _as_csc(matrix)
    records = np.empty(m.nnz, dtype=_MLDAT_RECORD)
    records["row"] = m.indices
    records["col"] = np.repeat(np.arange(m.shape[1], dtype=np.uint32), np.diff(m.indptr))
    records["value"] = m.data
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(_MLDAT_HEADER.pack(m.nnz, *m.shape))
        f.write(records.tobytes())
    return Path(path)


def read_mldat(path: str | Path, npix: int | None = None) -> sp.csc_matrix:
    """Read a CRPropa ``.mldat`` part into a CSC matrix (InputFileError naming a bad file)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputFileError(f"cannot read lens part {str(path)!r}: {err.strerror}") from err
    if len(raw) < _MLDAT_HEADER.size:
        raise InputFileError(f"lens part {str(path)!r} is truncated (no 12-byte header)")
    nnz, nrows, ncols = _MLDAT_HEADER.unpack_from(raw)
    expected = _MLDAT_HEADER.size + nnz * _MLDAT_RECORD.itemsize
    if len(raw) != expected:
        raise InputFileError(
            f"lens part {str(path)!r} has {len(raw)} bytes, expected {expected} for {nnz} entries"
        )
    rec = np.frombuffer(raw, dtype=_MLDAT_RECORD, offset=_MLDAT_HEADER.size)
    if nnz and (rec["row"].max() >= nrows or rec["col"].max() >= ncols):
        raise InputFileError(f"lens part {str(path)!r} has indices outside {nrows} x {ncols}")
    matrix = sp.csc_matrix((rec["value"], (rec["row"], rec["col"])), shape=(nrows, ncols))
    _check_matrix(matrix, path, npix)
    return matrix


@dataclass(frozen=True)
class CfgEntry:
    """One lens part: file name (relative to the folder), rigidity range in log10(R / V), the
    backtracking tolerance and the part's largest column sum."""

    file: str
    log10_rigidity_min: float
    log10_rigidity_max: float
    tolerance: float
    max_column_sum: float


@dataclass(frozen=True)
class LensCfg:
    """Parsed ``lens.cfg``: header values by key (strings) and the parts in file order."""

    header: dict[str, str]
    entries: list[CfgEntry] = field(default_factory=list)


def _format_value(value) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_cfg(path: str | Path, nside: int, header: dict, entries: list[CfgEntry]) -> Path:
    """Write a ``lens.cfg`` atomically (``# nside`` first, then ``header``, then one line per
    entry). ConfigError if a header line would mislead astrotools' header scan."""
    lines = [f"# nside : {int(nside)}"]
    for key, value in header.items():
        text = f"# {key} : {_format_value(value)}"
        if "\n" in text or any(word in text for word in _GAMALE_KEYWORDS):
            raise ConfigError(
                f"lens.cfg header {key!r} = {value!r} must be one line without the words "
                f"{list(_GAMALE_KEYWORDS)} (astrotools' gamale parses such lines as numbers)"
            )
        lines.append(text)
    lines.append("# columns : file log10Rmin log10Rmax tolerance max_column_sum")
    for e in entries:
        if re.search(r"[\s#]", e.file) or not e.file:
            raise ConfigError(
                f"lens part file name {e.file!r} must be non-empty without spaces or '#'"
            )
        lines.append(
            f"{e.file} {e.log10_rigidity_min!r} {e.log10_rigidity_max!r} "
            f"{e.tolerance!r} {e.max_column_sum!r}"
        )
    # No newline after the last line: CRPropa's loadLens reports an empty last line as an error.
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
    return Path(path)


def read_cfg(path: str | Path) -> LensCfg:
    """Parse a ``lens.cfg`` (3- or 5-column part lines); InputFileError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InputFileError(
            f"cannot read lens index {str(path)!r}: {err.strerror} (a lens folder is complete "
            f"only once its {CFG_NAME} is written)"
        ) from err
    header: dict[str, str] = {}
    entries: list[CfgEntry] = []
    for number, line in enumerate(io.StringIO(text), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            key, sep, value = stripped[1:].partition(":")
            if sep:
                header[key.strip()] = value.strip()
            continue
        tokens = stripped.split()
        try:
            if len(tokens) not in (3, 5):
                raise ValueError(f"{len(tokens)} columns")
            values = [float(t) for t in tokens[1:]] + [float("nan")] * (5 - len(tokens))
        except ValueError as err:
            raise InputFileError(
                f"lens index {str(path)!r} line {number}: expected 'file log10Rmin log10Rmax "
                f"[tolerance max_column_sum]', got {stripped!r} ({err})"
            ) from None
        entries.append(CfgEntry(tokens[0], *values))
    if "nside" not in header:
        raise InputFileError(f"lens index {str(path)!r} has no '# nside : N' header line")
    if not entries:
        raise InputFileError(f"lens index {str(path)!r} lists no lens parts")
    return LensCfg(header, entries)


def write_diagnostics(path: str | Path, rows: list[dict]) -> Path:
    """Write ``diagnostics.csv`` atomically: one line per bin with ``DIAGNOSTICS_COLUMNS``
    (floats as repr, so they read back exactly)."""
    lines = [",".join(DIAGNOSTICS_COLUMNS)]
    for row in rows:
        lines.append(
            ",".join(
                repr(row[c]) if isinstance(row[c], float) else str(row[c])
                for c in DIAGNOSTICS_COLUMNS
            )
        )
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


def read_diagnostics(folder: str | Path) -> dict[str, np.ndarray]:
    """Columns of ``diagnostics.csv`` in a lens folder as arrays (file names as strings);
    InputFileError naming the file if it is missing, empty or lacks a column."""
    path = Path(folder) / DIAGNOSTICS_NAME
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as err:
        raise InputFileError(f"cannot read lens diagnostics {str(path)!r}: {err.strerror}") from err
    if not rows:
        raise InputFileError(f"lens diagnostics {str(path)!r} hold no bins")
    missing = [c for c in DIAGNOSTICS_COLUMNS if c not in rows[0]]
    if missing:
        raise InputFileError(f"lens diagnostics {str(path)!r} lack the columns {missing}")
    columns = {}
    try:
        for key in DIAGNOSTICS_COLUMNS:
            values = [r[key] for r in rows]
            columns[key] = np.array(values) if key == "file" else np.array(values, dtype=float)
    except (TypeError, ValueError) as err:
        raise InputFileError(f"lens diagnostics {str(path)!r}: {err}") from None
    return columns
