"""Pshirkov, Tinyakov, Kronberg & Newton-McGee (2011) Galactic magnetic field (PT11).

Model: Pshirkov et al. 2011, ApJ 738, 192 (arXiv:1103.0814), section 3: a logarithmic-spiral disk
field, axisymmetric (ASS: pitch -5°) or bisymmetric (BSS: pitch -6°), with B0 = 2 µG, a field
reversal at d = -0.6 kpc from the Sun, constant inside R_c = 5 kpc and exponential in |z| (1 kpc);
plus a double-torus halo field B ∝ (r / R0) exp(1 - r / R0) / (1 + ((|z| - z0) / z1)²) with
R0 = 8 kpc, z0 = 1.3 kpc, z1 = 0.25 kpc for |z| < z0 and 0.4 kpc beyond, north strength 4 µG and
south strength 2 µG (ASS) or 4 µG (BSS). The paper's azimuth runs clockwise with the Sun on +x;
formulas, signs and the choice of the southern halo strength follow CRPropa 3.2's ``PT11Field``
(whose defaults select the ASS disk), in crsky's frame.

Frame: crsky's (DESIGN.md section 3; CRPropa's): Galactocentric Cartesian, kpc, x from the Sun to
the Galactic Centre, z to Galactic North, Earth at (-8.5, 0, 0) kpc; PT11 also puts the Sun at
8.5 kpc. B in microgauss. The model has no outer cut-off. On the z axis (r = 0), where the
spiral's direction is undefined, the disk field is taken as zero (the halo field vanishes there).
"""

import math
from functools import cache

import numpy as np

from crsky import _vectormath as vm
from crsky._numba import njit_kernel, njit_specialised

__all__ = ["PT11_DISKS", "pt11_field", "pt11_kernel", "pt11_kernel_for", "pt11_params"]

PT11_DISKS = ("ass", "bss")

_R_SUN = 0  # kpc
_R_C = 1  # disk strength constant inside this radius (kpc)
_INV_Z0_DISK = 2  # 1 / disk scale height (1/kpc)
_B0_DISK = 3  # µG
_SIN_PITCH = 4
_COS_PITCH = 5
_COT_PITCH = 6
_PHASE = 7  # Phi = cot(p) ln(1 + d / R_sun) - pi / 2 (rad)
_COS_PHASE = 8
_Z0_HALO = 9  # kpc
_R0_HALO = 10
_B_NORTH = 11  # µG
_B_SOUTH = 12
_Z1_INNER = 13  # halo half-width for |z| < z0 and beyond (kpc)
_Z1_OUTER = 14
_N_PARAMS = 15


def pt11_params(disk: str | None = "ass") -> np.ndarray:
    """Parameter vector of PT11 with the ``"ass"`` or ``"bss"`` disk (pitch and southern halo
    strength differ; ``None``: no disk, read as ASS). Which components contribute is compiled into
    the kernel (:func:`pt11_kernel_for`). Lengths in kpc, fields in µG, angles in radians."""
    p = np.zeros(_N_PARAMS, dtype=np.float64)
    p[_R_SUN] = 8.5
    p[_R_C] = 5.0
    p[_INV_Z0_DISK] = 1.0 / 1.0
    p[_B0_DISK] = 2.0
    pitch = (-6.0 if disk == "bss" else -5.0) * math.pi / 180.0
    d_kpc = -0.6
    p[_SIN_PITCH] = math.sin(pitch)
    p[_COS_PITCH] = math.cos(pitch)
    p[_COT_PITCH] = p[_COS_PITCH] / p[_SIN_PITCH]
    p[_PHASE] = p[_COT_PITCH] * math.log1p(d_kpc / p[_R_SUN]) - math.pi / 2.0
    p[_COS_PHASE] = math.cos(p[_PHASE])
    p[_Z0_HALO] = 1.3
    p[_R0_HALO] = 8.0
    p[_B_NORTH] = 4.0
    p[_B_SOUTH] = 4.0 if disk == "bss" else 2.0
    p[_Z1_INNER] = 0.25
    p[_Z1_OUTER] = 0.4
    return p


