"""Korochkin, Semikoz & Tinyakov (2024) coherent Galactic magnetic field (KST24).

Model: A. Korochkin, D. Semikoz and P. Tinyakov, A&A 693, A284 (2025), arXiv:2407.02148: the
regular field outside the thin disk from four components, with the best-fit parameters of the
paper as implemented by its authors in CRPropa 3.2's ``KST24Field``:

- five magnetic spiral arms (Scutum, Carina-Sagittarius, Local, and Perseus as a thin and a thick
  tube): logarithmic spirals r = a exp(k (phi + phi0 + 2 pi n)), a = 3 kpc, k = tan(20°), about a
  centre shifted along x, each a tube of super-elliptic cross-section
  (|d / w|^eps + |z / h|^eps)^(1/2) <= 1 (d: in-plane distance to the arm's axis, w, h: its
  half-width and half-height, which may widen along the arm up to 1.2 kpc, with the strength
  scaled by the inverse cross-section); inside a tube the field has the arm's strength and points
  along the axis; each arm is also limited in r and z;
- a toroidal halo: azimuthal, of constant strength, in slabs 1.185 < z < 2.1 kpc (north,
  -3.2 µG, 1 <= r <= 9.1 kpc) and -2.5 < z < -1.22 kpc (south, +3.2 µG, 1 <= r <= 14 kpc);
- an X-shaped field along straight lines tilted by 28° from the vertical with footpoints
  1 <= r0 <= 6.2 kpc, strength 1.8 µG r0 / r, zero for |z| > 10 kpc;
- the Local Bubble: a sphere of radius 0.2 kpc around (-8.2, 0.095, -0.05) kpc, field-free
  inside, wrapped in a 30 pc shell whose field is the tangential part of a uniform -3.5 µG field
  towards (l, b) = (50°, 2°), amplified by the swept-up flux, 1 + R² / (2 R dR + dR²).

Where the halo slabs are (z above 1.185 kpc or below -1.22 kpc) only the halo and the X-field
contribute; inside the Local Bubble and its shell only the bubble's field; elsewhere the arms and
the X-field. The nearest point on an arm's axis is found from the spiral turn nearest in r, then
corrected once to first order along the spiral (the model's definition of d).

Frame: crsky's (DESIGN.md section 3; CRPropa's): Galactocentric Cartesian, kpc, x from the Sun to
the Galactic Centre, z to Galactic North, B in microgauss. KST24 places the Sun at (-8.2, 0, 0) kpc,
inside its Local Bubble; CRPropa keeps the model's coordinates and starts backtracking at
(-8.5, 0, 0) kpc, and so does crsky, so the observer sits 0.32 kpc from the bubble's centre,
outside its shell, in the Local arm's field.
"""

import math

import numpy as np

from crsky._numba import njit_kernel

__all__ = [
    "KST24_ARMS",
    "kst24_field",
    "kst24_kernel",
    "kst24_params",
    "kst24_region_kernel",
]

# Arm table: strength (µG), pitch (deg), phase phi0 (deg), centre shift along x and y (kpc),
# half-height and half-width of the tube (kpc), super-ellipse exponent, widening along the arm
# (deg, i.e. relative growth per kpc of arm length in radians), r range and z range (kpc).
KST24_ARMS = {
    "scutum": (4.9, 20.0, -134.0, 1.0, 0.0, 0.8, 1.0, 2.0, 0.0, 3.0, 16.0, -1.0, 1.0),
    "carina_sagittarius": (1.3, 20.0, -80.0, 1.37, 0.0, 1.0, 0.79, 2.3, 3.0, 3.0, 15.0, -1.2, 1.2),
    "local": (-3.5, 20.0, -2.2, -0.15, 0.0, 0.73, 1.0, 1.45, 0.0, 3.3, 14.0, -1.0, 1.0),
    "perseus_1": (-2.0, 20.0, 46.0, -1.0, 0.0, 0.4, 1.1, 2.0, 0.0, 3.0, 17.0, -1.0, 1.0),
    "perseus_2": (-3.5, 20.0, 46.0, -1.0, 0.0, 1.2, 1.1, 2.0, 0.0, 3.0, 17.0, -2.0, 2.0),
}

