"""Regular Jansson & Farrar (2012) Galactic magnetic field.

Model: Jansson & Farrar 2012a, ApJ 757, 14 (arXiv:1204.3662), section 5 (the regular field's
disk, toroidal halo and out-of-plane "X" components) and its best-fit table; their companion Letter
2012b, ApJ 761, L11 (arXiv:1210.7820) completes the model with random parts, not included here.
Formulas and numbers as CRPropa 3.2's ``JF12Field`` evaluates them (striated and turbulent parts
off); in particular the X-field strength inside the elbow scales as ``(r_p/r)**2``, which conserves
its flux (``r_p/r`` there would not be divergence-free). The field is zero at spherical
Galactocentric distance d >= 20 kpc; the toroidal halo and X-field also for d <= 1 kpc.

Frame (DESIGN.md section 3): Galactocentric Cartesian, kpc, x from the Sun to the Galactic Centre,
z to Galactic North, Earth at (-8.5, 0, 0) kpc; azimuth phi = atan2(y, x). B in microgauss.

All model numbers live in a float64 vector (see :func:`jf12_params`) read by the compiled
:func:`jf12_kernel`, so variants of the model need no recompilation.
"""

from collections.abc import Iterable

import numpy as np

from crsky._numba import njit_kernel

__all__ = [
    "JF12_COMPONENTS",
    "jf12_arm_index",
    "jf12_field",
    "jf12_kernel",
    "jf12_params",
    "jf12_piece",
    "jf12_region_kernel",
]

JF12_COMPONENTS = ("disk", "toroidal_halo", "x_field")

# --- layout of the parameter vector (lengths kpc, fields µG, angles as their trig functions) ------
_ON_DISK = 0  # 0/1 switches of the three components
_ON_HALO = 1
_ON_X = 2
_D2_MAX = 3  # field zero for x²+y²+z² >= this (20 kpc)²
_D2_MIN = 4  # toroidal halo and X-field zero for x²+y²+z² <= this (1 kpc)²
# disk
_R_DISK_MIN = 5  # disk field zero for r <= 3 kpc
_R_RING_MAX = 6  # molecular ring for r < 5 kpc, spiral arms beyond
_R_REF = 7  # disk strengths scale as R_REF / r (5 kpc)
_B_RING = 8  # molecular-ring field at r = R_REF
_H_DISK = 9  # disk-halo transition height h_disk
_TWO_OVER_W_DISK = 10  # 2 / w_disk of the logistic transition
_SIN_PITCH = 11  # pitch angle i = 11.5 deg of the spiral
_COS_PITCH = 12
_TAN_PITCH = 13
_EXP_M2PI_TAN = 14  # exp(-2 pi tan i): r_{-x} one turn further out along the spiral
_R_ARMS = 15  # 8 outer edges of the arm regions at phi = pi (on the -x axis), ascending
_B_ARMS = 23  # 8 arm field strengths at r = R_REF
# toroidal halo
_B_NORTH = 31
_B_SOUTH = 32
_R_NORTH = 33
_R_SOUTH = 34
_TWO_OVER_W_HALO = 35
_INV_Z0 = 36  # 1 / z0 of the exponential fall-off in |z|
# X-field
_B_X = 37
_R_XC = 38  # radius r_X^c of the elbow at z = 0
_INV_R_X = 39  # 1 / r_X, exponential scale radius
_SIN_THETA_X0 = 40  # elevation angle Theta_X^0 = 49 deg of the outer region
_COS_THETA_X0 = 41
_COT_THETA_X0 = 42
_N_PARAMS = 43

_ARM_RADII_KPC = (5.1, 6.3, 7.1, 8.3, 9.8, 11.4, 12.7, 15.5)
_ARM_B_UGAUSS = (0.1, 3.0, -0.9, -0.8, -2.0, -4.2, 0.0, 2.7)


