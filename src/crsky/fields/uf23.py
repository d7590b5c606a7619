"""Unger & Farrar (2024) coherent Galactic magnetic field: the eight UF23 models.

Model: M. Unger and G. R. Farrar, ApJ 970, 95 (2024), arXiv:2311.12120: a disk field (a spiral
with three azimuthal Fourier modes, or a single local "spur" in model ``spur``), a toroidal halo and
a poloidal "coasting" halo of divergence-free field lines (eqs. 10-38), or, in model ``twistX``, a
poloidal halo twisted by the Galactic rotation curve instead of a separate toroidal halo
(eqs. 43-47). The best-fit parameters of the eight models (paper Table 3) are taken from the
authors' reference code (github.com/MichaelUnger/GalacticMagneticFieldUF23, BSD-2), which quotes
them to 8 digits; CRPropa 3.2's ``UF23Field`` uses the same numbers. The field is zero beyond a
Galactocentric distance of 30 kpc (the reference code's default radius).

Frame: crsky's (DESIGN.md section 3; CRPropa's): Galactocentric Cartesian, kpc, x from the Sun to
the Galactic Centre, z to Galactic North, Earth at (-8.5, 0, 0) kpc; azimuth phi = atan2(y, x).
The UF23 paper puts the Sun at 8.2 kpc; like CRPropa, crsky keeps the model's coordinates as they
are (the spur's reference radius stays 8.2 kpc) and places the observer at (-8.5, 0, 0) kpc.
B in microgauss.

Every model is one float64 parameter vector (:func:`uf23_params`); switches in the vector select
the disk (spiral / spur), the halo (toroidal + poloidal / twisted) and the poloidal radial profile
(logistic / exponential, ``expX``). :func:`uf23_kernels` compiles one branch-free kernel per
switch combination (the switches as compile-time constants, elementary functions from
:mod:`crsky._vectormath`), so a loop over many points vectorises; :data:`uf23_kernel` reads the
switches from the vector (any combination, one compilation).
"""

import math
from functools import cache

import numpy as np

from crsky import _vectormath as vm
from crsky._numba import njit_kernel, njit_specialised
from crsky.fields import model_switch

__all__ = [
    "UF23_VARIANTS",
    "uf23_field",
    "uf23_kernel",
    "uf23_kernels",
    "uf23_params",
    "uf23_piece",
    "uf23_region_kernel",
]

_DEG = math.pi / 180.0
# Poloidal halo footpoint scale a of the models with a -> infinity (eq. 38): any a >~ 1e12 kpc
# makes the a^-p terms vanish below float64 rounding; 3.0857e25 is the value CRPropa 3.2 ends up
# with (its Gpc in metres, in code working in kpc). The authors' code uses a = 1 Gpc = 1e6 kpc,
# which changes the field by up to 4e-7 relative.
_A_INFINITE_KPC = 3.0856775814913673e25
# km per kpc and s per Myr (Julian years) as the UF23 authors' code converts the rotation speed of
# eq. 43 (their kpc is 2.6e-10 shorter than the IAU value; kept to reproduce the model exactly)
_KPC_KM = 3.0856775807e16
_MYR_S = 1e6 * 365.25 * 86400.0

