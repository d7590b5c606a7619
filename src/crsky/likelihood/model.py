"""The signal model of one skymap dataset as a likelihood: per-CR signal-to-background ratios for
given sources (oracle) and their profile over source hypotheses (profiled analysis).

Three classes share one interface (:class:`SignalModel`): :class:`ToyModel` (seed 002's rotation
and Fisher blurring), :class:`PixelModel` for lens mode (ratios from the lens matrices) and for
no deflection (the source pixel itself). The package docstring (:mod:`crsky.likelihood`) states
the likelihood; :func:`signal_model` builds the model of a dataset.
"""

from dataclasses import dataclass
from functools import cache

import healpy as hp
import numpy as np
import scipy.sparse as sp

from crsky.errors import ConfigError
from crsky.likelihood import _kernels as K
from crsky.sky._kernels import perpendicular_rows, table_lookup
from crsky.sky.coordinates import north_celestial_pole_galactic
from crsky.sky.dataset import DatasetConfig
from crsky.sky.deflection import BLUR_RAD_EV, LensLike
from crsky.sky.exposure import Exposure
from crsky.sky.simulate import MAX_ATTEMPTS_PER_CR, check_lens_compatible, lens_acceptance
from crsky.store import pixel_lookup

__all__ = [
    "PROFILE_ACCEPTANCE_FLOOR",
    "PixelModel",
    "ProfileGrid",
    "ProfileResult",
    "SignalModel",
    "ToyModel",
    "check_likelihood_dataset",
    "check_profile_grid",
    "deflection_scale_rad",
    "signal_model",
    "smoothed_exposure_table",
]

# Source hypotheses of the profile: expected observed fraction of the emitted CRs ≥ half the
# simulation's floor (it redraws random sources below 1 / MAX_ATTEMPTS_PER_CR, with sampling noise).
PROFILE_ACCEPTANCE_FLOOR = 0.5 / MAX_ATTEMPTS_PER_CR
_CUT_LOG = np.log(1e4)  # profile: Fisher components cut at 1e-4 of their peak density
_ENERGY_NODES = 24  # Gauss-Legendre nodes in the energy CDF for the acceptance A
_TABLE_SIN_DEC = 513  # smoothed-exposure table: sin δ nodes ...
_TABLE_SIGMA = (1e-3, 3.0, 48)  # ... and σ (rad) from, to, number (log-spaced)
_TABLE_PSI_NODES = 24  # quadrature of the smoothing kernel: polar ...
_TABLE_AZIMUTH_NODES = 32  # ... and azimuthal nodes


