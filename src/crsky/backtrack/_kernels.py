"""Compiled tracer: embedded Runge–Kutta pairs with step-size control that step onto the surfaces
where the field model jumps instead of across them; one particle per ``prange`` iteration.

State of one particle: position x (kpc, Galactocentric) and unit momentum direction u. Equations of
motion in a static magnetic field, with path length s in kpc as the independent variable::

    dx/ds = u
    du/ds = kappa * (u x B(x))      kappa = charge_sign / (GYRO_KPC * R / 1 EV)   [1 / (kpc µG)]

so that a particle of rigidity R moving perpendicular to a field B has the curvature radius
GYRO_KPC * (R / EV) / (B / µG).

Pairs: Dormand–Prince 5(4) (``order`` 5; Dormand & Prince 1980, J. Comp. Appl. Math. 6, 19;
Hairer, Nørsett & Wanner, Solving ODEs I, table II.5.2), Bogacki–Shampine 3(2) (``order`` 3;
1989, Appl. Math. Lett. 2, 321), both FSAL, and Dormand–Prince 8(5,3) (``order`` 8; Hairer,
Nørsett & Wanner, section II.10, "DOP853": 12 stages plus the new point's derivative, reused as
the next step's first stage; its error estimate combines the embedded 5th- and 3rd-order
solutions). The embedded solution gives the local error of u per
step; a step is accepted when that error is at most ``tolerance`` (absolute, like CRPropa's
``PropagationCK``), and the next step is scaled by 0.9 (tolerance / error)^(1/order), clipped to
[0.2, 5] x and to [min_step, max_step]. |u| = 1 is restored after each accepted step, which removes
the integrator's only secular drift (a pure magnetic force conserves |p|).

Jumps. A Runge–Kutta step across a surface where B jumps (JF12's arm edges, KST24's tubes) has a
local error of order h |kappa dB| whatever its order, so step control shrinks it to ``min_step``
and the error stays at ``min_step |kappa dB|`` per crossing. Field models that jump give a region
kernel (:attr:`crsky.fields.FieldModel.piecewise_kernel`): the field and the index of the smooth
piece of the model at each point. A step whose stages do not all lie in the piece it starts in is
discarded; the crossing is located on the Taylor path x + s u + s² k / 2 (k = du/ds) by bisection
on the piece index, the tracer steps to just before it (a step whose length the surface sets, not
the step control, so it may be shorter than ``min_step``, like the last step onto the sphere) and
bridges the remaining gap of at most ``tolerance / |dk|`` (dk: the jump of du/ds) by the same
Taylor path, evaluating du/ds on the far side for the next step (so no stage straddles the jump).
The error per crossing is then about ``tolerance``, and the step size need not rebuild after it.

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
# The start's field is evaluated this far ahead along u (kpc), on the side the particle moves to
# (the Earth lies on JF12's and KST24's z = 0 surface).
_START_NUDGE_KPC = 1e-12
# Bisections locate a crossing to no better than this (kpc; float64 rounding at 20 kpc is 4e-15).
_MIN_BRACKET_KPC = 1e-13

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
def _derivative(kernel, params, kappa, x, u):
    """(kappa * u x B(x), piece): derivative of the unit direction u (3-tuple) at x (3-tuple) in
    1/kpc, and the field model's piece index at x."""
    bx, by, bz, piece = kernel(x[0], x[1], x[2], params)
    return (
        kappa * (u[1] * bz - u[2] * by),
        kappa * (u[2] * bx - u[0] * bz),
        kappa * (u[0] * by - u[1] * bx),
    ), piece


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


@njit_kernel
def _norm(v):
    return np.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])


@njit_kernel
def _left_piece(x, u, k1, piece_stage, n_evaluations):
    """What a step returns when it stops at a stage outside its piece (the step is discarded)."""
    return x, u, k1, 0.0, False, piece_stage, n_evaluations


