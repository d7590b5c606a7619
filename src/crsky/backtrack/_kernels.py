"""Compiled tracer: embedded Runge–Kutta pairs with step-size control that step onto the surfaces
where the field model jumps instead of across them; ``LANES`` particles side by side.

State of one particle: position x (kpc, Galactocentric) and unit momentum direction u. Equations of
motion in a static magnetic field, with path length s in kpc as the independent variable::

    dx/ds = u
    du/ds = kappa * (u x B(x))      kappa = charge_sign / (GYRO_KPC * R / 1 EV)   [1 / (kpc µG)]

so that a particle of rigidity R moving perpendicular to a field B has the curvature radius
GYRO_KPC * (R / EV) / (B / µG).

Pairs: Dormand–Prince 5(4) (``order`` 5; Dormand & Prince 1980, J. Comp. Appl. Math. 6, 19;
Hairer, Nørsett & Wanner, Solving ODEs I, table II.5.2), Bogacki–Shampine 3(2) (``order`` 3;
1989, Appl. Math. Lett. 2, 321), both FSAL, and Dormand–Prince 8(5,3) (``order`` 8; Hairer,
Nørsett & Wanner, section II.10, "DOP853": 12 stages plus the new point's derivative, reused as
the next step's first stage; its error estimate combines the embedded 5th- and 3rd-order
solutions). The embedded solution gives the local error of u per
step; a step is accepted when that error is at most ``tolerance`` (absolute, like CRPropa's
``PropagationCK``), and the next step is scaled by 0.9 (tolerance / error)^(1/order), clipped to
[0.2, 5] x and to [min_step, max_step]. |u| = 1 is restored after each accepted step, which removes
the integrator's only secular drift (a pure magnetic force conserves |p|).

Jumps. A Runge–Kutta step across a surface where B jumps (JF12's arm edges, KST24's tubes) has a
local error of order h |kappa dB| whatever its order, so step control shrinks it to ``min_step``
and the error stays at ``min_step |kappa dB|`` per crossing. Field models that jump give a region
kernel (:attr:`crsky.fields.FieldModel.piecewise_kernel`): the field and the index of the smooth
piece of the model at each point. A step whose stages do not all lie in the piece it starts in is
discarded; the crossing is located on the Taylor path x + s u + s² k / 2 (k = du/ds) by bisection
on the piece index, the tracer steps to just before it (a step whose length the surface sets, not
the step control, so it may be shorter than ``min_step``, like the last step onto the sphere) and
bridges the remaining gap of at most ``tolerance / |dk|`` (dk: the jump of du/ds) by the same
Taylor path, evaluating du/ds on the far side for the next step (so no stage straddles the jump).
The error per crossing is then about ``tolerance``, and the step size need not rebuild after it.
Many of these jumps are tiny (JF12's arm edges high above the disk, where the disk field's weight
is below 1e-5): a model may bound them (:attr:`crsky.fields.FieldModel.jump_kernel`, from the
bits in which the pieces a step visits differ from its first one, and the step's end points).
A step of length h across jumps of at most dB has an error of at most h |kappa| dB (1 + sum |b_i|)
in u beyond its smooth one (the stages past a jump weigh it by a partial sum of the weights b_i,
the exact path by at most h); where that is at most ``tolerance`` the step is judged like any
other, and the crossing is neither located nor bridged.

A step never goes past the sphere of radius ``r_max_kpc`` along the straight line by more than
``BOUNDARY_OVERSHOOT_KPC``, nor past ``max_path_kpc``, so the particle stops on the sphere or at the
maximum path length, not a step beyond. The stages at a step's end (c = 1, and the new point) that
lie beyond the sphere (the last step's, by up to its bend h² |du/ds| / 2) see the field just
inside it on their ray: the track ends there, and a model whose field ends on that sphere (JF12
at 20 kpc) then has no jump for the last step to locate. Within the field model's fine regions
(spheres where it has structure thinner than a step could see, ``FieldModel.fine_regions``)
steps are at most the region's ``max_step`` long, and a step never reaches into such a sphere
from outside.

Lockstep. The tracer advances ``LANES`` particles together: each takes one trial step of its own
length per round, and every Runge–Kutta stage evaluates the field at the lanes' stage points in
one loop, into which the field model's region kernel is inlined. With the model's parameters
as a tuple of constants and a kernel written without libm calls or unpredictable branches
(:mod:`crsky._vectormath`), the compiler turns that loop into SIMD code (AVX-512: 8 float64 per
instruction). The step limits, the trial lengths and the judgement of the trial steps (accept,
or retry shorter; the step-size factor from :mod:`crsky._vectormath`'s exp and log, not libm's
pow) are such loops too; the rest of the per-lane logic (a step that left its piece, bisecting
onto a surface, leaving the sphere) stays scalar. A lane whose particle is done takes the next
particle of its chunk, and the last lanes close up when the chunk runs out. Each particle's
arithmetic is exactly that of tracing it alone: the same tracks bit for bit whatever the lanes,
chunks and threads.
"""

from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
from numba.np.unsafe.ndarray import to_fixed_tuple

from crsky import _vectormath as vm
from crsky._numba import njit_cached_by_content, njit_closure, njit_kernel

__all__ = ["BOUNDARY_OVERSHOOT_KPC", "GYRO_KPC", "trace_particles"]

_C_M_PER_S = 299_792_458.0
_KPC_M = 3.0856775814913673e19
# Gyroradius of R = 1 EV in B = 1 µG, in kpc: R / (c B) = 1e18 V / (c * 1e-10 T)  (≈ 1.0810 kpc)
GYRO_KPC = 1e18 / (_C_M_PER_S * 1e-10) / _KPC_M
BOUNDARY_OVERSHOOT_KPC = 1e-6
# a stage point at the end of a step beyond the sphere r_max sees the field this fraction of r_max
# from the centre on its ray: inside the sphere also after rounding, so a model whose field ends
# on that sphere (JF12 at 20 kpc) has no jump there for the step to locate
_END_SHRINK = 1.0 - 1e-12
# The start's field is evaluated this far ahead along u (kpc), on the side the particle moves to
# (the Earth lies on JF12's and KST24's z = 0 surface).
_START_NUDGE_KPC = 1e-12
# Bisections locate a crossing to no better than this (kpc; float64 rounding at 20 kpc is 4e-15).
_MIN_BRACKET_KPC = 1e-13

