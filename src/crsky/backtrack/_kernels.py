"""Compiled tracer: Dormand–Prince 5(4) Runge–Kutta with step-size control, one particle per
``prange`` iteration.

State of one particle: position x (kpc, Galactocentric) and unit momentum direction u. Equations of
motion in a static magnetic field, with path length s in kpc as the independent variable::

    dx/ds = u
    du/ds = kappa * (u x B(x))      kappa = charge_sign / (GYRO_KPC * R / 1 EV)   [1 / (kpc µG)]

so that a particle of rigidity R moving perpendicular to a field B has the curvature radius
GYRO_KPC * (R / EV) / (B / µG). The embedded 4th-order solution of Dormand & Prince (1980,
J. Comp. Appl. Math. 6, 19; Hairer, Nørsett & Wanner, Solving ODEs I, table II.5.2) gives the
local error of u per step; the step is accepted when that error is at most ``tolerance``
(absolute, like CRPropa's ``PropagationCK``), and the next step is scaled by
0.9 (tolerance / error)^(1/5), clipped to [0.2, 5] x and to [min_step, max_step].
|u| = 1 is restored after each accepted step, which
removes the integrator's only secular drift (a pure magnetic force conserves |p|).

A step never goes past the sphere of radius ``r_max_kpc`` along the straight line by more than
``BOUNDARY_OVERSHOOT_KPC``, nor past ``max_path_kpc``, so the particle stops on the sphere or at the
maximum path length, not a step beyond.
"""

import numpy as np
from numba import prange

from crsky._numba import njit_kernel, njit_parallel

__all__ = ["BOUNDARY_OVERSHOOT_KPC", "GYRO_KPC", "trace_particles"]

_C_M_PER_S = 299_792_458.0
_KPC_M = 3.0856775814913673e19
# Gyroradius of R = 1 EV in B = 1 µG, in kpc: R / (c B) = 1e18 V / (c * 1e-10 T)  (≈ 1.0810 kpc)
GYRO_KPC = 1e18 / (_C_M_PER_S * 1e-10) / _KPC_M
BOUNDARY_OVERSHOOT_KPC = 1e-6

# Dormand–Prince 5(4) tableau (Hairer, Nørsett & Wanner, table II.5.2).
_A21 = 1 / 5
_A31, _A32 = 3 / 40, 9 / 40
_A41, _A42, _A43 = 44 / 45, -56 / 15, 32 / 9
_A51, _A52, _A53, _A54 = 19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729
_A61, _A62, _A63, _A64, _A65 = 9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656
_B1, _B3, _B4, _B5, _B6 = 35 / 384, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84
# error weights: 5th-order minus embedded 4th-order weights
_E1, _E3, _E4 = 71 / 57600, -71 / 16695, 71 / 1920
_E5, _E6, _E7 = -17253 / 339200, 22 / 525, -1 / 40


@njit_kernel
def _du(kernel, params, kappa, x, u, out, row):
    """out[row] = kappa * u x B(x): direction derivative in 1/kpc."""
    bx, by, bz = kernel(x[0], x[1], x[2], params)
    out[row, 0] = kappa * (u[1] * bz - u[2] * by)
    out[row, 1] = kappa * (u[2] * bx - u[0] * bz)
    out[row, 2] = kappa * (u[0] * by - u[1] * bx)


@njit_kernel
def _stage(x, u, ku, kx, h, coef, n, xs, us):
    """xs, us = (x, u) + h * sum_j coef[j] * k[j] for the first n stages."""
    for c in range(3):
        ax = 0.0
        au = 0.0
        for j in range(n):
            ax += coef[j] * kx[j, c]
            au += coef[j] * ku[j, c]
        xs[c] = x[c] + h * ax
        us[c] = u[c] + h * au


@njit_kernel
def _distance_to_sphere(x, u, r_max):
    """Straight-line path (kpc) from x along u to the sphere |x| = r_max (0 if outside)."""
    xu = x[0] * u[0] + x[1] * u[1] + x[2] * u[2]
    r2 = x[0] * x[0] + x[1] * x[1] + x[2] * x[2]
    disc = xu * xu + r_max * r_max - r2
    if disc <= 0.0:
        return 0.0
    return max(0.0, -xu + np.sqrt(disc))