# Best-fit parameters of the eight models (UF23 Table 3, 8 digits as in the authors' code).
# Units: B in µG, lengths in kpc, angles in degrees, twisting time in Myr. Keys missing from a
# model are unused by it (spur has one disk mode; twistX has no toroidal halo; expX replaces the
# poloidal half-width w by the opening angle xi of a finite a, with z_p = a tan(xi)).
# fmt: off
_VARIANTS: dict[str, dict[str, float]] = {
    "base": dict(
        disk_b1=1.0878565, disk_b2=2.6605034, disk_b3=3.1166311, disk_h=0.79408965,
        disk_phase1=263.16589, disk_phase2=97.782269, disk_phase3=35.112281,
        disk_pitch=10.1069, disk_w=0.10720909,
        poloidal_b=0.97775487, poloidal_p=1.4266186, poloidal_r=7.2925417,
        poloidal_w=0.11188158, poloidal_z=4.4597373,
        toroidal_bn=3.255676, toroidal_bs=-3.0914569, toroidal_r=10.193815,
        toroidal_w=1.6936993, toroidal_z=4.0242749,
    ),
    "neCL": dict(
        disk_b1=1.4259645, disk_b2=1.3543223, disk_b3=3.4390669, disk_h=0.67405199,
        disk_phase1=199.61898, disk_phase2=135.41461, disk_phase3=64.909767,
        disk_pitch=11.867859, disk_w=0.061162799,
        poloidal_b=0.98387831, poloidal_p=1.6773615, poloidal_r=7.4084361,
        poloidal_w=0.14168192, poloidal_z=3.6521188,
        toroidal_bn=2.6256593, toroidal_bs=-2.5699466, toroidal_r=10.134257,
        toroidal_w=1.1547728, toroidal_z=4.5585463,
    ),
    "expX": dict(
        disk_b1=0.99258148, disk_b2=2.1821124, disk_b3=3.1197345, disk_h=0.71508681,
        disk_phase1=247.45741, disk_phase2=98.578879, disk_phase3=34.884485,
        disk_pitch=10.02707, disk_w=0.098524736,
        poloidal_a=6.1938701, poloidal_b=5.835799, poloidal_p=1.9510779, poloidal_r=2.4994376,
        poloidal_xi=20.926122,
        toroidal_bn=2.7077434, toroidal_bs=-2.5677104, toroidal_r=10.134022,
        toroidal_w=2.0956159, toroidal_z=5.4564991,
    ),
    "spur": dict(
        disk_b1=-4.2993328, disk_h=0.75019749, disk_phase1=155.89875, disk_pitch=12.074432,
        disk_w=0.1226312,
        poloidal_b=0.99302987, poloidal_p=1.3982374, poloidal_r=7.1973387,
        poloidal_w=0.12262244, poloidal_z=4.485327,
        spur_center=157.18686, spur_length=31.839577, spur_width=10.318114,
        toroidal_bn=2.9286724, toroidal_bs=-2.5979895, toroidal_r=9.7536425,
        toroidal_w=1.4210055, toroidal_z=6.0941229,
    ),
    "cre10": dict(
        disk_b1=1.2035697, disk_b2=2.747849, disk_b3=3.2104342, disk_h=0.80844932,
        disk_phase1=265.15882, disk_phase2=98.211313, disk_phase3=35.944588,
        disk_pitch=10.162759, disk_w=0.10824003,
        poloidal_b=0.96938453, poloidal_p=1.4150957, poloidal_r=7.2987296,
        poloidal_w=0.10923051, poloidal_z=4.5748332,
        toroidal_bn=3.7308133, toroidal_bs=-3.5039958, toroidal_r=10.407507,
        toroidal_w=1.7398375, toroidal_z=2.92728,
    ),
    "synCG": dict(
        disk_b1=0.81386878, disk_b2=2.058693, disk_b3=2.9437335, disk_h=0.62172353,
        disk_phase1=229.88551, disk_phase2=97.388282, disk_phase3=32.927367,
        disk_pitch=9.9034844, disk_w=0.066517521,
        poloidal_b=0.80883734, poloidal_p=1.5820957, poloidal_r=7.4625235,
        poloidal_w=0.15003765, poloidal_z=3.533855,
        toroidal_bn=2.3991193, toroidal_bs=-2.0919944, toroidal_r=9.4227834,
        toroidal_w=0.91608418, toroidal_z=5.5844594,
    ),
    "twistX": dict(
        disk_b1=1.3741995, disk_b2=2.0089881, disk_b3=1.5212463, disk_h=0.9380618,
        disk_phase1=235.60316, disk_phase2=101.89856, disk_phase3=56.187572,
        disk_pitch=12.100979, disk_w=0.14933338,
        poloidal_b=0.62793114, poloidal_p=2.3292519, poloidal_r=7.9212358,
        poloidal_w=0.29056201, poloidal_z=2.6274437,
        twisting_time_myr=54.733549,
    ),
    "nebCor": dict(
        disk_b1=1.4081935, disk_b2=3.52924, disk_b3=4.1290147, disk_h=0.81151971,
        disk_phase1=264.47529, disk_phase2=97.57266, disk_phase3=36.403798,
        disk_pitch=10.151183, disk_w=0.11863734,
        poloidal_b=1.3485916, poloidal_p=1.3414395, poloidal_r=7.2473841,
        poloidal_w=0.14318227, poloidal_z=4.8242603,
        toroidal_bn=4.6491142, toroidal_bs=-4.500661, toroidal_r=10.205288,
        toroidal_w=1.7004868, toroidal_z=3.5557767,
    ),
}
# fmt: on
UF23_VARIANTS = tuple(_VARIANTS)