# Dormand–Prince 5(4) tableau (Hairer, Nørsett & Wanner, table II.5.2).
_A21 = 1 / 5
_A31, _A32 = 3 / 40, 9 / 40
_A41, _A42, _A43 = 44 / 45, -56 / 15, 32 / 9
_A51, _A52, _A53, _A54 = 19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729
_A61, _A62, _A63, _A64, _A65 = 9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656
_B1, _B3, _B4, _B5, _B6 = 35 / 384, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84
# error weights: 5th-order minus embedded 4th-order weights
_E1, _E3, _E4 = 71 / 57600, -71 / 16695, 71 / 1920
_E5, _E6, _E7 = -17253 / 339200, 22 / 525, -1 / 40


@njit_kernel
def _norm(v):
    return np.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])


# Bogacki–Shampine 3(2) tableau; the error weights are 3rd- minus 2nd-order weights.
_BS_B1, _BS_B2, _BS_B3 = 2 / 9, 1 / 3, 4 / 9
_BS_E1, _BS_E2, _BS_E3, _BS_E4 = 2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8


# Dormand–Prince 8(5,3) tableau (Hairer, Nørsett & Wanner, Solving ODEs I, section II.10, the
# published DOP853 coefficients, rounded to float64). Row i holds the non-zero a_ij of stage i + 1
# (0-based j listed beside it); the 5th- and 3rd-order error weights are b minus the embedded
# pairs' weights.
# fmt: off
_D8_A = (
    (0.05260015195876773,),  # j = 0
    (0.0197250569845379, 0.0591751709536137),  # 0, 1
    (0.02958758547680685, 0.08876275643042054),  # 0, 2
    (0.2413651341592667, -0.8845494793282861, 0.924834003261792),  # 0, 2, 3
    (0.037037037037037035, 0.17082860872947386, 0.12546768756682242),  # 0, 3, 4
    (0.037109375, 0.17025221101954405, 0.06021653898045596, -0.017578125),  # 0, 3 ... 5
    (0.03709200011850479, 0.17038392571223998, 0.10726203044637328, -0.015319437748624402,
     0.008273789163814023),  # 0, 3 ... 6
    (0.6241109587160757, -3.3608926294469414, -0.868219346841726, 27.59209969944671,
     20.154067550477894, -43.48988418106996),  # 0, 3 ... 7
    (0.47766253643826434, -2.4881146199716677, -0.590290826836843, 21.230051448181193,
     15.279233632882423, -33.28821096898486, -0.020331201708508627),  # 0, 3 ... 8
    (-0.9371424300859873, 5.186372428844064, 1.0914373489967295, -8.149787010746927,
     -18.52006565999696, 22.739487099350505, 2.4936055526796523, -3.0467644718982196),  # 0, 3 ... 9
    (2.273310147516538, -10.53449546673725, -2.0008720582248625, -17.9589318631188,
     27.94888452941996, -2.8589982771350235, -8.87285693353063, 12.360567175794303,
     0.6433927460157636),  # 0, 3 ... 10
)
# weights of stages 0, 5, 6, ..., 11
_D8_B = (0.054293734116568765, 4.450312892752409, 1.8915178993145003, -5.801203960010585,
         0.3111643669578199, -0.1521609496625161, 0.20136540080403034, 0.04471061572777259)
_D8_E5 = (0.01312004499419488, -1.2251564463762044, -0.4957589496572502, 1.6643771824549864,
          -0.35032884874997366, 0.3341791187130175, 0.08192320648511571, -0.022355307863886294)
_D8_E3 = (-0.18980075407240762, 4.450312892752409, 1.8915178993145003, -5.801203960010585,
          -0.4226823213237919, -0.1521609496625161, 0.20136540080403034, 0.02265179219836082)
# fmt: on


@njit_kernel
def _taylor(x, u, k, s):
    """Point at path length s (kpc) on the Taylor path x + s u + s² k / 2."""
    half = 0.5 * s * s
    return (
        x[0] + s * u[0] + half * k[0],
        x[1] + s * u[1] + half * k[1],
        x[2] + s * u[2] + half * k[2],
    )


@njit_kernel(inline="always")
def _lesser(a, b):
    """min(a, b) as a select (the same value as Python's min for numbers that are not NaN)."""
    return b if b < a else a


@njit_kernel(inline="always")
def _greater(a, b):
    """max(a, b) as a select (the same value as Python's max for numbers that are not NaN)."""
    return b if b > a else a


@njit_kernel(inline="always")
def _distance_to_sphere(x, u, r_max):
    """Straight-line path (kpc) from x along u to the sphere |x| = r_max (0 if outside)."""
    xu = x[0] * u[0] + x[1] * u[1] + x[2] * u[2]
    r2 = x[0] * x[0] + x[1] * x[1] + x[2] * x[2]
    disc = xu * xu + r_max * r_max - r2
    distance = _greater(0.0, -xu + np.sqrt(disc if disc > 0.0 else 0.0))
    return 0.0 if disc <= 0.0 else distance


@njit_kernel(inline="always")
def _step_factor(tol, err, exponent):
    """Step-size factor 0.9 (tol / err)^exponent, clipped to [0.2, 5]; the power from
    :mod:`crsky._vectormath`'s exp and log (no libm call, so a loop over lanes stays SIMD)."""
    vanishing = err <= 0.0
    ratio = 1.0 if vanishing else tol / err
    factor = min(5.0, max(0.2, 0.9 * vm.exp(exponent * vm.log(ratio))))
    return 5.0 if vanishing else factor