# --- layout of the parameter vector -------------------------------------------------------------
_N_TOR = 0  # north toroidal slab: B (µG), z_min, z_max, r_min, r_max (kpc)
_S_TOR = 5  # south toroidal slab, same layout
_X_B = 10  # X-field strength (µG), footpoint range (kpc), |z| limit (kpc), sin/tan of the tilt
_X_R0_MIN = 11
_X_R0_MAX = 12
_X_Z_MAX = 13
_X_SIN = 14
_X_COS = 15
_X_TAN = 16
_LB_B = 17  # Local Bubble: strength (µG), radius and shell thickness (kpc), centre (kpc)
_LB_R = 18
_LB_DR = 19
_LB_CENTRE = 20  # 3 values
_LB_DIR = 23  # unit vector of the bubble's field direction, 3 values
_LB_AMPL = 26  # 1 + R² / (2 R dR + dR²)
_ARM_A = 27  # spiral scale a (kpc)
_ARM_R_SCALE = 28  # arm length L = r / sin(p) is measured from r = 5 kpc for the widening
_ARM_MAX_HALF = 29  # widened half-sizes are capped at 1.2 kpc
_ARMS = 30  # _N_ARM_SLOTS arm slots of _ARM_STRIDE values each:
_A_B, _A_TANP, _A_COSP, _A_SINP, _A_PHI0, _A_XSHIFT, _A_YSHIFT = range(7)
_A_HALF_Z, _A_HALF_D, _A_EPS, _A_WIDEN, _A_RMIN, _A_RMAX, _A_ZMIN, _A_ZMAX = range(7, 15)
_ARM_STRIDE = 15
_N_ARM_SLOTS = 5  # the kernel evaluates every slot (written out in _arms); unused ones are empty


def kst24_params(arms=tuple(KST24_ARMS)) -> np.ndarray:
    """Parameter vector of KST24 with the named spiral ``arms`` (default all five of
    :data:`KST24_ARMS`) in its first arm slots; an unused slot has zero strength and an empty z
    range (no point lies in its tube). Lengths in kpc, fields in µG, angles in radians."""
    if len(arms) > _N_ARM_SLOTS:
        raise ValueError(f"KST24 has {_N_ARM_SLOTS} arm slots, got {len(arms)} arms")
    deg = math.pi / 180.0
    p = np.zeros(_ARMS + _ARM_STRIDE * _N_ARM_SLOTS, dtype=np.float64)
    for i in range(len(arms), _N_ARM_SLOTS):
        p[_ARMS + i * _ARM_STRIDE + _A_ZMIN] = 1.0
        p[_ARMS + i * _ARM_STRIDE + _A_ZMAX] = -1.0
    p[_N_TOR : _N_TOR + 5] = (-3.2, 1.185, 2.1, 1.0, 9.1)
    p[_S_TOR : _S_TOR + 5] = (3.2, -2.5, -1.22, 1.0, 14.0)
    tilt = 28.0 * deg
    p[_X_B], p[_X_R0_MIN], p[_X_R0_MAX], p[_X_Z_MAX] = 1.8, 1.0, 6.2, 10.0
    p[_X_SIN], p[_X_COS], p[_X_TAN] = math.sin(tilt), math.cos(tilt), math.tan(tilt)
    radius, shell = 0.2, 0.03
    p[_LB_B], p[_LB_R], p[_LB_DR] = -3.5, radius, shell
    p[_LB_CENTRE : _LB_CENTRE + 3] = (-8.2, 0.095, -0.05)
    l_b, b_b = 50.0 * deg, 2.0 * deg
    p[_LB_DIR : _LB_DIR + 3] = (
        math.cos(b_b) * math.cos(l_b),
        math.cos(b_b) * math.sin(l_b),
        math.sin(b_b),
    )
    p[_LB_AMPL] = 1.0 + radius**2 / (2.0 * radius * shell + shell * shell)
    p[_ARM_A], p[_ARM_R_SCALE], p[_ARM_MAX_HALF] = 3.0, 5.0, 1.2
    for i, name in enumerate(arms):
        b, pitch, phi0, xs, ys, half_z, half_d, eps, widen, rmin, rmax, zmin, zmax = KST24_ARMS[
            name
        ]
        q = _ARMS + i * _ARM_STRIDE
        p[q + _A_B] = b
        p[q + _A_TANP] = math.tan(pitch * deg)
        p[q + _A_COSP] = math.cos(pitch * deg)
        p[q + _A_SINP] = math.sin(pitch * deg)
        p[q + _A_PHI0] = phi0 * deg
        p[q + _A_XSHIFT], p[q + _A_YSHIFT] = xs, ys
        p[q + _A_HALF_Z], p[q + _A_HALF_D], p[q + _A_EPS] = half_z, half_d, eps
        p[q + _A_WIDEN] = widen * deg
        p[q + _A_RMIN], p[q + _A_RMAX] = rmin, rmax
        p[q + _A_ZMIN], p[q + _A_ZMAX] = zmin, zmax
    return p