# --- layout of the parameter vector --------------------------------------------------------------
_SPUR = 0  # 1: disk is the local spur (model spur), 0: three-mode spiral
_TWIST = 1  # 1: twisted poloidal halo (model twistX), 0: toroidal + coasting poloidal halo
_EXP_RADIAL = 2  # 1: poloidal field exp(-a / r) (model expX), 0: 1 - logistic(a; r, w)
_D2_MAX = 3  # field zero where x² + y² + z² > this (30 kpc)²
_DISK_B = 4  # 3 mode amplitudes (µG)
_DISK_PHASE = 7  # 3 mode phases (rad)
_DISK_H = 10  # disk half-height and transition width (kpc)
_DISK_W = 11
_SIN_PITCH = 12
_COS_PITCH = 13
_TAN_PITCH = 14
_R_REF = 15  # spiral: reference radius, inner and outer logistic edges (kpc)
_R_INNER = 16
_W_INNER = 17
_R_OUTER = 18
_W_OUTER = 19
_SPUR_R_REF = 20  # spur reference radius (kpc) and angles (rad)
_SPUR_CENTER = 21
_SPUR_LENGTH = 22
_SPUR_WIDTH = 23
_SPUR_EDGE = 24  # logistic width of the spur's ends (5 deg)
_TOR_BN = 25  # toroidal halo, north / south strengths (µG), radius, width, scale height (kpc)
_TOR_BS = 26
_TOR_R = 27
_TOR_W = 28
_TOR_Z = 29
_POL_B = 30  # poloidal halo: strength (µG), exponent p, radial scale and width (kpc)
_POL_P = 31
_POL_INV_P = 32
_POL_R = 33
_POL_W = 34
_POL_C = 35  # c = (a / z_p)^p
_POL_A0P = 36  # a^p (a -> infinity except in expX)
_TWIST_T = 37  # twisting time (Myr)
_TWIST_V0 = 38  # rotation-curve speed (kpc / Myr), radius r0 and height z0 (kpc) of eqs. 43-44
_TWIST_R0 = 39
_TWIST_Z0 = 40
_POL_FINITE_A = 41  # 1 for a finite footpoint asymptote a (expX), 0 for a -> infinity
_POL_LOG_ZP = 42  # ln z_p (kpc)
_MODE_COS = 43  # cos(m phase_m), m = 1, 2, 3
_MODE_SIN = 46  # sin(m phase_m)
_N_PARAMS = 49

_MAX_EXP_ARG = math.log(np.finfo(np.float64).max)  # exp() overflows beyond this