@njit_taking_kernels
def _dopri_step(kernel, params, kappa, x, u, k1, piece, h, stop):
    """One Dormand–Prince step of length h (kpc) from (x, u) with k1 = du/ds there.

    Returns (x_new, u_new, k7, error, clean, piece_new, evaluations): k7 = du/ds at the new state
    (first stage of the next step, FSAL), error = |u5 - u4| (the local error estimate of the
    direction), clean whether every stage lay in ``piece``, piece_new the piece at x_new. With
    ``stop`` the step ends at the first stage outside ``piece`` (clean False, the other values
    meaningless), saving the remaining evaluations of a step that will be discarded.
    """
    # dx/ds = u, so the position stages integrate the direction stages u1 ... u6
    u1 = u
    u2 = _comb(u, h, _A21, k1)
    k2, p2 = _derivative(kernel, params, kappa, _comb(x, h, _A21, u1), u2)
    if stop and p2 != piece:
        return _left_piece(x, u, k1, p2, 1)
    u3 = _comb(u, h, _A31, k1, _A32, k2)
    k3, p3 = _derivative(kernel, params, kappa, _comb(x, h, _A31, u1, _A32, u2), u3)
    if stop and p3 != piece:
        return _left_piece(x, u, k1, p3, 2)
    u4 = _comb(u, h, _A41, k1, _A42, k2, _A43, k3)
    k4, p4 = _derivative(kernel, params, kappa, _comb(x, h, _A41, u1, _A42, u2, _A43, u3), u4)
    if stop and p4 != piece:
        return _left_piece(x, u, k1, p4, 3)
    u5 = _comb(u, h, _A51, k1, _A52, k2, _A53, k3, _A54, k4)
    x5 = _comb(x, h, _A51, u1, _A52, u2, _A53, u3, _A54, u4)
    k5, p5 = _derivative(kernel, params, kappa, x5, u5)
    if stop and p5 != piece:
        return _left_piece(x, u, k1, p5, 4)
    u6 = _comb(u, h, _A61, k1, _A62, k2, _A63, k3, _A64, k4, _A65, k5)
    x6 = _comb(x, h, _A61, u1, _A62, u2, _A63, u3, _A64, u4, _A65, u5)
    k6, p6 = _derivative(kernel, params, kappa, x6, u6)
    if stop and p6 != piece:
        return _left_piece(x, u, k1, p6, 5)
    u_new = _comb(u, h, _B1, k1, _B3, k3, _B4, k4, _B5, k5, _B6, k6)
    x_new = _comb(x, h, _B1, u1, _B3, u3, _B4, u4, _B5, u5, _B6, u6)
    k7, p7 = _derivative(kernel, params, kappa, x_new, u_new)
    zero = (0.0, 0.0, 0.0)
    e = _comb(zero, h, _E1, k1, _E3, k3, _E4, k4, _E5, k5, _E6, k6)
    e = _comb(e, h, _E7, k7)
    clean = p2 == piece and p3 == piece and p4 == piece and p5 == piece and p6 == piece
    return x_new, u_new, k7, _norm(e), clean and p7 == piece, p7, 6


# Bogacki–Shampine 3(2) tableau; the error weights are 3rd- minus 2nd-order weights.
_BS_B1, _BS_B2, _BS_B3 = 2 / 9, 1 / 3, 4 / 9
_BS_E1, _BS_E2, _BS_E3, _BS_E4 = 2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8


@njit_taking_kernels
def _bogacki_shampine_step(kernel, params, kappa, x, u, k1, piece, h, stop):
    """One Bogacki–Shampine step of length h (kpc); arguments and result as
    :func:`_dopri_step`'s."""
    u2 = _comb(u, h, 0.5, k1)
    k2, p2 = _derivative(kernel, params, kappa, _comb(x, h, 0.5, u), u2)
    if stop and p2 != piece:
        return _left_piece(x, u, k1, p2, 1)
    u3 = _comb(u, h, 0.75, k2)
    k3, p3 = _derivative(kernel, params, kappa, _comb(x, h, 0.75, u2), u3)
    if stop and p3 != piece:
        return _left_piece(x, u, k1, p3, 2)
    u_new = _comb(u, h, _BS_B1, k1, _BS_B2, k2, _BS_B3, k3)
    x_new = _comb(x, h, _BS_B1, u, _BS_B2, u2, _BS_B3, u3)
    k4, p4 = _derivative(kernel, params, kappa, x_new, u_new)
    zero = (0.0, 0.0, 0.0)
    e = _comb(zero, h, _BS_E1, k1, _BS_E2, k2, _BS_E3, k3, _BS_E4, k4)
    return x_new, u_new, k4, _norm(e), p2 == piece and p3 == piece and p4 == piece, p4, 3