@njit_kernel
def _toroidal(x, y, z, r, params, q):
    """Toroidal slab q (_N_TOR or _S_TOR): (bx, by) of B pointing along -phi_hat (B < 0: +phi),
    and whether (x, y, z) lies in the slab."""
    if z <= params[q + 1] or z >= params[q + 2] or r < params[q + 3] or r > params[q + 4]:
        return 0.0, 0.0, False
    return params[q] * (y / r), -params[q] * (x / r), True


@njit_kernel
def _x_field(x, y, z, r, params):
    """X-field (bx, by, bz): straight lines tilted from the vertical, strength B r0 / r; and
    whether (x, y, z) lies in it."""
    if abs(z) > params[_X_Z_MAX]:
        return 0.0, 0.0, 0.0, False
    sign = -1.0 if z < 0.0 else 1.0
    r0 = r - z * sign * params[_X_TAN]
    if r0 < params[_X_R0_MIN] or r0 > params[_X_R0_MAX]:
        return 0.0, 0.0, 0.0, False
    b = params[_X_B] * (r0 / r)
    b_r = b * sign * params[_X_SIN]
    return b_r * (x / r), b_r * (y / r), b * params[_X_COS], True


@njit_kernel
def _bubble_distance(x, y, z, params):
    """Distance (kpc) from the Local Bubble's centre and the offset vector."""
    dx = x - params[_LB_CENTRE]
    dy = y - params[_LB_CENTRE + 1]
    dz = z - params[_LB_CENTRE + 2]
    return np.sqrt(dx * dx + dy * dy + dz * dz), dx, dy, dz


@njit_kernel
def _bubble_shell(distance, dx, dy, dz, params):
    """Local Bubble shell field: the amplified tangential part of the uniform bubble field."""
    if distance < params[_LB_R] or distance > params[_LB_R] + params[_LB_DR]:
        return 0.0, 0.0, 0.0
    ex = dx / distance
    ey = dy / distance
    ez = dz / distance
    ux = params[_LB_DIR]
    uy = params[_LB_DIR + 1]
    uz = params[_LB_DIR + 2]
    radial = ex * ux + ey * uy + ez * uz
    b = params[_LB_B] * params[_LB_AMPL]
    return b * (ux - ex * radial), b * (uy - ey * radial), b * (uz - ez * radial)


@njit_kernel
def _spiral_axis_point(r1, cos_phi, sin_phi, tan_p):
    """Point (x, y) at radius r1 and azimuth phi and the unit tangent of the spiral there."""
    xi = r1 * cos_phi
    yi = r1 * sin_phi
    tx = tan_p * xi - yi
    ty = tan_p * yi + xi
    norm = np.sqrt(tx * tx + ty * ty)
    return xi, yi, tx / norm, ty / norm


