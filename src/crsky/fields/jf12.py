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
kernels (:func:`jf12_kernels`: one per combination of components, and generic ones that read the
component switches from the vector), so other parameter values need no recompilation.
"""

from collections.abc import Iterable
from functools import cache

import numpy as np

from crsky import _vectormath as vm
from crsky._numba import njit_kernel, njit_specialised
from crsky.fields import model_switch

__all__ = [
    "JF12_COMPONENTS",
    "jf12_arm_index",
    "jf12_field",
    "jf12_jump_kernel",
    "jf12_kernel",
    "jf12_kernels",
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
# largest jump of the disk field between two disk pieces at the disk-halo weight 1 (µG): twice the
# largest arm or ring strength there (|B| <= |b| R_REF / r, r >= 5 kpc for the arms, >= 3 kpc for
# the ring)
_DISK_JUMP = 43
_N_PARAMS = 44

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
    ring = p[_B_RING] * p[_R_REF] / p[_R_DISK_MIN]
    p[_DISK_JUMP] = 2.0 * max(np.max(np.abs(_ARM_B_UGAUSS)), ring)
    return p


@njit_kernel(inline="always")
def jf12_arm_index(x_kpc, y_kpc, r, params):
    """Spiral arm region 0 ... 7 of JF12 at in-plane radius r >= 5 kpc (8: beyond the last arm).

    The radius r_{-x} at which the logarithmic spiral through the point crosses the -x axis
    (phi = pi), brought inside the outermost arm by whole turns (each multiplies it by
    exp(-2 pi tan i)), is compared with the 8 arm edges there. Branch-free (selects).
    """
    r_negx = r * vm.exp((np.pi - vm.atan2(y_kpc, x_kpc)) * params[_TAN_PITCH])
    r_outer = params[_R_ARMS + 7]
    r_negx = r_negx * params[_EXP_M2PI_TAN] if r_negx > r_outer else r_negx
    r_negx = r_negx * params[_EXP_M2PI_TAN] if r_negx > r_outer else r_negx
    k = 0  # number of arm edges at or inside r_{-x}
    for i in range(8):
        k += r_negx >= params[_R_ARMS + i]
    return k


@njit_kernel(inline="always")
def _arm_strength(k, params):
    """B of arm region k at r = R_REF (µG); 0 for k = 8 (beyond the last arm). Selects over
    constant indices (a loop over lanes cannot index the parameters by a per-lane k)."""
    b = 0.0
    for i in range(8):
        b = params[_B_ARMS + i] if k == i else b
    return b


@njit_kernel(inline="always")
def _pieces(x_kpc, y_kpc, z_kpc, params, on_disk, on_x):
    """(disk piece, inner sphere, inside the X-field's elbow, piece index) at a point; switches
    as to :func:`crsky.fields.model_switch`. Disk piece: 0 none (r <= 3 kpc or disk off), 1 the
    molecular ring, 2 + k spiral arm region k (k = 8: beyond the last arm). Piece index: -1 at
    d >= 20 kpc; disk piece + 16 at d <= 1 kpc; else disk piece + 32 for z >= 0 + 64 inside
    the elbow r < r_c(z) = r_xc + |z| cot Theta_X^0 (X-field on)."""
    r2 = x_kpc * x_kpc + y_kpc * y_kpc
    d2 = r2 + z_kpc * z_kpc
    r = np.sqrt(r2)
    arms = 2 + jf12_arm_index(x_kpc, y_kpc, r, params)
    disk = 1 if r < params[_R_RING_MAX] else arms
    disk = 0 if r <= params[_R_DISK_MIN] else disk
    disk = disk if model_switch(params, _ON_DISK, on_disk) else 0
    inner = d2 <= params[_D2_MIN]
    in_elbow = r < params[_R_XC] + abs(z_kpc) * params[_COT_THETA_X0]
    in_elbow = in_elbow if model_switch(params, _ON_X, on_x) else False
    piece = disk + (32 if z_kpc >= 0.0 else 0) + (64 if in_elbow else 0)
    piece = disk + 16 if inner else piece
    piece = -1 if d2 >= params[_D2_MAX] else piece
    return disk, inner, in_elbow, piece


@njit_kernel(inline="always")
def _jf12_region(x_kpc, y_kpc, z_kpc, params, on_disk, on_halo, on_x):
    """(bx, by, bz, piece) of the JF12 regular field with the component switches given as to
    :func:`crsky.fields.model_switch`; see :func:`jf12_kernels`. Every branch is a select."""
    disk, inner, in_elbow, piece = _pieces(x_kpc, y_kpc, z_kpc, params, on_disk, on_x)
    r = np.sqrt(x_kpc * x_kpc + y_kpc * y_kpc)
    on_axis = r == 0.0
    r_pos = 1.0 if on_axis else r  # r where r > 0 is needed; unused on the axis
    cos_phi = 1.0 if on_axis else x_kpc / r_pos
    sin_phi = 0.0 if on_axis else y_kpc / r_pos
    abs_z = abs(z_kpc)
    north = z_kpc >= 0.0
    # logistic transition L(z, h_disk, w_disk) of the paper: halo weight L, disk weight 1 - L
    # (both from one exponential, so neither loses digits to cancellation where it is small)
    e_disk = vm.exp(-(abs_z - params[_H_DISK]) * params[_TWO_OVER_W_DISK])
    lf_disk = 1.0 / (1.0 + e_disk)

    # disk: molecular ring (azimuthal) and 8 logarithmic spiral arms, B ∝ 1/r in-plane
    scale = params[_R_REF] / r_pos * (e_disk * lf_disk)  # (5 kpc / r) (1 - L)
    b_ring = params[_B_RING] * scale if disk == 1 else 0.0
    b_arm = _arm_strength(disk - 2, params) * scale if disk >= 2 else 0.0
    sp = params[_SIN_PITCH]
    cp = params[_COS_PITCH]
    bx = b_arm * (sp * cos_phi - cp * sin_phi) - b_ring * sin_phi
    by = b_arm * (sp * sin_phi + cp * cos_phi) + b_ring * cos_phi

    # toroidal halo: azimuthal, separate north and south strengths and radii
    b0 = params[_B_NORTH] if north else params[_B_SOUTH]
    r0 = params[_R_NORTH] if north else params[_R_SOUTH]
    e_r = vm.exp(-(r - r0) * params[_TWO_OVER_W_HALO])
    b = b0 * (e_r / (1.0 + e_r)) * lf_disk * vm.exp(-abs_z * params[_INV_Z0])  # 1 - L(r)
    b = b if model_switch(params, _ON_HALO, on_halo) and not inner else 0.0
    bx -= b * sin_phi
    by += b * cos_phi

    # X-field: poloidal, straight field lines in the (r, z) plane leaving the plane at footpoint
    # r_p; fixed elevation Theta_X^0 outside the elbow r_c(z), growing towards the axis inside
    r_xc = params[_R_XC]
    cot0 = params[_COT_THETA_X0]
    r_c = r_xc + abs_z * cot0
    ratio = r_xc / r_c  # inside: r_p / r
    r_p = r * ratio if in_elbow else r - abs_z * cot0
    shape = ratio * ratio if in_elbow else r_p / r_pos
    b = params[_B_X] * vm.exp(-r_p * params[_INV_R_X]) * shape
    # inside: tan(Theta_X) = |z| / (r - r_p) = r_c / (r cot Theta_X^0); vertical at z = 0
    u = r * cot0
    inv_len = 1.0 / np.sqrt(u * u + r_c * r_c)
    in_plane = z_kpc == 0.0
    sin_t = (1.0 if in_plane else r_c * inv_len) if in_elbow else params[_SIN_THETA_X0]
    cos_t = (0.0 if in_plane else u * inv_len) if in_elbow else params[_COS_THETA_X0]
    b = b if model_switch(params, _ON_X, on_x) and not inner else 0.0
    b_r = b * cos_t if north else -(b * cos_t)
    bx += b_r * cos_phi
    by += b_r * sin_phi
    bz = b * sin_t

    outside = piece < 0
    return (0.0 if outside else bx), (0.0 if outside else by), (0.0 if outside else bz), piece


# piece index bits that only the disk's region changes (disk piece 0 ... 10)
_DISK_PIECE_BITS = 15


@njit_kernel
def jf12_jump_kernel(changed, x0_kpc, y0_kpc, z0_kpc, x1_kpc, y1_kpc, z1_kpc, params):
    """Upper bound (µG) of the jumps of B on the surfaces crossed between two points whose
    pieces differ only in ``changed`` bits (:attr:`crsky.fields.FieldModel.jump_kernel`): where
    only the disk's region changes (arm, ring and r = 3 kpc edges), the disk field's largest
    jump times its weight 1 - L(z) <= exp(-(|z| - h_disk) 2 / w_disk) at the smaller |z| of the
    two points (a path that crosses z = 0 changes another bit), and <= 1; ``inf`` for any other
    surface. Above the disk (|z| > 2 kpc: weight < 1e-5) the arm edges are jumps of less than
    1e-4 µG. A tracer step of length h between the points bends towards the plane by at most
    h² |du/ds| / 8 (0.04 kpc for 1 kpc turning by 0.3 rad: a factor 1.35 on the weight), within
    the margin of the tracer's bound (its factor 1 + sum |b_i| is >= 3.3 times the actual one:
    0.28, 0.39 and 4.2 for its 3rd, 5th and 8th order pairs)."""
    if changed & ~_DISK_PIECE_BITS != 0:
        return np.inf
    abs_z = min(abs(z0_kpc), abs(z1_kpc))
    weight = np.exp(-(abs_z - params[_H_DISK]) * params[_TWO_OVER_W_DISK])
    return params[_DISK_JUMP] * min(1.0, weight)


@cache
def _build_kernels(on_disk: int, on_halo: int, on_x: int):
    """(kernel, region_kernel, piece_kernel) of the JF12 regular field with the component
    switches fixed at compile time (1 on, 0 off) or read from the parameter vector (-1)."""

    name = f"disk{on_disk}_halo{on_halo}_x{on_x}".replace("-1", "P")

    @njit_specialised(f"region_kernel_{name}", inline="always")
    def region_kernel(x_kpc, y_kpc, z_kpc, params):
        return _jf12_region(x_kpc, y_kpc, z_kpc, params, on_disk, on_halo, on_x)

    @njit_specialised(f"kernel_{name}", inline="always")
    def kernel(x_kpc, y_kpc, z_kpc, params):
        bx, by, bz, _ = _jf12_region(x_kpc, y_kpc, z_kpc, params, on_disk, on_halo, on_x)
        return bx, by, bz

    @njit_specialised(f"piece_kernel_{name}", inline="always")
    def piece_kernel(x_kpc, y_kpc, z_kpc, params):
        return _pieces(x_kpc, y_kpc, z_kpc, params, on_disk, on_x)[3]

    return kernel, region_kernel, piece_kernel


def jf12_kernels(disk: bool | None = None, toroidal_halo: bool | None = None, x_field=None):
    """(kernel, region_kernel, piece_kernel) of the JF12 regular field with the given components
    compiled in, or for ``None`` (all three) the generic kernels that read the component switches
    from ``params`` (:data:`jf12_kernel`, :data:`jf12_region_kernel`, :data:`jf12_piece`).

    kernel: ``(x_kpc, y_kpc, z_kpc, params) -> (bx, by, bz)`` in µG at one Galactocentric
    position, ``params`` from :func:`jf12_params` (float64 array or tuple). region_kernel: the
    same and the index of the piece of the model the point lies in (int): the field is smooth
    within a piece and may jump between pieces (arm and ring edges, r = 3 kpc, the 1 and 20 kpc
    spheres, the X-field's elbow, the plane z = 0 where the toroidal halo and the X-field change
    sign); the tracer steps onto these surfaces instead of across them. piece_kernel: the index
    alone (no exponentials but the arm index's), for the tracer's bisections. On the z axis
    (r = 0) the azimuthal unit vector is taken at phi = 0 (as atan2(0, 0) = 0 does in CRPropa);
    in the plane z = 0 the inner X-field is vertical (CRPropa's convention). All three are
    ``inline="always"`` and branch-free: a loop calling them as a global or closure variable
    vectorises with tuple params.
    """
    switches = (disk, toroidal_halo, x_field)
    if all(s is None for s in switches):
        return _build_kernels(-1, -1, -1)
    return _build_kernels(*(int(bool(s)) for s in switches))


jf12_kernel, jf12_region_kernel, jf12_piece = jf12_kernels()


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
    kernel, region_kernel, piece_kernel = jf12_kernels(*(c in chosen for c in JF12_COMPONENTS))
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
        piece_kernel=piece_kernel,  # the random parts add no pieces
        jump_kernel=jf12_jump_kernel,
    )
