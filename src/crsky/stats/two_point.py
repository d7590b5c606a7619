"""Two-point auto-correlation: cumulative pair counts within ψ per map, and the baseline
statistic built from them (seed 000: "take the angular bin with the highest significance").

Convention (exact, tolerance-free): a pair of CRs with unit vectors u, v is *within* ψ when
``d ≥ cos ψ``, where ``d = (u_x v_x + u_y v_y) + u_z v_z`` is evaluated in float64 in this order
and ``cos ψ = numpy.cos(numpy.deg2rad(ψ))``; a pair at an angle exactly ψ counts. ψ = 180° counts
every pair (its cosine, -1, would miss antipodal pairs whose rounded d is below -1). Pairs are
unordered (i < j), so a map of n CRs has n (n - 1) / 2 pairs within 180°.
:func:`reference_pair_counts` is the O(n²) brute force with the same arithmetic.

Baseline: for each ψ, a map's local p-value is the permutation p-value ``(k + 1) / (n + 1)`` of
its count c against n reference maps, k of which have a count ≥ c. A test map is compared with
all N isotropic maps; an isotropic map, leave-one-out, with the other N − 1, which gives
``#{iso ≥ c} / N`` (its upper rank in the set that contains it once), so no map is ever compared
with itself. Beyond the largest reference count (k = 0) the floor 1 / (n + 1) is continued by the
tail of that ψ's isotropic counts: p = S(c) / S(c_max) / (n + 1), S the survival function of
an exponential fit to the top counts (crsky.stats.tail; never 0),
so the score of a map beyond every isotropic map is not capped at log10(N + 1). The map's score
is ``-log10(min over ψ of p)``; the look-elsewhere effect is calibrated by comparing that score
with the scores of the isotropic maps (:mod:`crsky.stats.significance`).
"""

from dataclasses import dataclass
from functools import lru_cache

import healpy as hp
import numba
import numpy as np

from crsky.errors import ConfigError
from crsky.sphere import check_nside
from crsky.stats._kernels import cumulative_counts
from crsky.stats.tail import fit_tail, gpd_survival

__all__ = [
    "BaselineScores",
    "baseline_scores",
    "cumulative_pair_counts",
    "cumulative_pair_counts_vectors",
    "psi_grid_deg",
    "reference_pair_counts",
    "upper_rank_p_values",
]

_MIN_CELLS = 16384  # 2 / 16384 = 1.2e-4 < cos 1° - cos 2° = 4.6e-4: one edge per cell


def psi_grid_deg(psi_min_deg: float = 1.0, psi_max_deg: float = 180.0, step_deg: float = 1.0):
    """(K,) float64 angles ψ_min, ψ_min + step, …, ψ_max in degrees (1°…180° by default)."""
    if not 0.0 < step_deg <= 180.0:
        raise ConfigError(f"'psi_step_deg' must be in (0, 180], got {step_deg}")
    if not 0.0 < psi_min_deg <= psi_max_deg <= 180.0:
        raise ConfigError(
            f"'psi_min_deg' and 'psi_max_deg' must satisfy 0 < min <= max <= 180, "
            f"got {psi_min_deg} and {psi_max_deg}"
        )
    n = int(np.floor((psi_max_deg - psi_min_deg) / step_deg + 1e-9)) + 1
    return psi_min_deg + step_deg * np.arange(n, dtype=np.float64)


def _check_psi(psi_deg) -> np.ndarray:
    psi = np.asarray(psi_deg, dtype=np.float64)
    if psi.ndim != 1 or psi.size == 0:
        raise ConfigError(f"'psi_deg' must be a non-empty 1-D list of angles, got {psi.shape}")
    if not (np.all(np.isfinite(psi)) and psi[0] > 0.0 and psi[-1] <= 180.0):
        raise ConfigError(f"'psi_deg' must lie in (0, 180] degrees, got {psi[0]} ... {psi[-1]}")
    if np.any(np.diff(psi) <= 0.0):
        raise ConfigError("'psi_deg' must be strictly increasing")
    return psi


@lru_cache(maxsize=8)
def _tables(psi_key: tuple[float, ...]):
    """Look-up tables of the kernel for the finite edges (ψ < 180°)."""
    psi = np.array(psi_key)
    edges = np.cos(np.deg2rad(psi[psi < 180.0]))
    n_cells = _MIN_CELLS
    while True:
        half_cells = n_cells / 2.0
        edge_cell = np.clip(np.floor((edges + 1.0) * half_cells), 0, n_cells - 1).astype(np.int64)
        if np.unique(edge_cell).size == edge_cell.size:
            break
        if n_cells >= 2**24:
            raise ConfigError("'psi_deg' has edges closer than 1e-7 in cos ψ; use a coarser grid")
        n_cells *= 2
    cells = np.arange(n_cells)
    base = np.searchsorted(np.sort(edge_cell), cells, side="right")
    base = edges.size - base  # number of edges in cells above each cell
    base = base.astype(np.uint8 if edges.size < 255 else np.int32)
    cell_edge = np.full(n_cells, -np.inf)
    cell_edge[edge_cell] = edges
    return base, cell_edge, half_cells, edges.size