@njit_kernel(inline="always")
def _region_step(h, x, fine_regions, j):
    """Largest step (kpc) from x, at most h, that respects fine region j (centre, radius, step):
    inside at most its step, outside no further than to its surface."""
    dx = x[0] - fine_regions[j, 0]
    dy = x[1] - fine_regions[j, 1]
    dz = x[2] - fine_regions[j, 2]
    gap = np.sqrt(dx * dx + dy * dy + dz * dz) - fine_regions[j, 3]
    return _lesser(h, _greater(fine_regions[j, 4], gap))


@njit_kernel
def _local_max_step(x, max_step, fine_regions):
    """Largest step (kpc) from x: ``max_step`` within every fine region's limit."""
    h = max_step
    for j in range(fine_regions.shape[0]):
        h = _region_step(h, x, fine_regions, j)
    return h


@njit_kernel(inline="always")
def _step_limit(x, u, s, local_max_step, r_max, max_path):
    """Largest step (kpc) from x along u after path s: ``local_max_step``, and no further than
    the sphere r_max (by ``BOUNDARY_OVERSHOOT_KPC``) or the path max_path."""
    to_sphere = _distance_to_sphere(x, u, r_max) + BOUNDARY_OVERSHOOT_KPC
    return _lesser(local_max_step, _lesser(max_path - s, to_sphere))


@njit_kernel
def _unit(v):
    n = _norm(v)
    return (v[0] / n, v[1] / n, v[2] / n), n


@njit_kernel
def _cross(kappa, u, b):
    """kappa * u x b for 3-tuples."""
    return (
        kappa * (u[1] * b[2] - u[2] * b[1]),
        kappa * (u[2] * b[0] - u[0] * b[2]),
        kappa * (u[0] * b[1] - u[1] * b[0]),
    )


@njit_kernel
def _bridge(kappa, x, u, k, lo, hi, b_far):
    """Cross from x (kpc) to the Taylor point at path hi (kpc), where the path has left its piece
    (it is still in it at lo) for one with field ``b_far`` (µG) there: du/ds is k up to lo and
    the far side's beyond. Returns (x, u, du/ds) there."""
    k_far = _cross(kappa, u, b_far)
    u_far, _ = _unit(
        (
            u[0] + lo * k[0] + (hi - lo) * k_far[0],
            u[1] + lo * k[1] + (hi - lo) * k_far[1],
            u[2] + lo * k[2] + (hi - lo) * k_far[2],
        )
    )
    return _taylor(x, u, k, hi), u_far, _cross(kappa, u_far, b_far)


# --- lockstep: W particles per batch, one SIMD loop per Runge–Kutta stage -----------------------

# Lanes traced side by side: every Runge–Kutta stage evaluates the field for all of them in one
# loop that the compiler vectorises (AVX-512: two registers of 8 float64).
LANES = 32
# Parameter vectors up to this length are handed to the field kernel as a tuple of constants.
_MAX_TUPLE_PARAMS = 256


def _dense(rows, columns, n):
    """(n, n) lower-triangular tableau from per-row coefficients on the given columns."""
    a = np.zeros((n, n))
    for i, (row, cols) in enumerate(zip(rows, columns, strict=True)):
        a[i + 1, list(cols)] = row
    return a


def _weights(values, columns, n):
    w = np.zeros(n)
    w[list(columns)] = values
    return w


# Each pair as (a, b, e, e3, error kind): stage i uses a[i, :i]; b weights the stages for the new
# point; e (and e3) weight the stages and, last, the new point's du/ds for the error estimate.
# Error kinds: 0 |h sum e k|; 1 Hairer's DOP853 combination; 2 as 0 with the new point's term
# added last (the order of the sums as the scalar formulas wrote them).
_ERR_SUM, _ERR_DOP853, _ERR_SPLIT = 0, 1, 2
_TABLEAU_DOPRI5 = (
    _dense(
        (
            (_A21,),
            (_A31, _A32),
            (_A41, _A42, _A43),
            (_A51, _A52, _A53, _A54),
            (_A61, _A62, _A63, _A64, _A65),
        ),
        ((0,), (0, 1), (0, 1, 2), (0, 1, 2, 3), (0, 1, 2, 3, 4)),
        6,
    ),
    _weights((_B1, _B3, _B4, _B5, _B6), (0, 2, 3, 4, 5), 6),
    _weights((_E1, _E3, _E4, _E5, _E6, _E7), (0, 2, 3, 4, 5, 6), 7),
    np.zeros(7),
    _ERR_SPLIT,
)
_TABLEAU_BS3 = (
    _dense(((0.5,), (0.75,)), ((0,), (1,)), 3),
    np.array([_BS_B1, _BS_B2, _BS_B3]),
    np.array([_BS_E1, _BS_E2, _BS_E3, _BS_E4]),
    np.zeros(4),
    _ERR_SUM,
)
_D8_COLUMNS = ((0,), (0, 1), (0, 2), (0, 2, 3), *((0, *range(3, i)) for i in range(5, 12)))
_D8_B_COLUMNS = (0, 5, 6, 7, 8, 9, 10, 11)
_TABLEAU_DOP853 = (
    _dense(_D8_A, _D8_COLUMNS, 12),
    _weights(_D8_B, _D8_B_COLUMNS, 12),
    _weights(_D8_E5, _D8_B_COLUMNS, 13),
    _weights(_D8_E3, _D8_B_COLUMNS, 13),
    _ERR_DOP853,
)
TABLEAUS = {3: _TABLEAU_BS3, 5: _TABLEAU_DOPRI5, 8: _TABLEAU_DOP853}

# Rows of a batch's float state (each row holds the W lanes).
_X, _U, _K = 0, 3, 6  # position (kpc), direction, du/ds (1/kpc): 3 rows each
_S, _H, _DK_RATE, _AHEAD, _TARGET, _H_LIMIT, _TRIAL, _KAPPA, _ERR = range(9, 18)
_B_FAR = 18  # B (µG) on the far side of a crossing, at the Taylor point ``ahead`` (3 rows)
_ACCEPT, _NORM = 21, 22  # per trial step: 1.0 where accepted, 0.0 not; |u| at its new point
_LOCAL_MAX_STEP = 23  # the largest step the fine regions allow (kpc)
_N_FLOAT = 24
# Rows of its integer state (_CHANGED: the OR of (stage piece XOR the lane's piece) over a trial
# step's stages; _FAR_KNOWN: 1 where _B_FAR holds B at ``ahead`` and _PIECE_FAR its piece).
_PIECE, _N_STEPS, _N_EVAL, _PARTICLE, _BEGIN, _PIECE_NEW, _CHANGED, _FAR_KNOWN = range(8)
_PIECE_FAR = 8
_N_INT = 9