@njit_kernel(inline="always")
def _arm(x, y, z, params, q):
    """(bx, by) of the spiral arm whose parameters start at params[q], and whether (x, y, z)
    lies in its tube."""
    if z < params[q + _A_ZMIN] or z > params[q + _A_ZMAX]:
        return 0.0, 0.0, False
    px = x + params[q + _A_XSHIFT]
    py = y + params[q + _A_YSHIFT]
    r = np.sqrt(px * px + py * py)
    if r < params[q + _A_RMIN] or r > params[q + _A_RMAX]:
        return 0.0, 0.0, False
    a = params[_ARM_A]
    k = params[q + _A_TANP]
    phi0 = params[q + _A_PHI0]
    phi = np.arctan2(py, px)
    # spiral turn n whose radius a exp(k (phi + phi0 + 2 pi n)) is just inside r, or the next
    # one out if that is nearer in r
    turn = np.floor((np.log(r / a) - k * (phi + phi0)) / (2.0 * np.pi * k))
    r1 = a * np.exp(k * (phi + phi0 + 2.0 * np.pi * turn))
    r2 = r1 * np.exp(k * 2.0 * np.pi)
    if abs(r - r1) > abs(r - r2):
        r1 = r2
        turn += 1.0
    # first-order correction of the azimuth of the nearest axis point along the tangent
    xi, yi, tx, ty = _spiral_axis_point(r1, px / r, py / r, k)
    dphi = -((xi - px) * tx + (yi - py) * ty) / (r1 / params[q + _A_COSP])
    r1 = a * np.exp(k * (phi + phi0 + dphi + 2.0 * np.pi * turn))
    xi, yi, tx, ty = _spiral_axis_point(r1, np.cos(phi + dphi), np.sin(phi + dphi), k)
    d = np.sqrt((xi - px) ** 2 + (yi - py) ** 2)
    # the tube widens along the arm length L = r1 / sin(p), measured from r = 5 kpc
    sin_p = params[q + _A_SINP]
    growth = 1.0 + (r1 / sin_p - params[_ARM_R_SCALE] / sin_p) * params[q + _A_WIDEN]
    half_d0 = params[q + _A_HALF_D]
    half_z0 = params[q + _A_HALF_Z]
    half_d = min(max(half_d0, half_d0 * growth), params[_ARM_MAX_HALF])
    half_z = min(max(half_z0, half_z0 * growth), params[_ARM_MAX_HALF])
    eps = params[q + _A_EPS]
    extent = np.sqrt(abs(d / half_d) ** eps + abs(z / half_z) ** eps)
    if not extent <= 1.0:
        return 0.0, 0.0, False
    b = params[q + _A_B] * ((half_z0 * half_d0) / (half_d * half_z))
    return b * tx, b * ty, True


@njit_kernel(inline="always")
def _arms(x, y, z, params):
    """(bx, by, piece_bits): the summed field of the :data:`_N_ARM_SLOTS` arm slots (µG; an
    unused slot contributes nothing) and bit 6 + i set where the point lies in slot i's tube.
    Written out, not a loop over the slots, and :func:`_arm` inlined (numba IR), so that every
    parameter index is a constant: a tuple of parameters (the tracer's lockstep loop) indexed by
    a loop variable costs a switch per access."""
    b0x, b0y, in0 = _arm(x, y, z, params, _ARMS)
    b1x, b1y, in1 = _arm(x, y, z, params, _ARMS + _ARM_STRIDE)
    b2x, b2y, in2 = _arm(x, y, z, params, _ARMS + 2 * _ARM_STRIDE)
    b3x, b3y, in3 = _arm(x, y, z, params, _ARMS + 3 * _ARM_STRIDE)
    b4x, b4y, in4 = _arm(x, y, z, params, _ARMS + 4 * _ARM_STRIDE)
    bits = (in0 << 6) | (in1 << 7) | (in2 << 8) | (in3 << 9) | (in4 << 10)
    return 0.0 + b0x + b1x + b2x + b3x + b4x, 0.0 + b0y + b1y + b2y + b3y + b4y, bits


