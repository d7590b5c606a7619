"""Skymap chunks on disk: the format, its writer (used by ``crsky skymaps``) and the reader used
by training and evaluation, and the content hash that ties files derived from a chunk (pair
counts, likelihood scores) to it.

A chunk (HDF5, written by ``crsky skymaps``; DESIGN.md section 4) holds ``n_maps`` simulated skies
of ``n_cr`` cosmic rays each, stored as CR lists (not dense maps):

What a reader gets (``SkymapChunk.read``, ``cosmic_rays``, ``labels``):

=====================  ======================  ==================================================
name                   shape, dtype            meaning
=====================  ======================  ==================================================
``pixel``              (n_maps, n_cr) uint16   HEALPix RING pixel at the chunk's ``nside``
                       (uint32 if nside > 64)  (Galactic frame); ascending within each map
``log10_energy``       (n_maps, n_cr) float32  log10(E / eV), a multiple of
                                               ``log10_energy_step`` = 2^-9 dex (0.45 % in E)
``charge``             (n_maps, n_cr) uint8    Z in units of e
``is_signal``          (n_maps, n_cr) bool     the CR comes from a source
``signal_fraction``    (n_maps,) float32       signal fraction drawn for the map (the label)
``n_signal``           (n_maps,) uint16        number of signal CRs in the map
``source_direction``   (n_maps, n_src, 3) f32  Galactic unit vectors of the (extragalactic)
                                               source positions
``source_flux``        (n_maps, n_src) float32 relative fluxes (sum 1)
``deflection_axis``    (n_maps, n_src, 3) f32  toy mode only: coherent rotation axis per source
``lens_index``         (n_maps,) uint8         lens mixes only: the lens that deflected the map,
                                               an index into the attribute ``lens_names``
=====================  ======================  ==================================================

On disk (``format_version`` 3) two CR columns are stored encoded, the rest as they are read.
Pixels are stored as steps s (pixel dtype): each map's first pixel, then the differences to the
previous CR's pixel (``pixel`` is their running sum; differences are small, since pixels
ascend); energies as codes k = (log10_energy − ``log10_energy_origin``) / ``log10_energy_step``
(uint16). Each of the two is split into its low byte, ``pixel_step_low`` and
``energy_code_low`` (uint8, stored raw), and the rest, ``pixel_step_high`` = s >> 8 (uint8, or
uint32 if nside > 64) and ``energy_code_high`` = k >> 8 (uint8), stored with the byte shuffle
and LZF like every other dataset (built into h5py: no filter plugin to install). The low bytes
are close to random, so LZF cannot shrink them and spends most of the write time trying; the
high parts are nearly constant and shrink ~10x. Datasets are stored in HDF5 chunks of
``HDF5_CHUNK_MAPS`` maps. Flipped bytes fail the read: the label datasets carry HDF5 Fletcher-32
checksums, the six stored CR columns CRC-32s of their stored bytes per block of
``HDF5_CHUNK_MAPS`` maps in the dataset ``crc32`` (n_blocks, 6) uint32 (columns in the order
of ``STORED_CR_COLUMNS``; zlib's CRC-32 is ~5x faster than HDF5's Fletcher-32), checked by every
read. A map of 1,000 CRs at nside 64 takes ~2.8 kB (``benchmarks/skymaps.py``).

Within a map CRs are sorted by (pixel, energy, charge, is_signal), so a map's bytes do not depend
on how it was generated. Attributes: ``format`` ("crsky-skymaps"), ``format_version``, ``dataset``,
``chunk``, ``n_chunks``, ``first_map``, ``nside``, ``ordering`` ("RING"), ``n_cr``, ``seed``,
``config`` (the full dataset config as JSON), ``log10_energy_step``, ``deflection_mode``,
``n_source_redraws``, ``crsky_version`` and, in lens mode, ``lens_names`` (JSON list of the
lens names, one or, for a mix, several) and ``lens_folder`` and ``lens_cfg`` (one lens: its
folder and lens.cfg text) or ``lens_folders`` and ``lens_cfgs`` (a mix: JSON lists in
``lens_index`` order). :attr:`SkymapChunk.lens_names` and :attr:`SkymapChunk.lens_folders`
read either form.

Writing (``crsky.sky.simulate.run_chunk``)::

    with write_chunk(path, n_maps, n_cr, n_sources, nside, deflection_axis=True) as writer:
        writer.write(0, columns)        # maps 0 ... k - 1, every name of writer.columns
        writer.finish(attributes)       # last: the file is renamed into place only then

Reading::

    from crsky.store import open_chunk, iter_batches

    with open_chunk("results/skymaps/train/chunk0000.h5") as chunk:
        labels = chunk.labels(0, 256)                 # dict of label arrays for maps 0 ... 255
        crs = chunk.cosmic_rays(0, 256)               # CosmicRays: pixel, log10_energy, ...
        counts = chunk.counts(0, 256, nside=32, nest=True)  # (256, 12288) float32

    for batch in iter_batches(paths, batch_size=128, nside=64, nest=True):
        batch.counts, batch.labels["signal_fraction"]     # one batch of maps, chunk by chunk

Counts maps are rendered with one ``np.bincount`` per batch (pixel + map offset · npix).
Rendering at a lower nside than stored merges the 4^k NESTED children of each coarse pixel, so the
counts of a coarse pixel are exactly the sum over its fine pixels; a higher nside is an error.
"""