def jf12_params(disk: bool = True, toroidal_halo: bool = True, x_field: bool = True) -> np.ndarray:
    """Parameter vector of the JF12 regular field (JF12 best fit) for :func:`jf12_kernel`.

    Args:
        disk, toroidal_halo, x_field: which of the three components contribute.

    Returns:
        float64 vector; lengths in kpc, field strengths in µG, angles stored as sin/cos/tan.
    """
    p = np.zeros(_N_PARAMS, dtype=np.float64)
    p[_ON_DISK] = float(bool(disk))
    p[_ON_HALO] = float(bool(toroidal_halo))
    p[_ON_X] = float(bool(x_field))
    p[_D2_MAX] = 20.0**2
    p[_D2_MIN] = 1.0**2

    pitch = np.deg2rad(11.5)
    p[_R_DISK_MIN] = 3.0
    p[_R_RING_MAX] = 5.0
    p[_R_REF] = 5.0
    p[_B_RING] = 0.1
    p[_H_DISK] = 0.40
    p[_TWO_OVER_W_DISK] = 2.0 / 0.27
    p[_SIN_PITCH] = np.sin(pitch)
    p[_COS_PITCH] = np.cos(pitch)
    p[_TAN_PITCH] = np.tan(pitch)
    p[_EXP_M2PI_TAN] = np.exp(-2.0 * np.pi * np.tan(pitch))
    p[_R_ARMS : _R_ARMS + 8] = _ARM_RADII_KPC
    p[_B_ARMS : _B_ARMS + 8] = _ARM_B_UGAUSS

    p[_B_NORTH] = 1.4
    p[_B_SOUTH] = -1.1
    p[_R_NORTH] = 9.22
    p[_R_SOUTH] = 17.0
    p[_TWO_OVER_W_HALO] = 2.0 / 0.20
    p[_INV_Z0] = 1.0 / 5.3

    theta_x0 = np.deg2rad(49.0)
    p[_B_X] = 4.6
    p[_R_XC] = 4.8
    p[_INV_R_X] = 1.0 / 2.9
    p[_SIN_THETA_X0] = np.sin(theta_x0)
    p[_COS_THETA_X0] = np.cos(theta_x0)
    p[_COT_THETA_X0] = 1.0 / np.tan(theta_x0)
    return p


@njit_kernel
def jf12_arm_index(x_kpc, y_kpc, r, params):
    """Spiral arm region 0 ... 7 of JF12 at in-plane radius r >= 5 kpc (8: beyond the last arm).

    The radius r_{-x} at which the logarithmic spiral through the point crosses the -x axis
    (phi = pi), brought inside the outermost arm by whole turns (each multiplies it by
    exp(-2 pi tan i)), is compared with the 8 arm edges there.
    """
    r_negx = r * np.exp((np.pi - np.arctan2(y_kpc, x_kpc)) * params[_TAN_PITCH])
    r_outer = params[_R_ARMS + 7]
    if r_negx > r_outer:
        r_negx *= params[_EXP_M2PI_TAN]
        if r_negx > r_outer:
            r_negx *= params[_EXP_M2PI_TAN]
    k = 0  # number of arm edges at or inside r_{-x} (branch-free count)
    for i in range(8):
        k += r_negx >= params[_R_ARMS + i]
    return k


@njit_kernel
def _disk_piece(x_kpc, y_kpc, r, params):
    """Disk piece at in-plane radius r (kpc): 0 none (inside r_min or disk off), 1 the molecular
    ring, 2 + k spiral arm region k (k = 8: beyond the last arm)."""
    if params[_ON_DISK] == 0.0 or r <= params[_R_DISK_MIN]:
        return 0
    if r < params[_R_RING_MAX]:
        return 1
    return 2 + jf12_arm_index(x_kpc, y_kpc, r, params)


@njit_kernel
def _inside_x_elbow(r, abs_z, params):
    """Whether the X-field is on and (r, |z|) lies inside its elbow r_c(z) = r_xc + |z| cot."""
    return params[_ON_X] != 0.0 and r < params[_R_XC] + abs_z * params[_COT_THETA_X0]


@njit_kernel
def jf12_piece(x_kpc, y_kpc, z_kpc, params):
    """The piece index :func:`jf12_region_kernel` returns, without the field (no exponentials
    but the arm index's): what the tracer's bisections onto a surface need."""
    r2 = x_kpc * x_kpc + y_kpc * y_kpc
    d2 = r2 + z_kpc * z_kpc
    if d2 >= params[_D2_MAX]:
        return -1
    r = np.sqrt(r2)
    region = _disk_piece(x_kpc, y_kpc, r, params)
    if d2 <= params[_D2_MIN]:
        return region + 16
    if z_kpc >= 0.0:
        region += 32
    if _inside_x_elbow(r, abs(z_kpc), params):
        region += 64
    return region


