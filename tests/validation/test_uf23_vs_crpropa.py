"""UF23 (all eight models) against CRPropa 3.2's ``UF23Field`` at 500 reference points.

Reference: ``tests/data/uf23_field_500.npz`` (see ``tests/data/README.md``).
"""

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from crsky.fields import FieldModel, get_field
from crsky.fields.uf23 import (
    _POL_A0P,
    _POL_C,
    _POL_FINITE_A,
    _POL_P,
    UF23_VARIANTS,
    uf23_kernel,
    uf23_params,
)

REFERENCE = Path(__file__).parents[1] / "data" / "uf23_field_500.npz"

# The same model in float64 on both sides, crsky's written with fewer transcendental calls
# (one cos/sin for the three spiral modes, the a -> infinity limit of the poloidal halo in closed
# form; its own exp/log/sincos/atan2, crsky._vectormath): they differ by rounding only (observed
# <= 6.7e-15 µG absolute, 7e-12 relative on components above 1e-6 µG). Components that are a
# difference of nearly equal terms (1 - logistic far outside a transition) are ~1e-16 µG with
# rounding-level absolute differences, hence ATOL. No point lies within a few pc of a branch.
RTOL = 1e-9
ATOL_UGAUSS = 1e-12


@pytest.fixture(scope="module")
def ref():
    with np.load(REFERENCE) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("variant", UF23_VARIANTS)
def test_matches_crpropa_at_500_points(ref, variant):
    field = get_field("uf23", variant=variant)
    assert field.options == {"variant": variant}
    assert variant in field.description and "2311.12120" in field.description
    b = field(ref["pos_kpc"])
    assert_allclose(b, ref[f"B_{variant}_muG"], rtol=RTOL, atol=ATOL_UGAUSS)


def test_default_is_base_and_reference_is_not_trivial(ref):
    assert_allclose(ref["B_muG"], ref["B_base_muG"], rtol=0, atol=0)
    assert_allclose(get_field("uf23")(ref["pos_kpc"]), ref["B_muG"], rtol=RTOL, atol=ATOL_UGAUSS)
    for variant in UF23_VARIANTS:
        b = ref[f"B_{variant}_muG"]
        assert np.count_nonzero(np.linalg.norm(b, axis=1) > 0.01) > 300
    # the variants differ from each other by far more than the tolerance
    base = ref["B_base_muG"]
    for variant in UF23_VARIANTS[1:]:
        assert np.max(np.abs(ref[f"B_{variant}_muG"] - base)) > 0.1


def test_field_at_earth(ref):
    b = get_field("uf23")(ref["earth_pos_kpc"])
    assert_allclose(ref["earth_pos_kpc"], [[-8.5, 0.0, 0.0]])
    assert_allclose(b, ref["B_at_earth_muG"], rtol=RTOL, atol=ATOL_UGAUSS)


def test_comparison_detects_a_finite_poloidal_scale(ref):
    # the authors' code uses a = 1 Gpc for "a -> infinity" (eq. 38); CRPropa 3.2 effectively uses
    # 3e25 kpc. The 1 Gpc field differs by up to 4e-7 relative, which the test must see.
    params = uf23_params("base")
    a_kpc = 1e6
    params[_POL_C] = (a_kpc / 4.4597373) ** params[_POL_P]
    params[_POL_A0P] = a_kpc ** params[_POL_P]
    params[_POL_FINITE_A] = 1.0  # the general formula for a finite a
    b = FieldModel("uf23-1gpc", uf23_kernel, params)(ref["pos_kpc"])
    with pytest.raises(AssertionError):
        assert_allclose(b, ref["B_base_muG"], rtol=RTOL, atol=ATOL_UGAUSS)