import json
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import h5py
import healpy as hp
import numpy as np

from crsky.errors import ConfigError, InputFileError
from crsky.io import atomic_h5, file_sha256
from crsky.sphere import check_nside

__all__ = [
    "CHUNK_ATTRS",
    "CHUNK_HASH_ATTR",
    "CR_DATASETS",
    "ENERGY_CODE_MAX",
    "FORMAT",
    "FORMAT_VERSION",
    "LABEL_DATASETS",
    "LOG10_ENERGY_MAX",
    "LOG10_ENERGY_ORIGIN",
    "LOG10_ENERGY_STEP",
    "STORED_CR_COLUMNS",
    "Batch",
    "ChunkWriter",
    "CosmicRays",
    "SkymapChunk",
    "block_crc32",
    "check_chunk_hash",
    "chunk_hash",
    "decode_energies",
    "decode_pixels",
    "encode_pixels",
    "iter_batches",
    "join_low_byte",
    "open_chunk",
    "pixel_dtype",
    "pixel_lookup",
    "render_counts",
    "split_low_byte",
    "write_chunk",
]

FORMAT = "crsky-skymaps"
FORMAT_VERSION = 3  # 1: plain, gzip; 2: steps and codes, LZF; 3: their low bytes raw (docstring)
LOG10_ENERGY_STEP = 2.0**-9  # dex; stored energies are LOG10_ENERGY_ORIGIN + k · step
LOG10_ENERGY_ORIGIN = 17.0
CR_DATASETS = ("pixel", "log10_energy", "charge", "is_signal")
LABEL_DATASETS = ("signal_fraction", "n_signal", "source_direction", "source_flux")
OPTIONAL_LABELS = ("deflection_axis", "lens_index")
# attributes a writer must set (besides format and format_version); lens mode adds lens_names
# and lens_folder/lens_cfg (one lens) or lens_folders/lens_cfgs (a mix)
CHUNK_ATTRS = (
    "dataset",
    "chunk",
    "n_chunks",
    "first_map",
    "nside",
    "ordering",
    "n_cr",
    "seed",
    "config",
    "log10_energy_step",
    "log10_energy_origin",
    "deflection_mode",
    "n_source_redraws",
    "crsky_version",
)
HDF5_CHUNK_MAPS = 128  # maps per HDF5 chunk
# the datasets on disk of each CR column (what a reader gets: CR_DATASETS)
_STORED_CR = {"pixel": ("pixel_step_low", "pixel_step_high"),
              "log10_energy": ("energy_code_low", "energy_code_high"),
              "charge": ("charge",), "is_signal": ("is_signal",)}  # fmt: skip
STORED_CR_COLUMNS = tuple(name for parts in _STORED_CR.values() for name in parts)  # crc32's order
_RAW = ("pixel_step_low", "energy_code_low")  # stored without compression (module docstring)
ENERGY_CODE_MAX = int(np.iinfo(np.uint16).max)  # the largest storable energy index
LOG10_ENERGY_MAX = LOG10_ENERGY_ORIGIN + ENERGY_CODE_MAX * LOG10_ENERGY_STEP  # log10(E / eV) = 145
_CRC_NAME = "crc32"
_WRITTEN_CR = ("pixel", "energy_code", "charge", "is_signal")  # what ChunkWriter.write takes
CHUNK_HASH_ATTR = "chunk_sha256"  # of files derived from a chunk: its content hash