@njit_kernel
def jf12_region_kernel(x_kpc, y_kpc, z_kpc, params):
    """JF12 regular field (bx, by, bz) in µG at one Galactocentric position (kpc) and the index of
    the piece of the model it lies in (int): the field is smooth within a piece and may jump
    between pieces (arm and ring edges, r = 3 kpc, the 1 and 20 kpc spheres, the X-field's elbow,
    the plane z = 0 where the toroidal halo and the X-field change sign). The tracer steps onto
    these surfaces instead of across them (:mod:`crsky.backtrack._kernels`).

    ``params`` comes from :func:`jf12_params`. Allocation-free; callable from other numba code.
    On the z axis (r = 0) the azimuthal unit vector is taken at phi = 0 (as atan2(0, 0) = 0 does in
    CRPropa); in the plane z = 0 the inner X-field is vertical (CRPropa's convention).
    """
    z2 = z_kpc * z_kpc
    r2 = x_kpc * x_kpc + y_kpc * y_kpc
    d2 = r2 + z2
    bx = 0.0
    by = 0.0
    bz = 0.0
    if d2 >= params[_D2_MAX]:
        return bx, by, bz, -1

    r = np.sqrt(r2)
    if r > 0.0:
        cos_phi = x_kpc / r
        sin_phi = y_kpc / r
    else:
        cos_phi = 1.0
        sin_phi = 0.0
    abs_z = abs(z_kpc)
    # logistic transition L(z, h_disk, w_disk) of the paper: halo weight L, disk weight 1 - L
    # (both from one exponential, so neither loses digits to cancellation where it is small)
    e_disk = np.exp(-(abs_z - params[_H_DISK]) * params[_TWO_OVER_W_DISK])
    lf_disk = 1.0 / (1.0 + e_disk)

    # disk: molecular ring and 8 logarithmic spiral arms, B ∝ 1/r in-plane
    region = _disk_piece(x_kpc, y_kpc, r, params)
    if region != 0:
        scale = params[_R_REF] / r * (e_disk * lf_disk)  # (5 kpc / r) (1 - L)
        if region == 1:
            b = params[_B_RING] * scale
            bx -= b * sin_phi
            by += b * cos_phi
        else:
            k = region - 2
            b = params[_B_ARMS + k] if k < 8 else 0.0
            if b != 0.0:
                b *= scale
                sp = params[_SIN_PITCH]
                cp = params[_COS_PITCH]
                bx += b * (sp * cos_phi - cp * sin_phi)
                by += b * (sp * sin_phi + cp * cos_phi)

    if d2 <= params[_D2_MIN]:
        return bx, by, bz, region + 16

    if z_kpc >= 0.0:
        region += 32
    # toroidal halo: azimuthal, separate north and south strengths and radii
    if params[_ON_HALO] != 0.0:
        if z_kpc >= 0.0:
            b0 = params[_B_NORTH]
            r0 = params[_R_NORTH]
        else:
            b0 = params[_B_SOUTH]
            r0 = params[_R_SOUTH]
        e_r = np.exp(-(r - r0) * params[_TWO_OVER_W_HALO])
        b = b0 * (e_r / (1.0 + e_r)) * lf_disk * np.exp(-abs_z * params[_INV_Z0])  # 1 - L(r)
        bx -= b * sin_phi
        by += b * cos_phi

    # X-field: poloidal, straight field lines in the (r, z) plane
    # leaving the plane at footpoint r_p; fixed elevation Theta_X^0 outside the elbow r_c(z),
    # elevation growing towards the axis inside it
    if params[_ON_X] != 0.0:
        r_xc = params[_R_XC]
        cot0 = params[_COT_THETA_X0]
        r_c = r_xc + abs_z * cot0
        if _inside_x_elbow(r, abs_z, params):
            region += 64
            ratio = r_xc / r_c  # r_p / r
            r_p = r * ratio
            b = params[_B_X] * np.exp(-r_p * params[_INV_R_X]) * ratio * ratio
            if z_kpc == 0.0:
                sin_t = 1.0
                cos_t = 0.0
            else:
                # tan(Theta_X) = |z| / (r - r_p) = r_c / (r cot Theta_X^0)
                u = r * cot0
                inv_len = 1.0 / np.sqrt(u * u + r_c * r_c)
                sin_t = r_c * inv_len
                cos_t = u * inv_len
        else:
            r_p = r - abs_z * cot0
            b = params[_B_X] * np.exp(-r_p * params[_INV_R_X]) * (r_p / r)
            sin_t = params[_SIN_THETA_X0]
            cos_t = params[_COS_THETA_X0]
        b_r = b * cos_t
        if z_kpc < 0.0:
            b_r = -b_r
        bx += b_r * cos_phi
        by += b_r * sin_phi
        bz += b * sin_t

    return bx, by, bz, region


