"""Using a lens: :class:`Lens` loads a lens folder and maps extragalactic directions to observed
ones, as a whole map (``transform``) or one cosmic ray at a time (``sample_observed``).

Conventions (DESIGN.md sections 3 and 4): HEALPix RING pixels in the Galactic frame; a part
M[i, j] maps extragalactic pixel j (direction at the edge of the Galaxy that the cosmic ray came
from) to observed pixel i; column sums are transparencies ≤ 1; rigidities as log10(R / V).
"""

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import healpy as hp
import numpy as np
import scipy.sparse as sp

from crsky.errors import ConfigError, InputFileError
from crsky.lens._kernels import draw_rows
from crsky.lens.formats import CFG_NAME, LensCfg, read_cfg, read_mldat, read_npz
from crsky.sphere import check_nside

__all__ = ["Lens"]

_EDGE_ATOL = 1e-9  # bins of lens.cfg must touch within this (log10 R / V)
_COLUMN_SUM_RTOL = 1e-9  # rounding of a normalised column sum (exactly 1 for the max column)


@dataclass(frozen=True)
class _Sampler:
    """A part with the running sum of its CSC data: cum[k] = sum of data[:k] (nnz + 1,)."""

    matrix: sp.csc_matrix
    cum: np.ndarray


class Lens:
    """A Galactic lens: one sparse npix x npix matrix per rigidity bin.

    >>> lens = Lens.load("results/lens/jf12")  # doctest: +SKIP
    >>> observed = lens.sample_observed(pixels, log10_rigidity, rng)  # doctest: +SKIP
    """

    def __init__(self, folder: Path, cfg: LensCfg, max_cached_parts: int | None = None):
        self.folder = Path(folder)
        self.header = dict(cfg.header)
        try:
            self.nside = check_nside(int(cfg.header["nside"]))
        except (ConfigError, ValueError):
            raise InputFileError(
                f"lens index {str(self.folder / CFG_NAME)!r}: nside {cfg.header['nside']!r} is "
                "not a power of 2"
            ) from None
        self.npix = hp.nside2npix(self.nside)
        self.files = [self.folder / e.file for e in cfg.entries]
        lo = np.array([e.log10_rigidity_min for e in cfg.entries])
        hi = np.array([e.log10_rigidity_max for e in cfg.entries])
        order = np.argsort(lo, kind="stable")
        self.files = [self.files[i] for i in order]
        lo, hi = lo[order], hi[order]
        if np.any(hi <= lo) or np.any(np.abs(lo[1:] - hi[:-1]) > _EDGE_ATOL):
            raise InputFileError(
                f"lens index {str(self.folder / CFG_NAME)!r}: rigidity bins must be adjacent "
                f"and increasing, got {list(zip(lo.tolist(), hi.tolist(), strict=True))}"
            )
        self.log10_rigidity_edges = np.append(lo, hi[-1])
        missing = [str(f) for f in self.files if not f.is_file()]
        if missing:
            raise InputFileError(f"lens {str(self.folder)!r} lists missing part files {missing}")
        self._cache: OrderedDict[int, _Sampler] = OrderedDict()
        self._max_cached = max_cached_parts

    @classmethod
    def load(cls, folder: str | Path, max_cached_parts: int | None = None) -> "Lens":
        """Open the lens in ``folder`` (its ``lens.cfg``); parts are read when first used and
        kept (at most ``max_cached_parts`` of them, None = all). InputFileError if the folder
        has no complete lens."""
        folder = Path(folder)
        if max_cached_parts is not None and max_cached_parts < 1:
            raise ConfigError(f"'max_cached_parts' must be at least 1, got {max_cached_parts}")
        return cls(folder, read_cfg(folder / CFG_NAME), max_cached_parts)

    @property
    def n_bins(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        lo, hi = self.log10_rigidity_edges[[0, -1]]
        return f"Lens({str(self.folder)!r}, nside={self.nside}, {self.n_bins} bins {lo:g}-{hi:g})"

    def bin_index(self, log10_rigidity) -> np.ndarray:
        """Bin of each log10(R / V). Bins are (lo, hi], as CRPropa's ``MagneticLens`` picks its
        parts (lo < R <= hi), so a rigidity on an edge falls in the same bin in both; the first
        bin also holds its lower edge, which CRPropa leaves uncovered. Edges compare as the
        log10 values of lens.cfg (CRPropa converts them to volts first, which can move a value
        within a few ulp of an edge). ConfigError for any value outside the lens (never a
        nearest bin)."""
        lr = np.asarray(log10_rigidity, dtype=np.float64)
        edges = self.log10_rigidity_edges
        outside = ~((lr >= edges[0]) & (lr <= edges[-1]))  # also catches NaN
        if np.any(outside):
            bad = lr[outside].flat[0]
            raise ConfigError(
                f"log10_rigidity {bad!r} is outside the lens coverage {edges[0]!r} ... "
                f"{edges[-1]!r} (log10 R / V) of {str(self.folder)!r}"
            )
        return np.maximum(np.searchsorted(edges, lr, side="left") - 1, 0)

    def _sampler(self, index: int) -> _Sampler:
        sampler = self._cache.get(index)
        if sampler is not None:
            self._cache.move_to_end(index)
            return sampler
        path = self.files[index]
        reader = read_mldat if path.suffix == ".mldat" else read_npz
        matrix = reader(path, self.npix)
        cum = np.empty(matrix.nnz + 1)
        cum[0] = 0.0
        np.cumsum(matrix.data, out=cum[1:])
        sums = np.diff(cum[matrix.indptr])
        if sums.size and sums.max() > 1.0 + _COLUMN_SUM_RTOL:
            j = int(np.argmax(sums))
            raise InputFileError(
                f"lens part {str(path)!r}: column {j} sums to {float(sums[j])!r} > 1; a column "
                "sum is the transparency of an extragalactic pixel (a probability), so this is "
                "not a normalised lens part (rebuild the lens with 'crsky lens cfg')"
            )
        sampler = _Sampler(matrix, cum)
        self._cache[index] = sampler
        if self._max_cached is not None and len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
        return sampler

    def _scalar_bin(self, log10_rigidity) -> int:
        if np.ndim(log10_rigidity) != 0:
            raise ConfigError(
                f"'log10_rigidity' must be one number here, got shape {np.shape(log10_rigidity)}"
            )
        return int(self.bin_index(log10_rigidity))

    def matrix(self, log10_rigidity: float) -> sp.csc_matrix:
        """The lens part (npix x npix CSC) of the bin holding ``log10_rigidity`` (log10 R / V)."""
        return self._sampler(self._scalar_bin(log10_rigidity)).matrix

    def transparency(self, log10_rigidity: float) -> np.ndarray:
        """Column sums (npix,): probability that a cosmic ray from each extragalactic pixel
        reaches the Earth, relative to the most transparent direction of the whole lens."""
        s = self._sampler(self._scalar_bin(log10_rigidity))
        return np.diff(s.cum[s.matrix.indptr])

    def transform(self, extragalactic_map, log10_rigidity: float) -> np.ndarray:
        """Observed map M @ m for an extragalactic map m of shape (npix,) or (npix, k)."""
        m = np.asarray(extragalactic_map, dtype=np.float64)
        if m.ndim not in (1, 2) or m.shape[0] != self.npix:
            raise ConfigError(
                f"'extragalactic_map' must have shape ({self.npix},) or ({self.npix}, k) for "
                f"nside {self.nside} (RING), got {m.shape}"
            )
        return np.asarray(self.matrix(log10_rigidity) @ m)

    def sample_observed(
        self, extragalactic_pixel, log10_rigidity, rng: np.random.Generator
    ) -> np.ndarray:
        """Observed RING pixel (n,) int64 of each cosmic ray, -1 where it is lost.

        Args:
            extragalactic_pixel: (n,) integer RING pixels of the directions the CRs came from.
            log10_rigidity: (n,) log10(R / V) of each CR (or one value for all).
            rng: the caller's generator; exactly n uniform numbers are drawn, in input order.

        A CR from column j is observed with probability equal to the column sum (its
        transparency) and then lands in row i with probability M[i, j] / column sum: one
        uniform u per CR is placed at base_j + u on the running sum of the part's CSC data
        (base_j = sum of all columns before j, non-decreasing since entries are ≥ 0) and found
        by bisection within column j; a position past column j's entries means the CR is lost.
        """
        pix = np.asarray(extragalactic_pixel)
        if pix.ndim != 1 or not (np.issubdtype(pix.dtype, np.integer) or pix.size == 0):
            raise ConfigError(
                f"'extragalactic_pixel' must be a 1-D integer array, got {pix.dtype} {pix.shape}"
            )
        pix = pix.astype(np.int64, copy=False)
        if pix.size and (pix.min() < 0 or pix.max() >= self.npix):
            raise ConfigError(
                f"'extragalactic_pixel' must lie in 0 ... {self.npix - 1} (nside {self.nside})"
            )
        lr = np.asarray(log10_rigidity, dtype=np.float64)
        if lr.ndim == 0:
            lr = np.full(pix.shape, float(lr))
        if lr.shape != pix.shape:
            raise ConfigError(
                f"'log10_rigidity' {lr.shape} must match 'extragalactic_pixel' {pix.shape}"
            )
        bins = self.bin_index(lr)
        u = rng.random(pix.size)
        out = np.full(pix.size, -1, dtype=np.int64)
        if pix.size == 0:
            return out
        if bins.min() == bins.max():
            out[:] = self._draw(int(bins[0]), pix, u)
            return out
        # a stable sort of 16-bit integers is numpy's radix sort: ~4x faster than of int64
        small = bins.astype(np.uint16) if self.n_bins <= 1 << 16 else bins
        order = np.argsort(small, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(bins, minlength=self.n_bins))))
        for b in np.flatnonzero(np.diff(bounds)):
            idx = order[bounds[b] : bounds[b + 1]]
            out[idx] = self._draw(int(b), pix[idx], u[idx])
        return out

    def _draw(self, index: int, columns: np.ndarray, u: np.ndarray) -> np.ndarray:
        s = self._sampler(index)
        out = np.empty(columns.size, dtype=np.int64)
        draw_rows(s.matrix.indptr, s.matrix.indices, s.cum, columns, u, out)
        return out