@dataclass(frozen=True)
class ProfileGrid:
    """Source hypotheses of ``likelihood_profiled`` in toy mode: positions at the centres of the
    HEALPix NESTED pixels of ``nside`` and ``n_axes`` deflection directions (the toy's rotation
    axis, uniform in azimuth about the source), searched coarse to fine: level 0 evaluates every
    hypothesis of the grid ``levels`` times coarser (nside / 2^levels, n_axes / 2^levels) with
    the kernels widened by the cell size, each finer level the 4 × 3 children of the
    ``candidates`` best. Lens mode uses the lens pixels, no deflection the map pixels (exact)."""

    nside: int = 64
    n_axes: int = 64
    levels: int = 4
    candidates: int = 16

    def __post_init__(self):
        for key in ("nside", "n_axes", "levels", "candidates"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ConfigError(f"evaluation.likelihood.grid {key!r} must be an integer")
        if not hp.isnsideok(self.nside, nest=True):
            raise ConfigError(
                f"evaluation.likelihood.grid 'nside' must be a power of 2, got {self.nside}"
            )
        if self.levels < 0 or self.nside >> self.levels < 1:
            raise ConfigError(
                f"evaluation.likelihood.grid 'levels' = {self.levels} must lie in 0 ... "
                f"log2(nside) = {int(np.log2(self.nside))}"
            )
        if self.n_axes % (1 << self.levels) or self.n_axes >> self.levels < 4:
            raise ConfigError(
                f"evaluation.likelihood.grid 'n_axes' = {self.n_axes} must be a multiple of "
                f"2^levels = {1 << self.levels} with at least 4 axes at the coarsest level"
            )
        if self.candidates < 1:
            raise ConfigError("evaluation.likelihood.grid 'candidates' must be ≥ 1")

    @property
    def spacing_rad(self) -> float:
        """Mean spacing of the finest position grid, sqrt(4π / npix)."""
        return float(np.sqrt(4 * np.pi / hp.nside2npix(self.nside)))


@dataclass(frozen=True)
class ProfileResult:
    """Profile of each map (n_maps,): Λ_max = max ln L(f, source) / L(0) ≥ 0, the fitted
    signal fraction, the best source (unit vector) and, in toy mode, its rotation axis."""

    log_lr: np.ndarray
    f_hat: np.ndarray
    direction: np.ndarray
    axis: np.ndarray | None

    @property
    def test_statistic(self) -> np.ndarray:
        """TS = 2 Λ_max."""
        return 2.0 * self.log_lr


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@cache
def _pixel_vectors(nside: int, nest: bool) -> np.ndarray:
    v = np.stack(hp.pix2vec(nside, np.arange(hp.nside2npix(nside)), nest=nest), axis=-1)
    out = np.ascontiguousarray(v, dtype=np.float64)
    out.setflags(write=False)
    return out


class SignalModel:
    """Common part: the dataset, the stored nside, the map pixels' exposure and the source
    weights of several sources. Subclasses implement :meth:`ratios`, :meth:`acceptance` and
    :meth:`profile`."""

    mode: str

    def __init__(self, dataset: DatasetConfig, nside: int):
        self.dataset = dataset
        self.nside = int(nside)
        self.pixel_exposure = dataset.exposure.pixel_exposure(self.nside)
        composition = dataset.composition
        self.log10_charge = np.log10(np.asarray(composition.charges, dtype=np.float64))
        self.fractions = np.asarray(composition.fractions, dtype=np.float64)

    def acceptance(self, sources: np.ndarray, axes: np.ndarray | None) -> np.ndarray:
        """Expected observed fraction A (n_maps, n_src) of the CRs each source emits."""
        raise NotImplementedError

    def ratios(self, pixel, log10_energy, sources, axes=None) -> np.ndarray:
        """r = s / b (n_maps, N) of every CR for the given sources (n_maps, n_src, 3) (and toy
        axes): the oracle's per-CR likelihood ratios."""
        raise NotImplementedError

    def profile(self, pixel, log10_energy) -> ProfileResult:
        """Λ_max over f in [0, 1] and the source hypotheses of the profile grid (one source)."""
        raise NotImplementedError

    def _check_one_source(self) -> None:
        n = self.dataset.sources.n_sources
        if n != 1:
            raise ConfigError(
                f"likelihood_profiled profiles one source; dataset {self.dataset.name!r} has "
                f"n_sources = {n}"
            )

    def _source_shares(self, acceptance: np.ndarray) -> np.ndarray:
        """Flux shares w_j over the flux-weighted acceptance Σ_l w_l A_l (n_maps, n_src)."""
        w = self.dataset.sources.flux_share
        total = (acceptance @ w)[:, None]
        return np.divide(w[None, :], total, out=np.zeros(acceptance.shape), where=total > 0)

    def _check_maps(self, pixel, log10_energy) -> tuple[np.ndarray, np.ndarray]:
        pix = np.asarray(pixel)
        lg_e = np.asarray(log10_energy, dtype=np.float64)
        if pix.ndim != 2 or pix.shape != lg_e.shape:
            raise ConfigError(
                f"'pixel' {pix.shape} and 'log10_energy' {lg_e.shape} must be (n_maps, n_cr)"
            )
        npix = hp.nside2npix(self.nside)
        if pix.size and (pix.min() < 0 or pix.max() >= npix):
            raise ConfigError(f"'pixel' must lie in [0, {npix}) for nside {self.nside}")
        return np.ascontiguousarray(pix, dtype=np.int64), np.ascontiguousarray(lg_e)


# --- toy model ---------------------------------------------------------------------------------


def _gauss_legendre_01(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


@cache
def smoothed_exposure_table(exposure: Exposure) -> tuple[np.ndarray, np.ndarray]:
    """W(sin δ, ln σ) = ∫ ω(d) F_σ(d · c) dΩ, the relative exposure smoothed with the Fisher
    kernel of width σ around a direction c at declination δ (ω depends on δ only), on a grid
    of sin δ in [−1, 1] and ln σ; returns (table (n_sin, n_sigma), (x0, dx, ln σ0, d ln σ)).
    The kernel is integrated in 1 − cos ψ (truncated exponential, by its quantiles at
    Gauss-Legendre nodes) and uniformly in azimuth."""
    x = np.linspace(-1.0, 1.0, _TABLE_SIN_DEC)
    lo, hi, n_sigma = _TABLE_SIGMA
    log_sigma = np.linspace(np.log(lo), np.log(hi), n_sigma)
    params = np.array([-1.0, x[1] - x[0], log_sigma[0], log_sigma[1] - log_sigma[0]])
    if exposure.full_sky:
        return np.ones((x.size, n_sigma)), params
    v, wv = _gauss_legendre_01(_TABLE_PSI_NODES)
    beta = 2.0 * np.pi * (np.arange(_TABLE_AZIMUTH_NODES) + 0.5) / _TABLE_AZIMUTH_NODES
    cos_beta = np.cos(beta)
    cos_dec_c = np.sqrt(np.clip(1.0 - x * x, 0.0, None))
    table = np.empty((x.size, n_sigma))
    for k, ls in enumerate(log_sigma):
        kappa = np.exp(-2.0 * ls)
        t = -np.log1p(-v * -np.expm1(-2.0 * kappa)) / kappa  # 1 − cos ψ at the nodes
        cos_psi, sin_psi = 1.0 - t, np.sqrt(np.clip(t * (2.0 - t), 0.0, None))
        sin_dec = (
            cos_psi[None, :, None] * x[:, None, None]
            + sin_psi[None, :, None] * cos_dec_c[:, None, None] * cos_beta[None, None, :]
        )
        omega = exposure.of_declination(np.arcsin(np.clip(sin_dec, -1.0, 1.0)))
        table[:, k] = omega.mean(axis=2) @ wv
    return table, params


class ToyModel(SignalModel):
    """Seed 002's toy deflection (crsky.sky.deflection.ToyDeflection) as a likelihood."""

    mode = "toy"

    def __init__(self, dataset: DatasetConfig, nside: int, grid: ProfileGrid):
        super().__init__(dataset, nside)
        toy = dataset.toy_deflection
        self.grid = grid
        self.params = np.zeros(K.P_SIZE)
        self.params[K.P_ROT] = toy.rotation_rad_ev
        self.params[K.P_BLUR] = toy.blur_fraction * BLUR_RAD_EV
        self.params[K.P_PIX_VAR] = 4 * np.pi / hp.nside2npix(self.nside) / 12.0
        self.params[K.P_CUT] = _CUT_LOG
        self.params[K.P_FOUR_PI_WBAR] = 4 * np.pi * float(self.pixel_exposure.mean())
        u, w = _gauss_legendre_01(_ENERGY_NODES)
        self.node_lg_e = np.ascontiguousarray(table_lookup(u, dataset.energy_sampler.inverse_table))
        self.node_w = w
        self.pole = np.ascontiguousarray(north_celestial_pole_galactic(), dtype=np.float64)
        self.table, self.table_params = smoothed_exposure_table(dataset.exposure)
        self._levels = None

    def check_grid(self) -> None:
        """ConfigError if the finest grid is coarser than the deflection scale
        (:func:`check_profile_grid`)."""
        check_profile_grid(self.dataset, self.grid, self.nside)

    def _kernel_args(self):
        return (
            self.log10_charge,
            self.fractions,
            self.node_lg_e,
            self.node_w,
            self.params,
            self.pole,
            self.table,
            self.table_params,
        )

    def acceptance(self, sources, axes) -> np.ndarray:
        s = _unit(sources)
        t = _unit(np.cross(axes, s))  # rotation about the axis moves s towards axis × s
        flat_s, flat_t = s.reshape(-1, 3), t.reshape(-1, 3)
        out = np.array(
            [
                K.toy_acceptance(a, b, 0.0, 0.0, *self._kernel_args())
                for a, b in zip(flat_s, flat_t, strict=True)
            ]
        )
        return out.reshape(s.shape[:-1])

    def ratios(self, pixel, log10_energy, sources, axes=None) -> np.ndarray:
        if axes is None:
            raise ConfigError("toy-mode ratios need the sources' rotation axes ('deflection_axis')")
        pix, lg_e = self._check_maps(pixel, log10_energy)
        s = _unit(sources)
        t = _unit(np.cross(_unit(axes), s))
        weights = self._source_shares(self.acceptance(s, axes))
        vectors = _pixel_vectors(self.nside, False)[pix]
        return K.toy_ratios(
            vectors, lg_e, s, t, weights, self.log10_charge, self.fractions, self.params
        )

    def _grid_levels(self):
        """Per level ℓ = 0 ... L: NESTED pixel centres and tangent bases, concatenated, and the
        level offsets; A of every level-0 hypothesis (smoothed)."""
        if self._levels is None:
            g = self.grid
            vec, e1, e2, offsets = [], [], [], [0]
            for level in range(g.levels + 1):
                nside = g.nside >> (g.levels - level)
                v = _pixel_vectors(nside, True)
                vec.append(v)
                e1.append(perpendicular_rows(v, np.zeros(len(v))))
                e2.append(perpendicular_rows(v, np.full(len(v), 0.5 * np.pi)))
                offsets.append(offsets[-1] + len(v))
            vec, e1, e2 = (np.ascontiguousarray(np.concatenate(a)) for a in (vec, e1, e2))
            n_pos0 = offsets[1]
            n_phi0 = g.n_axes >> g.levels
            finest = g.levels == 0
            var_pos = 0.0 if finest else 4 * np.pi / n_pos0 / 12.0
            dphi = 0.0 if finest else 2 * np.pi / n_phi0
            a0 = K.toy_acceptance_many(
                vec[:n_pos0], e1[:n_pos0], e2[:n_pos0], n_phi0, var_pos, dphi, *self._kernel_args()
            )
            self._levels = (vec, e1, e2, np.asarray(offsets, dtype=np.int64), n_phi0, a0)
        return self._levels

    def profile(self, pixel, log10_energy) -> ProfileResult:
        self._check_one_source()
        pix, lg_e = self._check_maps(pixel, log10_energy)
        vec, e1, e2, offsets, n_phi0, a0 = self._grid_levels()
        vectors = _pixel_vectors(self.nside, False)[pix]
        log_lr, f_hat, position, axis_index = K.toy_profile_maps(
            vectors,
            lg_e,
            vec,
            e1,
            e2,
            offsets,
            n_phi0,
            a0,
            PROFILE_ACCEPTANCE_FLOOR,
            self.grid.candidates,
            *self._kernel_args(),
        )
        found = position >= 0
        g = offsets[-2] + np.where(found, position, 0)
        n_phi = self.grid.n_axes
        phi = 2 * np.pi * np.where(found, axis_index, 0) / n_phi
        s = vec[g]
        t = np.cos(phi)[:, None] * e1[g] + np.sin(phi)[:, None] * e2[g]
        direction = np.where(found[:, None], s, np.nan)
        axis = np.where(found[:, None], np.cross(s, t), np.nan)
        return ProfileResult(log_lr, f_hat, direction, axis)


def deflection_scale_rad(dataset: DatasetConfig, nside: int) -> tuple[float, float]:
    """(σ_ref, θ_ref) of a toy dataset: the narrowest angular width of its signal, the blurring
    σ of the lightest charge at the minimum energy added in quadrature to the map pixel
    (√(Ω_pix / 12)), and that CR's coherent deflection θ (rad)."""
    toy = dataset.toy_deflection
    inv_r = 10.0 ** (18.0 - dataset.log10_energy_min) * dataset.composition.charge_min
    sigma = toy.blur_fraction * BLUR_RAD_EV * inv_r
    pixel_var = 4 * np.pi / hp.nside2npix(nside) / 12.0
    return float(np.sqrt(sigma**2 + pixel_var)), float(toy.rotation_rad_ev * inv_r)


def check_profile_grid(dataset: DatasetConfig, grid: ProfileGrid, nside: int | None = None):
    """ConfigError (naming evaluation.likelihood.grid.<key>) if the finest grid is coarser than
    the deflection scale σ_ref of :func:`deflection_scale_rad`: position spacing sqrt(4π / npix)
    > σ_ref, or axis step 2π / n_axes times the coherent deflection > σ_ref."""
    scale, rotation = deflection_scale_rad(dataset, dataset.nside if nside is None else nside)
    spacing = grid.spacing_rad
    name = dataset.name
    if spacing > scale:
        need = grid.nside
        while np.sqrt(4 * np.pi / hp.nside2npix(need)) > scale:
            need *= 2
        raise ConfigError(
            f"evaluation.likelihood.grid.nside = {grid.nside}: spaces source positions by "
            f"{np.degrees(spacing):.2f}°, coarser than the deflection scale "
            f"{np.degrees(scale):.2f}° of dataset {name!r} (blurring of the lightest charge at "
            f"the threshold ⊕ pixel); use nside ≥ {need}"
        )
    step = rotation * 2 * np.pi / grid.n_axes
    if step > scale:
        need = int(np.ceil(rotation * 2 * np.pi / scale))
        raise ConfigError(
            f"evaluation.likelihood.grid.n_axes = {grid.n_axes}: moves the deflected position "
            f"by {np.degrees(step):.2f}° per axis step, coarser than the deflection scale "
            f"{np.degrees(scale):.2f}° of dataset {name!r}; use n_axes ≥ {need}"
        )


def check_likelihood_dataset(dataset: DatasetConfig, methods, grid: ProfileGrid) -> None:
    """ConfigError unless the likelihood ``methods`` can model ``dataset``: the profile grid
    resolves a toy deflection, lens mode has no extragalactic smearing, the profile has one
    source, the oracle fixed flux shares."""
    mode = dataset.deflection_mode
    sources = dataset.sources
    if "oracle" in methods and sources.drawn_fluxes and sources.n_sources > 1:
        raise ConfigError(
            f"skymaps.datasets.{dataset.name}.sources.fluxes: drawn per map (distances_mpc), but "
            "likelihood_oracle mixes the sources with fixed flux shares; drop 'oracle' from "
            "evaluation.likelihood.methods"
        )
    if mode == "lens" and float(dataset.config["deflection"]["extragalactic_smearing_deg"]) > 0:
        raise ConfigError(
            f"skymaps.datasets.{dataset.name}.deflection.extragalactic_smearing_deg: the "
            "likelihood analyses model lens mode without extragalactic smearing; set it to 0 "
            "or drop evaluation.likelihood.methods"
        )
    if "profiled" in methods:
        if dataset.sources.n_sources != 1:
            raise ConfigError(
                f"skymaps.datasets.{dataset.name}.sources.n_sources = "
                f"{dataset.sources.n_sources}: likelihood_profiled profiles one source; drop "
                "'profiled' from evaluation.likelihood.methods"
            )
        if mode == "toy":
            check_profile_grid(dataset, grid)


# --- lens mode and no deflection: sparse ratio matrices -------------------------------------


@dataclass(frozen=True)
class _RatioMatrices:
    """CSR ratio matrices H_b[p, j] stacked: ``indptr`` (B, rows + 1) int64 into ``indices``
    (int32) and ``data`` (float32)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    @classmethod
    def stack(cls, matrices: list[sp.csr_matrix]) -> "_RatioMatrices":
        indptr, indices, data, offset = [], [], [], 0
        for m in matrices:
            m = sp.csr_matrix(m)
            m.sum_duplicates()
            m.sort_indices()
            indptr.append(m.indptr.astype(np.int64) + offset)
            indices.append(m.indices.astype(np.int32))
            data.append(m.data.astype(np.float32))
            offset += m.nnz
        return cls(np.stack(indptr), np.concatenate(indices), np.concatenate(data))


class PixelModel(SignalModel):
    """Lens mode (``lens`` given) or no deflection (``lens`` None): a source is one column j
    (a lens pixel, or a map pixel without deflection) and a CR of charge Z_k in map pixel p
    has ratio H_b[p, j] with b its rigidity bin."""

    def __init__(self, dataset: DatasetConfig, nside: int, lens: LensLike | None = None):
        super().__init__(dataset, nside)
        self.lens = lens
        self.mode = "none" if lens is None else "lens"
        total = float(self.pixel_exposure.sum())
        if lens is None:
            self.column_nside = self.nside
            self.column_acceptance = self.pixel_exposure.copy()
            self.bin_edges = None
            scale = np.divide(
                total,
                self.pixel_exposure,
                out=np.zeros(self.pixel_exposure.size),
                where=self.pixel_exposure > 0,
            )
            matrices = [sp.diags(scale, format="csr")]
        else:
            check_lens_compatible(dataset, lens)
            matrices = self._lens_matrices(dataset, lens, total)
        self.matrices = _RatioMatrices.stack(matrices)
        self.column_ok = self.column_acceptance >= PROFILE_ACCEPTANCE_FLOOR

    def _lens_matrices(self, dataset, lens, total) -> list[sp.csr_matrix]:
        """H_b = diag(C / ω_p) · P · diag(ω_q) · M_b · diag(1 / A_j) for the lens bins the
        dataset's rigidities reach: P sums lens pixels q into map pixels p, ω the pixel
        exposures, C = Σ_p ω_p, A_j the acceptance of extragalactic pixel j (as simulated)."""
        self.column_nside = lens.nside
        lens_exposure = dataset.exposure.pixel_exposure(lens.nside)
        self.column_acceptance = lens_acceptance(dataset, lens, lens_exposure)
        edges = np.asarray(lens.log10_rigidity_edges, dtype=np.float64)
        self.bin_edges = edges
        lo = dataset.log10_energy_min - np.log10(dataset.composition.charge_max)
        hi = dataset.log10_energy_max - np.log10(dataset.composition.charge_min)
        first = int(np.clip(np.searchsorted(edges, lo, side="right") - 1, 0, edges.size - 2))
        last = int(np.clip(np.searchsorted(edges, hi, side="right") - 1, 0, edges.size - 2))
        self.first_bin = first
        npix_lens = hp.nside2npix(lens.nside)
        coarse = pixel_lookup(lens.nside, self.nside, False)
        aggregate = sp.csr_matrix(
            (lens_exposure, (coarse, np.arange(npix_lens))),
            shape=(hp.nside2npix(self.nside), npix_lens),
        )
        row_scale = np.divide(
            total,
            self.pixel_exposure,
            out=np.zeros(self.pixel_exposure.size),
            where=self.pixel_exposure > 0,
        )
        column_scale = np.divide(
            1.0, self.column_acceptance, out=np.zeros(npix_lens), where=self.column_acceptance > 0
        )
        out = []
        for b in range(first, last + 1):
            m = lens.matrix(0.5 * (edges[b] + edges[b + 1]))
            h = sp.diags(row_scale) @ (aggregate @ m) @ sp.diags(column_scale)
            out.append(sp.csr_matrix(h))
        return out

    def _bins(self, lg_e: np.ndarray) -> np.ndarray:
        """Ratio-matrix slot (n_maps, N, K) of each CR for each charge (−1 for charges absent
        from the composition)."""
        lr = lg_e[..., None] - self.log10_charge
        if self.bin_edges is None:
            slot = np.zeros(lr.shape, dtype=np.int64)
        else:
            edges = self.bin_edges
            if lr.size and (lr.min() < edges[0] or lr.max() > edges[-1]):
                raise ConfigError(
                    f"CR rigidities log10(R/V) {lr.min():.3f} ... {lr.max():.3f} leave the lens "
                    f"coverage {edges[0]:.3f} ... {edges[-1]:.3f}"
                )
            b = np.minimum(np.searchsorted(edges, lr, side="right") - 1, edges.size - 2)
            slot = b - self.first_bin
            if slot.size and (slot.min() < 0 or slot.max() >= self.matrices.indptr.shape[0]):
                raise ConfigError("CR rigidities outside the dataset's energy and charge range")
        slot = np.where(self.fractions[None, None, :] > 0, slot, -1)
        return np.ascontiguousarray(slot, dtype=np.int64)

    def source_columns(self, sources: np.ndarray) -> np.ndarray:
        """Column (lens or map pixel, RING) of each source direction (..., 3)."""
        s = np.asarray(sources, dtype=np.float64)
        flat = s.reshape(-1, 3)
        return hp.vec2pix(self.column_nside, flat[:, 0], flat[:, 1], flat[:, 2]).reshape(
            s.shape[:-1]
        )

    def acceptance(self, sources, axes=None) -> np.ndarray:
        return self.column_acceptance[self.source_columns(sources)]

    def ratios(self, pixel, log10_energy, sources, axes=None) -> np.ndarray:
        pix, lg_e = self._check_maps(pixel, log10_energy)
        columns = np.ascontiguousarray(self.source_columns(sources), dtype=np.int64)
        acceptance = self.column_acceptance[columns]
        shares = self._source_shares(acceptance) * acceptance  # observed signal share per source
        m = self.matrices
        return K.sparse_ratios(
            pix,
            self._bins(lg_e),
            self.fractions,
            columns,
            np.ascontiguousarray(shares),
            m.indptr,
            m.indices,
            m.data,
        )

    def profile(self, pixel, log10_energy) -> ProfileResult:
        self._check_one_source()
        pix, lg_e = self._check_maps(pixel, log10_energy)
        m = self.matrices
        log_lr, f_hat, column = K.sparse_profile_maps(
            pix, self._bins(lg_e), self.fractions, m.indptr, m.indices, m.data, self.column_ok
        )
        found = column >= 0
        v = np.stack(hp.pix2vec(self.column_nside, np.where(found, column, 0), nest=False), axis=-1)
        direction = np.where(found[:, None], v, np.nan)
        return ProfileResult(log_lr, f_hat, direction, None)


def signal_model(
    dataset: DatasetConfig,
    nside: int | None = None,
    lens: LensLike | None = None,
    grid: ProfileGrid | None = None,
) -> SignalModel:
    """The likelihood model of ``dataset`` for maps stored at ``nside`` (default: the
    dataset's). Lens mode needs ``lens``; toy mode checks that ``grid`` resolves the deflection
    scale (:meth:`ToyModel.check_grid`)."""
    nside = dataset.nside if nside is None else int(nside)
    mode = dataset.deflection_mode
    grid = grid or ProfileGrid()
    check_likelihood_dataset(dataset, ("oracle",), grid)
    if mode == "lens":
        if lens is None:
            raise ConfigError(
                f"dataset {dataset.name!r} uses deflection 'lens': its likelihood needs the lens "
                "the maps were simulated with (chunk attribute 'lens_folder'); none was given"
            )
        return PixelModel(dataset, nside, lens)
    if mode == "toy":
        model = ToyModel(dataset, nside, grid)
        model.check_grid()
        return model
    return PixelModel(dataset, nside, None)