# Dormand–Prince 8(5,3) tableau (Hairer, Nørsett & Wanner, Solving ODEs I, section II.10, the
# published DOP853 coefficients, rounded to float64). Row i holds the non-zero a_ij of stage i + 1
# (0-based j listed beside it); the 5th- and 3rd-order error weights are b minus the embedded
# pairs' weights.
# fmt: off
_D8_A = (
    (0.05260015195876773,),  # j = 0
    (0.0197250569845379, 0.0591751709536137),  # 0, 1
    (0.02958758547680685, 0.08876275643042054),  # 0, 2
    (0.2413651341592667, -0.8845494793282861, 0.924834003261792),  # 0, 2, 3
    (0.037037037037037035, 0.17082860872947386, 0.12546768756682242),  # 0, 3, 4
    (0.037109375, 0.17025221101954405, 0.06021653898045596, -0.017578125),  # 0, 3 ... 5
    (0.03709200011850479, 0.17038392571223998, 0.10726203044637328, -0.015319437748624402,
     0.008273789163814023),  # 0, 3 ... 6
    (0.6241109587160757, -3.3608926294469414, -0.868219346841726, 27.59209969944671,
     20.154067550477894, -43.48988418106996),  # 0, 3 ... 7
    (0.47766253643826434, -2.4881146199716677, -0.590290826836843, 21.230051448181193,
     15.279233632882423, -33.28821096898486, -0.020331201708508627),  # 0, 3 ... 8
    (-0.9371424300859873, 5.186372428844064, 1.0914373489967295, -8.149787010746927,
     -18.52006565999696, 22.739487099350505, 2.4936055526796523, -3.0467644718982196),  # 0, 3 ... 9
    (2.273310147516538, -10.53449546673725, -2.0008720582248625, -17.9589318631188,
     27.94888452941996, -2.8589982771350235, -8.87285693353063, 12.360567175794303,
     0.6433927460157636),  # 0, 3 ... 10
)
# weights of stages 0, 5, 6, ..., 11
_D8_B = (0.054293734116568765, 4.450312892752409, 1.8915178993145003, -5.801203960010585,
         0.3111643669578199, -0.1521609496625161, 0.20136540080403034, 0.04471061572777259)
_D8_E5 = (0.01312004499419488, -1.2251564463762044, -0.4957589496572502, 1.6643771824549864,
          -0.35032884874997366, 0.3341791187130175, 0.08192320648511571, -0.022355307863886294)
_D8_E3 = (-0.18980075407240762, 4.450312892752409, 1.8915178993145003, -5.801203960010585,
          -0.4226823213237919, -0.1521609496625161, 0.20136540080403034, 0.02265179219836082)
# fmt: on


