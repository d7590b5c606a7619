"""UF23, PT11 and KST24: options, and invariants derived from the models' definitions
(components, symmetries, zero-field regions, divergence where the model is solenoidal)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from crsky.errors import ConfigError
from crsky.fields import FieldModel, available_fields, field_options, get_field
from crsky.fields import kst24 as K
from crsky.fields import uf23 as U
from crsky.fields.pt11 import _B0_DISK, _COS_PHASE, _COS_PITCH, _R_SUN, pt11_params

H_KPC = 1e-4  # central-difference step
# Truncation error of the central difference ~ h^2 |B'''| / 6 with scales >= 0.06 kpc (the
# narrowest UF23 disk transition) -> <~ 1e-6 |B| / kpc; rounding ~ 1e-12 |B| / h. A field that is
# not solenoidal at order one has |div B| ~ |B| / kpc.
DIV_TOL_PER_KPC = 1e-5


def _points(n, seed, r_max=20.0, z_max=8.0, r_min=0.0):
    rng = np.random.default_rng(seed)
    r = np.sqrt(rng.uniform(r_min**2, r_max**2, n))
    phi = rng.uniform(-np.pi, np.pi, n)
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), rng.uniform(-z_max, z_max, n)])


def _divergence(field, pos):
    div = np.zeros(len(pos))
    for k in range(3):
        step = np.zeros(3)
        step[k] = H_KPC
        div += (field(pos + step)[:, k] - field(pos - step)[:, k]) / (2 * H_KPC)
    return div


def _cylindrical(pos, b):
    """(B_r, B_phi, B_z) at positions pos (N, 3)."""
    phi = np.arctan2(pos[:, 1], pos[:, 0])
    c, s = np.cos(phi), np.sin(phi)
    return np.column_stack([b[:, 0] * c + b[:, 1] * s, -b[:, 0] * s + b[:, 1] * c, b[:, 2]])


# --- registry and options ------------------------------------------------------------------------


def test_registry_and_declared_options():
    assert {"jf12", "uf23", "pt11", "kst24"} <= set(available_fields())
    assert field_options("uf23") == ("variant",)
    assert field_options("pt11") == ("disk", "halo")
    assert field_options("kst24") == ("arms",)
    assert field_options("zero") == ()


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("uf23", {"variant": "base2"}, r"field\.options\.variant.*'base2'.*'twistX'"),
        ("uf23", {"variant": "BASE"}, r"field\.options\.variant"),
        ("uf23", {"model": "base"}, r"field\.options\.model.*'uf23'.*\['variant'\]"),
        ("pt11", {"disk": "axi"}, r"field\.options\.disk.*'axi'.*'ass', 'bss'"),
        ("pt11", {"halo": "yes"}, r"field\.options\.halo"),
        ("pt11", {"disk": None, "halo": False}, r"no field"),
        ("kst24", {"arms": ["local", "orion"]}, r"field\.options\.arms"),
        ("kst24", {"arms": ["local", "local"]}, r"field\.options\.arms"),
        ("zero", {"b_ugauss": [0, 0, 1]}, r"field\.options\.b_ugauss.*none"),
        ("jf21", {}, r"field\.model.*'jf21'"),
    ],
)
def test_bad_options_name_the_key(name, options, match):
    with pytest.raises(ConfigError, match=match):
        get_field(name, **options)


# --- UF23 ----------------------------------------------------------------------------------------


def _uf23_part(variant, disk=True, halo=True):
    """UF23 with the disk and/or halo switched off through the parameter vector."""
    p = U.uf23_params(variant)
    if not disk:
        p[U._DISK_B : U._DISK_B + 3] = 0.0
    if not halo:
        p[U._POL_B] = 0.0
        p[U._TOR_BN] = p[U._TOR_BS] = 0.0
    return FieldModel(f"uf23-{variant}", U.uf23_kernel, p)


@pytest.mark.parametrize("variant", U.UF23_VARIANTS)
def test_uf23_halo_is_divergence_free(variant):
    # toroidal, coasting poloidal and twisted halos are solenoidal by construction (eqs. 21-47)
    pos = _points(1500, seed=1, r_min=0.5)
    halo = _uf23_part(variant, disk=False)
    b = np.linalg.norm(halo(pos), axis=1)
    assert np.count_nonzero(b > 0.01) > 750
    assert np.all(np.abs(_divergence(halo, pos)) <= DIV_TOL_PER_KPC * b + 1e-11)


@pytest.mark.parametrize("variant", [v for v in U.UF23_VARIANTS if v != "spur"])
def test_uf23_spiral_disk_divergence_free_where_r_g_is_flat(variant):
    # the spiral's div B is sin(p) b h(z) d(r g(r))/dr / r (eqs. 10-14): zero where the radial
    # profile r g(r) = 5 kpc (1 - exp(-r²)) s(r; 5, 0.5) (1 - s(r; 20, 0.5)) is flat, i.e. up to
    # |d ln(r g)/dr| <= 7e-4 / kpc for 9 < r < 16 kpc; the inner and outer edges are not solenoidal
    pos = _points(1500, seed=2, r_min=9.0, r_max=16.0)
    field = get_field("uf23", variant=variant)
    b = np.linalg.norm(field(pos), axis=1)
    assert np.all(np.abs(_divergence(field, pos)) <= 1e-3 * b + 1e-12)
    inner = _points(500, seed=3, r_min=5.2, r_max=6.0, z_max=0.3)
    b_inner = np.linalg.norm(field(inner), axis=1)
    assert np.max(np.abs(_divergence(field, inner)) / b_inner) > 1e-2  # the edge is seen


@pytest.mark.parametrize("variant", U.UF23_VARIANTS)
def test_uf23_disk_is_planar_and_halo_mirror_symmetric(variant):
    pos = _points(500, seed=4, r_min=0.1)
    assert np.all(_uf23_part(variant, halo=False)(pos)[:, 2] == 0.0)
    # the poloidal halo is X-shaped: B_r odd, B_z even in z; the (twisted) toroidal part flips
    # or keeps its sign with the hemisphere, so compare B_r and B_z only
    halo = _uf23_part(variant, disk=False)
    mirrored = pos * [1, 1, -1]
    b, bm = _cylindrical(pos, halo(pos)), _cylindrical(mirrored, halo(mirrored))
    assert_allclose(bm[:, 0], -b[:, 0], rtol=1e-12, atol=1e-14)
    assert_allclose(bm[:, 2], b[:, 2], rtol=1e-12, atol=1e-14)


def test_uf23_zero_beyond_30_kpc():
    field = get_field("uf23")
    far = np.array([[0.0, 0.0, 30.01], [-25.0, 17.0, 0.0], [100.0, 0.0, 0.0]])
    assert np.all(field(far) == 0.0)
    assert np.all(np.linalg.norm(field(np.array([[0.0, 0.0, 29.9], [20.0, 0.0, 0.0]])), axis=1))


def test_uf23_on_the_axis_is_finite_and_the_limit_along_phi_0():
    # on the z axis the disk vanishes and the azimuthal unit vector is taken at phi = 0
    z = np.array([-5.0, -0.3, 0.0, 0.3, 5.0])
    axis = np.column_stack([0 * z, 0 * z, z])
    near = np.column_stack([1e-9 + 0 * z, 0 * z, z])
    for variant in U.UF23_VARIANTS:
        field = get_field("uf23", variant=variant)
        assert np.all(np.isfinite(field(axis)))
        assert_allclose(field(axis), field(near), atol=1e-7)
        assert np.all(_uf23_part(variant, halo=False)(axis) == 0.0)


def test_uf23_pieces_are_the_half_spaces_and_the_field_jumps_on_the_plane():
    # the tracer steps onto z = 0: pieces 0 (z >= 0) and 1 (z < 0), same field as the kernel
    rng = np.random.default_rng(3)
    pos = rng.uniform(-12, 12, (200, 3))
    params = U.uf23_params("base")
    for x, y, z in pos:
        bx, by, bz, piece = U.uf23_region_kernel(x, y, z, params)
        assert (bx, by, bz) == U.uf23_kernel(x, y, z, params)
        assert piece == (0 if z >= 0.0 else 1)
    assert get_field("uf23").region_kernel is U.uf23_kernels("base")[1]
    # the toroidal halo's B_N / B_S switch: B_phi jumps across the plane (|jump| > 1e-4 µG)
    above = np.array(U.uf23_kernel(-8.5, 0.0, 1e-12, params))
    below = np.array(U.uf23_kernel(-8.5, 0.0, -1e-12, params))
    assert abs(above[1] - below[1]) > 1e-4


# --- PT11 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("disk", ["ass", "bss"])
def test_pt11_symmetries(disk):
    pos = _points(800, seed=5, r_min=0.2)
    rotated = pos * [-1, -1, 1]  # the same point turned by 180 deg about the z axis
    disk_field = get_field("pt11", disk=disk, halo=False)
    halo_field = get_field("pt11", disk=None)
    # axisymmetric disk and azimuthal halo: B(R p) = R B(p); bisymmetric disk: -R B(p)
    sign = -1.0 if disk == "ass" else 1.0
    assert_allclose(disk_field(rotated), sign * disk_field(pos), rtol=1e-10, atol=1e-13)
    assert_allclose(halo_field(rotated), -halo_field(pos), rtol=1e-10, atol=1e-13)
    total = get_field("pt11", disk=disk)
    assert np.all(total(pos)[:, 2] == 0.0)


@pytest.mark.parametrize(("disk", "b_south"), [("ass", 2.0), ("bss", 4.0)])
def test_pt11_halo_peaks(disk, b_south):
    # B_phi = B0 (r / R0) exp(1 - r / R0) at |z| = z0 = 1.3 kpc: B0 at r = R0 = 8 kpc
    pos = np.array([[8.0, 0.0, 1.3], [0.0, -8.0, -1.3], [4.0, 0.0, 1.3]])
    b = _cylindrical(pos, get_field("pt11", disk=disk, halo=True)(pos) - _disk(disk, pos))
    assert_allclose(b[:, 1], [4.0, -b_south, 4.0 * 0.5 * np.exp(0.5)], rtol=1e-13)
    assert_allclose(b[:, [0, 2]], 0.0, atol=1e-15)


def _disk(disk, pos):
    return get_field("pt11", disk=disk, halo=False)(pos)


def test_pt11_divergence_free_outside_the_constant_core():
    # disk: spiral field with B r = const along each spiral for r > R_c = 5 kpc; halo: azimuthal.
    # The ASS disk's |cos| has a kink where the BSS field reverses; the central difference is not
    # exact across it, so points within 1e-3 of cos = 0 are left out.
    for disk in ("ass", "bss"):
        field = get_field("pt11", disk=disk)
        pos = _points(1500, seed=6, r_min=5.05)
        params = pt11_params(disk)
        scale = (  # |B_phi| of the disk / |cos| of its spiral phase
            params[_B0_DISK] * params[_R_SUN] / np.hypot(pos[:, 0], pos[:, 1])
            / abs(params[_COS_PHASE]) * np.exp(-np.abs(pos[:, 2])) * abs(params[_COS_PITCH])
        )  # fmt: skip
        b_phi = _cylindrical(pos, get_field("pt11", disk=disk, halo=False)(pos))[:, 1]
        pos = pos[np.abs(b_phi) / scale > 1e-3]
        b = np.linalg.norm(field(pos), axis=1)
        assert np.all(np.abs(_divergence(field, pos)) <= DIV_TOL_PER_KPC * b)


# --- KST24 ---------------------------------------------------------------------------------------

BUBBLE_CENTRE = np.array([-8.2, 0.095, -0.05])


def test_kst24_zero_inside_the_local_bubble():
    rng = np.random.default_rng(8)
    v = rng.normal(size=(2000, 3))
    inside = BUBBLE_CENTRE + v / np.linalg.norm(v, axis=1)[:, None] * 0.2 * rng.random((2000, 1))
    field = get_field("kst24")
    assert np.all(field(inside) == 0.0)
    assert np.all(field(np.array([[-8.2, 0.0, 0.0], BUBBLE_CENTRE])) == 0.0)
    # crsky's observer at (-8.5, 0, 0) kpc is outside the bubble and its shell, in the Local arm
    earth = field(np.array([[-8.5, 0.0, 0.0]]))
    assert np.linalg.norm(earth) > 1.0


def test_kst24_bubble_shell_is_tangential_and_amplified():
    rng = np.random.default_rng(9)
    v = rng.normal(size=(2000, 3))
    e = v / np.linalg.norm(v, axis=1)[:, None]
    shell = BUBBLE_CENTRE + e * rng.uniform(0.2001, 0.2299, (2000, 1))
    b = get_field("kst24")(shell)
    assert_allclose(np.einsum("ij,ij->i", b, e), 0.0, atol=1e-13)
    u = np.array([np.cos(np.radians(2)) * np.cos(np.radians(50)),
                  np.cos(np.radians(2)) * np.sin(np.radians(50)),
                  np.sin(np.radians(2))])  # fmt: skip
    amplification = 1 + 0.2**2 / (2 * 0.2 * 0.03 + 0.03**2)
    expected = 3.5 * amplification * np.sqrt(1 - (e @ u) ** 2)
    assert_allclose(np.linalg.norm(b, axis=1), expected, rtol=1e-12)
    assert np.all(b @ u < 1e-12)  # the bubble's field points away from (l, b) = (50°, 2°)


def test_kst24_halo_slabs_are_azimuthal():
    # beyond the X-field's reach (footpoint r0 = r - |z| tan 28° > 6.2 kpc) and inside a slab
    # only the toroidal halo is left: +3.2 µG along phi in the north, -3.2 µG in the south
    pos = np.array([[8.0, 1.0, 1.5], [-3.0, 8.0, 2.0], [0.0, -12.0, -1.5], [10.0, 9.0, -2.4]])
    b = _cylindrical(pos, get_field("kst24")(pos))
    assert_allclose(b, [[0, 3.2, 0], [0, 3.2, 0], [0, -3.2, 0], [0, -3.2, 0]], atol=1e-14)
    outside = np.array([[8.0, 1.0, 2.2], [0.0, -15.0, -1.5], [8.0, 1.0, -2.6]])
    assert np.all(get_field("kst24")(outside) == 0.0)


def test_kst24_x_field_direction_and_flux():
    field = get_field("kst24", arms=[])
    # |z| < 1.18 kpc, away from the bubble: only the X-field, on lines tilted 28 deg
    pos = _points(2000, seed=10, r_max=8.0, z_max=1.15)
    pos = pos[np.linalg.norm(pos - BUBBLE_CENTRE, axis=1) > 0.3]
    b = _cylindrical(pos, field(pos))
    r = np.hypot(pos[:, 0], pos[:, 1])
    r0 = r - np.abs(pos[:, 2]) * np.tan(np.radians(28))
    on = (r0 >= 1.0) & (r0 <= 6.2)
    assert on.sum() > 500 and (~on).sum() > 100
    assert np.all(b[~on] == 0.0)
    assert_allclose(b[on, 1], 0.0, atol=1e-15)
    assert_allclose(b[on, 2], 1.8 * r0[on] / r[on] * np.cos(np.radians(28)), rtol=1e-12)
    tilt = np.degrees(np.arctan2(b[on, 0] * np.sign(pos[on, 2]), b[on, 2]))
    assert_allclose(tilt, 28.0, atol=1e-9)


def test_kst24_halo_and_x_field_divergence_free():
    field = get_field("kst24", arms=[])
    pos = _points(3000, seed=11, r_max=16.0, z_max=4.0)
    r = np.hypot(pos[:, 0], pos[:, 1])
    r0 = r - np.abs(pos[:, 2]) * np.tan(np.radians(28))
    margin = 1e-3  # away from the slabs' and footpoints' hard edges and the bubble
    keep = (
        (np.min(np.abs(pos[:, 2, None] - [1.185, 2.1, -1.22, -2.5]), axis=1) > margin)
        & (np.min(np.abs(r[:, None] - [1.0, 9.1, 14.0]), axis=1) > margin)
        & (np.min(np.abs(r0[:, None] - [1.0, 6.2]), axis=1) > margin)
        & (np.linalg.norm(pos - BUBBLE_CENTRE, axis=1) > 0.3)
    )
    pos = pos[keep]
    b = np.linalg.norm(field(pos), axis=1)
    assert np.count_nonzero(b) > 500
    assert np.all(np.abs(_divergence(field, pos)) <= DIV_TOL_PER_KPC * b + 1e-12)


@pytest.mark.parametrize("arm", list(K.KST24_ARMS))
def test_kst24_arms_are_planar_tubes_of_the_arm_strength(arm):
    b_arm, pitch, *_, widen = K.KST24_ARMS[arm][:9]
    field = get_field("kst24", arms=[arm])
    pos = _points(20000, seed=12, r_max=18.0, z_max=1.15)
    pos = pos[np.linalg.norm(pos - BUBBLE_CENTRE, axis=1) > 0.3]
    b = field(pos) - get_field("kst24", arms=[])(pos)  # the arm alone
    magnitude = np.linalg.norm(b, axis=1)
    inside = magnitude > 0
    assert inside.sum() > 100
    assert np.all(b[:, 2] == 0.0)
    if widen == 0.0:  # a tube of constant cross-section has the arm's strength throughout
        assert_allclose(magnitude[inside], abs(b_arm), rtol=1e-12)
    else:  # widening tubes keep the flux: weaker, never stronger
        assert np.all(magnitude[inside] <= abs(b_arm) * (1 + 1e-12))
        assert np.min(magnitude[inside]) < 0.9 * abs(b_arm)
    # the field follows a logarithmic spiral of pitch 20 deg around the arm's centre (at the
    # nearest axis point, so within a few degrees of the pitch at the point itself)
    shift = np.array([K.KST24_ARMS[arm][3], K.KST24_ARMS[arm][4]])
    centred = pos[inside, :2] + shift
    radial = centred / np.linalg.norm(centred, axis=1)[:, None]
    sin_pitch = np.abs(np.einsum("ij,ij->i", b[inside, :2], radial)) / magnitude[inside]
    assert np.median(np.degrees(np.arcsin(sin_pitch))) == pytest.approx(pitch, abs=1.0)


def test_piece_kernels_agree_with_the_region_kernels():
    # the tracer bisects with the cheap piece kernel and steps with the region kernel's pieces
    from crsky.fields.jf12 import _COT_THETA_X0, _R_XC

    rng = np.random.default_rng(11)
    pos = rng.uniform(-21, 21, (3000, 3)) * [1, 1, 0.3]
    # points on and next to surfaces: the plane z = 0, the X-field's elbow, the 1 kpc sphere
    r = rng.uniform(0.5, 15, 200)
    z = rng.uniform(-3, 3, 200)
    elbow = np.column_stack([r, 0 * r, (r - 4.8) * np.tan(np.deg2rad(49.0))])
    pos = np.vstack([pos, elbow, pos[:200] * [1, 1, 0], pos[:200] * [1, 1, 1e-15], [[0, 0, 1.0]]])
    for name, options in [("jf12", {}), ("jf12", {"components": ["disk"]}), ("uf23", {})]:
        field = get_field(name, **options)
        region, piece = field.piecewise_kernel, field.piece_index_kernel
        assert piece is not None and field.piece_kernel is piece
        for x, y, zz in np.vstack([pos, np.column_stack([r, 0 * r, z])]):
            assert piece(x, y, zz, field.params) == region(x, y, zz, field.params)[3]
    params = get_field("jf12").params
    assert (params[_R_XC], np.rad2deg(np.arctan(1 / params[_COT_THETA_X0]))) == pytest.approx(
        (4.8, 49.0)
    )
    # models without a piece kernel: the region kernel's index, or 0 for a smooth model
    kst24 = get_field("kst24")
    assert (
        kst24.piece_index_kernel(-8.5, 0.0, 0.0, kst24.params)
        == kst24.piecewise_kernel(-8.5, 0.0, 0.0, kst24.params)[3]
    )
    pt11 = get_field("pt11")
    assert pt11.piece_index_kernel(-8.5, 0.0, 0.3, pt11.params) == 0


def test_jf12_jump_bound_holds_across_the_disk_edges():
    # the tracer steps unlocated across jumps that jf12_jump_kernel bounds: across an arm, ring
    # or r = 3 kpc edge (found by bisecting segments whose ends differ only in the disk bits of
    # the piece) the disk field jumps by no more than the bound; any other surface: inf
    from crsky.fields.jf12 import _DISK_PIECE_BITS, jf12_jump_kernel

    field = get_field("jf12", components=["disk"])
    region = field.piecewise_kernel
    rng = np.random.default_rng(12)
    ends = _points(400, 12, r_max=16.0, z_max=2.5, r_min=2.5)
    step = rng.normal(size=ends.shape)
    step *= 0.7 / np.linalg.norm(step, axis=1)[:, None]
    ratios = []
    for a, b in zip(ends, ends + step, strict=True):
        piece_a = region(*a, field.params)[3]
        changed = piece_a ^ region(*b, field.params)[3]
        if changed == 0 or changed & ~_DISK_PIECE_BITS:
            continue
        while np.linalg.norm(b - a) > 1e-10:  # onto the first surface from a
            mid = 0.5 * (a + b)
            a, b = (mid, b) if region(*mid, field.params)[3] == piece_a else (a, mid)
        *ba, piece_a = region(*a, field.params)
        *bb, piece_b = region(*b, field.params)
        jump = np.linalg.norm(np.subtract(ba, bb))
        ratios.append(jump / jf12_jump_kernel(piece_a ^ piece_b, *a, *b, field.params))
    assert len(ratios) > 50 and max(ratios) <= 1.0 and max(ratios) > 0.2
    full = get_field("jf12").params
    assert jf12_jump_kernel(64, 5.0, 0.0, 1.0, 5.1, 0.0, 1.0, full) == np.inf  # the elbow
    assert jf12_jump_kernel(32 + 3, 9.0, 0.0, -0.1, 9.1, 0.0, 0.1, full) == np.inf  # z = 0
    # 2 kpc above the plane the arm edges are jumps of < 1e-4 µG, in the plane of up to 8.4 µG
    assert jf12_jump_kernel(3, 9.0, 0.0, 2.0, 9.1, 0.0, 2.1, full) < 1e-4
    assert jf12_jump_kernel(3, 9.0, 0.0, 0.0, 9.1, 0.0, 0.1, full) == pytest.approx(8.4)
