"""Compiled tracer: embedded Runge–Kutta pairs with step-size control, one particle per
``prange`` iteration: Dormand–Prince 5(4) (``order`` 5) or Bogacki–Shampine 3(2) (``order`` 3).

State of one particle: position x (kpc, Galactocentric) and unit momentum direction u. Equations of
motion in a static magnetic field, with path length s in kpc as the independent variable::

    dx/ds = u
    du/ds = kappa * (u x B(x))      kappa = charge_sign / (GYRO_KPC * R / 1 EV)   [1 / (kpc µG)]

so that a particle of rigidity R moving perpendicular to a field B has the curvature radius
GYRO_KPC * (R / EV) / (B / µG). The embedded 4th-order solution of Dormand & Prince (1980,
J. Comp. Appl. Math. 6, 19; Hairer, Nørsett & Wanner, Solving ODEs I, table II.5.2) gives the
local error of u per step; the step is accepted when that error is at most ``tolerance``
(absolute, like CRPropa's ``PropagationCK``), and the next step is scaled by
0.9 (tolerance / error)^(1/5), clipped to [0.2, 5] x and to [min_step, max_step]. The
Bogacki–Shampine pair (1989, Appl. Math. Lett. 2, 321; 3 field evaluations per step, FSAL,
exponent 1/3) is cheaper where the field has jumps or kinks (JF12's arm edges, KST24's tubes):
there a higher order buys nothing, and at equal errors it needs up to 2x fewer evaluations
(``benchmarks/backtrack.py``); Dormand–Prince wins for smooth fields (UF23).
|u| = 1 is restored after each accepted step, which
removes the integrator's only secular drift (a pure magnetic force conserves |p|).

A step never goes past the sphere of radius ``r_max_kpc`` along the straight line by more than
``BOUNDARY_OVERSHOOT_KPC``, nor past ``max_path_kpc``, so the particle stops on the sphere or at the
maximum path length, not a step beyond. Within the field model's fine regions (spheres where it
has structure thinner than a step could see, ``FieldModel.fine_regions``) steps are at most the
region's ``max_step`` long, and a step never reaches into such a sphere from outside.
"""

import numpy as np
from numba import prange

from crsky._numba import njit_kernel, njit_taking_kernels

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


@njit_taking_kernels
def _curvature(kernel, params, kappa, x, u):
    """kappa * u x B(x): derivative of the unit direction u (3-tuple) at x (3-tuple), 1/kpc."""
    bx, by, bz = kernel(x[0], x[1], x[2], params)
    return (
        kappa * (u[1] * bz - u[2] * by),
        kappa * (u[2] * bx - u[0] * bz),
        kappa * (u[0] * by - u[1] * bx),
    )


@njit_kernel
def _comb(
    v,
    h,
    c1,
    k1,
    c2=0.0,
    k2=(0.0, 0.0, 0.0),
    c3=0.0,
    k3=(0.0, 0.0, 0.0),
    c4=0.0,
    k4=(0.0, 0.0, 0.0),
    c5=0.0,
    k5=(0.0, 0.0, 0.0),
    c6=0.0,
    k6=(0.0, 0.0, 0.0),
):
    """v + h * sum_j c_j k_j for 3-tuples (unused terms default to zero)."""
    return (
        v[0] + h * (c1 * k1[0] + c2 * k2[0] + c3 * k3[0] + c4 * k4[0] + c5 * k5[0] + c6 * k6[0]),
        v[1] + h * (c1 * k1[1] + c2 * k2[1] + c3 * k3[1] + c4 * k4[1] + c5 * k5[1] + c6 * k6[1]),
        v[2] + h * (c1 * k1[2] + c2 * k2[2] + c3 * k3[2] + c4 * k4[2] + c5 * k5[2] + c6 * k6[2]),
    )


