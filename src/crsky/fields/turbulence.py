"""Random magnetic fields: Kolmogorov turbulence as a sum of plane waves, and JF12's striation.

**Turbulence.** A divergence-free Gaussian-like random field with unit rms,

    dB(x) = sum_n A_n xi_n cos(k_n . x + beta_n),     xi_n ⊥ k_n,     sum_n A_n² / 2 = 1,

with ``n_modes`` wave numbers |k_n| spread logarithmically (one per equal log interval, drawn
uniformly inside it) between 2 pi / l_max and 2 pi / l_min, isotropic directions k_n / |k_n|,
polarisations xi_n uniform in the plane ⊥ k_n and phases beta_n uniform; A_n² ∝ E(k_n) dk_n with
the Kolmogorov energy spectrum E(k) ∝ k^(-5/3) (3D spectrum ∝ k^(-11/3)), the method of
Giacalone & Jokipii 1999 (ApJ 520, 204) as CRPropa's ``PlaneWaveTurbulence`` (Tautz & Dosch 2013)
uses it. Chosen over a periodic grid (CRPropa's JF12 set-up: 256³ cells of 4 pc, 200 MB in
float32, repeating every 1.024 kpc, i.e. ~20 times along a 20 kpc path, its smallest modes 2
cells long and damped by trilinear interpolation, which also breaks div B = 0) because the plane
waves are exactly divergence-free, aperiodic, carry exactly the requested spectrum at their
sampled wave numbers, and need 7 numbers per mode (n_modes = 256: 14 kB) instead of a grid; the
cost is O(n_modes) per evaluation, measured in ``benchmarks/backtrack.py``. The field is a
function of the options alone (seed included), so every job of a workflow sees the same Galaxy.

**JF12 random-field strength** (Jansson & Farrar 2012b, ApJ 761, L11, arXiv:1210.7820, Table 1,
as CRPropa 3.2's ``JF12Field::getTurbulentStrength``): the rms b(x) of the random field is the
quadrature sum of a disk part, b_i (5 kpc / r) in the 8 spiral arm regions of the regular field
(b_int inside r = 5 kpc, without the 1/r), times exp(-z² / (2 z0²)), and a halo part
B0 exp(-r / r0) exp(-z² / (2 z0h²)); zero beyond 20 kpc from the centre. The random field is
b(x) dB(x), as in CRPropa (so it is divergence-free only where b is constant).

**Striation** (the same Letter): the regular field times 1 + sqrt(beta) s(x), s = ±1 at random in
cubic cells of 100 pc, beta = 1.36. crsky draws s from a hash of the cell index and the seed, so
it needs no stored grid and does not repeat (CRPropa stores a periodic 100³ grid of 10 kpc).

Frame: DESIGN.md section 3 (Galactocentric, kpc, Earth at (-8.5, 0, 0) kpc); B in microgauss.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np

from crsky._numba import njit_kernel
from crsky.errors import ConfigError

__all__ = [
    "JF12_RANDOM_DEFAULTS",
    "StriationSpec",
    "TurbulenceSpec",
    "correlation_length_kpc",
    "plane_wave_block",
    "plane_wave_sum",
    "striation_sign",
]

MODE_STRIDE = 7  # per mode: k_x, k_y, k_z (1/kpc), phase (rad), A xi_x, A xi_y, A xi_z


@dataclass(frozen=True)
class TurbulenceSpec:
    """Options of a Kolmogorov plane-wave turbulence (config ``field.options.turbulence``).

    l_min_pc, l_max_pc: smallest and largest wavelength (pc); JF12 in CRPropa: 8 and 272.
    n_modes: plane waves (more: closer to Gaussian statistics, slower).
    seed: the realisation.
    rms_scale: factor on the model's rms map (1: the published strength).
    """

    l_min_pc: float = 8.0
    l_max_pc: float = 272.0
    n_modes: int = 256
    seed: int = 1
    rms_scale: float = 1.0

    @classmethod
    def from_options(cls, options, key: str = "field.options.turbulence") -> "TurbulenceSpec":
        """Spec from a config mapping; ConfigError naming ``<key>.<option>`` for a bad value."""
        if options is True:
            options = {}
        if not isinstance(options, dict):
            raise ConfigError(f"{key} must be a mapping of options or true, got {options!r}")
        known = set(asdict(cls()))
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"{key}.{unknown[0]}: unknown option; known: {sorted(known)}")
        spec = cls(**options)
        for name in ("l_min_pc", "l_max_pc", "rms_scale"):
            value = getattr(spec, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{key}.{name} must be a positive number, got {value!r}")
        if spec.l_min_pc >= spec.l_max_pc:
            raise ConfigError(
                f"{key}: l_min_pc ({spec.l_min_pc}) must be below l_max_pc ({spec.l_max_pc})"
            )
        for name, low in (("n_modes", 1), ("seed", 0)):
            value = getattr(spec, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{key}.{name} must be an integer >= {low}, got {value!r}")
        return spec


@dataclass(frozen=True)
class StriationSpec:
    """JF12's striated field (config ``field.options.striated``): beta and cell size (pc)."""

    beta: float = 1.36
    cell_pc: float = 100.0
    seed: int = 2

    @classmethod
    def from_options(cls, options, key: str = "field.options.striated") -> "StriationSpec":
        if options is True:
            options = {}
        if not isinstance(options, dict):
            raise ConfigError(f"{key} must be a mapping of options or true, got {options!r}")
        known = set(asdict(cls()))
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"{key}.{unknown[0]}: unknown option; known: {sorted(known)}")
        spec = cls(**options)
        for name in ("beta", "cell_pc"):
            value = getattr(spec, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{key}.{name} must be a positive number, got {value!r}")
        if isinstance(spec.seed, bool) or not isinstance(spec.seed, int) or spec.seed < 0:
            raise ConfigError(f"{key}.seed must be an integer >= 0, got {spec.seed!r}")
        return spec


def correlation_length_kpc(l_min_kpc: float, l_max_kpc: float) -> float:
    """Correlation length of Kolmogorov turbulence between the two scales (Harari et al. 2002,
    JHEP 03, 045): (l_max / 2) (m - 1) / m (1 - q^m) / (1 - q^(m - 1)), q = l_min / l_max,
    m = 5/3. JF12 in CRPropa (8-272 pc): 60 pc."""
    m = 5.0 / 3.0
    q = l_min_kpc / l_max_kpc
    return l_max_kpc / 2.0 * (m - 1.0) / m * (1.0 - q**m) / (1.0 - q ** (m - 1.0))


def plane_wave_block(spec: TurbulenceSpec) -> np.ndarray:
    """The modes of ``spec`` as a flat float64 block of n_modes * MODE_STRIDE values, laid out by
    component (all k_x, then all k_y, ...) so that the sum over modes vectorises."""
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 0x7475726275]))  # "turbu"
    n = spec.n_modes
    log_k = np.log(2.0 * np.pi / np.array([spec.l_max_pc, spec.l_min_pc]) * 1e3)  # 1/kpc
    width = (log_k[1] - log_k[0]) / n
    k = np.exp(log_k[0] + width * (np.arange(n) + rng.random(n)))
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1)[:, None]
    # polarisation: a random unit vector in the plane perpendicular to the wave vector
    helper = np.where(np.abs(direction[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    e1 = np.cross(direction, helper)
    e1 /= np.linalg.norm(e1, axis=1)[:, None]
    e2 = np.cross(direction, e1)
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    xi = np.cos(angle)[:, None] * e1 + np.sin(angle)[:, None] * e2
    phase = rng.uniform(0.0, 2.0 * np.pi, n)
    # E(k) dk with dk ∝ k on a logarithmic grid: weights ∝ k^(-5/3 + 1)
    weight = k ** (-2.0 / 3.0)
    amplitude = np.sqrt(2.0 * weight / weight.sum())  # sum A² / 2 = 1
    block = np.concatenate(
        [k * direction[:, 0], k * direction[:, 1], k * direction[:, 2], phase]
        + [amplitude * xi[:, c] for c in range(3)]
    )
    return block.astype(np.float64)


# cos(2 pi y) for |y| <= 1/2 as a polynomial in y² (least squares on Chebyshev nodes, degree 12:
# max error 2e-16 over the interval), evaluated by Horner's rule so that the mode loop vectorises
_COS_NODES = np.cos(np.pi * (np.arange(400) + 0.5) / 400) * 0.125 + 0.125  # t = y² in [0, 1/4]
_COS_COEFFS = tuple(
    float(c)
    for c in np.polynomial.chebyshev.Chebyshev.fit(
        _COS_NODES, np.cos(2.0 * np.pi * np.sqrt(_COS_NODES)), 12, domain=[0.0, 0.25]
    )
    .convert(kind=np.polynomial.Polynomial, domain=[-1, 1], window=[-1, 1])
    .coef
)
_C0, _C1, _C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12 = _COS_COEFFS


@njit_kernel(fastmath={"reassoc", "contract", "nsz"})
def plane_wave_sum(x_kpc, y_kpc, z_kpc, params, offset, n_modes):
    """Unit-rms turbulence (dbx, dby, dbz) at one position from the mode block at
    ``params[offset:]`` (see :func:`plane_wave_block`)."""
    kx = offset
    ky = offset + n_modes
    kz = offset + 2 * n_modes
    ph = offset + 3 * n_modes
    ax = offset + 4 * n_modes
    ay = offset + 5 * n_modes
    az = offset + 6 * n_modes
    inv_two_pi = 1.0 / (2.0 * np.pi)
    bx = 0.0
    by = 0.0
    bz = 0.0
    for n in range(n_modes):
        turns = (
            params[kx + n] * x_kpc
            + params[ky + n] * y_kpc
            + params[kz + n] * z_kpc
            + params[ph + n]
        ) * inv_two_pi
        y = turns - np.floor(turns + 0.5)  # in [-1/2, 1/2]
        t = y * y
        c = _C12
        c = c * t + _C11
        c = c * t + _C10
        c = c * t + _C9
        c = c * t + _C8
        c = c * t + _C7
        c = c * t + _C6
        c = c * t + _C5
        c = c * t + _C4
        c = c * t + _C3
        c = c * t + _C2
        c = c * t + _C1
        c = c * t + _C0
        bx += params[ax + n] * c
        by += params[ay + n] * c
        bz += params[az + n] * c
    return bx, by, bz


@njit_kernel
def striation_sign(x_kpc, y_kpc, z_kpc, inv_cell_kpc, seed):
    """±1 for the cubic cell of size 1 / inv_cell_kpc holding the point: a hash (SplitMix64
    finaliser) of the three integer cell indices and the seed, so the pattern needs no memory
    and does not repeat."""
    ix = np.int64(np.floor(x_kpc * inv_cell_kpc))
    iy = np.int64(np.floor(y_kpc * inv_cell_kpc))
    iz = np.int64(np.floor(z_kpc * inv_cell_kpc))
    h = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
    for v in (ix, iy, iz):
        h ^= np.uint64(v & 0xFFFFFFFFFFFF) + np.uint64(0x9E3779B97F4A7C15) + (h << np.uint64(6))
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return 1.0 if (h >> np.uint64(63)) == np.uint64(0) else -1.0


JF12_RANDOM_DEFAULTS = {
    # Jansson & Farrar 2012b Table 1: arm strengths b1..b8 at r = 5 kpc (µG), inner disk b_int,
    # disk scale height z0, halo B0, r0, z0h
    "b_arms_ugauss": (10.81, 6.96, 9.59, 6.96, 1.96, 16.34, 37.29, 10.35),
    "b_int_ugauss": 7.63,
    "z0_disk_kpc": 0.61,
    "b0_halo_ugauss": 4.68,
    "r0_halo_kpc": 10.97,
    "z0_halo_kpc": 2.84,
}
