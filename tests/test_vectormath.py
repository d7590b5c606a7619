"""crsky._vectormath: accuracy in ulp against float80 references, edge values, vectorisation."""

import platform
import re

import numpy as np
import pytest

from crsky import _vectormath as vm
from crsky._numba import njit_kernel

N = 200_000


@njit_kernel
def _exp_loop(x, out):
    for i in range(x.shape[0]):
        out[i] = vm.exp(x[i])


@njit_kernel
def _log_loop(x, out):
    for i in range(x.shape[0]):
        out[i] = vm.log(x[i])


@njit_kernel
def _sincos_loop(x, sin_out, cos_out):
    for i in range(x.shape[0]):
        sin_out[i], cos_out[i] = vm.sincos(x[i])


@njit_kernel
def _atan2_loop(y, x, out):
    for i in range(x.shape[0]):
        out[i] = vm.atan2(y[i], x[i])


def _apply(loop, x):
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    loop(x, out)
    return out


def _ulp_error(got, reference):
    """|got - reference| in units of the float64 spacing at the reference (float80 on x86)."""
    ref64 = reference.astype(np.float64)
    spacing = np.spacing(np.abs(ref64)).astype(np.longdouble)
    return np.abs((got.astype(np.longdouble) - reference) / spacing).astype(np.float64)


@pytest.fixture(scope="module")
def extended():
    if np.finfo(np.longdouble).nmant < 60:
        pytest.skip("no extended-precision long double for a reference on this platform")


def test_exp_within_one_ulp_over_its_range(extended):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-745.0, 709.7, N), rng.uniform(-1.0, 1.0, N)])
    err = _ulp_error(_apply(_exp_loop, x), np.exp(x.astype(np.longdouble)))
    assert err.max() <= 1.0
    assert np.mean(err > 0.5) < 0.2  # mostly correctly rounded


def test_log_within_one_ulp_over_its_range(extended):
    rng = np.random.default_rng(2)
    x = np.concatenate(
        [
            np.exp(rng.uniform(-744.0, 709.0, N)),  # subnormals to near overflow
            rng.uniform(0.5, 2.0, N),  # around 1, where ln x is small
        ]
    )
    err = _ulp_error(_apply(_log_loop, x), np.log(x.astype(np.longdouble)))
    assert err.max() <= 1.0


@pytest.mark.parametrize("limit", [np.pi / 4, 20.0, 1e5])
def test_sincos_within_one_ulp(extended, limit):
    rng = np.random.default_rng(3)
    x = rng.uniform(-limit, limit, N)
    sin_x, cos_x = np.empty_like(x), np.empty_like(x)
    _sincos_loop(x, sin_x, cos_x)
    xl = x.astype(np.longdouble)
    assert _ulp_error(sin_x, np.sin(xl)).max() <= 1.0
    assert _ulp_error(cos_x, np.cos(xl)).max() <= 1.0


def test_sincos_near_the_roots(extended):
    # the float64 nearest k pi/2: the result is small there, the error relative to it
    k = np.arange(1, 20_001, dtype=np.float64)
    x = np.concatenate([k * (np.pi / 2), -k * (np.pi / 2)])
    sin_x, cos_x = np.empty_like(x), np.empty_like(x)
    _sincos_loop(x, sin_x, cos_x)
    xl = x.astype(np.longdouble)
    assert _ulp_error(sin_x, np.sin(xl)).max() <= 1.0
    assert _ulp_error(cos_x, np.cos(xl)).max() <= 1.0


@pytest.mark.parametrize("scale", [1.0, 1e-305, 1e305])
def test_atan2_within_two_ulp_in_every_octant(extended, scale):
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(2, N)) * scale
    out = np.empty_like(x)
    _atan2_loop(y, x, out)
    err = _ulp_error(out, np.arctan2(y.astype(np.longdouble), x.astype(np.longdouble)))
    assert err.max() < 2.0
    assert np.mean(err > 0.5) < 0.4


def test_atan2_signed_zeros_and_axes_as_libm():
    y = np.array([0.0, 0.0, -0.0, -0.0, 0.0, -0.0, 1.0, -1.0, 1.0, 3.0, 5e-324, 1.0])
    x = np.array([0.0, -0.0, 0.0, -0.0, 2.0, -2.0, 0.0, 0.0, 1.0, -3.0, 1.0, 5e-324])
    out = np.empty_like(x)
    _atan2_loop(y, x, out)
    want = np.arctan2(y, x)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(np.signbit(out), np.signbit(want))
    _atan2_loop(np.array([1.0, np.nan, np.inf]), np.array([np.inf, 1.0, 1.0]), out[:3])
    assert np.all(np.isnan(out[:3]))  # unlike libm for infinities: no caller reaches them


def test_edge_values_as_libm():
    tiny = np.finfo(np.float64).tiny
    with np.errstate(all="ignore"):
        x = np.array([0.0, -0.0, 5e-324, 1e-310, tiny, 1.0, 1.7e308, np.inf, -np.inf, -1.0, np.nan])
        np.testing.assert_array_equal(_apply(_log_loop, x), np.log(x))
        x = np.array([0.0, -800.0, -745.2, -745.0, -708.5, 709.78, 709.8, np.inf, -np.inf, np.nan])
        np.testing.assert_array_equal(_apply(_exp_loop, x), np.exp(x))
    assert _apply(_exp_loop, np.array([-744.0]))[0] > 0.0  # a subnormal result is formed
    sin_x, cos_x = np.empty(3), np.empty(3)
    _sincos_loop(np.array([0.0, np.inf, np.nan]), sin_x, cos_x)
    np.testing.assert_array_equal(sin_x, [0.0, np.nan, np.nan])
    np.testing.assert_array_equal(cos_x, [1.0, np.nan, np.nan])


_A = 0  # indices into the parameter tuple, compile-time constants as in the field kernels
_B = 1


@njit_kernel(inline="always")
def _lane(x, y, params):
    """A field-kernel-like body: logistic, log, sincos, atan2, selects, parameters by index
    (inlined at numba IR level: a call that LLVM does not inline cannot vectorise)."""
    s, c = vm.sincos(vm.log(x) / params[_A])
    edge = 1.0 / (1.0 + vm.exp(-(y - params[_B]) / params[_A]))
    return (s * edge if y >= 0.0 else c * edge), vm.atan2(y, c)


@njit_kernel(cache=False)  # numba cannot show the assembly of code loaded from its cache
def _batch(xs, ys, params, out_a, out_b):
    for i in range(xs.shape[0]):
        out_a[i], out_b[i] = _lane(xs[i], ys[i], params)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 assembly")
def test_batch_loop_with_tuple_params_is_vectorised():
    xs = np.linspace(0.5, 3.0, 64)
    ys = np.linspace(-1.0, 1.0, 64)
    out_a, out_b = np.empty(64), np.empty(64)
    params = (0.3, 0.1)
    _batch(xs, ys, params, out_a, out_b)
    want = [_lane(x, y, params) for x, y in zip(xs, ys, strict=True)]
    np.testing.assert_array_equal(np.stack([out_a, out_b], 1), want)
    asm = _batch.inspect_asm(_batch.signatures[0])
    packed = re.findall(r"\bv\w+pd\s+[^\n]*%[yz]mm", asm)
    assert len(packed) > 50, "the batch loop did not vectorise"
    # nothing left as a call: no numba function of _vectormath, no libm function
    assert not re.search(r"\$_ZN5crsky11_vectormath|\$(exp|log|sin|cos|atan2)\b", asm)