@njit_taking_kernels
def _dopri_step(kernel, params, kappa, x, u, k1, h):
    """One Dormand–Prince step of length h (kpc) from (x, u) with k1 = du/ds there.

    Returns (x_new, u_new, k7, error) where k7 = du/ds at the new state (first stage of the next
    step, FSAL) and error is |u5 - u4|, the local error estimate of the direction.
    """
    # dx/ds = u, so the position stages integrate the direction stages u1 ... u6
    u1 = u
    u2 = _comb(u, h, _A21, k1)
    k2 = _curvature(kernel, params, kappa, _comb(x, h, _A21, u1), u2)
    u3 = _comb(u, h, _A31, k1, _A32, k2)
    k3 = _curvature(kernel, params, kappa, _comb(x, h, _A31, u1, _A32, u2), u3)
    u4 = _comb(u, h, _A41, k1, _A42, k2, _A43, k3)
    k4 = _curvature(kernel, params, kappa, _comb(x, h, _A41, u1, _A42, u2, _A43, u3), u4)
    u5 = _comb(u, h, _A51, k1, _A52, k2, _A53, k3, _A54, k4)
    x5 = _comb(x, h, _A51, u1, _A52, u2, _A53, u3, _A54, u4)
    k5 = _curvature(kernel, params, kappa, x5, u5)
    u6 = _comb(u, h, _A61, k1, _A62, k2, _A63, k3, _A64, k4, _A65, k5)
    x6 = _comb(x, h, _A61, u1, _A62, u2, _A63, u3, _A64, u4, _A65, u5)
    k6 = _curvature(kernel, params, kappa, x6, u6)
    u_new = _comb(u, h, _B1, k1, _B3, k3, _B4, k4, _B5, k5, _B6, k6)
    x_new = _comb(x, h, _B1, u1, _B3, u3, _B4, u4, _B5, u5, _B6, u6)
    k7 = _curvature(kernel, params, kappa, x_new, u_new)
    zero = (0.0, 0.0, 0.0)
    e = _comb(zero, h, _E1, k1, _E3, k3, _E4, k4, _E5, k5, _E6, k6)
    e = _comb(e, h, _E7, k7)
    return x_new, u_new, k7, np.sqrt(e[0] * e[0] + e[1] * e[1] + e[2] * e[2])


# Bogacki–Shampine 3(2) tableau; the error weights are 3rd- minus 2nd-order weights.
_BS_B1, _BS_B2, _BS_B3 = 2 / 9, 1 / 3, 4 / 9
_BS_E1, _BS_E2, _BS_E3, _BS_E4 = 2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8


@njit_taking_kernels
def _bogacki_shampine_step(kernel, params, kappa, x, u, k1, h):
    """One Bogacki–Shampine step of length h (kpc); returns (x_new, u_new, k4, error) like
    :func:`_dopri_step` (k4 = du/ds at the new state, FSAL)."""
    u2 = _comb(u, h, 0.5, k1)
    k2 = _curvature(kernel, params, kappa, _comb(x, h, 0.5, u), u2)
    u3 = _comb(u, h, 0.75, k2)
    k3 = _curvature(kernel, params, kappa, _comb(x, h, 0.75, u2), u3)
    u_new = _comb(u, h, _BS_B1, k1, _BS_B2, k2, _BS_B3, k3)
    x_new = _comb(x, h, _BS_B1, u, _BS_B2, u2, _BS_B3, u3)
    k4 = _curvature(kernel, params, kappa, x_new, u_new)
    zero = (0.0, 0.0, 0.0)
    e = _comb(zero, h, _BS_E1, k1, _BS_E2, k2, _BS_E3, k3, _BS_E4, k4)
    return x_new, u_new, k4, np.sqrt(e[0] * e[0] + e[1] * e[1] + e[2] * e[2])


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
def _step_factor(tol, err, exponent):
    """Step-size factor 0.9 (tol / err)^exponent, clipped to [0.2, 5]."""
    if err <= 0.0:
        return 5.0
    return min(5.0, max(0.2, 0.9 * (tol / err) ** exponent))