@njit_kernel(inline="always")
def _lane_vector(f, row, lane):
    return (f[row, lane], f[row + 1, lane], f[row + 2, lane])


@njit_kernel(inline="always")
def _set_lane_vector(f, row, lane, v):
    f[row, lane] = v[0]
    f[row + 1, lane] = v[1]
    f[row + 2, lane] = v[2]


@cache
def _lane_steps(region_kernel, piece_kernel, jump_kernel):
    """The per-lane steps of the tracer (start, prepare, check_crossing) with the field model's
    kernels built in: closures, not arguments, because a kernel handed to a compiled function
    that is not inlined becomes a pointer to its Python object in the machine code, and numba
    cannot cache such code on disk."""

    @njit_closure()
    def field_at(x_kpc, y_kpc, z_kpc, params):
        return region_kernel(x_kpc, y_kpc, z_kpc, params)

    @njit_closure()
    def field_near(params, p):
        """(B in µG as a 3-tuple, piece index) at the point p (3-tuple, kpc)."""
        bx, by, bz, piece = field_at(p[0], p[1], p[2], params)
        return (bx, by, bz), piece

    @njit_closure()
    def piece_at(params, p):
        return piece_kernel(p[0], p[1], p[2], params)

    @njit_closure()
    def bisect(params, x, u, k, piece, lo, hi, bracket):
        """Shrink [lo, hi] (path lengths on the Taylor path from x; lo in ``piece``, hi not) to at
        most ``bracket`` long; returns (lo, hi, piece look-ups)."""
        n = 0
        while hi - lo > bracket:
            mid = 0.5 * (lo + hi)
            if piece_at(params, _taylor(x, u, k, mid)) == piece:
                lo = mid
            else:
                hi = mid
            n += 1
        return lo, hi, n

    @njit_closure()
    def start(params, f, n, lane, particle, position, direction, kappa, min_step, max_step):
        """Load ``particle`` into ``lane``: its state at the start (see :func:`trace_particles`)."""
        x = (position[particle, 0], position[particle, 1], position[particle, 2])
        u = (direction[particle, 0], direction[particle, 1], direction[particle, 2])
        kap = kappa[particle]
        b, piece = field_near(params, _taylor(x, u, (0.0, 0.0, 0.0), _START_NUDGE_KPC))
        k = _cross(kap, u, b)
        _set_lane_vector(f, _X, lane, x)
        _set_lane_vector(f, _U, lane, u)
        _set_lane_vector(f, _K, lane, k)
        f[_S, lane] = 0.0
        f[_H, lane] = min(max_step, max(min_step, 0.01 / max(abs(kap), 1e-300)))
        f[_DK_RATE, lane] = k[0] * k[0] + k[1] * k[1] + k[2] * k[2]
        f[_AHEAD, lane] = -1.0  # the path leaves the piece within this length (-1: none known)
        f[_KAPPA, lane] = kap
        n[_PIECE, lane] = piece
        n[_N_STEPS, lane] = 0
        n[_N_EVAL, lane] = 1
        n[_PARTICLE, lane] = particle
        n[_BEGIN, lane] = 1
        n[_FAR_KNOWN, lane] = 0

    @njit_closure(inline="always")
    def prepare(params, f, n, lane, r_max, max_path, tol, max_step, fine):
        """Start of a step of ``lane``: its step limits and, where a crossing lies ahead, the
        bisection onto it; a crossing close enough is bridged at once (returns False: prepare
        again), else the lane is ready to step (returns True)."""
        x = _lane_vector(f, _X, lane)
        u = _lane_vector(f, _U, lane)
        k = _lane_vector(f, _K, lane)
        s = f[_S, lane]
        piece = n[_PIECE, lane]
        dk_rate = f[_DK_RATE, lane]
        ahead = f[_AHEAD, lane]
        kappa = f[_KAPPA, lane]
        h_limit = _step_limit(x, u, s, _local_max_step(x, max_step, fine), r_max, max_path)
        target = h_limit  # a step ends at most here (before a known crossing)
        if ahead > 0.0:
            probe = min(ahead, h_limit)
            # the trial step that found the crossing evaluated B beyond it, at ahead
            b_far = _lane_vector(f, _B_FAR, lane)
            piece_far = n[_PIECE_FAR, lane]
            crossed = n[_FAR_KNOWN, lane] == 1 and probe == ahead
            if not crossed:
                n[_N_EVAL, lane] += 1
                b_far, piece_far = field_near(params, _taylor(x, u, k, probe))
                crossed = piece_far != piece
            n[_FAR_KNOWN, lane] = 0
            if not crossed:
                ahead = -1.0
            else:
                k_far = _cross(kappa, u, b_far)
                jump = _norm((k_far[0] - k[0], k_far[1] - k[1], k_far[2] - k[2]))
                # the crossing's error is about (hi - lo) |dk|: bracket it to tol / |dk|; the Taylor
                # path bridges gaps where its error in u, gap² |dk/ds| / 2, is < tol / 10
                bracket = max(_MIN_BRACKET_KPC, tol / max(jump, 1e-300))
                bridgeable = np.sqrt(0.2 * tol / max(dk_rate, 1e-300))
                lo, hi, m = bisect(params, x, u, k, piece, 0.0, probe, max(bracket, 1e-3 * probe))
                n[_N_EVAL, lane] += m
                if lo <= bridgeable:
                    lo, hi, m = bisect(params, x, u, k, piece, lo, hi, bracket)
                    n[_N_EVAL, lane] += m
                if hi <= max(bridgeable, 2.0 * bracket):
                    if hi != probe:  # (else B there is known)
                        n[_N_EVAL, lane] += 1
                        b_far, piece_far = field_near(params, _taylor(x, u, k, hi))
                    x, u, k = _bridge(kappa, x, u, k, lo, hi, b_far)
                    _set_lane_vector(f, _X, lane, x)
                    _set_lane_vector(f, _U, lane, u)
                    _set_lane_vector(f, _K, lane, k)
                    n[_PIECE, lane] = piece_far
                    n[_N_STEPS, lane] += 1
                    f[_S, lane] = s + hi
                    f[_AHEAD, lane] = -1.0
                    return False
                # stop short of the crossing by four times the Taylor path's error there
                target = lo - min(0.5 * lo, 4.0 * lo * lo * lo * dk_rate / 6.0)
                ahead = hi
        f[_AHEAD, lane] = ahead
        f[_TARGET, lane] = target
        f[_H_LIMIT, lane] = h_limit
        n[_BEGIN, lane] = 0
        return True

    @njit_closure(inline="always")
    def check_crossing(params, f, n, x_new, lane, tol, min_step, jump_gain):
        """After a trial step of ``lane`` whose stages left its piece (n[_CHANGED] != 0): set
        n[_CHANGED] to 0 where the step is to be judged like any other (by :func:`_judge_steps`)
        and to -1 where it is discarded, with a crossing ahead noted (and du/ds beyond it, for
        ``prepare``) or the step halved. A step that left its piece only across jumps that the
        model bounds (``jump_kernel``) to at most tol / (|kappa| trial jump_gain) µG is judged
        like any other: its error from them is at most tol."""
        trial = f[_TRIAL, lane]
        x = _lane_vector(f, _X, lane)
        u = _lane_vector(f, _U, lane)
        k = _lane_vector(f, _K, lane)
        kappa = f[_KAPPA, lane]
        end = (x_new[0, lane], x_new[1, lane], x_new[2, lane])
        bound = jump_kernel(n[_CHANGED, lane], x[0], x[1], x[2], end[0], end[1], end[2], params)
        n[_CHANGED, lane] = 0
        if abs(kappa) * trial * jump_gain * bound <= tol:
            return
        # a stage lay in another piece: locate the crossing within this step
        n[_N_EVAL, lane] += 1
        b_far, piece_far = field_near(params, _taylor(x, u, k, trial))
        if piece_far != n[_PIECE, lane]:
            f[_AHEAD, lane] = trial
            _set_lane_vector(f, _B_FAR, lane, b_far)
            n[_PIECE_FAR, lane] = piece_far
            n[_FAR_KNOWN, lane] = 1
            n[_BEGIN, lane] = 1
            n[_CHANGED, lane] = -1
        elif trial > min_step:  # the Taylor path does not see it: shorter steps
            f[_H, lane] = 0.5 * trial
            n[_CHANGED, lane] = -1

    return start, prepare, check_crossing