@njit_kernel
def _trace_one(kernel, params, x, u, kappa, r_max, max_path, tol, min_step, max_step, first_step):
    """Trace one particle in place (x, u are length-3 arrays). Returns (path_kpc, n_steps)."""
    kx = np.empty((7, 3))
    ku = np.empty((7, 3))
    xs = np.empty(3)
    us = np.empty(3)
    coef = np.zeros(6)
    s = 0.0
    h = first_step
    n_steps = 0
    for c in range(3):
        kx[0, c] = u[c]
    _du(kernel, params, kappa, x, u, ku, 0)
    while True:
        r2 = x[0] * x[0] + x[1] * x[1] + x[2] * x[2]
        if r2 >= r_max * r_max or s >= max_path:
            return s, n_steps
        h_cap = min(max_path - s, _distance_to_sphere(x, u, r_max) + BOUNDARY_OVERSHOOT_KPC)
        while True:
            h = min(max(h, min_step), max_step, h_cap)
            coef[0] = _A21
            _stage(x, u, ku, kx, h, coef, 1, xs, us)
            kx[1, :] = us
            _du(kernel, params, kappa, xs, us, ku, 1)
            coef[0], coef[1] = _A31, _A32
            _stage(x, u, ku, kx, h, coef, 2, xs, us)
            kx[2, :] = us
            _du(kernel, params, kappa, xs, us, ku, 2)
            coef[0], coef[1], coef[2] = _A41, _A42, _A43
            _stage(x, u, ku, kx, h, coef, 3, xs, us)
            kx[3, :] = us
            _du(kernel, params, kappa, xs, us, ku, 3)
            coef[0], coef[1], coef[2], coef[3] = _A51, _A52, _A53, _A54
            _stage(x, u, ku, kx, h, coef, 4, xs, us)
            kx[4, :] = us
            _du(kernel, params, kappa, xs, us, ku, 4)
            coef[0], coef[1], coef[2], coef[3], coef[4] = _A61, _A62, _A63, _A64, _A65
            _stage(x, u, ku, kx, h, coef, 5, xs, us)
            kx[5, :] = us
            _du(kernel, params, kappa, xs, us, ku, 5)
            coef[0], coef[1], coef[2], coef[3], coef[4], coef[5] = _B1, 0.0, _B3, _B4, _B5, _B6
            _stage(x, u, ku, kx, h, coef, 6, xs, us)  # 5th-order solution
            kx[6, :] = us
            _du(kernel, params, kappa, xs, us, ku, 6)  # FSAL: first stage of the next step
            err2 = 0.0
            for c in range(3):
                e = h * (
                    _E1 * ku[0, c]
                    + _E3 * ku[2, c]
                    + _E4 * ku[3, c]
                    + _E5 * ku[4, c]
                    + _E6 * ku[5, c]
                    + _E7 * ku[6, c]
                )
                err2 += e * e
            err = np.sqrt(err2)
            if err <= tol or h <= min_step:
                break
            h *= max(0.2, 0.9 * (tol / err) ** 0.2)
        # accept: normalise u, FSAL-reuse the last stage
        norm = np.sqrt(us[0] * us[0] + us[1] * us[1] + us[2] * us[2])
        for c in range(3):
            x[c] = xs[c]
            u[c] = us[c] / norm
            kx[0, c] = u[c]
            ku[0, c] = ku[6, c] / norm
        s += h
        n_steps += 1
        if err > 0.0:
            h *= min(5.0, max(0.2, 0.9 * (tol / err) ** 0.2))
        else:
            h *= 5.0


@njit_parallel
def trace_particles(
    kernel,
    params,
    position_kpc,
    direction,
    kappa,
    r_max,
    max_path,
    tol,
    min_step,
    max_step,
    out_position_kpc,
    out_direction,
    out_path_kpc,
    out_n_steps,
):
    """Trace N particles in parallel; results go to the ``out_*`` arrays (N, 3), (N, 3), (N,), (N,).

    position_kpc, direction: (N, 3) float64 start states; kappa: (N,) float64 in 1/(kpc µG).
    """
    for i in prange(position_kpc.shape[0]):
        x = position_kpc[i].copy()
        u = direction[i].copy()
        first_step = min(max_step, max(min_step, 0.01 / max(abs(kappa[i]), 1e-300)))
        path, n_steps = _trace_one(
            kernel, params, x, u, kappa[i], r_max, max_path, tol, min_step, max_step, first_step
        )
        out_position_kpc[i] = x
        out_direction[i] = u
        out_path_kpc[i] = path
        out_n_steps[i] = n_steps