@njit_kernel(inline="always")
def kst24_region_kernel(x_kpc, y_kpc, z_kpc, params):
    """KST24 field (bx, by, bz) in µG at one Galactocentric position (kpc) and the index of the
    piece of the model it lies in (int; bits: halo zone, z >= 0, toroidal slab, X-field, Local
    Bubble, its shell, each arm's tube): the field is smooth within a piece and jumps between
    pieces; the tracer steps onto these surfaces instead of across them
    (:mod:`crsky.backtrack._kernels`). See the module docstring; ``params`` comes from
    :func:`kst24_params`. Allocation-free."""
    r = np.sqrt(x_kpc * x_kpc + y_kpc * y_kpc)
    piece = 2 if z_kpc >= 0.0 else 0
    if z_kpc > params[_N_TOR + 1] or z_kpc < params[_S_TOR + 2]:
        q = _N_TOR if z_kpc > 0.0 else _S_TOR
        tx, ty, in_slab = _toroidal(x_kpc, y_kpc, z_kpc, r, params, q)
        xx, xy, xz, in_x = _x_field(x_kpc, y_kpc, z_kpc, r, params)
        return tx + xx, ty + xy, xz, piece + 1 + 4 * in_slab + 8 * in_x
    distance, dx, dy, dz = _bubble_distance(x_kpc, y_kpc, z_kpc, params)
    if distance < params[_LB_R] + params[_LB_DR]:
        bx, by, bz = _bubble_shell(distance, dx, dy, dz, params)
        return bx, by, bz, 16 + 32 * (distance >= params[_LB_R])
    bx, by, arm_bits = _arms(x_kpc, y_kpc, z_kpc, params)
    xx, xy, xz, in_x = _x_field(x_kpc, y_kpc, z_kpc, r, params)
    return bx + xx, by + xy, xz, piece + arm_bits + 8 * in_x


@njit_kernel
def kst24_kernel(x_kpc, y_kpc, z_kpc, params):
    """KST24 field (bx, by, bz) in µG at one Galactocentric position (kpc); see
    :func:`kst24_region_kernel`."""
    bx, by, bz, _ = kst24_region_kernel(x_kpc, y_kpc, z_kpc, params)
    return bx, by, bz


def kst24_field(arms=None):
    """KST24 as a :class:`~crsky.fields.FieldModel` (all five arms unless ``arms`` names some of
    :data:`KST24_ARMS`).

    Raises:
        ConfigError: unknown or repeated arm names.
    """
    from crsky.errors import ConfigError
    from crsky.fields import FieldModel

    names = list(KST24_ARMS) if arms is None else ([arms] if isinstance(arms, str) else list(arms))
    unknown = [a for a in names if a not in KST24_ARMS]
    if unknown or len(set(names)) != len(names):
        raise ConfigError(
            f"field.options.arms must list distinct arms of {list(KST24_ARMS)}, got {names!r}"
        )
    # Thin structure a long step can pass unseen: the bubble's 30 pc shell (+-15 µG, ~2 deg at
    # 10 EeV) and the corners of the hard-edged arm tubes, where a chord through the tube can be
    # far shorter than the tube. Steps are kept to 10 pc near the shell and to 50 pc within
    # 20 kpc of the centre: at 10 EeV the worst of 1,000 directions is then 0.03 deg off a
    # converged run, against 0.3 deg with 100 pc steps and 28 deg with 1 kpc steps.
    fine = np.array([[-8.2, 0.095, -0.05, 0.2 + 0.03 + 0.01, 0.01], [0.0, 0.0, 0.0, 20.0, 0.05]])
    return FieldModel(
        name="kst24",
        kernel=kst24_kernel,
        params=kst24_params(tuple(names)),
        description=(
            "Korochkin, Semikoz & Tinyakov 2024 coherent Galactic magnetic field (A&A 693, A284, "
            "arXiv:2407.02148), parameters as in CRPropa 3.2 KST24Field; arms: " + ", ".join(names)
        ),
        options={"arms": names},
        fine_regions=fine,
        integrator="bs3",  # field jumps at arm and region edges
        region_kernel=kst24_region_kernel,
    )
