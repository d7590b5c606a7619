"""PT11 (ASS and BSS disks with the halo) against CRPropa 3.2's ``PT11Field`` at 500 points.

Reference: ``tests/data/pt11_field_500.npz`` (see ``tests/data/README.md``).
"""

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from crsky.fields import get_field

REFERENCE = Path(__file__).parents[1] / "data" / "pt11_field_500.npz"

# Rounding only: observed <= 4.6e-15 µG absolute, 5e-14 relative on components above 1e-6 µG.
RTOL = 1e-9
ATOL_UGAUSS = 1e-12


@pytest.fixture(scope="module")
def ref():
    with np.load(REFERENCE) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize(
    ("options", "key"), [({}, "B_muG"), ({"disk": "ass"}, "B_muG"), ({"disk": "bss"}, "B_BSS_muG")]
)
def test_matches_crpropa_at_500_points(ref, options, key):
    field = get_field("pt11", **options)
    assert "1103.0814" in field.description
    assert_allclose(field(ref["pos_kpc"]), ref[key], rtol=RTOL, atol=ATOL_UGAUSS)


def test_field_at_earth(ref):
    assert_allclose(ref["earth_pos_kpc"], [[-8.5, 0.0, 0.0]])
    b = get_field("pt11")(ref["earth_pos_kpc"])
    assert_allclose(b, ref["B_at_earth_muG"], rtol=RTOL, atol=ATOL_UGAUSS)


def test_disks_differ_and_halo_is_separable(ref):
    pos = ref["pos_kpc"]
    assert np.max(np.abs(ref["B_BSS_muG"] - ref["B_muG"])) > 0.5
    disk = get_field("pt11", halo=False)(pos)
    halo = get_field("pt11", disk=None)(pos)
    assert_allclose(disk + halo, ref["B_muG"], rtol=1e-12, atol=1e-14)
    assert np.count_nonzero(np.linalg.norm(disk, axis=1) > 0.01) > 100
    assert np.count_nonzero(np.linalg.norm(halo, axis=1) > 0.01) > 100
