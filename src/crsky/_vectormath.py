"""Elementary functions that numba can vectorise: exp, log, sincos (float64, within ~1 ulp).

Why: numba's loops over particles (the tracer's lockstep batch) do not vectorise when the body
calls libm's ``exp``/``log``/``sin``/``cos``: pip's llvmlite has no vector maths library, so every
call stays a scalar call. These functions are straight-line float64 and int64 arithmetic on one
value (range reduction, a polynomial, a reconstruction through the float's bits; every branch is a
select), so LLVM turns a loop over them into packed AVX-512 / AVX2 instructions. They are also
faster than libm for one value (no call, no special-case branches).

Method, common to all: a Cody-Waite reduction by a constant split into a short leading part (its
products with the reduction integer k are exact) and a tail; a Taylor polynomial on the reduced
interval, evaluated by Horner's rule (the truncation error is far below rounding); the integer k is
formed and converted with the 1.5 * 2^52 "shifter" (adding it rounds to an integer in the low
mantissa bits), so no float <-> int64 conversion instruction is needed (AVX2 has none).
The split constants are derived below from 60-digit decimal values of ln 2 and pi.

Accuracy (tests/test_vectormath.py measures it against float80 references on random inputs over
each stated range, near the roots of sin and cos and at the edges): < 1 ulp for each function
(observed maxima 0.93 ulp exp, 0.79 ulp log, 0.79 ulp sin and cos); libm is < 1 ulp too, so
results differ from numpy's by at most 1-2 ulp.

All functions are numba ``njit`` with ``error_model="numpy"`` and ``inline="always"``. A loop
vectorises only if everything it calls is inlined at numba IR level: a kernel meant for a
vectorised loop is ``inline="always"`` too and is called as a global or closure variable (a
dispatcher passed as an argument is not inlined and its loop stays scalar).
"""

import math
from decimal import Decimal, localcontext

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from crsky._numba import njit_kernel

__all__ = ["bits_float", "exp", "float_bits", "log", "sincos"]


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


@njit_kernel(inline="always")
def _round_half_even(x):
    """(k as float64, k as int64) with k = x rounded to the nearest integer, for |x| < 2^51."""
    shifted = x + _SHIFTER
    return shifted - _SHIFTER, float_bits(shifted) - _SHIFTER_BITS


@njit_kernel(inline="always")
def _int_to_float(k):
    """int64 ``k`` as float64, exact for |k| < 2^51 (no conversion instruction)."""
    return bits_float(k + _SHIFTER_BITS) - _SHIFTER


@njit_kernel(inline="always")
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
    kf, k = _round_half_even(xc * _INV_LN2)
    r = (xc - kf * _LN2_HI) - kf * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    e_r = 1.0 + (r + r * r * p)
    k_half = k >> 1  # 2^k = 2^k_half 2^(k - k_half), both normal for -1075 <= k <= 1024
    y = e_r * bits_float((k_half + 1023) << 52) * bits_float((k - k_half + 1023) << 52)
    y = _INF if x > _EXP_MAX_ARG else y
    return 0.0 if x < _EXP_MIN_ARG else y


@njit_kernel(inline="always")
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
    p = 1.0 / 21.0
    p = p * z + 1.0 / 19.0
    p = p * z + 1.0 / 17.0
    p = p * z + 1.0 / 15.0
    p = p * z + 1.0 / 13.0
    p = p * z + 1.0 / 11.0
    p = p * z + 1.0 / 9.0
    p = p * z + 1.0 / 7.0
    p = p * z + 1.0 / 5.0
    p = p * z + 1.0 / 3.0
    half_f2 = 0.5 * f * f
    ef = _int_to_float(e)
    y = ef * _LN2_HI + (f - (half_f2 - (s * (half_f2 + 2.0 * z * p) + ef * _LN2_LO)))
    y = -_INF if x == 0.0 else y
    y = x if not (x < _INF) else y  # +inf and nan pass through
    return _NAN if x < 0.0 else y


@njit_kernel(inline="always")
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
    kf, k = _round_half_even(x * _TWO_OVER_PI)
    # r + r_lo = x - k pi/2: the rounding errors of the last two subtractions are kept in r_lo
    t = x - kf * _PIO2_1
    k_pio2_2 = kf * _PIO2_2
    k_pio2_3 = kf * _PIO2_3
    a = t - k_pio2_2
    r = a - k_pio2_3
    r_lo = ((t - a) - k_pio2_2) + ((a - r) - k_pio2_3)
    z = r * r
    ps = 1.0 / 355687428096000.0
    ps = ps * z - 1.0 / 1307674368000.0
    ps = ps * z + 1.0 / 6227020800.0
    ps = ps * z - 1.0 / 39916800.0
    ps = ps * z + 1.0 / 362880.0
    ps = ps * z - 1.0 / 5040.0
    ps = ps * z + 1.0 / 120.0
    ps = ps * z - 1.0 / 6.0
    sin_r = r + (r * z * ps + r_lo * (1.0 - 0.5 * z))
    pc = 1.0 / 20922789888000.0
    pc = pc * z - 1.0 / 87178291200.0
    pc = pc * z + 1.0 / 479001600.0
    pc = pc * z - 1.0 / 3628800.0
    pc = pc * z + 1.0 / 40320.0
    pc = pc * z - 1.0 / 720.0
    pc = pc * z + 1.0 / 24.0
    half_z = 0.5 * z
    w = 1.0 - half_z  # its rounding error is added back below
    cos_r = w + (((1.0 - w) - half_z) + (z * z * pc - r * r_lo))
    odd = (k & 1) != 0
    sin_q = cos_r if odd else sin_r
    cos_q = sin_r if odd else cos_r
    sin_x = -sin_q if (k & 2) != 0 else sin_q
    cos_x = -cos_q if ((k + 1) & 2) != 0 else cos_q
    return sin_x, cos_x
