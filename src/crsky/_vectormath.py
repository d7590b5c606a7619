"""Elementary functions that numba can vectorise: exp, log, sincos, atan2 (float64, ~1 ulp).

Why: numba's loops over particles (the tracer's lockstep batch) do not vectorise when the body
calls libm's ``exp``/``log``/``sin``/``cos``: pip's llvmlite has no vector maths library, so every
call stays a scalar call. These functions are straight-line float64 and int64 arithmetic on one
value (range reduction, a polynomial, a reconstruction through the float's bits; every branch is a
select), so LLVM turns a loop over them into packed AVX-512 / AVX2 instructions. They are also
faster than libm for one value (no call, no special-case branches).

Method, common to all: a Cody-Waite reduction by a constant split into a short leading part (its
products with the reduction integer k are exact) and a tail; a Taylor polynomial on the reduced
interval (truncation error far below rounding) evaluated by Estrin's scheme (a short dependency
chain, for the latency of a single scalar call; a packed loop would not care); the integer k is
formed and converted with the 1.5 * 2^52 "shifter" (adding it rounds to an integer in the low
mantissa bits), so no float <-> int64 conversion instruction is needed (AVX2 has none).
The split constants are derived below from 60-digit decimal values of ln 2 and pi.

Accuracy (tests/test_vectormath.py measures it against float80 references on random inputs over
each stated range, near the roots of sin and cos and at the edges): <= 1 ulp for exp, log, sin
and cos (observed maxima 1.0, 0.79, 0.83, 0.84 ulp), < 2 ulp for atan2 (observed 1.8 ulp); libm
is < 1 ulp too, so results differ from numpy's by at most 1-3 ulp.

All functions are numba ``njit`` with ``error_model="numpy"``. A loop vectorises only if
everything it calls ends up inlined: LLVM inlines exp, log and sincos by itself (small enough),
atan2 is ``inline="always"`` (numba IR level; LLVM leaves it a call). The field kernels built on
them are ``inline="always"`` too and must be called as a global or closure variable (a dispatcher
passed as an argument is not inlined: its loop stays scalar). IR-level inlining of the small
functions as well multiplied a UF23 kernel's compile time by ~20 (2 s to 40 s).
"""

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from crsky._numba import njit_kernel

__all__ = ["atan2", "bits_float", "exp", "float_bits", "log", "round_half_even", "sincos"]


def _round_to_bits(value: Decimal, n_bits: int) -> float:
    """``value`` rounded to a float with ``n_bits`` significant bits (the rest zero)."""
    mantissa, exponent = math.frexp(float(value))
    return math.ldexp(round(mantissa * 2**n_bits), exponent - n_bits)


with localcontext() as _ctx:  # 60 significant digits for the split constants
    _ctx.prec = 60
    _PI = Decimal("3.14159265358979323846264338327950288419716939937510582097494459")
    _LN2 = Decimal(2).ln()
    # ln 2 = LN2_HI + LN2_LO: 32 bits in LN2_HI, so k * LN2_HI is exact for |k| < 2^21
    _LN2_HI = _round_to_bits(_LN2, 32)
    _LN2_LO = float(_LN2 - Decimal(_LN2_HI))
    _INV_LN2 = float(1 / _LN2)
    # pi / 2 = PIO2_1 + PIO2_2 + PIO2_3: 33 + 33 + 53 bits; k * PIO2_1 and k * PIO2_2 are exact
    # for |k| < 2^20, which bounds sincos's argument (|x| < 1.6e6)
    _PIO2_1 = _round_to_bits(_PI / 2, 33)
    _PIO2_2 = _round_to_bits(_PI / 2 - Decimal(_PIO2_1), 33)
    _PIO2_3 = float(_PI / 2 - Decimal(_PIO2_1) - Decimal(_PIO2_2))
    _TWO_OVER_PI = float(2 / _PI)
    # atan2: pi/8, pi/2 and pi in two parts (k pi/8 exact for k <= 2); the centres of the
    # reduction tan(pi/8) = sqrt 2 - 1 in two parts, tan(pi/16) and tan(3 pi/16) as thresholds
    _PIO8_HI = _round_to_bits(_PI / 8, 40)
    _PIO8_LO = float(_PI / 8 - Decimal(_PIO8_HI))
    _PIO2_HI = float(_PI / 2)
    _PIO2_LO = float(_PI / 2 - Decimal(_PIO2_HI))
    _PI_HI = float(_PI)
    _PI_LO = float(_PI - Decimal(_PI_HI))
    _TAN_PIO8 = Decimal(2).sqrt() - 1
    _TAN_PIO8_HI = float(_TAN_PIO8)
    _TAN_PIO8_LO = float(_TAN_PIO8 - Decimal(_TAN_PIO8_HI))