def _run(pixels, vx, vy, vz, psi, threads):
    base, cell_edge, half_cells, n_edges = _tables(tuple(psi.tolist()))
    previous = numba.get_num_threads()
    try:
        if threads is not None:
            numba.set_num_threads(threads)
        block = max(1, min(64, pixels.shape[0] // (4 * numba.get_num_threads()) or 1))
        return cumulative_counts(
            pixels, vx, vy, vz, base, cell_edge, half_cells, n_edges, psi.size, block
        )
    finally:
        numba.set_num_threads(previous)


@lru_cache(maxsize=4)
def _pixel_vectors(nside: int):
    vx, vy, vz = hp.pix2vec(nside, np.arange(hp.nside2npix(nside)), nest=False)
    return np.ascontiguousarray(vx), np.ascontiguousarray(vy), np.ascontiguousarray(vz)


def cumulative_pair_counts(pixels, nside: int, psi_deg, threads: int | None = None) -> np.ndarray:
    """(n_maps, K) int64 number of CR pairs within each ψ of ``psi_deg`` (degrees) per map.

    Args:
        pixels: (n_maps, n_cr) HEALPix RING pixel of each CR (the skymap chunk's ``pixel``);
            CRs are at their pixel centres (``healpy.pix2vec``, Galactic frame).
        nside: HEALPix nside of ``pixels``.
        psi_deg: strictly increasing angles in (0, 180] degrees.
        threads: numba threads, parallel over maps (default: numba's current setting).
    """
    nside = check_nside(nside)
    psi = _check_psi(psi_deg)
    pix = np.asarray(pixels)
    if pix.ndim != 2 or not np.issubdtype(pix.dtype, np.integer):
        raise ConfigError(
            f"'pixels' must be a 2-D integer array (maps, CRs), got {pix.dtype} {pix.shape}"
        )
    npix = hp.nside2npix(nside)
    if pix.size and (pix.min() < 0 or pix.max() >= npix):
        raise ConfigError(f"'pixels' must lie in [0, {npix}) for nside {nside}")
    vx, vy, vz = _pixel_vectors(nside)
    if pix.dtype not in (np.uint16, np.uint32, np.int32, np.int64):
        pix = pix.astype(np.int64)
    return _run(np.ascontiguousarray(pix), vx, vy, vz, psi, threads)


def cumulative_pair_counts_vectors(vectors, psi_deg, threads: int | None = None) -> np.ndarray:
    """As :func:`cumulative_pair_counts` for CRs given as (n_maps, n_cr, 3) unit vectors."""
    psi = _check_psi(psi_deg)
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 3 or v.shape[2] != 3:
        raise ConfigError(f"'vectors' must have shape (maps, CRs, 3), got {v.shape}")
    n_maps, n_cr, _ = v.shape
    flat = v.reshape(-1, 3)
    index = np.arange(n_maps * n_cr, dtype=np.int64).reshape(n_maps, n_cr)
    vx, vy, vz = (np.ascontiguousarray(flat[:, i]) for i in range(3))
    return _run(index, vx, vy, vz, psi, threads)


def reference_pair_counts(vectors, psi_deg) -> np.ndarray:
    """O(n²) brute force of :func:`cumulative_pair_counts_vectors` with the same float64
    arithmetic (module docstring), for tests: (n_maps, K) int64."""
    psi = _check_psi(psi_deg)
    v = np.asarray(vectors, dtype=np.float64)
    out = np.empty((v.shape[0], psi.size), dtype=np.int64)
    upper = np.triu_indices(v.shape[1], 1)
    for k, m in enumerate(v):
        x, y, z = m[:, 0], m[:, 1], m[:, 2]
        d = (x[:, None] * x[None, :] + y[:, None] * y[None, :]) + z[:, None] * z[None, :]
        d = d[upper]
        out[k] = [
            d.size if p >= 180.0 else np.count_nonzero(d >= np.cos(np.deg2rad(p))) for p in psi
        ]
    return out


def _upper_rank(column_sorted: np.ndarray, values: np.ndarray, in_set: bool) -> np.ndarray:
    n_iso = column_sorted.size
    at_least = n_iso - np.searchsorted(column_sorted, values, side="left")
    return at_least / n_iso if in_set else (at_least + 1) / (n_iso + 1)


class _CountTail:
    """Continuation of the rank p beyond the largest reference count of one ψ column."""

    def __init__(self, column_sorted: np.ndarray):
        self.fit = fit_tail(column_sorted.astype(np.float64))

    def survival(self, counts: np.ndarray) -> np.ndarray:
        f = self.fit
        return gpd_survival(np.maximum(counts - f.threshold, 0.0), f.xi, f.beta)

    def extend(self, p: np.ndarray, counts: np.ndarray, column_sorted: np.ndarray, in_set: bool):
        """Scale p of the maps above every *other* reference count by S(c) / S(that max)."""
        if self.fit is None:
            return p
        n_iso = column_sorted.size
        top, second = column_sorted[-1], column_sorted[-2] if n_iso > 1 else column_sorted[-1]
        if in_set:  # leave-one-out: the strict maximum is compared with the second largest
            beyond = (counts == top) & (top > second)
            reference = second
        else:
            beyond = counts > top
            reference = top
        if not beyond.any():
            return p
        ratio = self.survival(counts[beyond].astype(np.float64)) / self.survival(
            np.array([float(reference)])
        )
        out = p.copy()
        out[beyond] = p[beyond] * np.minimum(ratio, 1.0)
        return out


def _check_counts(counts, iso_counts, is_isotropy_set: bool):
    c = np.asarray(counts)
    ref = np.asarray(iso_counts)
    if ref.ndim != 2 or ref.shape[0] == 0:
        raise ConfigError(f"the isotropy set holds no maps (pair counts of shape {ref.shape})")
    if c.ndim != 2 or c.shape[1] != ref.shape[1]:
        raise ConfigError(f"pair counts {c.shape} and isotropy counts {ref.shape} differ in ψ bins")
    if is_isotropy_set and c.shape != ref.shape:
        raise ConfigError("'is_isotropy_set' needs counts equal to the isotropy counts")
    return c, ref


def upper_rank_p_values(counts, iso_counts, *, is_isotropy_set: bool = False) -> np.ndarray:
    """(n_maps, K) local p-values: per ψ, the fraction of isotropic maps with a count ≥ the map's.

    ``(#{iso ≥ c} + 1) / (N + 1)`` for maps outside the isotropy set; with ``is_isotropy_set``
    (``counts`` is ``iso_counts``), ``#{iso ≥ c} / N``, the rank of each map among the N maps
    that include it once. Both are the upper rank of the map in a set of exchangeable maps that
    contains it exactly once, so under isotropy they are (discretely) uniform.
    """
    c, ref = _check_counts(counts, iso_counts, is_isotropy_set)
    p = np.empty(c.shape, dtype=np.float64)
    for k in range(c.shape[1]):
        p[:, k] = _upper_rank(np.sort(ref[:, k]), c[:, k], is_isotropy_set)
    return p


class _RunningMin:
    """Minimum over ψ of local p-values and its ψ index, updated one ψ column at a time."""

    def __init__(self, n_maps: int):
        self.p = np.full(n_maps, np.inf)
        self.index = np.zeros(n_maps, dtype=np.int64)

    def update(self, p: np.ndarray, k: int) -> None:
        better = p < self.p
        self.p[better] = p[better]
        self.index[better] = k


@dataclass(frozen=True)
class BaselineScores:
    """Baseline scores ``-log10(min_ψ p)`` of the test maps and of the isotropic maps (each
    ranked in the isotropy set that contains it once), with the ψ (degrees) of each minimum."""

    test: np.ndarray
    isotropy: np.ndarray
    best_psi_test_deg: np.ndarray
    best_psi_isotropy_deg: np.ndarray


def baseline_scores(test_counts, iso_counts, psi_deg) -> BaselineScores:
    """Scores of the two-point baseline for test maps and isotropic maps (module docstring)."""
    psi = _check_psi(psi_deg)
    c, ref = _check_counts(test_counts, iso_counts, False)
    if ref.shape[1] != psi.size:
        raise ConfigError(f"pair counts have {ref.shape[1]} ψ bins, 'psi_deg' has {psi.size}")
    test, iso = _RunningMin(c.shape[0]), _RunningMin(ref.shape[0])
    for k in range(psi.size):
        column = np.sort(ref[:, k])
        tail = _CountTail(column)
        test.update(tail.extend(_upper_rank(column, c[:, k], False), c[:, k], column, False), k)
        iso.update(tail.extend(_upper_rank(column, ref[:, k], True), ref[:, k], column, True), k)
    return BaselineScores(
        test=-np.log10(test.p),
        isotropy=-np.log10(iso.p),
        best_psi_test_deg=psi[test.index],
        best_psi_isotropy_deg=psi[iso.index],
    )