@njit_kernel
def _judge_steps(f, n, x_new, u_new, k_new, w, tol, min_step, exponent, n_stages):
    """After a trial step of each of the first w lanes (new point x_new in kpc, Galactocentric,
    direction u_new, du/ds k_new in 1/kpc; tol the bound of the direction's local error,
    min_step in kpc): accept it or retry shorter, where n[_CHANGED] is 0 (the others
    :func:`_lane_steps`'s ``check_crossing`` discarded). Accepted: |u| = 1 restored, the next
    step scaled by :func:`_step_factor` (kept where the step stopped short of a crossing).

    Loops of selects over lanes that the compiler runs on SIMD lanes: the arrays are indexed
    flat (row * LANES + lane), so that it sees that rows do not overlap, and every component
    is written out. Each lane's arithmetic is that of a scalar loop."""
    fl = f.reshape(f.size)
    nl = n.reshape(n.size)
    for lane in range(w):
        trial = fl[_TRIAL * LANES + lane]
        err = fl[_ERR * LANES + lane]
        judged = nl[_CHANGED * LANES + lane] == 0
        accept = judged & ((err <= tol) | (trial <= min_step))  # (no short circuits: SIMD)
        fl[_ACCEPT * LANES + lane] = 1.0 if accept else 0.0
        # a step that stopped short of a crossing keeps its size for after it
        target = fl[_TARGET * LANES + lane]
        rescale = (not accept) | (trial < target) | (target == fl[_H_LIMIT * LANES + lane])
        h = trial * _step_factor(tol, err, exponent)
        fl[_H * LANES + lane] = h if judged & rescale else fl[_H * LANES + lane]
        s = fl[_S * LANES + lane]
        fl[_S * LANES + lane] = s + trial if accept else s
        ahead = fl[_AHEAD * LANES + lane]
        fl[_AHEAD * LANES + lane] = ahead - trial if accept & (ahead > 0.0) else ahead
    for lane in range(w):  # (the integer rows apart: with them the loop above stays scalar)
        accept = fl[_ACCEPT * LANES + lane] == 1.0
        piece = nl[_PIECE * LANES + lane]
        nl[_PIECE * LANES + lane] = nl[_PIECE_NEW * LANES + lane] if accept else piece
        nl[_N_STEPS * LANES + lane] += 1 if accept else 0
        nl[_BEGIN * LANES + lane] = 1 if accept else nl[_BEGIN * LANES + lane]
        nl[_N_EVAL * LANES + lane] += n_stages
    for lane in range(w):
        x0, x1, x2 = x_new[0, lane], x_new[1, lane], x_new[2, lane]
        accept = fl[_ACCEPT * LANES + lane] == 1.0
        fl[_X * LANES + lane] = x0 if accept else fl[_X * LANES + lane]
        fl[(_X + 1) * LANES + lane] = x1 if accept else fl[(_X + 1) * LANES + lane]
        fl[(_X + 2) * LANES + lane] = x2 if accept else fl[(_X + 2) * LANES + lane]
    for lane in range(w):
        u0, u1, u2 = u_new[0, lane], u_new[1, lane], u_new[2, lane]
        norm = np.sqrt(u0 * u0 + u1 * u1 + u2 * u2)
        fl[_NORM * LANES + lane] = norm
        accept = fl[_ACCEPT * LANES + lane] == 1.0
        fl[_U * LANES + lane] = u0 / norm if accept else fl[_U * LANES + lane]
        fl[(_U + 1) * LANES + lane] = u1 / norm if accept else fl[(_U + 1) * LANES + lane]
        fl[(_U + 2) * LANES + lane] = u2 / norm if accept else fl[(_U + 2) * LANES + lane]
    for lane in range(w):
        trial = fl[_TRIAL * LANES + lane]
        norm = fl[_NORM * LANES + lane]
        old0 = fl[_K * LANES + lane]
        old1 = fl[(_K + 1) * LANES + lane]
        old2 = fl[(_K + 2) * LANES + lane]
        kn0, kn1, kn2 = k_new[0, lane], k_new[1, lane], k_new[2, lane]
        d0, d1, d2 = kn0 - old0, kn1 - old1, kn2 - old2
        k0, k1, k2 = kn0 / norm, kn1 / norm, kn2 / norm  # u x B is linear in u
        length = trial if trial > 1e-300 else 1e-300  # (a select, not max(): SIMD)
        dk_rate = np.sqrt(d0 * d0 + d1 * d1 + d2 * d2) / length + k0 * k0 + k1 * k1 + k2 * k2
        accept = fl[_ACCEPT * LANES + lane] == 1.0
        rate = fl[_DK_RATE * LANES + lane]
        fl[_DK_RATE * LANES + lane] = dk_rate if accept else rate
        fl[_K * LANES + lane] = k0 if accept else old0
        fl[(_K + 1) * LANES + lane] = k1 if accept else old1
        fl[(_K + 2) * LANES + lane] = k2 if accept else old2