@njit_kernel
def _lin(v, h, c, k):
    """v + h * sum_j c[j] k[j] for a tuple c of coefficients and a tuple k of 3-tuples."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    for j in range(len(c)):
        s0 += c[j] * k[j][0]
        s1 += c[j] * k[j][1]
        s2 += c[j] * k[j][2]
    return (v[0] + h * s0, v[1] + h * s1, v[2] + h * s2)


@njit_taking_kernels
def _dop853_stage(kernel, params, kappa, x, u, h, a, us, ks):
    """Stage with coefficients a on the direction stages us (for x) and their slopes ks (for u):
    returns (u_stage, du/ds there, piece there)."""
    u_i = _lin(u, h, a, ks)
    k_i, p_i = _derivative(kernel, params, kappa, _lin(x, h, a, us), u_i)
    return u_i, k_i, p_i


@njit_taking_kernels
def _dop853_step(kernel, params, kappa, x, u, k1, piece, h, stop):
    """One Dormand–Prince 8(5,3) step of length h (kpc); arguments and result as
    :func:`_dopri_step`'s, with Hairer's combined error estimate |e5|² / sqrt(|e5|² + 0.01 |e3|²)
    of the direction."""
    a = _D8_A
    u2, k2, p2 = _dop853_stage(kernel, params, kappa, x, u, h, a[0], (u,), (k1,))
    if stop and p2 != piece:
        return _left_piece(x, u, k1, p2, 1)
    u3, k3, p3 = _dop853_stage(kernel, params, kappa, x, u, h, a[1], (u, u2), (k1, k2))
    if stop and p3 != piece:
        return _left_piece(x, u, k1, p3, 2)
    u4, k4, p4 = _dop853_stage(kernel, params, kappa, x, u, h, a[2], (u, u3), (k1, k3))
    if stop and p4 != piece:
        return _left_piece(x, u, k1, p4, 3)
    u5, k5, p5 = _dop853_stage(kernel, params, kappa, x, u, h, a[3], (u, u3, u4), (k1, k3, k4))
    if stop and p5 != piece:
        return _left_piece(x, u, k1, p5, 4)
    u6, k6, p6 = _dop853_stage(kernel, params, kappa, x, u, h, a[4], (u, u4, u5), (k1, k4, k5))
    if stop and p6 != piece:
        return _left_piece(x, u, k1, p6, 5)
    us = (u, u4, u5, u6)
    ks = (k1, k4, k5, k6)
    u7, k7, p7 = _dop853_stage(kernel, params, kappa, x, u, h, a[5], us, ks)
    if stop and p7 != piece:
        return _left_piece(x, u, k1, p7, 6)
    us7 = (u, u4, u5, u6, u7)
    ks7 = (k1, k4, k5, k6, k7)
    u8, k8, p8 = _dop853_stage(kernel, params, kappa, x, u, h, a[6], us7, ks7)
    if stop and p8 != piece:
        return _left_piece(x, u, k1, p8, 7)
    us8 = (u, u4, u5, u6, u7, u8)
    ks8 = (k1, k4, k5, k6, k7, k8)
    u9, k9, p9 = _dop853_stage(kernel, params, kappa, x, u, h, a[7], us8, ks8)
    if stop and p9 != piece:
        return _left_piece(x, u, k1, p9, 8)
    us9 = (u, u4, u5, u6, u7, u8, u9)
    ks9 = (k1, k4, k5, k6, k7, k8, k9)
    u10, k10, p10 = _dop853_stage(kernel, params, kappa, x, u, h, a[8], us9, ks9)
    if stop and p10 != piece:
        return _left_piece(x, u, k1, p10, 9)
    us10 = (u, u4, u5, u6, u7, u8, u9, u10)
    ks10 = (k1, k4, k5, k6, k7, k8, k9, k10)
    u11, k11, p11 = _dop853_stage(kernel, params, kappa, x, u, h, a[9], us10, ks10)
    if stop and p11 != piece:
        return _left_piece(x, u, k1, p11, 10)
    us11 = (u, u4, u5, u6, u7, u8, u9, u10, u11)
    ks11 = (k1, k4, k5, k6, k7, k8, k9, k10, k11)
    u12, k12, p12 = _dop853_stage(kernel, params, kappa, x, u, h, a[10], us11, ks11)
    if stop and p12 != piece:
        return _left_piece(x, u, k1, p12, 11)
    us_b = (u, u6, u7, u8, u9, u10, u11, u12)
    ks_b = (k1, k6, k7, k8, k9, k10, k11, k12)
    u_new = _lin(u, h, _D8_B, ks_b)
    x_new = _lin(x, h, _D8_B, us_b)
    k13, p13 = _derivative(kernel, params, kappa, x_new, u_new)
    zero = (0.0, 0.0, 0.0)
    e5 = _norm(_lin(zero, 1.0, _D8_E5, ks_b))
    e3 = _norm(_lin(zero, 1.0, _D8_E3, ks_b))
    denominator = np.sqrt(e5 * e5 + 0.01 * e3 * e3)
    err = h * e5 * e5 / denominator if denominator > 0.0 else 0.0
    clean = p2 == piece and p3 == piece and p4 == piece and p5 == piece and p6 == piece
    clean = clean and p7 == piece and p8 == piece and p9 == piece and p10 == piece
    clean = clean and p11 == piece and p12 == piece and p13 == piece
    return x_new, u_new, k13, err, clean, p13, 12


@njit_taking_kernels
def _step(kernel, params, kappa, x, u, k1, piece, h, order, stop):
    if order == 3:
        return _bogacki_shampine_step(kernel, params, kappa, x, u, k1, piece, h, stop)
    if order == 8:
        return _dop853_step(kernel, params, kappa, x, u, k1, piece, h, stop)
    return _dopri_step(kernel, params, kappa, x, u, k1, piece, h, stop)


@njit_kernel
def _taylor(x, u, k, s):
    """Point at path length s (kpc) on the Taylor path x + s u + s² k / 2."""
    half = 0.5 * s * s
    return (
        x[0] + s * u[0] + half * k[0],
        x[1] + s * u[1] + half * k[1],
        x[2] + s * u[2] + half * k[2],
    )


@njit_taking_kernels
def _piece_at(piece_kernel, params, p):
    return piece_kernel(p[0], p[1], p[2], params)


@njit_taking_kernels
def _bisect(piece_kernel, params, x, u, k, piece, lo, hi, bracket):
    """Shrink [lo, hi] (path lengths on the Taylor path from x; lo in ``piece``, hi not) to at
    most ``bracket`` long; returns (lo, hi, piece look-ups)."""
    n = 0
    while hi - lo > bracket:
        mid = 0.5 * (lo + hi)
        if _piece_at(piece_kernel, params, _taylor(x, u, k, mid)) == piece:
            lo = mid
        else:
            hi = mid
        n += 1
    return lo, hi, n


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


@njit_kernel
def _unit(v):
    n = _norm(v)
    return (v[0] / n, v[1] / n, v[2] / n), n


@njit_kernel
def _cross(kappa, u, b):
    """kappa * u x b for 3-tuples."""
    return (
        kappa * (u[1] * b[2] - u[2] * b[1]),
        kappa * (u[2] * b[0] - u[0] * b[2]),
        kappa * (u[0] * b[1] - u[1] * b[0]),
    )


@njit_taking_kernels
def _bridge(kernel, params, kappa, x, u, k, piece, lo, hi):
    """Cross from x to the Taylor point at hi (kpc), where the path has left ``piece`` (it is still
    in it at lo): du/ds is k up to lo and the far side's beyond. Returns (x, u, k, piece) there."""
    x_far = _taylor(x, u, k, hi)
    bx, by, bz, piece_far = kernel(x_far[0], x_far[1], x_far[2], params)
    k_far = _cross(kappa, u, (bx, by, bz))
    u_far, _ = _unit(
        (
            u[0] + lo * k[0] + (hi - lo) * k_far[0],
            u[1] + lo * k[1] + (hi - lo) * k_far[1],
            u[2] + lo * k[2] + (hi - lo) * k_far[2],
        )
    )
    return x_far, u_far, _cross(kappa, u_far, (bx, by, bz)), piece_far