def uf23_params(variant: str = "base") -> np.ndarray:
    """Parameter vector of UF23 model ``variant`` (one of :data:`UF23_VARIANTS`).

    Returns float64; lengths in kpc, fields in µG, angles in radians (pitch as sin/cos/tan).
    """
    v = _VARIANTS[variant]
    p = np.zeros(_N_PARAMS, dtype=np.float64)
    p[_SPUR] = float(variant == "spur")
    p[_TWIST] = float(variant == "twistX")
    p[_EXP_RADIAL] = float(variant == "expX")
    p[_D2_MAX] = 30.0**2
    p[_DISK_B : _DISK_B + 3] = [v.get(f"disk_b{m}", 0.0) for m in (1, 2, 3)]
    p[_DISK_PHASE : _DISK_PHASE + 3] = [v.get(f"disk_phase{m}", 0.0) * _DEG for m in (1, 2, 3)]
    p[_DISK_H] = v["disk_h"]
    p[_DISK_W] = v["disk_w"]
    pitch = v["disk_pitch"] * _DEG
    p[_SIN_PITCH] = math.sin(pitch)
    p[_COS_PITCH] = math.cos(pitch)
    p[_TAN_PITCH] = math.tan(pitch)
    p[_R_REF], p[_R_INNER], p[_W_INNER], p[_R_OUTER], p[_W_OUTER] = 5.0, 5.0, 0.5, 20.0, 0.5
    p[_SPUR_R_REF] = 8.2
    p[_SPUR_CENTER] = v.get("spur_center", 0.0) * _DEG
    p[_SPUR_LENGTH] = v.get("spur_length", 0.0) * _DEG
    p[_SPUR_WIDTH] = v.get("spur_width", 1.0) * _DEG
    p[_SPUR_EDGE] = 5.0 * _DEG
    p[_TOR_BN] = v.get("toroidal_bn", 0.0)
    p[_TOR_BS] = v.get("toroidal_bs", 0.0)
    p[_TOR_R] = v.get("toroidal_r", 1.0)
    p[_TOR_W] = v.get("toroidal_w", 1.0)
    p[_TOR_Z] = v.get("toroidal_z", 1.0)
    a = v.get("poloidal_a", _A_INFINITE_KPC)
    z_p = a * math.tan(v["poloidal_xi"] * _DEG) if "poloidal_xi" in v else v["poloidal_z"]
    power = v["poloidal_p"]
    p[_POL_B] = v["poloidal_b"]
    p[_POL_P] = power
    p[_POL_INV_P] = 1.0 / power
    p[_POL_R] = v["poloidal_r"]
    p[_POL_W] = v.get("poloidal_w", 1.0)
    p[_POL_C] = (a / z_p) ** power
    p[_POL_A0P] = a**power
    p[_POL_FINITE_A] = float("poloidal_a" in v)
    p[_POL_LOG_ZP] = math.log(z_p)
    for m in range(3):
        phase = (m + 1) * p[_DISK_PHASE + m]
        p[_MODE_COS + m] = math.cos(phase)
        p[_MODE_SIN + m] = math.sin(phase)
    p[_TWIST_T] = v.get("twisting_time_myr", 0.0)
    p[_TWIST_V0] = -240.0 / _KPC_KM * _MYR_S
    p[_TWIST_R0] = 1.6
    p[_TWIST_Z0] = 10.0
    return p


@njit_kernel(inline="always")
def _sigmoid(x, x0, w):
    """Logistic function 1 / (1 + exp(-(x - x0) / w))."""
    return 1.0 / (1.0 + vm.exp(-(x - x0) / w))


@njit_kernel(inline="always")
def _angle_between(phi0, phi1):
    """Angle in [0, pi] between the directions phi0 and phi1 (rad): |phi1 - phi0| wrapped to
    [-pi, pi]. The reference code forms arccos(cos phi1 cos phi0 + sin phi1 sin phi0), the same
    angle with an error up to 1e-8 rad near 0 (arccos's slope), which the spur's Gaussian in the
    angle does not feel (its first derivative vanishes there)."""
    turns, _ = vm.round_half_even((phi1 - phi0) * (0.5 / np.pi))
    return abs((phi1 - phi0) - turns * (2.0 * np.pi))


@njit_kernel(inline="always")
def _spiral_disk(r, cos_phi, sin_phi, h_z, params):
    """(B_r, B_phi) of the three-mode logarithmic spiral disk (eqs. 10-14) at r > 0.

    The modes cos(m (phi0 - phase_m)) come from one cos/sin of phi0 = phi - ln(r / r_ref) / tan p
    by the multiple-angle formulas (equal to the direct form to a few ulp). h_z: the disk's
    vertical profile 1 - logistic(|z|) at the point.
    """
    # (1 - exp(-r²/kpc²)) / r, its series near the axis (r in units of 1 kpc)
    radial = (1.0 - vm.exp(-r * r)) / r if r > 1e-8 else r * (1.0 - r * r / 2.0)
    g = (
        params[_R_REF]
        * radial
        * (1.0 - _sigmoid(r, params[_R_OUTER], params[_W_OUTER]))
        * _sigmoid(r, params[_R_INNER], params[_W_INNER])
    )
    st, ct = vm.sincos(vm.log(r / params[_R_REF]) / params[_TAN_PITCH])
    c1 = cos_phi * ct + sin_phi * st  # cos(phi0), phi0 = phi - turn
    s1 = sin_phi * ct - cos_phi * st
    c2 = 2.0 * c1 * c1 - 1.0
    s2 = 2.0 * s1 * c1
    c3 = c1 * (2.0 * c2 - 1.0)  # 4 c³ - 3 c
    s3 = s1 * (2.0 * c2 + 1.0)  # 3 s - 4 s³
    b = (
        params[_DISK_B] * (c1 * params[_MODE_COS] + s1 * params[_MODE_SIN])
        + params[_DISK_B + 1] * (c2 * params[_MODE_COS + 1] + s2 * params[_MODE_SIN + 1])
        + params[_DISK_B + 2] * (c3 * params[_MODE_COS + 2] + s3 * params[_MODE_SIN + 2])
    ) * (h_z * g)
    return b * params[_SIN_PITCH], b * params[_COS_PITCH]