# atan2's thresholds between the centres 0, tan(pi/8), 1 (their rounding moves no result): the
# first at tan(1/4), so that pi/8 + atan u never cancels below 1/4 (the ulp of the result would
# be smaller than the rounding of u)
_ATAN_T1 = math.tan(0.25)
_ATAN_T2 = math.tan(3 * math.pi / 16)
_ATAN_BIG = 2.0**1000  # atan2 rescales n and d beyond these by an exact power of 2
_ATAN_SMALL = 2.0**-900
_ATAN_DOWN = 2.0**-600
_ATAN_UP = 2.0**600


def _taylor(terms: list[tuple[int, int]]) -> tuple[float, ...]:
    """Coefficients sign / divisor, each correctly rounded: [(sign, divisor), ...]."""
    return tuple(float(Fraction(sign, divisor)) for sign, divisor in terms)


# Polynomial coefficients, Taylor series (evaluated by Estrin's scheme: a short dependency chain,
# for the latency of a single call; the packed loop does not care)
_EXP_C = _taylor([(1, math.factorial(j + 2)) for j in range(12)])  # (e^r - 1 - r) / r^2
_LOG_C = _taylor([(1, 2 * j + 3) for j in range(10)])  # (artanh(s) / s - 1) / s^2
_SIN_C = _taylor([((-1) ** (j + 1), math.factorial(2 * j + 3)) for j in range(8)])
_COS_C = _taylor([((-1) ** j, math.factorial(2 * j + 4)) for j in range(7)])
_ATAN_C = _taylor([((-1) ** j, 2 * j + 3) for j in range(14)])  # (u - atan u) / u^3
_SHIFTER = 1.5 * 2.0**52  # x + SHIFTER rounds x to an integer held in the low mantissa bits
_SHIFTER_BITS = 0x4338000000000000  # float_bits(SHIFTER)
_SQRT2 = math.sqrt(2.0)
_TWO54 = 2.0**54
_TINY = np.finfo(np.float64).tiny  # smallest normal float64
_EXP_MAX_ARG = 709.782712893384  # exp(x) overflows to inf above this (ln(max float64))
_EXP_MIN_ARG = -745.1332191019412  # exp(x) rounds to 0 below this (ln(smallest subnormal / 2))
_INF = math.inf
_NAN = math.nan


@intrinsic
def float_bits(typingctx, x):
    """The IEEE-754 bits of float64 ``x`` as an int64 (a bit cast, no conversion)."""
    if not isinstance(x, types.Float):
        return None
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def bits_float(typingctx, bits):
    """The float64 whose IEEE-754 bits are the int64 ``bits`` (a bit cast, no conversion)."""
    if not isinstance(bits, types.Integer):
        return None
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@njit_kernel
def round_half_even(x):
    """(k as float64, k as int64) with k = x rounded to the nearest integer, for |x| < 2^51."""
    shifted = x + _SHIFTER
    return shifted - _SHIFTER, float_bits(shifted) - _SHIFTER_BITS


@njit_kernel
def _int_to_float(k):
    """int64 ``k`` as float64, exact for |k| < 2^51 (no conversion instruction)."""
    return bits_float(k + _SHIFTER_BITS) - _SHIFTER