@njit_kernel
def jf12_kernel(x_kpc, y_kpc, z_kpc, params):
    """JF12 regular field (bx, by, bz) in µG at one Galactocentric position (kpc); see
    :func:`jf12_region_kernel`."""
    bx, by, bz, _ = jf12_region_kernel(x_kpc, y_kpc, z_kpc, params)
    return bx, by, bz


def jf12_field(components: Iterable[str] = JF12_COMPONENTS, turbulence=None, striated=None):
    """The JF12 regular field as a :class:`~crsky.fields.FieldModel`.

    Args:
        components: any of ``"disk"``, ``"toroidal_halo"``, ``"x_field"`` (default: all three).

    Raises:
        ConfigError: unknown, repeated or no component names.
    """
    from crsky.errors import ConfigError
    from crsky.fields import FieldModel

    if isinstance(components, str):
        components = [components]
    if not isinstance(components, list | tuple):
        raise ConfigError(
            f"field.options.components of JF12 must be a list of names from "
            f"{list(JF12_COMPONENTS)}, got {components!r}"
        )
    names = list(components)
    for name in names:
        if name not in JF12_COMPONENTS:
            raise ConfigError(
                f"field.options.components: unknown JF12 component {name!r}; "
                f"expected some of {list(JF12_COMPONENTS)}"
            )
    if not names or len(set(names)) != len(names):
        raise ConfigError(
            f"field.options.components of JF12 must list distinct names from "
            f"{list(JF12_COMPONENTS)}, got {names!r}"
        )
    chosen = [c for c in JF12_COMPONENTS if c in names]
    params = jf12_params(
        disk="disk" in chosen, toroidal_halo="toroidal_halo" in chosen, x_field="x_field" in chosen
    )
    options = {"components": chosen}
    description = (
        "Jansson & Farrar 2012 regular Galactic magnetic field (ApJ 757, 14, arXiv:1204.3662; "
        "random parts: ApJ 761, L11, arXiv:1210.7820), as in CRPropa 3.2 JF12Field; "
        f"components: {', '.join(chosen)}"
    )
    kernel = jf12_kernel
    region_kernel = jf12_region_kernel
    if turbulence not in (None, False) or striated not in (None, False):
        from dataclasses import asdict

        from crsky.fields.jf12_random import (
            jf12_random_kernel,
            jf12_random_params,
            jf12_random_region_kernel,
        )
        from crsky.fields.turbulence import StriationSpec, TurbulenceSpec

        turb = None if turbulence in (None, False) else TurbulenceSpec.from_options(turbulence)
        stri = None if striated in (None, False) else StriationSpec.from_options(striated)
        params = jf12_random_params(params, turb, stri)
        kernel = jf12_random_kernel
        region_kernel = jf12_random_region_kernel
        if stri is not None:
            options["striated"] = asdict(stri)
            description += (
                f"; striated: beta {stri.beta:g}, {stri.cell_pc:g} pc cells, seed {stri.seed}"
            )
        if turb is not None:
            options["turbulence"] = asdict(turb)
            description += (
                f"; turbulent (JF12 random-field strength x {turb.rms_scale:g}): Kolmogorov "
                f"{turb.l_min_pc:g}-{turb.l_max_pc:g} pc, {turb.n_modes} plane waves, "
                f"seed {turb.seed}"
            )
    return FieldModel(
        name="jf12",
        kernel=kernel,
        params=params,
        description=description,
        options=options,
        integrator="bs3",  # field jumps at arm and region edges
        region_kernel=region_kernel,
        piece_kernel=jf12_piece,  # the random parts add no pieces
    )