@njit_kernel(inline="always")
def _spur_disk(r, phi, h_z, params):
    """(B_r, B_phi) of the single local spur (model spur, eqs. 16-18) at r > 0 and azimuth phi
    (rad); zero except on the turn of the spiral through the reference radius that is nearest in
    r (of the turns -1, 0, 1: the first one on a tie); h_z as in :func:`_spiral_disk`."""
    r_ref = params[_SPUR_R_REF]
    phi_ref = params[_DISK_PHASE]
    tan_p = params[_TAN_PITCH]
    phi = phi + 2.0 * np.pi if phi < 0.0 else phi
    r_turn = r_ref * vm.exp((phi - phi_ref) * tan_p)  # turn 0; turns -1 and 1 by exp(-+2 pi tan p)
    distance = abs(r - r_turn)
    nearest = (distance < abs(r - r_turn * vm.exp(-2.0 * np.pi * tan_p))) & (
        abs(r - r_turn * vm.exp(2.0 * np.pi * tan_p)) >= distance
    )
    phi0 = phi - vm.log(r / r_ref) / tan_p
    delta = _angle_between(phi_ref, phi0) / params[_SPUR_WIDTH]
    b_spur = params[_DISK_B] * vm.exp(-0.5 * delta * delta)
    g_length = 1.0 - _sigmoid(
        _angle_between(params[_SPUR_CENTER], phi), params[_SPUR_LENGTH], params[_SPUR_EDGE]
    )
    b = r_ref / r * b_spur * h_z * g_length if nearest else 0.0
    return b * params[_SIN_PITCH], b * params[_COS_PITCH]


@njit_kernel(inline="always")
def _poloidal_halo_infinite_a(r, z, params):
    """(B_r, B_z) of the coasting poloidal halo for a -> infinity (eq. 38; every model but expX).

    Field lines are labelled by their footpoint a in the plane; with q = (|z| / z_p)^p and
    D = 1 + q: a = r D^(-1/p), B_z = B(a) D^(-2/p) and B_r = B(a) D^(-2/p) sign(z) r q / (|z| D).
    """
    abs_z = abs(z)
    in_plane = abs_z == 0.0
    abs_z_or_1 = 1.0 if in_plane else abs_z  # keeps the unused lane finite
    q = vm.exp(params[_POL_P] * (vm.log(abs_z_or_1) - params[_POL_LOG_ZP]))
    q = 0.0 if in_plane else q
    d = 1.0 + q
    shrink = vm.exp(-vm.log(d) * params[_POL_INV_P])  # D^(-1/p)
    a = r * shrink
    b_z = params[_POL_B] * (1.0 - _sigmoid(a, params[_POL_R], params[_POL_W])) * shrink * shrink
    sign_z = -1.0 if z < 0.0 else 1.0
    b_r = b_z * sign_z * r * q / (abs_z_or_1 * d)
    return (0.0 if in_plane else b_r), b_z


@njit_kernel(inline="always")
def _pow(x, y):
    """x^y for x >= 0 as exp(y ln x) (0^y = 0 for y > 0, nan for y = 0); relative error
    ~ (1 + |y ln x|) 1e-16."""
    return vm.exp(y * vm.log(x))