@njit_kernel
def _limit_steps(f, n, w, r_max, max_path, max_step, fine_regions):
    """Step limits (H_LIMIT, TARGET; kpc) of each of the first w lanes that begins a step with
    no crossing known ahead, inside the sphere r_max and short of max_path (the others are left
    to ``prepare``), in loops over lanes that run on SIMD lanes (see :func:`_judge_steps`)."""
    fl = f.reshape(f.size)
    nl = n.reshape(n.size)
    for lane in range(w):
        fl[_LOCAL_MAX_STEP * LANES + lane] = max_step
    for j in range(fine_regions.shape[0]):
        for lane in range(w):
            x = (fl[_X * LANES + lane], fl[(_X + 1) * LANES + lane], fl[(_X + 2) * LANES + lane])
            h = fl[_LOCAL_MAX_STEP * LANES + lane]
            fl[_LOCAL_MAX_STEP * LANES + lane] = _region_step(h, x, fine_regions, j)
    for lane in range(w):
        x = (fl[_X * LANES + lane], fl[(_X + 1) * LANES + lane], fl[(_X + 2) * LANES + lane])
        u = (fl[_U * LANES + lane], fl[(_U + 1) * LANES + lane], fl[(_U + 2) * LANES + lane])
        s = fl[_S * LANES + lane]
        inside = x[0] * x[0] + x[1] * x[1] + x[2] * x[2] < r_max * r_max
        plain = (nl[_BEGIN * LANES + lane] == 1) & (fl[_AHEAD * LANES + lane] <= 0.0)
        ready = plain & inside & (s < max_path)
        local = fl[_LOCAL_MAX_STEP * LANES + lane]
        h_limit = _step_limit(x, u, s, local, r_max, max_path)
        fl[_H_LIMIT * LANES + lane] = h_limit if ready else fl[_H_LIMIT * LANES + lane]
        fl[_TARGET * LANES + lane] = h_limit if ready else fl[_TARGET * LANES + lane]
        nl[_BEGIN * LANES + lane] = 0 if ready else nl[_BEGIN * LANES + lane]


@njit_kernel
def _pull_inside(points, out, w, r_max):
    """Copy the first w lanes' points (3, LANES; kpc) into out, those beyond the sphere r_max
    moved onto their ray at _END_SHRINK r_max (just inside it); one SIMD loop."""
    for lane in range(w):
        x0, x1, x2 = points[0, lane], points[1, lane], points[2, lane]
        r2 = x0 * x0 + x1 * x1 + x2 * x2
        scale = _END_SHRINK * r_max / np.sqrt(r2) if r2 > r_max * r_max else 1.0
        out[0, lane] = x0 * scale
        out[1, lane] = x1 * scale
        out[2, lane] = x2 * scale


@njit_kernel
def _trial_lengths(f, w, min_step):
    """Trial step (kpc) of each of the first w lanes: its step size within [min_step, H_LIMIT],
    and no further than TARGET (before a crossing); one loop over lanes (SIMD)."""
    fl = f.reshape(f.size)
    for lane in range(w):
        h = _lesser(_greater(fl[_H * LANES + lane], min_step), fl[_H_LIMIT * LANES + lane])
        fl[_H * LANES + lane] = h
        fl[_TRIAL * LANES + lane] = _lesser(h, fl[_TARGET * LANES + lane])


def _weighted_sum(weights, stages, component, first=0, stop=None):
    """Source of sum_j weights[j] * stages[j, component, lane] over the non-zero weights (j in
    [first, stop)), left to right: the same rounding as accumulating from 0."""
    stop = len(weights) if stop is None else stop
    terms = [
        f"{float(weights[j])!r} * {stages}[{j}, {component}, lane]"
        for j in range(first, stop)
        if weights[j] != 0.0
    ]
    return " + ".join(terms)


def _combination_source(weights, stop, x_out, u_out):
    """Source setting x_out, u_out to x + h sum_j w_j u_j, u + h sum_j w_j k_j over the stages
    j < stop, for the first w lanes (one loop over lanes per component); x_out and u_out are
    element templates with {c} for the component, e.g. "xs[{c}, lane]"."""
    lines = []
    for c in range(3):
        x_sum = _weighted_sum(weights, "su", c, stop=stop)
        u_sum = _weighted_sum(weights, "sk", c, stop=stop)
        lines += [
            "    for lane in range(w):",
            f"        h = f[{_TRIAL}, lane]",
            f"        {x_out.format(c=c)} = f[{_X + c}, lane] + h * ({x_sum})",
            f"        {u_out.format(c=c)} = f[{_U + c}, lane] + h * ({u_sum})",
        ]
    return lines


