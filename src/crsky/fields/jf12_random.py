"""JF12 with its random parts: the regular field, optionally striated, plus turbulence scaled by
the JF12 random-field strength map (Jansson & Farrar 2012b, ApJ 761, L11, arXiv:1210.7820).

B(x) = B_reg(x) (1 + sqrt(beta) s(x)) + b(x) dB(x): s = ±1 per 100 pc cell (striation, off unless
configured), b(x) the rms map of :data:`crsky.fields.turbulence.JF12_RANDOM_DEFAULTS` times
``rms_scale``, dB the unit-rms plane-wave turbulence (see :mod:`crsky.fields.turbulence`).
CRPropa 3.2's ``JF12Field`` combines its parts the same way (striated replaces regular; the
turbulent part is its grid times ``getTurbulentStrength``).

Frame: DESIGN.md section 3 (Galactocentric, kpc, Earth at (-8.5, 0, 0) kpc); B in microgauss.

Parameter vector: the regular field's (:func:`crsky.fields.jf12.jf12_params`), then a header
(striation on, sqrt(beta), 1 / cell, seed; turbulence on, rms scale, n_modes; the rms map's 13
numbers), then the plane-wave modes.
"""

import numpy as np

from crsky._numba import njit_kernel
from crsky.fields.jf12 import _N_PARAMS as _N_REGULAR
from crsky.fields.jf12 import jf12_arm_index, jf12_region_kernel
from crsky.fields.turbulence import (
    JF12_RANDOM_DEFAULTS,
    StriationSpec,
    TurbulenceSpec,
    plane_wave_block,
    plane_wave_sum,
    striation_sign,
)

__all__ = [
    "jf12_random_kernel",
    "jf12_random_params",
    "jf12_random_region_kernel",
    "jf12_rms_ugauss",
]

_H = _N_REGULAR  # header start
_STRIATED = _H + 0
_SQRT_BETA = _H + 1
_INV_CELL = _H + 2
_STRIATION_SEED = _H + 3
_TURBULENT = _H + 4
_RMS_SCALE = _H + 5
_N_MODES = _H + 6
_B_ARMS_RMS = _H + 7  # 8 arm strengths at r = 5 kpc (µG)
_B_INT_RMS = _H + 15  # inside r = 5 kpc (µG)
_INV_Z0_DISK = _H + 16  # 1 / z0 of exp(-z² / (2 z0²)) (1/kpc)
_B0_HALO = _H + 17
_INV_R0_HALO = _H + 18
_INV_Z0_HALO = _H + 19
_MODES = _H + 20


def jf12_random_params(
    regular: np.ndarray, turbulence: TurbulenceSpec | None, striation: StriationSpec | None
) -> np.ndarray:
    """Parameter vector for :func:`jf12_random_kernel`: the regular field's vector ``regular``
    followed by the random parts' header and modes (no modes without turbulence)."""
    header = np.zeros(_MODES - _H)
    if striation is not None:
        header[_STRIATED - _H] = 1.0
        header[_SQRT_BETA - _H] = np.sqrt(striation.beta)
        header[_INV_CELL - _H] = 1e3 / striation.cell_pc
        header[_STRIATION_SEED - _H] = striation.seed
    modes = np.zeros(0)
    if turbulence is not None:
        header[_TURBULENT - _H] = 1.0
        header[_RMS_SCALE - _H] = turbulence.rms_scale
        header[_N_MODES - _H] = turbulence.n_modes
        modes = plane_wave_block(turbulence)
    d = JF12_RANDOM_DEFAULTS
    header[_B_ARMS_RMS - _H : _B_ARMS_RMS - _H + 8] = d["b_arms_ugauss"]
    header[_B_INT_RMS - _H] = d["b_int_ugauss"]
    header[_INV_Z0_DISK - _H] = 1.0 / d["z0_disk_kpc"]
    header[_B0_HALO - _H] = d["b0_halo_ugauss"]
    header[_INV_R0_HALO - _H] = 1.0 / d["r0_halo_kpc"]
    header[_INV_Z0_HALO - _H] = 1.0 / d["z0_halo_kpc"]
    return np.concatenate([regular, header, modes]).astype(np.float64)


@njit_kernel
def jf12_rms_ugauss(x_kpc, y_kpc, z_kpc, params):
    """JF12 random-field rms strength (µG) at one position (before ``rms_scale``)."""
    r2 = x_kpc * x_kpc + y_kpc * y_kpc
    if r2 + z_kpc * z_kpc > 400.0:
        return 0.0
    r = np.sqrt(r2)
    if r < 5.0:
        b_disk = params[_B_INT_RMS]
    else:
        k = jf12_arm_index(x_kpc, y_kpc, r, params)
        b_disk = params[_B_ARMS_RMS + k] * (5.0 / r) if k < 8 else 0.0
    u = z_kpc * params[_INV_Z0_DISK]
    b_disk *= np.exp(-0.5 * u * u)
    v = z_kpc * params[_INV_Z0_HALO]
    b_halo = params[_B0_HALO] * np.exp(-r * params[_INV_R0_HALO]) * np.exp(-0.5 * v * v)
    return np.sqrt(b_disk * b_disk + b_halo * b_halo)


@njit_kernel
def jf12_random_region_kernel(x_kpc, y_kpc, z_kpc, params):
    """JF12 regular + striated + turbulent field (bx, by, bz) in µG at one position (kpc) and the
    regular field's piece index (:func:`crsky.fields.jf12.jf12_region_kernel`; the striation's
    cell faces are not pieces: the tracer's step control handles those jumps)."""
    bx, by, bz, piece = jf12_region_kernel(x_kpc, y_kpc, z_kpc, params)
    if params[_STRIATED] != 0.0:
        f = 1.0 + params[_SQRT_BETA] * striation_sign(
            x_kpc, y_kpc, z_kpc, params[_INV_CELL], np.int64(params[_STRIATION_SEED])
        )
        bx *= f
        by *= f
        bz *= f
    if params[_TURBULENT] != 0.0:
        b = jf12_rms_ugauss(x_kpc, y_kpc, z_kpc, params) * params[_RMS_SCALE]
        if b > 0.0:
            tx, ty, tz = plane_wave_sum(
                x_kpc, y_kpc, z_kpc, params, _MODES, np.int64(params[_N_MODES])
            )
            bx += b * tx
            by += b * ty
            bz += b * tz
    return bx, by, bz, piece


@njit_kernel
def jf12_random_kernel(x_kpc, y_kpc, z_kpc, params):
    """JF12 regular + striated + turbulent field (bx, by, bz) in µG at one position (kpc)."""
    bx, by, bz, _ = jf12_random_region_kernel(x_kpc, y_kpc, z_kpc, params)
    return bx, by, bz