@njit_kernel(inline="always")
def _poloidal_halo_finite_a(r, z, params, exp_radial):
    """(B_r, B_z) of the coasting poloidal halo for a finite asymptote a (eqs. 28-37, p = n): the
    paper's rearrangement without the cancellation of sqrt(t0² + b) - t0. ``exp_radial``: the
    radial profile exp(-a / r_p) (model expX) instead of 1 - logistic(a; r_p, w)."""
    power = params[_POL_P]
    inv_p = params[_POL_INV_P]
    abs_z = abs(z)
    sign_z = -1.0 if z < 0.0 else 1.0
    c = params[_POL_C]
    a0p = params[_POL_A0P]
    rp = _pow(r, power)
    t0 = a0p + c * _pow(abs_z, power) - rp
    t1 = np.sqrt(t0 * t0 + 4.0 * a0p * rp)
    ap = 2.0 * a0p * rp / (t1 + t0)
    a = _pow(ap, inv_p)
    if exp_radial:
        radial = vm.exp(-a / params[_POL_R])
    else:
        radial = 1.0 - _sigmoid(a, params[_POL_R], params[_POL_W])
    b_zz = params[_POL_B] * radial
    a_over_r = _pow(2.0 * a0p / (t1 + t0), inv_p)
    b_r = b_zz * c * a * a_over_r * sign_z * _pow(abs_z, power - 1.0) / t1
    b_z = b_zz * _pow(a_over_r, 2.0 - power) * (ap + a0p) / t1
    return b_r, b_z


@njit_kernel(inline="always")
def _twist_azimuthal(r, z, b_r, b_z, params):
    """B_phi of the poloidal halo twisted by differential rotation (model twistX, eqs. 43-47) at
    r > 0."""
    v0 = params[_TWIST_V0]
    r0 = params[_TWIST_R0]
    z0 = params[_TWIST_Z0]
    f_r = 1.0 - vm.exp(-r / r0)
    arg = 2.0 * abs(z) / z0
    t0 = vm.exp(arg)
    g_z = 2.0 / (1.0 + t0)
    sign_z = -1.0 if z < 0.0 else 1.0
    shear_z = -sign_z * v0 * f_r / z0 * t0 * g_z * g_z
    shear_r = v0 * ((1.0 - f_r) / r0 - f_r / r) * g_z
    b_phi = (b_z * shear_z + b_r * shear_r) * params[_TWIST_T]
    return 0.0 if arg > _MAX_EXP_ARG else b_phi  # t0 g_z² -> 0 (inf * 0 above)


@njit_kernel(inline="always")
def _uf23_field(x_kpc, y_kpc, z_kpc, params, spur, twist, exp_radial, finite_a):
    """UF23 (bx, by, bz) in µG with the model switches given as to
    :func:`crsky.fields.model_switch` (see :func:`_build_kernels`)."""
    r2 = x_kpc * x_kpc + y_kpc * y_kpc
    outside = r2 + z_kpc * z_kpc > params[_D2_MAX]
    on_axis = r2 == 0.0  # else r > 2e-162 (the reference code's r > 0 tests)
    r = np.sqrt(r2)
    r_pos = 1.0 if on_axis else r  # r where r > 0 is needed; the result is replaced
    cos_phi = 1.0 if on_axis else x_kpc / r_pos
    sin_phi = 0.0 if on_axis else y_kpc / r_pos
    abs_z = abs(z_kpc)
    # the disk's vertical transition, also the toroidal halo's inner edge (one exp for both)
    above_disk = _sigmoid(abs_z, params[_DISK_H], params[_DISK_W])
    if model_switch(params, _SPUR, spur):
        phi = vm.atan2(y_kpc, x_kpc)
        b_r, b_phi = _spur_disk(r_pos, phi, 1.0 - above_disk, params)
    else:
        b_r, b_phi = _spiral_disk(r_pos, cos_phi, sin_phi, 1.0 - above_disk, params)
    if model_switch(params, _POL_FINITE_A, finite_a):
        exp_profile = model_switch(params, _EXP_RADIAL, exp_radial)
        pol_r, pol_z = _poloidal_halo_finite_a(r, z_kpc, params, exp_profile)
    else:
        pol_r, pol_z = _poloidal_halo_infinite_a(r, z_kpc, params)
    pol_r = 0.0 if on_axis else pol_r
    b_r = pol_r if on_axis else b_r + pol_r
    b_phi = 0.0 if on_axis else b_phi
    if model_switch(params, _TWIST, twist):
        twisted = _twist_azimuthal(r_pos, z_kpc, pol_r, pol_z, params)
        b_phi += 0.0 if on_axis else twisted
    else:
        b0 = params[_TOR_BN] if z_kpc >= 0.0 else params[_TOR_BS]
        b_phi += (
            b0
            * (1.0 - _sigmoid(r, params[_TOR_R], params[_TOR_W]))
            * above_disk
            * vm.exp(-abs_z / params[_TOR_Z])
        )
    bx = b_r * cos_phi - b_phi * sin_phi
    by = b_r * sin_phi + b_phi * cos_phi
    return (0.0 if outside else bx), (0.0 if outside else by), (0.0 if outside else pol_z)