@njit_kernel(inline="always")
def _pt11_field(x_kpc, y_kpc, z_kpc, params, disk, bisymmetric, halo):
    """PT11 (bx, by, bz) in µG with the model switches fixed at compile time (see
    :func:`pt11_kernel_for`); every branch in the field is a select."""
    r = np.sqrt(x_kpc * x_kpc + y_kpc * y_kpc)
    on_axis = r == 0.0
    r_pos = 1.0 if on_axis else r  # keeps the unused lane finite; its result is replaced
    abs_z = abs(z_kpc)
    # the paper's clockwise azimuth theta = pi - phi, with the Sun on its +x axis
    cos_theta = -x_kpc / r_pos
    sin_theta = y_kpc / r_pos
    bx = 0.0
    by = 0.0
    if disk:
        # cos(theta - cot(p) ln(r / R_sun) + Phi) by the angle-difference formula
        sin_a, cos_a = vm.sincos(
            params[_COT_PITCH] * vm.log(r_pos / params[_R_SUN]) - params[_PHASE]
        )
        b = cos_theta * cos_a + sin_theta * sin_a
        b = b if bisymmetric else abs(b)
        b *= (
            params[_B0_DISK]
            * params[_R_SUN]
            / max(r_pos, params[_R_C])
            / params[_COS_PHASE]
            * vm.exp(-abs_z * params[_INV_Z0_DISK])
        )
        # (B_r, B_theta) = b (sin p, cos p) in the clockwise frame, turned into crsky's axes
        sp = params[_SIN_PITCH]
        cp = params[_COS_PITCH]
        bx -= b * (sp * cos_theta - cp * sin_theta)
        by -= b * (-sp * sin_theta - cp * cos_theta)
    if halo:
        b0 = params[_B_NORTH] if z_kpc > 0.0 else -params[_B_SOUTH]
        z1 = params[_Z1_INNER] if abs_z < params[_Z0_HALO] else params[_Z1_OUTER]
        u = (abs_z - params[_Z0_HALO]) / z1
        r_ratio = r_pos / params[_R0_HALO]
        b = b0 * r_ratio * vm.exp(1.0 - r_ratio) / (1.0 + u * u)
        bx -= b * sin_theta
        by -= b * cos_theta
    return (0.0 if on_axis else bx), (0.0 if on_axis else by), 0.0


@cache
def pt11_kernel_for(disk: str | None = "ass", halo: bool = True):
    """The PT11 kernel ``(x_kpc, y_kpc, z_kpc, params) -> (bx, by, bz)`` in µG at one
    Galactocentric position (kpc) with ``disk`` (``"ass"``, ``"bss"`` or ``None``) and ``halo``
    compiled in; ``params`` from :func:`pt11_params` with the same options (a float64 array or
    tuple). ``inline="always"`` and branch-free: a loop over points calling it as a global or
    closure variable vectorises. Allocation-free; callable from other numba code."""
    with_disk = disk is not None
    bisymmetric = disk == "bss"
    with_halo = bool(halo)

    # its own cache files per combination (see crsky._numba.njit_specialised)
    @njit_specialised(f"kernel_{disk}_halo{int(with_halo)}", inline="always")
    def kernel(x_kpc, y_kpc, z_kpc, params):
        return _pt11_field(x_kpc, y_kpc, z_kpc, params, with_disk, bisymmetric, with_halo)

    return kernel


pt11_kernel = pt11_kernel_for()  # the default model: ASS disk and halo (CRPropa's PT11Field())


def pt11_field(disk: str | None = "ass", halo: bool = True):
    """PT11 as a :class:`~crsky.fields.FieldModel`: ``disk`` ``"ass"`` (default, as CRPropa's
    ``PT11Field()``), ``"bss"`` or ``None``, plus the halo if ``halo``.

    Raises:
        ConfigError: unknown disk, or neither disk nor halo.
    """
    from crsky.errors import ConfigError
    from crsky.fields import FieldModel

    if disk is not None and disk not in PT11_DISKS:
        raise ConfigError(
            f"field.options.disk: unknown PT11 disk {disk!r}; expected one of "
            f"{list(PT11_DISKS)} or null"
        )
    if not isinstance(halo, bool):
        raise ConfigError(f"field.options.halo must be true or false, got {halo!r}")
    if disk is None and not halo:
        raise ConfigError("field 'pt11': options disk: null and halo: false leave no field")
    parts = ([f"{disk.upper()} disk"] if disk else []) + (["halo"] if halo else [])
    return FieldModel(
        name="pt11",
        kernel=pt11_kernel_for(disk, halo),
        params=pt11_params(disk),
        description=(
            "Pshirkov et al. 2011 Galactic magnetic field (ApJ 738, 192, arXiv:1103.0814), as in "
            f"CRPropa 3.2 PT11Field; {' + '.join(parts)}"
        ),
        options={"disk": disk, "halo": halo},
    )
