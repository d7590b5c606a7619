"""Compiled helpers of the sky package (called by the public modules, which check inputs)."""

import numpy as np

from crsky._numba import njit_kernel

__all__ = [
    "build_alias_table",
    "fisher_rows",
    "perpendicular_rows",
    "rotate_rows",
    "sommers_rows",
]


@njit_kernel
def build_alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table of non-negative float64 ``weights`` (k,) with a positive sum.

    Returns (accept (k,) float64, alias (k,) int64): draw i uniform in 0 ... k-1 and u in [0, 1);
    the outcome is i if u < accept[i], else alias[i]. Outcome j then has probability
    weights[j] / sum(weights) exactly (up to rounding of the float64 arithmetic).
    """
    k = weights.size
    scaled = weights * (k / weights.sum())
    accept = np.ones(k)
    alias = np.arange(k)
    small = np.empty(k, dtype=np.int64)
    large = np.empty(k, dtype=np.int64)
    n_small = 0
    n_large = 0
    for i in range(k):
        if scaled[i] < 1.0:
            small[n_small] = i
            n_small += 1
        else:
            large[n_large] = i
            n_large += 1
    while n_small > 0 and n_large > 0:
        n_small -= 1
        s = small[n_small]
        g = large[n_large - 1]
        accept[s] = scaled[s]
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        if scaled[g] < 1.0:
            n_large -= 1
            small[n_small] = g
            n_small += 1
    # leftovers (rounding): probability 1 of themselves
    return accept, alias


@njit_kernel
def _basis_row(dx: float, dy: float, dz: float) -> tuple[float, float, float, float, float, float]:
    """e1, e2 completing the unit vector d to a right-handed basis (e1 = helper × d, normalised)."""
    if abs(dx) > 0.9:  # helper = e_y
        e1x, e1y, e1z = dz, 0.0, -dx
    else:  # helper = e_x
        e1x, e1y, e1z = 0.0, -dz, dy
    norm = np.sqrt(e1x * e1x + e1y * e1y + e1z * e1z)
    e1x, e1y, e1z = e1x / norm, e1y / norm, e1z / norm
    return e1x, e1y, e1z, dy * e1z - dz * e1y, dz * e1x - dx * e1z, dx * e1y - dy * e1x


@njit_kernel
def fisher_rows(mean: np.ndarray, kappa: np.ndarray, u: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Fisher draws (n, 3) around unit vectors ``mean`` (n, 3) with concentrations ``kappa`` (n,),
    from uniforms ``u`` in (0, 1] (polar angle) and azimuths ``phi`` (n,) in rad."""
    n = mean.shape[0]
    out = np.empty((n, 3))
    for i in range(n):
        k = kappa[i]
        t = -np.log(u[i] + (1.0 - u[i]) * np.exp(-2.0 * k)) / k  # 1 − cos ψ
        t = min(max(t, 0.0), 2.0)
        s = np.sqrt(t * (2.0 - t))
        dx, dy, dz = mean[i, 0], mean[i, 1], mean[i, 2]
        e1x, e1y, e1z, e2x, e2y, e2z = _basis_row(dx, dy, dz)
        a, b, c = s * np.cos(phi[i]), s * np.sin(phi[i]), 1.0 - t
        x = c * dx + a * e1x + b * e2x
        y = c * dy + a * e1y + b * e2y
        z = c * dz + a * e1z + b * e2z
        norm = np.sqrt(x * x + y * y + z * z)
        out[i, 0], out[i, 1], out[i, 2] = x / norm, y / norm, z / norm
    return out


@njit_kernel
def rotate_rows(v: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate unit vectors v (n, 3) about unit axes (n, 3) by angle (n,) rad (Rodrigues)."""
    n = v.shape[0]
    out = np.empty((n, 3))
    for i in range(n):
        c, s = np.cos(angle[i]), np.sin(angle[i])
        kx, ky, kz = axis[i, 0], axis[i, 1], axis[i, 2]
        vx, vy, vz = v[i, 0], v[i, 1], v[i, 2]
        kv = (kx * vx + ky * vy + kz * vz) * (1.0 - c)
        out[i, 0] = vx * c + (ky * vz - kz * vy) * s + kx * kv
        out[i, 1] = vy * c + (kz * vx - kx * vz) * s + ky * kv
        out[i, 2] = vz * c + (kx * vy - ky * vx) * s + kz * kv
    return out


@njit_kernel
def perpendicular_rows(direction: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Unit vectors (n, 3) perpendicular to ``direction`` (n, 3) at azimuths ``phi`` (n,) rad."""
    n = direction.shape[0]
    out = np.empty((n, 3))
    for i in range(n):
        e1x, e1y, e1z, e2x, e2y, e2z = _basis_row(direction[i, 0], direction[i, 1], direction[i, 2])
        c, s = np.cos(phi[i]), np.sin(phi[i])
        out[i, 0], out[i, 1], out[i, 2] = c * e1x + s * e2x, c * e1y + s * e2y, c * e1z + s * e2z
    return out


@njit_kernel
def sommers_rows(
    direction: np.ndarray, pole: np.ndarray, latitude_rad: float, cos_theta_max: float, scale: float
) -> np.ndarray:
    """Sommers (2001) exposure (n,) of Galactic unit vectors (n, 3) divided by ``scale``; ``pole``
    is the Galactic unit vector of the North Celestial Pole (sin δ = pole · direction)."""
    n = direction.shape[0]
    out = np.empty(n)
    sin_a0, cos_a0 = np.sin(latitude_rad), np.cos(latitude_rad)
    for i in range(n):
        sin_dec = direction[i, 0] * pole[0] + direction[i, 1] * pole[1] + direction[i, 2] * pole[2]
        sin_dec = min(max(sin_dec, -1.0), 1.0)
        cos_dec = np.sqrt(1.0 - sin_dec * sin_dec)
        numerator = cos_theta_max - sin_a0 * sin_dec
        denominator = cos_a0 * cos_dec
        if numerator > denominator:  # ξ > 1 (also cos δ = 0 with a positive numerator)
            alpha_m = 0.0
        elif numerator < -denominator:  # ξ < −1
            alpha_m = np.pi
        else:
            alpha_m = np.arccos(numerator / denominator)
        value = cos_a0 * cos_dec * np.sin(alpha_m) + alpha_m * sin_a0 * sin_dec
        out[i] = max(value, 0.0) / scale
    return out