@njit_taking_kernels
def _trace_one(
    kernel,
    piece_kernel,
    params,
    x,
    u,
    kappa,
    r_max,
    max_path,
    tol,
    min_step,
    max_step,
    h,
    fine,
    order,
):
    """Trace one particle from the 3-tuples x (kpc), u; h is the first trial step (kpc);
    ``kernel`` a region kernel (field and piece index), ``piece_kernel`` the piece index alone
    (:attr:`crsky.fields.FieldModel.piece_index_kernel`); ``fine`` holds the field's fine regions
    (M, 5); ``order`` 5 (Dormand–Prince 5(4)), 3 (Bogacki–Shampine) or 8 (Dormand–Prince 8(5,3)).

    Returns (x, u, path_kpc, n_steps, n_evaluations) at the sphere, at max_path, or where it
    stopped; n_steps counts accepted steps and crossings, n_evaluations calls of the field model
    (field evaluations and piece look-ups).
    """
    s = 0.0
    n_steps = 0
    n_eval = 1
    exponent = 1.0 / order
    zero = (0.0, 0.0, 0.0)
    k, piece = _derivative(kernel, params, kappa, _taylor(x, u, zero, _START_NUDGE_KPC), u)
    # |dk/ds| bound from the last accepted step: how far the Taylor path can be trusted
    dk_rate = k[0] * k[0] + k[1] * k[1] + k[2] * k[2]
    ahead = -1.0  # the path leaves the piece within this length (-1: no crossing known)
    while x[0] * x[0] + x[1] * x[1] + x[2] * x[2] < r_max * r_max and s < max_path:
        h_cap = min(max_path - s, _distance_to_sphere(x, u, r_max) + BOUNDARY_OVERSHOOT_KPC)
        h_limit = min(_local_max_step(x, max_step, fine), h_cap)
        target = h_limit  # a step ends at most here (before a known crossing)
        if ahead > 0.0:
            probe = min(ahead, h_limit)
            n_eval += 1
            if _piece_at(piece_kernel, params, _taylor(x, u, k, probe)) == piece:
                ahead = -1.0
            else:
                n_eval += 1
                k_far = _derivative(kernel, params, kappa, _taylor(x, u, k, probe), u)[0]
                jump = _norm((k_far[0] - k[0], k_far[1] - k[1], k_far[2] - k[2]))
                # the crossing's error is about (hi - lo) |dk|: bracket it to tol / |dk|; the
                # Taylor path bridges gaps where its error in u, gap² |dk/ds| / 2, is < tol / 10
                bracket = max(_MIN_BRACKET_KPC, tol / max(jump, 1e-300))
                bridgeable = np.sqrt(0.2 * tol / max(dk_rate, 1e-300))
                lo, hi, n = _bisect(
                    piece_kernel, params, x, u, k, piece, 0.0, probe, max(bracket, 1e-3 * probe)
                )
                n_eval += n
                if lo <= bridgeable:
                    lo, hi, n = _bisect(piece_kernel, params, x, u, k, piece, lo, hi, bracket)
                    n_eval += n
                if hi <= max(bridgeable, 2.0 * bracket):
                    x, u, k, piece = _bridge(kernel, params, kappa, x, u, k, piece, lo, hi)
                    n_eval += 1
                    s += hi
                    n_steps += 1
                    ahead = -1.0
                    continue
                # stop short of the crossing by four times the Taylor path's error there
                target = lo - min(0.5 * lo, 4.0 * lo * lo * lo * dk_rate / 6.0)
                ahead = hi
        crossing = False
        while True:
            h = min(max(h, min_step), h_limit)
            trial = min(h, target)
            # a step that leaves its piece is discarded unless it is already min_step long
            x_new, u_new, k_new, err, clean, piece_new, n = _step(
                kernel, params, kappa, x, u, k, piece, trial, order, trial > min_step
            )
            n_eval += n
            if not clean:
                # a stage lay in another piece: locate the crossing within this step
                n_eval += 1
                if _piece_at(piece_kernel, params, _taylor(x, u, k, trial)) != piece:
                    crossing = True
                    break
                if trial > min_step:  # the Taylor path does not see it: shorter steps
                    h = 0.5 * trial
                    continue
            if err <= tol or trial <= min_step:
                break
            h = trial * max(0.2, 0.9 * (tol / err) ** exponent)
        if crossing:
            ahead = trial
            continue
        dk = (k_new[0] - k[0], k_new[1] - k[1], k_new[2] - k[2])
        u_new, norm = _unit(u_new)
        x = x_new
        u = u_new
        k = (k_new[0] / norm, k_new[1] / norm, k_new[2] / norm)  # u x B is linear in u
        dk_rate = _norm(dk) / max(trial, 1e-300) + k[0] * k[0] + k[1] * k[1] + k[2] * k[2]
        piece = piece_new
        s += trial
        n_steps += 1
        if ahead > 0.0:
            ahead -= trial
        if trial < target or target == h_limit:
            h = trial * _step_factor(tol, err, exponent)
        # else: stopped short of a crossing, the step size stays for after it
    return x, u, s, n_steps, n_eval