def pixel_dtype(nside: int) -> np.dtype:
    """uint16 while every pixel index fits (nside ≤ 64), else uint32."""
    return np.dtype(np.uint16 if 12 * nside * nside <= 1 << 16 else np.uint32)


@dataclass(frozen=True)
class CosmicRays:
    """CR lists of consecutive maps, each array (n_maps, n_cr)."""

    pixel: np.ndarray
    log10_energy: np.ndarray
    charge: np.ndarray
    is_signal: np.ndarray

    @property
    def log10_rigidity(self) -> np.ndarray:
        """log10(R / V) = log10(E / eV) − log10 Z, float64."""
        return self.log10_energy.astype(np.float64) - np.log10(self.charge.astype(np.float64))


@dataclass(frozen=True)
class Batch:
    """One batch of maps: ``counts`` (n, npix) float32, ``labels`` by name, where they came from
    (``path``, ``first_map`` within that chunk)."""

    counts: np.ndarray
    labels: dict[str, np.ndarray]
    path: Path
    first_map: int


@cache
def pixel_lookup(nside_in: int, nside_out: int, nest: bool) -> np.ndarray:
    """Target pixel (int64, npix_in) at ``nside_out`` (NESTED if ``nest``, else RING) of every RING
    pixel at ``nside_in``; nside_out must not exceed nside_in."""
    for nside in (nside_in, nside_out):
        check_nside(nside)
    if nside_out > nside_in:
        raise ConfigError(
            f"cannot render counts at nside {nside_out} from CRs stored at nside {nside_in}: "
            "only equal or lower nside"
        )
    nested = hp.ring2nest(nside_in, np.arange(hp.nside2npix(nside_in))).astype(np.int64)
    shift = 2 * (int(nside_in).bit_length() - int(nside_out).bit_length())
    coarse = nested >> shift
    out = coarse if nest else hp.nest2ring(nside_out, coarse).astype(np.int64)
    out.setflags(write=False)
    return out


