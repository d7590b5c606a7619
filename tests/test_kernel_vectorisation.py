"""Field kernels in a loop over points vectorise (packed AVX instructions, no libm calls) with the
parameter vector as a tuple, as in the tracer's lockstep loop over lanes
(:func:`crsky.backtrack._kernels.lockstep_tracer`), with the values of the point-by-point call;
so do the tracer's own loops over lanes (judging the trial steps, the step limits, the end
stages pulled inside the sphere)."""

import platform
import re
from functools import cache

import numpy as np
import pytest
from numba import njit

from crsky.backtrack import _kernels
from crsky.fields import get_field

CASES = [
    ("pt11", {}),
    ("pt11", {"disk": "bss"}),
    ("uf23", {"variant": "base"}),
    ("jf12", {}),
]


@cache
def _batch(region_kernel):
    """A loop over points calling ``region_kernel`` as a closure variable (so numba inlines it);
    compiled without the disk cache, whose code has no assembly to show."""

    @njit(cache=False, error_model="numpy")
    def batch(xs, ys, zs, params, b, pieces):
        for i in range(xs.shape[0]):
            b[0, i], b[1, i], b[2, i], pieces[i] = region_kernel(xs[i], ys[i], zs[i], params)

    return batch


def _points(n, seed):
    rng = np.random.default_rng(seed)
    r = 20.0 * np.sqrt(rng.random(n))
    phi = rng.uniform(-np.pi, np.pi, n)
    pos = np.column_stack([r * np.cos(phi), r * np.sin(phi), rng.uniform(-4.0, 4.0, n)])
    return np.vstack([pos, [[0.0, 0.0, 1.0], [-8.5, 0.0, 0.0], [-8.2, 0.095, -0.05]]])


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 assembly")
@pytest.mark.parametrize(("name", "options"), CASES)
def test_region_kernel_loop_is_vectorised(name, options):
    field = get_field(name, **options)
    pos = _points(2000, seed=5)
    params = tuple(float(v) for v in field.params)
    batch = _batch(field.piecewise_kernel)
    b = np.empty((3, len(pos)))
    pieces = np.empty(len(pos), dtype=np.int64)
    batch(*(np.ascontiguousarray(pos[:, k]) for k in range(3)), params, b, pieces)
    # the values of the point-by-point call (array params, the kernel not inlined), to rounding
    np.testing.assert_allclose(b.T, field(pos), rtol=1e-14, atol=1e-14)
    asm = batch.inspect_asm(batch.signatures[0])
    packed = re.findall(r"\bv\w+pd\s+[^\n]*%[yz]mm", asm)
    assert len(packed) > 50, "the loop over points did not vectorise"
    assert not re.search(r"call\w*\s+[^\n]*(exp|log|sin|cos|atan|pow)", asm)


def _lane_loop_asm(function, *args) -> str:
    """Assembly of one of the tracer's loops over lanes, compiled without the disk cache."""
    compiled = njit(cache=False, error_model="numpy", nogil=True)(function.py_func)
    compiled(*args)
    return compiled.inspect_asm(compiled.signatures[0])


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 assembly")
def test_tracer_lane_loops_are_vectorised():
    # A loop that stays scalar costs the tracer speed, not accuracy, so only this test sees it:
    # judging the trial steps stayed scalar unnoticed once (integer rows in the float loop).
    lanes = _kernels.LANES
    f = np.zeros((_kernels._N_FLOAT, lanes))
    n = np.zeros((_kernels._N_INT, lanes), dtype=np.int64)
    rows = np.zeros((3, lanes))
    judge = _lane_loop_asm(_kernels._judge_steps, f, n, rows, rows, rows, 32, 1e-4, 1e-4, 0.2, 6)
    # the step-size factor's exp builds 2^k from its bits: a packed shift by 52 when vectorised
    assert re.search(r"vpsllq\s+\$52,[^\n]*%[yz]mm", judge), "judging the steps stayed scalar"
    limits = _lane_loop_asm(_kernels._limit_steps, f, n, 32, 20.0, 1e3, 1.0, np.zeros((0, 5)))
    pull = _lane_loop_asm(_kernels._pull_inside, rows, rows.copy(), 32, 20.0)
    for name, asm in (("step limits", limits), ("pull inside", pull)):
        assert re.search(r"vsqrtpd\s+[^\n]*%[yz]mm", asm), f"the {name} loop stayed scalar"