@njit_kernel
def exp(x):
    """e^x for float64 x.

    x = k ln2 + r with |r| <= ln2 / 2 (Cody-Waite, ln 2 in two parts); e^r by its Taylor
    polynomial of degree 13 (truncation error < 4e-18 relative); e^x = e^r 2^k, with 2^k built
    from its bits in two factors so that results down to the smallest subnormal are formed.
    Error <= 1 ulp for every finite x. x > 709.78...: inf; x < -745.13...: 0 (as libm);
    nan: nan; +-inf: inf, 0.
    """
    xc = _EXP_MIN_ARG if x < _EXP_MIN_ARG else x
    xc = _EXP_MAX_ARG if xc > _EXP_MAX_ARG else xc
    kf, k = round_half_even(xc * _INV_LN2)
    r = (xc - kf * _LN2_HI) - kf * _LN2_LO
    r2 = r * r
    r4 = r2 * r2
    c = _EXP_C
    p = (
        ((c[0] + c[1] * r) + (c[2] + c[3] * r) * r2)
        + ((c[4] + c[5] * r) + (c[6] + c[7] * r) * r2) * r4
        + ((c[8] + c[9] * r) + (c[10] + c[11] * r) * r2) * (r4 * r4)
    )
    e_r = 1.0 + (r + r2 * p)
    k_half = k >> 1  # 2^k = 2^k_half 2^(k - k_half), both normal for -1075 <= k <= 1024
    y = e_r * bits_float((k_half + 1023) << 52) * bits_float((k - k_half + 1023) << 52)
    y = _INF if x > _EXP_MAX_ARG else y
    return 0.0 if x < _EXP_MIN_ARG else y