def _error_source(e, e3, kind, n_stages):
    """Source of the local error estimate of the direction per lane into f[_ERR]."""
    lines = ["    for lane in range(w):", f"        h = f[{_TRIAL}, lane]"]
    if kind == _ERR_DOP853:
        for name, weights in (("e5", e), ("e3", e3)):
            for c in range(3):
                lines.append(f"        {name}{c} = {_weighted_sum(weights, 'sk', c)}")
            squares = " + ".join(f"{name}{c} * {name}{c}" for c in range(3))
            lines.append(f"        {name} = np.sqrt({squares})")
        lines += [
            "        denominator = np.sqrt(e5 * e5 + 0.01 * e3 * e3)",
            f"        f[{_ERR}, lane] = h * e5 * e5 / denominator if denominator > 0.0 else 0.0",
        ]
        return lines
    stop = n_stages if kind == _ERR_SPLIT else n_stages + 1
    for c in range(3):
        lines.append(f"        e{c} = h * ({_weighted_sum(e, 'sk', c, stop=stop)})")
        if kind == _ERR_SPLIT:
            lines.append(f"        e{c} += h * ({_weighted_sum(e, 'sk', c, first=stop)})")
    lines.append(f"        f[{_ERR}, lane] = np.sqrt(e0 * e0 + e1 * e1 + e2 * e2)")
    return lines


def _step_source(tableau):
    """Source of ``batch_step(params, f, n, su, sk, xs, x_new, w, r_max)`` for one Runge–Kutta
    pair: a trial step of length f[_TRIAL] for each of the first w lanes, with the tableau's
    non-zero coefficients written out (so that each stage is one vectorisable loop per
    component). Writes the stages into su, sk (directions, du/ds), the new point into x_new and
    su[-1], du/ds there into sk[-1], and the error, clean flag and new piece into f and n. The
    stages at the step's end (c = 1, and the new point) evaluate the field at their points
    pulled inside the sphere r_max (:func:`_pull_inside`)."""
    a, b, e, e3, kind = tableau
    n_stages = a.shape[0]
    lines = [
        "def batch_step(params, f, n, su, sk, xs, x_new, w, r_max):",
        "    for c in range(3):",
        "        for lane in range(w):",
        f"            su[0, c, lane] = f[{_U} + c, lane]",
        f"            sk[0, c, lane] = f[{_K} + c, lane]",
        "    for lane in range(w):",
        f"        n[{_CHANGED}, lane] = 0",
    ]
    for i in range(1, n_stages):
        lines += _combination_source(a[i], i, "xs[{c}, lane]", f"su[{i}, {{c}}, lane]")
        if abs(a[i].sum() - 1.0) < 1e-12:  # a stage at the step's end
            lines.append("    _pull_inside(xs, xs, w, r_max)")
        lines.append(f"    derivatives(params, f, n, xs, su[{i}], sk[{i}], n[{_PIECE_NEW}], w)")
    lines += _combination_source(b, n_stages, "x_new[{c}, lane]", f"su[{n_stages}, {{c}}, lane]")
    lines += [
        "    _pull_inside(x_new, xs, w, r_max)",
        f"    derivatives(params, f, n, xs, su[{n_stages}], sk[{n_stages}], n[{_PIECE_NEW}], w)",
    ]
    lines += _error_source(e, e3, kind, n_stages)
    return "\n".join(lines) + "\n"