@njit_taking_kernels(parallel=True)
def trace_particles(
    kernel,
    piece_kernel,
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
    out_n_evaluations,
    fine_regions,
    order,
):
    """Trace N particles in parallel; results go to the ``out_*`` arrays (N, 3), (N, 3), (N,),
    (N,), (N,).

    kernel: the field model's region kernel (:attr:`crsky.fields.FieldModel.piecewise_kernel`);
    piece_kernel: its piece index alone (:attr:`crsky.fields.FieldModel.piece_index_kernel`);
    position_kpc, direction: (N, 3) float64 start states; kappa: (N,) float64 in 1/(kpc µG);
    fine_regions: (M, 5) float64 (centre, radius, max_step in kpc) of the field model;
    order: 5 (Dormand–Prince 5(4)), 3 (Bogacki–Shampine 3(2)) or 8 (Dormand–Prince 8(5,3)).
    """
    for i in prange(position_kpc.shape[0]):
        x0 = (position_kpc[i, 0], position_kpc[i, 1], position_kpc[i, 2])
        u0 = (direction[i, 0], direction[i, 1], direction[i, 2])
        first_step = min(max_step, max(min_step, 0.01 / max(abs(kappa[i]), 1e-300)))
        x, u, path, n_steps, n_eval = _trace_one(
            kernel,
            piece_kernel,
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
        out_n_evaluations[i] = n_eval