@njit_kernel
def log(x):
    """Natural logarithm of float64 x.

    x = 2^e m with m in [sqrt(2)/2, sqrt(2)) (subnormals scaled by 2^54 first); with f = m - 1
    and s = f / (2 + f), ln m = 2 artanh s = 2s + 2s^3/3 + ... (|s| < 0.172): the series to
    s^21 (truncation error < 1e-18 relative), arranged as f - (f^2/2 - s (f^2/2 + R)) so the
    leading terms are exact; ln x = e ln2 + ln m with ln 2 in two parts. Error <= 1 ulp for every
    positive finite x, subnormals included. 0: -inf; +inf: inf; x < 0 and nan: nan.
    """
    subnormal = x < _TINY
    xs = x * _TWO54 if subnormal else x
    bits = float_bits(xs)
    e = (bits >> 52) - (1077 if subnormal else 1023)
    m = bits_float((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    z2 = z * z
    z4 = z2 * z2
    c = _LOG_C
    p = (
        ((c[0] + c[1] * z) + (c[2] + c[3] * z) * z2)
        + ((c[4] + c[5] * z) + (c[6] + c[7] * z) * z2) * z4
        + (c[8] + c[9] * z) * (z4 * z4)
    )
    half_f2 = 0.5 * f * f
    ef = _int_to_float(e)
    y = ef * _LN2_HI + (f - (half_f2 - (s * (half_f2 + 2.0 * z * p) + ef * _LN2_LO)))
    y = -_INF if x == 0.0 else y
    y = x if not (x < _INF) else y  # +inf and nan pass through
    return _NAN if x < 0.0 else y


@njit_kernel
def sincos(x):
    """(sin x, cos x) for float64 x with |x| < 1.6e6.

    x = k pi/2 + r with |r| <= pi/4 (Cody-Waite, pi/2 in three parts: exact products for
    |k| < 2^20); sin r to r^17 and cos r to r^16 by their Taylor series (truncation error
    < 2e-18); the rounding errors of the reduction are carried as a correction r_lo and of
    1 - r^2/2 added back; the quadrant k mod 4 swaps and negates them. Error < 1 ulp for
    |x| <= 1e5, near the roots of sin and cos too (larger |x| loses accuracy slowly: the
    reduction error grows as |k| 2e-37).
    |x| >= 1.6e6: wrong values (not checked); inf and nan: nan.
    """
    kf, k = round_half_even(x * _TWO_OVER_PI)
    # r + r_lo = x - k pi/2: the rounding errors of the last two subtractions are kept in r_lo
    t = x - kf * _PIO2_1
    k_pio2_2 = kf * _PIO2_2
    k_pio2_3 = kf * _PIO2_3
    a = t - k_pio2_2
    r = a - k_pio2_3
    r_lo = ((t - a) - k_pio2_2) + ((a - r) - k_pio2_3)
    z = r * r
    z2 = z * z
    z4 = z2 * z2
    c = _SIN_C
    ps = ((c[0] + c[1] * z) + (c[2] + c[3] * z) * z2) + (
        (c[4] + c[5] * z) + (c[6] + c[7] * z) * z2
    ) * z4
    sin_r = r + (r * z * ps + r_lo * (1.0 - 0.5 * z))
    c = _COS_C
    pc = ((c[0] + c[1] * z) + (c[2] + c[3] * z) * z2) + ((c[4] + c[5] * z) + c[6] * z2) * z4
    half_z = 0.5 * z
    w = 1.0 - half_z  # its rounding error is added back below
    cos_r = w + (((1.0 - w) - half_z) + (z2 * pc - r * r_lo))
    odd = (k & 1) != 0
    sin_q = cos_r if odd else sin_r
    cos_q = sin_r if odd else cos_r
    sin_x = -sin_q if (k & 2) != 0 else sin_q
    cos_x = -cos_q if ((k + 1) & 2) != 0 else cos_q
    return sin_x, cos_x


@njit_kernel(inline="always")  # too big for LLVM to inline it
def atan2(y, x):
    """The angle of (x, y) in [-pi, pi] (rad), for float64 x, y (as libm's atan2).

    With n = min(|x|, |y|), d = max(|x|, |y|) (scaled by a power of 2 into [2^-900, 2^1000]),
    atan(n / d) = k pi/8 + atan u with the centre c_k = tan(k pi/8), k = 0, 1, 2 (k = 1 from
    n / d = tan(1/4), k = 2 from tan(3 pi/16)) and u = (n - c_k d) / (d + c_k n), |u| <= 0.26
    (formed from n and d, not from the rounded ratio); atan u by its Taylor series to u^29
    (truncation error < 2e-17 relative);
    then the octant: pi/2 - a if |y| > |x|, pi - a if x < 0 (or x = -0), the sign of y (-0
    too). pi/8, pi/2, pi and c_1 in two parts. Error < 2 ulp for finite x, y (the tests measure
    it). atan2(+-0, +0) = +-0 and atan2(+-0, -0) = +-pi as libm; inf or nan in x or y: nan.
    """
    ax = abs(x)
    ay = abs(y)
    swap = ay > ax
    num = ax if swap else ay
    den = ay if swap else ax
    scale = _ATAN_DOWN if den > _ATAN_BIG else (_ATAN_UP if den < _ATAN_SMALL else 1.0)
    num *= scale
    den *= scale
    t = 0.0 if den == 0.0 else num / den
    k = 0.0 if t <= _ATAN_T1 else (1.0 if t <= _ATAN_T2 else 2.0)
    c = 0.0 if k == 0.0 else (_TAN_PIO8_HI if k == 1.0 else 1.0)
    c_lo = _TAN_PIO8_LO if k == 1.0 else 0.0
    u = ((num - c * den) - c_lo * den) / (den + c * num)
    u = 0.0 if den == 0.0 else u
    z = u * u
    z2 = z * z
    z4 = z2 * z2
    c = _ATAN_C
    p = (
        ((c[0] + c[1] * z) + (c[2] + c[3] * z) * z2)
        + ((c[4] + c[5] * z) + (c[6] + c[7] * z) * z2) * z4
        + (((c[8] + c[9] * z) + (c[10] + c[11] * z) * z2) + (c[12] + c[13] * z) * z4) * (z4 * z4)
    )
    a = k * _PIO8_HI + (u - (u * z * p - k * _PIO8_LO))
    a = (_PIO2_HI - a) + _PIO2_LO if swap else a
    a = (_PI_HI - a) + _PI_LO if float_bits(x) < 0 else a
    a = _NAN if not (ax < _INF and ay < _INF) else a
    return -a if float_bits(y) < 0 else a
