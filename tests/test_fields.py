"""Field registry and models: errors, JF12 against the reference, zero divergence."""

import inspect
from pathlib import Path

import numpy as np
import pytest
from numba import njit
from numpy.testing import assert_allclose

from crsky.errors import ConfigError
from crsky.fields import (
    FieldModel,
    available_fields,
    check_field_options,
    field_entry,
    field_options,
    get_field,
)
from crsky.fields.jf12 import _COS_THETA_X0, _SIN_THETA_X0, jf12_kernel, jf12_params

REFERENCE = Path(__file__).parent / "data" / "jf12_regular_field_500.npz"

H_KPC = 1e-4  # central-difference step
ARM_RADII_KPC = np.array([5.1, 6.3, 7.1, 8.3, 9.8, 11.4, 12.7, 15.5])  # at phi = pi
TAN_PITCH = np.tan(np.deg2rad(11.5))


def test_registry_lists_jf12():
    assert {"zero", "uniform", "jf12"} <= set(available_fields())


def test_get_jf12_matches_reference():
    field = get_field("jf12")
    assert isinstance(field, FieldModel)
    assert field.name == "jf12"
    assert "1204.3662" in field.description and "1210.7820" in field.description
    assert field.options == {"components": ["disk", "toroidal_halo", "x_field"]}
    with np.load(REFERENCE) as ref:
        assert_allclose(field(ref["pos_kpc"]), ref["B_muG"], rtol=1e-9, atol=1e-12)


def test_jf12_components_sum_to_total():
    pos = _galaxy_points(200, seed=3)
    parts = sum(
        get_field("jf12", components=[c])(pos) for c in ("disk", "toroidal_halo", "x_field")
    )
    assert_allclose(parts, get_field("jf12")(pos), rtol=1e-12, atol=1e-14)


def test_jf12_kernel_callable_from_numba():
    @njit
    def loop(pos, params):
        out = np.empty_like(pos)
        for i in range(pos.shape[0]):
            out[i, 0], out[i, 1], out[i, 2] = jf12_kernel(pos[i, 0], pos[i, 1], pos[i, 2], params)
        return out

    pos = _galaxy_points(50, seed=4)
    assert_allclose(loop(pos, jf12_params()), get_field("jf12")(pos), rtol=0, atol=0)


def test_jf12_zero_outside_20_kpc():
    pos = np.array([[20.0, 0.0, 0.0], [0.0, 15.0, -13.3], [30.0, 1.0, 1.0]])
    assert np.all(get_field("jf12")(pos) == 0.0)


def test_unknown_field_name():
    with pytest.raises(ConfigError, match=r"unknown field model 'jf13'.*jf12"):
        get_field("jf13")


@pytest.mark.parametrize("bad", ["spiral", "Disk", "halo"])
def test_jf12_unknown_component(bad):
    with pytest.raises(ConfigError, match=rf"'{bad}'.*'disk', 'toroidal_halo', 'x_field'"):
        get_field("jf12", components=["disk", bad])


@pytest.mark.parametrize("components", [[], ["disk", "disk"]])
def test_jf12_empty_or_repeated_components(components):
    with pytest.raises(ConfigError, match="components"):
        get_field("jf12", components=components)


def test_jf12_unknown_option():
    with pytest.raises(ConfigError, match=r"field\.options\.pitch_deg: .*'jf12'"):
        get_field("jf12", pitch_deg=12.0)


@pytest.mark.parametrize("name", available_fields())
def test_declared_options_are_the_factory_keywords(name):
    """field.options is checked against each model's declared options before the DAG is built;
    the declaration must be exactly what the model's factory accepts."""
    entry = field_entry(name)
    parameters = inspect.signature(entry.factory).parameters
    assert tuple(parameters) == field_options(name)
    assert all(p.default is not inspect.Parameter.empty for p in parameters.values())
    check_field_options(name, {})  # every option has a default


@pytest.mark.parametrize("shape", [(3,), (4, 2), (2, 3, 1), (5, 4)])
def test_bad_positions_shape(shape):
    with pytest.raises(ConfigError, match=r"\(N, 3\)"):
        get_field("jf12")(np.zeros(shape))


def _galaxy_points(n, seed):
    """Uniform points in the cylinder r < 20 kpc, |z| < 10 kpc."""
    rng = np.random.default_rng(seed)
    r = 20.0 * np.sqrt(rng.random(n))
    phi = rng.uniform(-np.pi, np.pi, n)
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), rng.uniform(-10.0, 10.0, n)])