@njit_kernel
def _local_max_step(x, max_step, fine_regions):
    """Largest step (kpc) from x: ``max_step``, but inside a fine region (centre, radius, step)
    at most its step, and outside no further than to the region's surface."""
    h = max_step
    for j in range(fine_regions.shape[0]):
        dx = x[0] - fine_regions[j, 0]
        dy = x[1] - fine_regions[j, 1]
        dz = x[2] - fine_regions[j, 2]
        gap = np.sqrt(dx * dx + dy * dy + dz * dz) - fine_regions[j, 3]
        h = min(h, max(fine_regions[j, 4], gap))
    return h


@njit_taking_kernels
def _trace_one(
    kernel, params, x, u, kappa, r_max, max_path, tol, min_step, max_step, h, fine, order
):
    """Trace one particle from the 3-tuples x (kpc), u; h is the first trial step (kpc);
    ``fine`` holds the field's fine regions (M, 5); ``order`` 5 (Dormand–Prince) or 3
    (Bogacki–Shampine).

    Returns (x, u, path_kpc, n_steps) at the sphere, at max_path, or where it stopped.
    """
    s = 0.0
    n_steps = 0
    exponent = 1.0 / order
    k = _curvature(kernel, params, kappa, x, u)
    while x[0] * x[0] + x[1] * x[1] + x[2] * x[2] < r_max * r_max and s < max_path:
        h_cap = min(max_path - s, _distance_to_sphere(x, u, r_max) + BOUNDARY_OVERSHOOT_KPC)
        h_max = _local_max_step(x, max_step, fine)
        while True:
            h = min(max(h, min_step), h_max, h_cap)
            if order == 3:
                x_new, u_new, k_new, err = _bogacki_shampine_step(kernel, params, kappa, x, u, k, h)
            else:
                x_new, u_new, k_new, err = _dopri_step(kernel, params, kappa, x, u, k, h)
            if err <= tol or h <= min_step:
                break
            h *= max(0.2, 0.9 * (tol / err) ** exponent)
        norm = np.sqrt(u_new[0] * u_new[0] + u_new[1] * u_new[1] + u_new[2] * u_new[2])
        x = x_new
        u = (u_new[0] / norm, u_new[1] / norm, u_new[2] / norm)
        k = (k_new[0] / norm, k_new[1] / norm, k_new[2] / norm)  # u x B is linear in u
        s += h
        n_steps += 1
        h *= _step_factor(tol, err, exponent)
    return x, u, s, n_steps


@njit_taking_kernels(parallel=True)
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
    fine_regions,
    order,
):
    """Trace N particles in parallel; results go to the ``out_*`` arrays (N, 3), (N, 3), (N,), (N,).

    position_kpc, direction: (N, 3) float64 start states; kappa: (N,) float64 in 1/(kpc µG);
    fine_regions: (M, 5) float64 (centre, radius, max_step in kpc) of the field model;
    order: 5 (Dormand–Prince 5(4)) or 3 (Bogacki–Shampine 3(2)).
    """
    for i in prange(position_kpc.shape[0]):
        x0 = (position_kpc[i, 0], position_kpc[i, 1], position_kpc[i, 2])
        u0 = (direction[i, 0], direction[i, 1], direction[i, 2])
        first_step = min(max_step, max(min_step, 0.01 / max(abs(kappa[i]), 1e-300)))
        x, u, path, n_steps = _trace_one(
            kernel,
            params,
            x0,
            u0,
            kappa[i],
            r_max,
            max_path,
            tol,
            min_step,
            max_step,
            first_step,
            fine_regions,
            order,
        )
        for c in range(3):
            out_position_kpc[i, c] = x[c]
            out_direction[i, c] = u[c]
        out_path_kpc[i] = path
        out_n_steps[i] = n_steps