@cache
def lockstep_tracer(region_kernel, piece_kernel, jump_kernel, n_params, order):
    """Compiled tracer of the particles first ... last - 1 (see :func:`trace_particles`) for one
    field model and Runge–Kutta pair (``order``):
    ``region_kernel`` (field and piece index, :attr:`crsky.fields.FieldModel.piecewise_kernel`)
    is inlined into the loop over lanes, ``piece_kernel`` answers the bisections and
    ``jump_kernel`` bounds the jumps a step may cross without locating them. A parameter
    vector of at most ``_MAX_TUPLE_PARAMS`` values (``n_params``) reaches the kernels as a tuple
    of constants, so the loop over lanes can be vectorised; a longer one (turbulence) stays an
    array."""

    if n_params <= _MAX_TUPLE_PARAMS:

        @njit_closure()
        def lane_params(params):
            return to_fixed_tuple(params, n_params)

    else:

        @njit_closure()
        def lane_params(params):
            return params

    start, prepare, check_crossing = _lane_steps(region_kernel, piece_kernel, jump_kernel)

    @njit_closure()
    def derivatives(params, f, n, xs, us, sk_i, pieces, w):
        """du/ds at the stage points (xs, us) of the first w lanes into sk_i and their pieces
        into ``pieces``; a lane whose point lies outside its piece notes the bits that differ."""
        for lane in range(w):
            bx, by, bz, piece = region_kernel(xs[0, lane], xs[1, lane], xs[2, lane], params)
            kappa = f[_KAPPA, lane]
            sk_i[0, lane] = kappa * (us[1, lane] * bz - us[2, lane] * by)
            sk_i[1, lane] = kappa * (us[2, lane] * bx - us[0, lane] * bz)
            sk_i[2, lane] = kappa * (us[0, lane] * by - us[1, lane] * bx)
            pieces[lane] = piece
        for lane in range(w):
            n[_CHANGED, lane] |= pieces[lane] ^ n[_PIECE, lane]

    n_stages = TABLEAUS[order][0].shape[0]
    # |error of u| of a step of length h across a jump dk of du/ds <= h |dk| jump_gain: the
    # stages past the jump weigh dk by a partial sum of the weights b, the exact path by <= h
    jump_gain = 1.0 + float(np.sum(np.abs(TABLEAUS[order][1])))
    exponent = 1.0 / order  # of the step-size factor
    namespace = {"np": np, "derivatives": derivatives, "_pull_inside": _pull_inside}
    exec(_step_source(TABLEAUS[order]), namespace)
    batch_step = njit_closure()(namespace["batch_step"])

    # the one function of the tracer compiled to machine code on disk: a later process (each
    # job of a workflow) loads it instead of compiling the tracer again (seconds to a minute);
    # it releases the GIL, so threads trace chunks side by side (see trace_particles)
    @njit_cached_by_content()
    def trace_batch(
        params,
        position,
        direction,
        kappa,
        first,
        last,
        r_max,
        max_path,
        tol,
        min_step,
        max_step,
        fine,
        out_x,
        out_u,
        out_s,
        out_steps,
        out_eval,
    ):
        """Trace the particles first ... last - 1 on LANES lanes; results into the out_* arrays."""
        params = lane_params(params)
        f = np.zeros((_N_FLOAT, LANES))
        n = np.zeros((_N_INT, LANES), dtype=np.int64)
        su = np.zeros((n_stages + 1, 3, LANES))
        sk = np.zeros((n_stages + 1, 3, LANES))
        xs = np.zeros((3, LANES))
        x_new = np.zeros((3, LANES))
        next_particle = first
        width = 0  # lanes 0 ... width - 1 hold particles; finished lanes are closed up
        while width < LANES and next_particle < last:
            start(
                params,
                f,
                n,
                width,
                next_particle,
                position,
                direction,
                kappa,
                min_step,
                max_step,
            )
            next_particle += 1
            width += 1
        while width > 0:
            _limit_steps(f, n, width, r_max, max_path, max_step, fine)
            lane = 0
            while lane < width:
                if n[_BEGIN, lane] == 1:
                    x = _lane_vector(f, _X, lane)
                    inside = x[0] * x[0] + x[1] * x[1] + x[2] * x[2] < r_max * r_max
                    if inside and f[_S, lane] < max_path:
                        prepare(
                            params,
                            f,
                            n,
                            lane,
                            r_max,
                            max_path,
                            tol,
                            max_step,
                            fine,
                        )
                        continue
                    i = n[_PARTICLE, lane]
                    for c in range(3):
                        out_x[i, c] = f[_X + c, lane]
                        out_u[i, c] = f[_U + c, lane]
                    out_s[i] = f[_S, lane]
                    out_steps[i] = n[_N_STEPS, lane]
                    out_eval[i] = n[_N_EVAL, lane]
                    if next_particle < last:
                        start(
                            params,
                            f,
                            n,
                            lane,
                            next_particle,
                            position,
                            direction,
                            kappa,
                            min_step,
                            max_step,
                        )
                        next_particle += 1
                    else:  # the last lane's particle moves here
                        width -= 1
                        for row in range(_N_FLOAT):  # (loops: a slice assignment costs
                            f[row, lane] = f[row, width]  # seconds of compilation)
                        for row in range(_N_INT):
                            n[row, lane] = n[row, width]
                    continue
                lane += 1
            if width == 0:
                break
            _trial_lengths(f, width, min_step)
            batch_step(params, f, n, su, sk, xs, x_new, width, r_max)
            for lane in range(width):
                if n[_CHANGED, lane] != 0:
                    check_crossing(params, f, n, x_new, lane, tol, min_step, jump_gain)
            _judge_steps(
                f, n, x_new, su[n_stages], sk[n_stages], width, tol, min_step, exponent, n_stages
            )

    return trace_batch


def trace_particles(
    kernel,
    piece_kernel,
    jump_kernel,
    params,
    position_kpc,
    direction,
    kappa,
    r_max,
    max_path,
    tol,
    min_step,
    max_step,
    out_position_kpc,
    out_direction,
    out_path_kpc,
    out_n_steps,
    out_n_evaluations,
    fine_regions,
    order,
    threads,
):
    """Trace N particles (``threads`` threads share them in chunks); results go to the ``out_*``
    arrays (N, 3), (N, 3), (N,), (N,), (N,): final position (kpc), direction, path length (kpc),
    accepted steps and crossings, field-model calls (every stage of every trial step, the
    piece look-ups of the bisections).

    kernel: the field model's region kernel (:attr:`crsky.fields.FieldModel.piecewise_kernel`);
    piece_kernel: its piece index alone (:attr:`crsky.fields.FieldModel.piece_index_kernel`);
    jump_kernel: its bound of the jumps (:attr:`crsky.fields.FieldModel.jump_bound_kernel`);
    params: its float64 parameter vector; position_kpc, direction: (N, 3) float64 start states;
    kappa: (N,) float64 in 1/(kpc µG); r_max, max_path, min_step, max_step in kpc; tol the local
    error bound of the direction per step; fine_regions: (M, 5) float64 (centre, radius,
    max_step in kpc) of the field model; order: 5 (Dormand–Prince 5(4)), 3 (Bogacki–Shampine
    3(2)) or 8 (Dormand–Prince 8(5,3)); threads >= 1. Each particle's track is independent of
    the others, of the lanes and of the number of threads (same inputs, same bytes).
    """
    trace_batch = lockstep_tracer(kernel, piece_kernel, jump_kernel, params.size, order)
    arrays = (params, position_kpc, direction, kappa)
    limits = (r_max, max_path, tol, min_step, max_step, fine_regions)
    outputs = (out_position_kpc, out_direction, out_path_kpc, out_n_steps, out_n_evaluations)
    n_particles = len(kappa)
    # one chunk per thread alone (each chunk ends with lanes idling for its slowest particles),
    # four per thread where threads share the work, taken in turn from a queue
    chunk = max(4 * LANES, -(-n_particles // (1 if threads == 1 else 4 * threads)))
    starts = range(0, n_particles, chunk)

    def trace_chunk(first: int) -> None:
        trace_batch(*arrays, first, min(n_particles, first + chunk), *limits, *outputs)

    if threads == 1 or len(starts) == 1:
        for first in starts:
            trace_chunk(first)
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(trace_chunk, starts):
            pass  # re-raises a chunk's error