def _away_from_jf12_boundaries(pos, margin_kpc=0.01):
    """Mask of points farther than ``margin_kpc`` from every surface where JF12 is discontinuous
    or not smooth: d = 1, 20 kpc; r = 3, 5 kpc; the spiral arm edges; z = 0; the X-field elbow
    r = r_c(z); and the z axis (r < 0.5 kpc, where the azimuthal unit vector turns quickly and the
    O(h^2) difference error grows as (h/r)^2)."""
    x, y, z = pos.T
    r = np.hypot(x, y)
    d = np.linalg.norm(pos, axis=1)
    r_negx = r * np.exp((np.pi - np.arctan2(y, x)) * TAN_PITCH)
    for _ in range(2):
        r_negx = np.where(
            r_negx > ARM_RADII_KPC[-1], r_negx * np.exp(-2 * np.pi * TAN_PITCH), r_negx
        )
    arm_log_gap = np.min(np.abs(np.log(r_negx[:, None] / ARM_RADII_KPC)), axis=1)
    r_elbow = 4.8 + np.abs(z) / np.tan(np.deg2rad(49.0))
    return (
        (d > 1 + margin_kpc)
        & (d < 20 - margin_kpc)
        & (np.abs(r - 3) > margin_kpc)
        & (np.abs(r - 5) > margin_kpc)
        & (arm_log_gap > margin_kpc / 5)  # d(ln r_negx) <= 1.3 h / r, r >= 5 kpc
        & (np.abs(z) > margin_kpc)
        & (np.abs(r - r_elbow) > margin_kpc)
        & (r > 0.5)
    )


def _divergence(field, pos):
    """Central-difference div B (µG/kpc) with step H_KPC."""
    div = np.zeros(len(pos))
    for k in range(3):
        step = np.zeros(3)
        step[k] = H_KPC
        div += (field(pos + step)[:, k] - field(pos - step)[:, k]) / (2 * H_KPC)
    return div


# Truncation error of the central difference is ~ h^2/6 |B'''| <~ h^2 |B| / L^3 with the smallest
# scale L ~ 0.1 kpc (the 0.2 kpc logistic widths) -> ~1e-5 |B|/kpc at worst (observed <= 3e-7);
# rounding adds ~eps |B| / h ~ 1e-12 |B|/kpc. A non-solenoidal error of order 1 in the model gives
# |div B| ~ |B| / (1 kpc), i.e. 1e5 times the tolerance.
DIV_TOL_PER_KPC = 1e-5


def test_jf12_divergence_free():
    pos = _galaxy_points(4000, seed=11)
    pos = pos[_away_from_jf12_boundaries(pos)]
    assert len(pos) > 3000
    field = get_field("jf12")
    b = np.linalg.norm(field(pos), axis=1)
    assert np.all(b > 0)
    assert np.all(np.abs(_divergence(field, pos)) <= DIV_TOL_PER_KPC * b)


@pytest.mark.parametrize("component", ["disk", "toroidal_halo", "x_field"])
def test_jf12_components_divergence_free(component):
    pos = _galaxy_points(1000, seed=12)
    pos = pos[_away_from_jf12_boundaries(pos)]
    field = get_field("jf12", components=[component])
    b = np.linalg.norm(field(pos), axis=1)
    assert np.all(np.abs(_divergence(field, pos)) <= DIV_TOL_PER_KPC * b)


def test_divergence_check_detects_a_non_solenoidal_field():
    # X-field direction tilted to 60 deg while its footpoints r_p still follow the 49 deg lines:
    # the field no longer points along its own flux tubes, so div B != 0
    params = jf12_params(disk=False, toroidal_halo=False)
    params[_COS_THETA_X0] = np.cos(np.deg2rad(60.0))
    params[_SIN_THETA_X0] = np.sin(np.deg2rad(60.0))
    field = FieldModel("tilted-x", jf12_kernel, params)
    pos = _galaxy_points(1000, seed=13)
    pos = pos[_away_from_jf12_boundaries(pos)]
    b = np.linalg.norm(field(pos), axis=1)
    bad = np.abs(_divergence(field, pos)) > DIV_TOL_PER_KPC * b
    assert bad.mean() > 0.5


@pytest.mark.parametrize(
    ("name", "options"), [("zero", {}), ("uniform", {}), ("uniform", {"b_ugauss": (1, -2, 3)})]
)
def test_zero_and_uniform_divergence_free(name, options):
    field = get_field(name, **options)
    pos = _galaxy_points(100, seed=14)
    assert np.all(_divergence(field, pos) == 0.0)