@cache
def _build_kernels(spur: int, twist: int, exp_radial: int, finite_a: int):
    """(kernel, region_kernel) of UF23 with the model switches fixed at compile time (1 on, 0 off)
    or read from the parameter vector (-1). A loop over points calling a fixed kernel holds only
    that model's code, every branch a select: LLVM vectorises it (tuple or array params)."""

    name = f"spur{spur}_twist{twist}_exp{exp_radial}_finite{finite_a}".replace("-1", "P")

    @njit_specialised(f"kernel_{name}", inline="always")
    def kernel(x_kpc, y_kpc, z_kpc, params):
        return _uf23_field(x_kpc, y_kpc, z_kpc, params, spur, twist, exp_radial, finite_a)

    @njit_specialised(f"region_kernel_{name}", inline="always")
    def region_kernel(x_kpc, y_kpc, z_kpc, params):
        bx, by, bz = _uf23_field(x_kpc, y_kpc, z_kpc, params, spur, twist, exp_radial, finite_a)
        return bx, by, bz, uf23_piece(x_kpc, y_kpc, z_kpc, params)

    return kernel, region_kernel


def uf23_kernels(variant: str | None = None):
    """(kernel, region_kernel) for UF23 model ``variant`` (its switches compiled in; the kernels
    read every other parameter from ``params``), or for ``None`` the generic pair that reads the
    switches from ``params`` too (:data:`uf23_kernel`, :data:`uf23_region_kernel`).

    kernel: ``(x_kpc, y_kpc, z_kpc, params) -> (bx, by, bz)`` in µG at one Galactocentric
    position; ``params`` from :func:`uf23_params` as a float64 array or tuple. On the z axis
    (r = 0) the disk field is zero and the azimuthal unit vector is taken at phi = 0, as in the
    reference code (the toroidal halo is discontinuous there). region_kernel: ``(bx, by, bz,
    piece)`` with the half space the point lies in (0: z >= 0, 1: z < 0): every model kinks on
    the plane z = 0 (|z| in the disk's and the halos' vertical profiles; the poloidal halo's B_r
    goes as sign(z) |z|^(p - 1) with p < 2 there) and the toroidal halo jumps there (B_N vs B_S,
    a few 1e-3 µG), so the tracer steps onto the plane. Both are ``inline="always"``: a loop
    calling them as a global or closure variable vectorises with tuple params.
    """
    if variant is None:
        return _build_kernels(-1, -1, -1, -1)
    p = uf23_params(variant)
    return _build_kernels(*(int(p[i]) for i in (_SPUR, _TWIST, _EXP_RADIAL, _POL_FINITE_A)))


@njit_kernel(inline="always")
def uf23_piece(x_kpc, y_kpc, z_kpc, params):
    """The half space a point lies in: 0 for z >= 0, 1 for z < 0 (:func:`uf23_kernels`)."""
    return 0 if z_kpc >= 0.0 else 1


uf23_kernel, uf23_region_kernel = uf23_kernels()


def uf23_field(variant: str = "base"):
    """UF23 model ``variant`` as a :class:`~crsky.fields.FieldModel`.

    Raises:
        ConfigError: ``variant`` is not one of :data:`UF23_VARIANTS`.
    """
    from crsky.errors import ConfigError
    from crsky.fields import FieldModel

    if variant not in _VARIANTS:
        raise ConfigError(
            f"field.options.variant: unknown UF23 model {variant!r}; "
            f"expected one of {list(UF23_VARIANTS)}"
        )
    kernel, region_kernel = uf23_kernels(variant)
    return FieldModel(
        name="uf23",
        kernel=kernel,
        params=uf23_params(variant),
        description=(
            f"Unger & Farrar 2024 coherent Galactic magnetic field, model {variant} "
            "(ApJ 970, 95, arXiv:2311.12120), as in CRPropa 3.2 UF23Field; zero beyond 30 kpc"
        ),
        options={"variant": variant},
        region_kernel=region_kernel,
        piece_kernel=uf23_piece,
    )