def render_counts(
    pixel: np.ndarray,
    nside_in: int,
    nside: int | None = None,
    nest: bool = False,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Counts maps (n_maps, npix) float32 of RING pixels ``pixel`` (n_maps, n_cr) at ``nside_in``,
    rendered at ``nside`` (default: nside_in) in NESTED (``nest``) or RING ordering.

    ``weights`` (same shape as ``pixel``) sums weights instead of counting (e.g. energies).
    """
    pixel = np.asarray(pixel)
    if pixel.ndim != 2:
        raise ConfigError(f"'pixel' must have shape (n_maps, n_cr), got {pixel.shape}")
    nside = nside_in if nside is None else int(nside)
    target = pixel_lookup(int(nside_in), nside, bool(nest))[pixel]
    npix = hp.nside2npix(nside)
    n_maps = pixel.shape[0]
    target += (np.arange(n_maps, dtype=np.int64) * npix)[:, None]
    flat_weights = None if weights is None else np.asarray(weights, np.float64).ravel()
    counts = np.bincount(target.ravel(), weights=flat_weights, minlength=n_maps * npix)
    return counts.reshape(n_maps, npix).astype(np.float32)


class SkymapChunk:
    """An open chunk file (read-only). Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as err:
            raise InputFileError(f"cannot open skymap chunk {str(self.path)!r}: {err}") from err
        try:
            self._check()
        except BaseException:
            self._file.close()
            raise

    def _check(self) -> None:
        f, where = self._file, f"skymap chunk {str(self.path)!r}"
        if f.attrs.get("format") != FORMAT:
            raise InputFileError(f"{where} is not a {FORMAT} file (attribute 'format')")
        if int(f.attrs.get("format_version", -1)) != FORMAT_VERSION:
            raise InputFileError(
                f"{where} has format_version {f.attrs.get('format_version')}, "
                f"this reader reads {FORMAT_VERSION}: delete it and rerun its skymaps job"
            )
        missing = [n for n in [*STORED_CR_COLUMNS, *LABEL_DATASETS, _CRC_NAME] if n not in f]
        if missing:
            raise InputFileError(f"{where} lacks datasets {missing}")
        shape = f[STORED_CR_COLUMNS[0]].shape
        for name in STORED_CR_COLUMNS:
            if f[name].shape != shape:
                raise InputFileError(
                    f"{where}: {name!r} has shape {f[name].shape}, expected {shape}"
                )
        if f["n_signal"].shape != shape[:1]:
            raise InputFileError(f"{where}: label arrays do not match {shape[0]} maps")

    # --- metadata -------------------------------------------------------------------------
    @property
    def attrs(self) -> dict:
        return dict(self._file.attrs)

    @property
    def n_maps(self) -> int:
        return int(self._file[STORED_CR_COLUMNS[0]].shape[0])

    @property
    def n_cr(self) -> int:
        return int(self._file[STORED_CR_COLUMNS[0]].shape[1])

    @property
    def nside(self) -> int:
        return int(self._file.attrs["nside"])

    @property
    def dataset(self) -> str:
        return str(self._file.attrs["dataset"])

    @property
    def config(self) -> dict:
        """The full dataset config the chunk was simulated with."""
        return json.loads(self._file.attrs["config"])

    @property
    def lens_names(self) -> tuple[str, ...]:
        """Names of the lenses the maps were deflected by (lens mode; several for a mix, in
        ``lens_index`` order), () otherwise."""
        names = self._json_list("lens_names")
        if not names and "lens_folder" in self._file.attrs:  # chunks older than lens_names
            names = [Path(str(self._file.attrs["lens_folder"])).name]
        return tuple(names)

    @property
    def lens_folders(self) -> tuple[str, ...]:
        """Folders of those lenses (the same order), () outside lens mode."""
        attrs = self._file.attrs
        if "lens_folder" in attrs:
            return (str(attrs["lens_folder"]),)
        return tuple(self._json_list("lens_folders"))

    @property
    def is_lens_mix(self) -> bool:
        """The maps were deflected by several lenses, one per map (label ``lens_index``)."""
        return "lens_index" in self._file

    def _json_list(self, name: str) -> list:
        raw = self._file.attrs.get(name)
        if raw is None:
            return []
        try:
            value = json.loads(raw)
        except (TypeError, ValueError):
            value = None
        if not isinstance(value, list):
            raise InputFileError(
                f"skymap chunk {str(self.path)!r}: attribute {name!r} is not a JSON list"
            )
        return value

    def __len__(self) -> int:
        return self.n_maps

    # --- data -----------------------------------------------------------------------------
    def read(self, name: str, selection: slice = slice(None)) -> np.ndarray:
        """Column or label ``name`` (rows ``selection``, a slice of step 1), decoded from the
        stored form; InputFileError naming the file if its bytes are corrupt (checksum or
        decompression failure) or a pixel lies outside the sky."""
        if not isinstance(selection, slice) or selection.step not in (None, 1):
            raise ConfigError(f"chunk rows must be read as a slice of step 1, got {selection}")
        try:
            if name in _STORED_CR:
                parts = [self._read_checked(part, selection) for part in _STORED_CR[name]]
                values = join_low_byte(*parts) if len(parts) == 2 else parts[0]
            else:
                values = self._file[name][selection]
        except (OSError, KeyError, ValueError) as err:
            raise InputFileError(
                f"skymap chunk {str(self.path)!r}: cannot read {name!r} ({err}); the file is "
                "corrupt: delete it and rerun its skymaps job"
            ) from None
        if name == "pixel":
            values = decode_pixels(values)
            if values.size and int(values[:, -1].max()) >= 12 * self.nside**2:
                raise InputFileError(
                    f"skymap chunk {str(self.path)!r} has pixels >= 12 nside² = "
                    f"{12 * self.nside**2} (corrupt file)"
                )
        elif name == "log10_energy":
            values = decode_energies(values)
        return values

    def _read_checked(self, stored: str, selection: slice) -> np.ndarray:
        """Rows ``selection`` of CR column ``stored``, read in whole checksum blocks whose
        CRC-32s are compared with the ``crc32`` dataset (ValueError on a mismatch)."""
        start, stop, _ = selection.indices(self.n_maps)
        stop = max(start, stop)
        first, last = start // HDF5_CHUNK_MAPS, -(-stop // HDF5_CHUNK_MAPS)
        begin = first * HDF5_CHUNK_MAPS
        block = self._file[stored][begin : min(last * HDF5_CHUNK_MAPS, self.n_maps)]
        column = STORED_CR_COLUMNS.index(stored)
        expected = self._file[_CRC_NAME][first:last, column]
        for b, crc in enumerate(block_crc32(block)):
            if crc != expected[b]:
                low = begin + b * HDF5_CHUNK_MAPS
                high = min(low + HDF5_CHUNK_MAPS, self.n_maps) - 1
                raise ValueError(f"CRC-32 mismatch in maps {low} ... {high}")
        return block[start - begin : stop - begin]

    def _slice(self, start: int, stop: int | None) -> slice:
        stop = self.n_maps if stop is None else stop
        if not 0 <= start <= stop <= self.n_maps:
            raise ConfigError(
                f"maps {start} ... {stop} are outside chunk {str(self.path)!r} "
                f"(0 ... {self.n_maps})"
            )
        return slice(start, stop)

    def labels(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Labels of maps start ... stop − 1: signal_fraction, n_signal, source_direction,
        source_flux (and deflection_axis in toy mode, lens_index for a lens mix)."""
        s = self._slice(start, stop)
        names = LABEL_DATASETS + tuple(n for n in OPTIONAL_LABELS if n in self._file)
        labels = {name: self.read(name, s) for name in names}
        index = labels.get("lens_index")
        if index is not None and index.size and int(index.max()) >= len(self.lens_names):
            raise InputFileError(
                f"skymap chunk {str(self.path)!r} has lens_index {int(index.max())} but lists "
                f"{len(self.lens_names)} lenses in 'lens_names' (corrupt file)"
            )
        return labels

    def cosmic_rays(self, start: int = 0, stop: int | None = None) -> CosmicRays:
        """CR lists of maps start ... stop − 1."""
        s = self._slice(start, stop)
        return CosmicRays(*(self.read(name, s) for name in CR_DATASETS))

    def counts(
        self, start: int = 0, stop: int | None = None, nside: int | None = None, nest: bool = False
    ) -> np.ndarray:
        """Counts maps (n, npix) float32 of maps start ... stop − 1 at ``nside`` (default: the
        stored one; lower is allowed) in NESTED (``nest``) or RING ordering."""
        s = self._slice(start, stop)
        return render_counts(self.read("pixel", s), self.nside, nside, nest)

    def iter_batches(
        self, batch_size: int, nside: int | None = None, nest: bool = False
    ) -> Iterator[Batch]:
        """Consecutive batches of ≤ batch_size maps (counts and labels)."""
        if int(batch_size) != batch_size or batch_size < 1:
            raise ConfigError(f"'batch_size' must be a positive integer, got {batch_size!r}")
        for start in range(0, self.n_maps, batch_size):
            stop = min(start + batch_size, self.n_maps)
            yield Batch(
                self.counts(start, stop, nside, nest), self.labels(start, stop), self.path, start
            )

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "SkymapChunk":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_chunk(path: str | Path) -> SkymapChunk:
    """Open a chunk for reading; InputFileError naming the file if it is missing or malformed."""
    return SkymapChunk(path)


def iter_batches(
    paths: Iterable[str | Path], batch_size: int, nside: int | None = None, nest: bool = False
) -> Iterator[Batch]:
    """Batches of maps over several chunks, in order (a batch never spans two chunks)."""
    for path in paths:
        with open_chunk(path) as chunk:
            yield from chunk.iter_batches(batch_size, nside, nest)


def block_crc32(rows: np.ndarray) -> list[int]:
    """zlib CRC-32 of the C-ordered bytes of each block of ``HDF5_CHUNK_MAPS`` rows."""
    rows = np.ascontiguousarray(rows)
    return [zlib.crc32(rows[k : k + HDF5_CHUNK_MAPS]) for k in range(0, len(rows), HDF5_CHUNK_MAPS)]


def encode_pixels(pixel: np.ndarray, dtype) -> np.ndarray:
    """Stored ``pixel_step`` of ascending pixels (n_maps, n_cr): each map's first pixel, then
    the differences to the previous pixel (ConfigError if a map's pixels do not ascend)."""
    pixel = np.asarray(pixel).astype(dtype)
    step = np.empty_like(pixel)
    step[:, :1] = pixel[:, :1]
    np.subtract(pixel[:, 1:], pixel[:, :-1], out=step[:, 1:])
    if pixel.shape[1] > 1 and np.any(pixel[:, 1:] < pixel[:, :-1]):
        raise ConfigError("chunk pixels must ascend within each map")
    return step


def split_low_byte(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low byte (uint8), values >> 8) of unsigned integers: uint8 for uint16 input, the input
    dtype otherwise. :func:`join_low_byte` inverts it."""
    values = np.asarray(values)
    high = values >> 8
    return values.astype(np.uint8), high.astype(np.uint8) if values.dtype == np.uint16 else high


def join_low_byte(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The unsigned integers (uint16 for a uint8 ``high``, else high's dtype) whose low byte is
    ``low`` and whose bits above it are ``high``."""
    dtype = np.dtype(np.uint16) if high.dtype == np.uint8 else high.dtype
    out = high.astype(dtype) << dtype.type(8)
    out |= low
    return out


def decode_pixels(step: np.ndarray) -> np.ndarray:
    """Pixels (n_maps, n_cr) from their stored ``pixel_step`` (running sum along each map)."""
    return np.cumsum(step, axis=1, dtype=step.dtype)


def decode_energies(code: np.ndarray) -> np.ndarray:
    """log10(E / eV) (float32, exact) of stored ``energy_code``."""
    return (LOG10_ENERGY_ORIGIN + LOG10_ENERGY_STEP * code.astype(np.float64)).astype(np.float32)


class ChunkWriter:
    """The datasets of one chunk file, filled batch by batch in map order (format version 2:
    encoded CR columns, shuffle + LZF + Fletcher-32, HDF5 chunks of ``HDF5_CHUNK_MAPS`` maps);
    use :func:`write_chunk`. ``columns`` are the names :meth:`write` takes: what a reader
    gets, except that energies come as ``energy_code`` (uint16 indices on the storage grid, as
    stored) instead of ``log10_energy``."""

    def __init__(
        self,
        f: h5py.File,
        n_maps: int,
        n_cr: int,
        n_sources: int,
        nside: int,
        axis: bool,
        lens_index: bool = False,
    ):
        self._pixel_dtype = pixel_dtype(nside)
        pixel_high = np.uint8 if self._pixel_dtype == np.uint16 else self._pixel_dtype
        shapes = {
            "pixel_step_low": ((n_maps, n_cr), np.uint8),
            "pixel_step_high": ((n_maps, n_cr), pixel_high),
            "energy_code_low": ((n_maps, n_cr), np.uint8),
            "energy_code_high": ((n_maps, n_cr), np.uint8),
            "charge": ((n_maps, n_cr), np.uint8),
            "is_signal": ((n_maps, n_cr), bool),
            "signal_fraction": ((n_maps,), np.float32),
            "n_signal": ((n_maps,), np.uint16),
            "source_direction": ((n_maps, n_sources, 3), np.float32),
            "source_flux": ((n_maps, n_sources), np.float32),
        }
        if axis:
            shapes["deflection_axis"] = ((n_maps, n_sources, 3), np.float32)
        if lens_index:
            shapes["lens_index"] = ((n_maps,), np.uint8)
        shapes[_CRC_NAME] = ((-(-n_maps // HDF5_CHUNK_MAPS), len(STORED_CR_COLUMNS)), np.uint32)
        self._file = f
        self._datasets = {name: self._create(name, *spec) for name, spec in shapes.items()}
        optional = (("deflection_axis",) if axis else ()) + (("lens_index",) if lens_index else ())
        self.columns = _WRITTEN_CR + LABEL_DATASETS + optional
        self.n_maps, self.written = n_maps, 0

    def _create(self, name: str, shape: tuple, dtype) -> h5py.Dataset:
        return self._file.create_dataset(
            name,
            shape=shape,
            dtype=dtype,
            chunks=(max(1, min(HDF5_CHUNK_MAPS, shape[0])), *shape[1:]),
            compression=None if name in _RAW else "lzf",
            shuffle=np.dtype(dtype).itemsize > 1,
            fletcher32=name not in STORED_CR_COLUMNS,  # these have block CRC-32s (docstring)
            track_times=False,
        )

    def write(self, start: int, columns: Mapping[str, np.ndarray]) -> None:
        """Maps start ... start + k − 1 of every column (``columns[name]`` for each name of
        :attr:`columns`, k rows each), right after the maps written so far."""
        if start != self.written:
            raise ConfigError(f"chunk maps must be written in order: {start} after {self.written}")
        stored = dict(columns)
        step = encode_pixels(stored.pop("pixel"), self._pixel_dtype)
        code = np.asarray(stored.pop("energy_code"))
        if code.dtype != np.uint16:
            raise ConfigError(
                "chunk 'energy_code' must be uint16 energy indices k of log10(E / eV) = "
                f"{LOG10_ENERGY_ORIGIN:g} + k · {LOG10_ENERGY_STEP:g}"
            )
        stored["pixel_step_low"], stored["pixel_step_high"] = split_low_byte(step)
        stored["energy_code_low"], stored["energy_code_high"] = split_low_byte(code)
        stop = start + len(step)
        if start % HDF5_CHUNK_MAPS or (stop % HDF5_CHUNK_MAPS and stop != self.n_maps):
            raise ConfigError(
                f"chunk maps must be written in blocks of {HDF5_CHUNK_MAPS}: {start} ... {stop}"
            )
        blocks = slice(start // HDF5_CHUNK_MAPS, -(-stop // HDF5_CHUNK_MAPS))
        crc = self._datasets[_CRC_NAME]
        for name, dset in self._datasets.items():
            if name == _CRC_NAME:
                continue
            values = np.asarray(stored[name]).astype(dset.dtype, copy=False)
            dset[start:stop] = values
            if name in STORED_CR_COLUMNS:
                crc[blocks, STORED_CR_COLUMNS.index(name)] = block_crc32(values)
        self.written = stop

    def finish(self, attributes: Mapping) -> None:
        """Set the attributes (every name of CHUNK_ATTRS) once all maps are written."""
        missing = [key for key in CHUNK_ATTRS if key not in attributes]
        if missing or self.written != self.n_maps:
            raise ConfigError(
                f"incomplete chunk: {self.written} of {self.n_maps} maps, attributes {missing} "
                "missing"
            )
        self._file.attrs["format"] = FORMAT
        self._file.attrs["format_version"] = FORMAT_VERSION
        for key, value in attributes.items():
            self._file.attrs[key] = value


@contextmanager
def write_chunk(
    path: str | Path,
    n_maps: int,
    n_cr: int,
    n_sources: int,
    nside: int,
    deflection_axis: bool,
    lens_index: bool = False,
) -> Iterator[ChunkWriter]:
    """A :class:`ChunkWriter` for a new chunk file at ``path``, written atomically (crsky.io):
    the file appears under its name only after :meth:`ChunkWriter.finish` and a clean exit.
    ``deflection_axis`` (toy mode) and ``lens_index`` (a lens mix) add those label datasets."""
    with atomic_h5(path) as f:
        writer = ChunkWriter(f, n_maps, n_cr, n_sources, nside, deflection_axis, lens_index)
        yield writer
        if "format" not in f.attrs:
            raise ConfigError(f"chunk {str(path)!r} was not finished (ChunkWriter.finish)")


def chunk_hash(path: str | Path) -> str:
    """Content hash (hex SHA-256 of the bytes) of a chunk file: what files derived from the
    chunk record in ``CHUNK_HASH_ATTR``."""
    return file_sha256(path)


def check_chunk_hash(derived: str | Path, recorded, chunk_path: str | Path) -> None:
    """InputFileError unless ``recorded`` (the derived file's ``CHUNK_HASH_ATTR``) is the hash of
    the chunk at ``chunk_path``: a file computed from another chunk (even one of the same name
    and size, or an older version of it) is refused."""
    recorded = str(recorded) if recorded is not None else "none recorded"
    if recorded != chunk_hash(chunk_path):
        raise InputFileError(
            f"{str(derived)!r} was computed from another chunk than {str(chunk_path)!r} "
            f"(content hash {recorded[:16]} vs the chunk's); rerun the job that writes it"
        )
