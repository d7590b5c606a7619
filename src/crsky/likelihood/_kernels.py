"""Compiled kernels of the likelihood analyses (called by :mod:`crsky.likelihood`, which checks
inputs). Notation as in the package docstring: N CRs per map, r_i = s_i / b_i the signal-to-
background density ratio of CR i under one source hypothesis, f the signal fraction.

Toy-model parameters are packed in one float64 vector (indices ``P_*``) so that the kernels keep
a short signature.
"""

import math

import numpy as np
from numba import prange

from crsky._numba import njit_kernel, njit_parallel

__all__ = [
    "P_BLUR",
    "P_CUT",
    "P_FOUR_PI_WBAR",
    "P_PIX_VAR",
    "P_ROT",
    "P_SIZE",
    "exact_log_lr_maps",
    "fit_fraction_maps",
    "log_elementary_ratio",
    "mixture_log_lr",
    "mixture_log_lr_maps",
    "profile_fraction",
    "sparse_profile_maps",
    "sparse_ratios",
    "toy_acceptance",
    "toy_acceptance_many",
    "toy_profile_maps",
    "toy_ratios",
]

# toy parameter vector
P_ROT = 0  # coherent rotation constant c_rot (rad · EV)
P_BLUR = 1  # blurring constant blur_fraction · 2.79 (rad · EV)
P_PIX_VAR = 2  # variance (rad²) added for the map pixel: Ω_pix / 12
P_CUT = 3  # ln(1 / ε): a Fisher component is cut where its density is ε of its peak
P_FOUR_PI_WBAR = 4  # 4π · mean relative exposure of the map's pixels
P_SIZE = 5

_NEWTON_ITERATIONS = 60
_F_TOLERANCE = 1e-12


# --- the signal fraction -----------------------------------------------------------------------


@njit_kernel
def _log_lr_at(values, n_values, n_cr, f):
    """Λ(f) = Σ_m ln(1 + f (v_m − 1)) + (N − n_values) ln(1 − f)."""
    total = 0.0
    for m in range(n_values):
        total += math.log1p(f * (values[m] - 1.0))
    if n_values < n_cr:
        total += (n_cr - n_values) * math.log1p(-f)
    return total


@njit_kernel
def profile_fraction(values, n_values, n_cr, tolerance=_F_TOLERANCE):
    """Maximum over f in [0, 1] of the mixture log-likelihood ratio Λ(f) (see _log_lr_at) of a
    map whose CRs have ratios ``values[:n_values]`` (> 0) and r = 0 for the other
    n_cr − n_values CRs. Returns (Λ_max ≥ 0, f_hat). Λ is concave in f; its derivative
    D(f) = Σ (v − 1) / (1 + f (v − 1)) − (N − n) / (1 − f) is found by safeguarded Newton."""
    d0 = -float(n_cr)
    for m in range(n_values):
        d0 += values[m]
    if d0 <= 0.0:
        return 0.0, 0.0
    n_zero = n_cr - n_values
    if n_zero == 0:  # D(1) is finite: f = 1 if the likelihood still rises there
        d1 = 0.0
        for m in range(n_values):
            d1 += 1.0 - 1.0 / values[m]
        if d1 >= 0.0:
            total = 0.0
            for m in range(n_values):
                total += math.log(values[m])
            return max(total, 0.0), 1.0
    lo, hi = 0.0, 1.0
    curvature = float(n_zero)
    for m in range(n_values):
        curvature += (values[m] - 1.0) ** 2
    f = min(d0 / curvature, 0.5)
    for _ in range(_NEWTON_ITERATIONS):
        d = 0.0
        dd = 0.0
        for m in range(n_values):
            a = values[m] - 1.0
            q = a / (1.0 + f * a)
            d += q
            dd += q * q
        if n_zero > 0:
            g = 1.0 / (1.0 - f)
            d -= n_zero * g
            dd += n_zero * g * g
        if d > 0.0:
            lo = f
        else:
            hi = f
        step = d / dd if dd > 0.0 else 0.0
        new = f + step
        if not (lo < new < hi):
            new = 0.5 * (lo + hi)
        if abs(new - f) <= tolerance * max(f, 1e-300) or hi - lo <= tolerance:
            f = new
            break
        f = new
    return max(_log_lr_at(values, n_values, n_cr, f), 0.0), f


@njit_kernel
def mixture_log_lr(ratios, f):
    """ln Π_i (1 − f + f r_i): the log-likelihood ratio of the binomial mixture at fraction f."""
    total = 0.0
    for i in range(ratios.size):
        total += math.log1p(f * (ratios[i] - 1.0)) if f < 1.0 else math.log(ratios[i])
    return total


@njit_kernel
def _logaddexp(a, b):
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


@njit_kernel
def log_elementary_ratio(ratios, n):
    """ln [e_n(r) / C(N, n)]: the exact log-likelihood ratio of a map of N CRs with exactly n
    signal CRs (any n-subset equally likely), e_n the elementary symmetric polynomial of the
    ratios r (N,) ≥ 0. Log-space recursion e_k ← e_k + r e_(k−1), O(N n); −inf when fewer than
    n CRs have r > 0 (the map is impossible under the signal hypothesis)."""
    n_cr = ratios.size
    if n == 0:
        return 0.0
    le = np.full(n + 1, -np.inf)
    le[0] = 0.0
    seen = 0
    for i in range(n_cr):
        r = ratios[i]
        if r <= 0.0:
            continue
        lr = math.log(r)
        seen += 1
        for k in range(min(seen, n), 0, -1):
            le[k] = _logaddexp(le[k], lr + le[k - 1])
    log_binomial = math.lgamma(n_cr + 1.0) - math.lgamma(n + 1.0) - math.lgamma(n_cr - n + 1.0)
    return le[n] - log_binomial


# --- lens mode (and no deflection): sparse ratio rows --------------------------------------------


@njit_kernel
def _sparse_lookup(indptr, indices, data, b, row, column):
    lo = indptr[b, row]
    hi = indptr[b, row + 1]
    while lo < hi:  # indices sorted within each row
        mid = (lo + hi) >> 1
        if indices[mid] < column:
            lo = mid + 1
        else:
            hi = mid
    if lo < indptr[b, row + 1] and indices[lo] == column:
        return float(data[lo])
    return 0.0


@njit_parallel
def sparse_ratios(pixel, bins, fractions, source_columns, source_weights, indptr, indices, data):
    """Ratios r (n_maps, N) of every CR for given sources (oracle, lens mode).

    ``pixel`` (n_maps, N) stored pixels; ``bins`` (n_maps, N, K) the ratio-matrix slot of each CR
    for each charge (−1: none); ``fractions`` (K,) charge fractions; ``source_columns`` and
    ``source_weights`` (n_maps, n_src): the lens column of each source and its share of the
    observed signal; ``indptr`` (B, rows + 1), ``indices``, ``data``: CSR ratio matrices
    H_b[p, j] (r of one charge for a CR in pixel p from source column j).
    """
    n_maps, n_cr = pixel.shape
    out = np.zeros((n_maps, n_cr))
    for m in prange(n_maps):
        for i in range(n_cr):
            total = 0.0
            for k in range(fractions.size):
                b = bins[m, i, k]
                if b < 0:
                    continue
                for s in range(source_columns.shape[1]):
                    value = _sparse_lookup(
                        indptr, indices, data, b, pixel[m, i], source_columns[m, s]
                    )
                    total += source_weights[m, s] * fractions[k] * value
            out[m, i] = total
    return out


@njit_kernel
def _sparse_profile_one(pixel, bins, fractions, indptr, indices, data, column_ok, stamp, count):
    """(Λ_max, f_hat, column) of one map (``pixel`` (N,), ``bins`` (N, K)) profiled over every
    source column j with ``column_ok[j]``; column −1 when no column beats f = 0.

    CR i's ratio for column j is Σ_k fractions[k] H_(bins[i, k])[pixel[i], j]: the rows of its
    charges are merged per CR (``stamp``), then the (column, ratio) pairs are grouped by column
    with a counting sort, and f is profiled per column (CRs outside a column's rows have r = 0).
    ``stamp`` (n_columns,) int64 must hold −1 and ``count`` (n_columns,) int64 0 on entry; both
    are restored on exit.
    """
    n_cr = pixel.size
    n_k = fractions.size
    cap = 0
    for i in range(n_cr):
        for k in range(n_k):
            b = bins[i, k]
            if b >= 0:
                cap += indptr[b, pixel[i] + 1] - indptr[b, pixel[i]]
    if cap == 0:
        return 0.0, 0.0, -1
    pair_column = np.empty(cap, dtype=np.int64)
    pair_value = np.empty(cap)
    touched = np.empty(cap, dtype=np.int64)
    n_pairs = 0
    n_touched = 0
    for i in range(n_cr):
        first = n_pairs
        for k in range(n_k):
            b = bins[i, k]
            if b < 0:
                continue
            for e in range(indptr[b, pixel[i]], indptr[b, pixel[i] + 1]):
                j = indices[e]
                if not column_ok[j]:
                    continue
                v = fractions[k] * data[e]
                if stamp[j] != i:  # first entry of CR i in column j
                    stamp[j] = i
                    pair_column[n_pairs] = j
                    pair_value[n_pairs] = v
                    n_pairs += 1
                else:  # another charge of the same CR: add to its pair
                    q = n_pairs - 1
                    while pair_column[q] != j:
                        q -= 1
                    pair_value[q] += v
        for q in range(first, n_pairs):
            j = pair_column[q]
            stamp[j] = -1
            if count[j] == 0:
                touched[n_touched] = j
                n_touched += 1
            count[j] += 1
    end = np.empty(n_touched, dtype=np.int64)
    position = 0
    for t in range(n_touched):  # count[j] becomes the write position of column j
        j = touched[t]
        c = count[j]
        count[j] = position
        position += c
        end[t] = position
    grouped = np.empty(n_pairs)
    for q in range(n_pairs):
        j = pair_column[q]
        grouped[count[j]] = pair_value[q]
        count[j] += 1
    best, best_f, best_j = 0.0, 0.0, -1
    start = 0
    for t in range(n_touched):
        j = touched[t]
        stop = end[t]
        log_lr, f = profile_fraction(grouped[start:stop], stop - start, n_cr)
        if log_lr > best:
            best, best_f, best_j = log_lr, f, j
        start = stop
        count[j] = 0
    return best, best_f, best_j


@njit_parallel
def sparse_profile_maps(pixel, bins, fractions, indptr, indices, data, column_ok):
    """:func:`_sparse_profile_one` for every map of ``pixel`` (n_maps, N), ``bins`` (n_maps, N,
    K): (Λ_max, f_hat, column) arrays (n_maps,), parallel over maps."""
    n_maps = pixel.shape[0]
    n_columns = column_ok.size
    log_lr = np.zeros(n_maps)
    f_hat = np.zeros(n_maps)
    column = np.full(n_maps, -1, dtype=np.int64)
    for m in prange(n_maps):
        stamp = np.full(n_columns, -1, dtype=np.int64)
        count = np.zeros(n_columns, dtype=np.int64)
        log_lr[m], f_hat[m], column[m] = _sparse_profile_one(
            pixel[m], bins[m], fractions, indptr, indices, data, column_ok, stamp, count
        )
    return log_lr, f_hat, column


# --- toy model: coherent rotation and Fisher blurring ---------------------------------------------


@njit_kernel
def _table_value(table, table_params, sin_dec, log_sigma):
    """Bilinear interpolation of the smoothed exposure W(sin δ, ln σ) (clamped to the table)."""
    x_lo, x_step, s_lo, s_step = table_params[0], table_params[1], table_params[2], table_params[3]
    nx, ns = table.shape
    u = min(max((sin_dec - x_lo) / x_step, 0.0), nx - 1.000001)
    v = min(max((log_sigma - s_lo) / s_step, 0.0), ns - 1.000001)
    a = int(u)
    b = int(v)
    u -= a
    v -= b
    return (1.0 - u) * ((1.0 - v) * table[a, b] + v * table[a, b + 1]) + u * (
        (1.0 - v) * table[a + 1, b] + v * table[a + 1, b + 1]
    )


@njit_kernel
def _component_sigma2(params, alpha, sigma, var_pos, dphi):
    """Variance (rad²) of a Fisher component: blurring ⊕ map pixel ⊕ grid cell (coarse levels:
    position cell Ω/12 and the axis step, α² Δφ² / 12)."""
    return sigma * sigma + params[P_PIX_VAR] + var_pos + alpha * alpha * dphi * dphi / 12.0


@njit_kernel
def toy_acceptance(
    s,
    t,
    var_pos,
    dphi,
    log10_charge,
    fractions,
    node_lg_e,
    node_w,
    params,
    pole,
    table,
    table_params,
):
    """A(s, t): expected fraction of the emitted CRs of a source at unit vector ``s`` deflected
    towards unit tangent ``t`` that are observed: Σ_k c_k Σ_q w_q W(δ(c_kq), σ_kq), with c_kq the
    rotated direction and σ_kq the blurring of charge k at energy node q, and W the exposure
    smoothed with the Fisher kernel."""
    total = 0.0
    for k in range(fractions.size):
        if fractions[k] <= 0.0:
            continue
        for q in range(node_w.size):
            inv_r = 10.0 ** (18.0 - node_lg_e[q] + log10_charge[k])  # EV / R
            alpha = params[P_ROT] * inv_r
            sigma = params[P_BLUR] * inv_r
            ca, sa = math.cos(alpha), math.sin(alpha)
            sin_dec = (
                (ca * s[0] + sa * t[0]) * pole[0]
                + (ca * s[1] + sa * t[1]) * pole[1]
                + (ca * s[2] + sa * t[2]) * pole[2]
            )
            s2 = _component_sigma2(params, alpha, sigma, var_pos, dphi)
            total += (
                fractions[k]
                * node_w[q]
                * _table_value(table, table_params, sin_dec, 0.5 * math.log(s2))
            )
    return total


@njit_parallel
def toy_acceptance_many(
    s,
    e1,
    e2,
    n_phi,
    var_pos,
    dphi,
    log10_charge,
    fractions,
    node_lg_e,
    node_w,
    params,
    pole,
    table,
    table_params,
):
    """A (n_pos, n_phi) for source positions ``s`` (n_pos, 3) with tangent bases ``e1``, ``e2``
    and tangents t = cos φ e1 + sin φ e2 at φ = 2π m / n_phi."""
    out = np.empty((s.shape[0], n_phi))
    for p in prange(s.shape[0]):
        t = np.empty(3)
        for m in range(n_phi):
            phi = 2.0 * math.pi * m / n_phi
            c, sn = math.cos(phi), math.sin(phi)
            for a in range(3):
                t[a] = c * e1[p, a] + sn * e2[p, a]
            out[p, m] = toy_acceptance(
                s[p],
                t,
                var_pos,
                dphi,
                log10_charge,
                fractions,
                node_lg_e,
                node_w,
                params,
                pole,
                table,
                table_params,
            )
    return out


@njit_kernel
def _toy_components(lg_e, log10_charge, fractions, params, var_pos, dphi, cut):
    """Per CR (N,) and charge (K,): cos α, sin α, κ, normalisation c_k 4π ω̄ κ / (2π (1 − e^−2κ)),
    cosine of the cut angle, and per CR the cosine of its reach max_k (α + cut angle)."""
    n, n_k = lg_e.size, fractions.size
    ca = np.empty((n, n_k))
    sa = np.empty((n, n_k))
    kappa = np.empty((n, n_k))
    norm = np.empty((n, n_k))
    cut_cos = np.empty((n, n_k))
    reach_cos = np.empty(n)
    for i in range(n):
        reach = 0.0
        for k in range(n_k):
            inv_r = 10.0 ** (18.0 - lg_e[i] + log10_charge[k])
            alpha = params[P_ROT] * inv_r
            sigma = params[P_BLUR] * inv_r
            kap = 1.0 / _component_sigma2(params, alpha, sigma, var_pos, dphi)
            ca[i, k] = math.cos(alpha)
            sa[i, k] = math.sin(alpha)
            kappa[i, k] = kap
            norm[i, k] = (
                fractions[k]
                * params[P_FOUR_PI_WBAR]
                * kap
                / (2.0 * math.pi * -math.expm1(-2.0 * kap))
            )
            c = 1.0 - cut / kap
            cut_cos[i, k] = c if c > -1.0 else -2.0
            angle = math.pi if c <= -1.0 else math.acos(c)
            if fractions[k] > 0.0:
                reach = max(reach, alpha + angle)
        reach_cos[i] = math.cos(reach) if reach < math.pi else -2.0
    return ca, sa, kappa, norm, cut_cos, reach_cos


@njit_kernel
def _toy_ratio(i, x0, xt, ca, sa, kappa, norm, cut_cos):
    """Σ_k norm_k exp(κ_k (d · c_k − 1)) for CR i with d · s = x0 and d · t = xt."""
    total = 0.0
    for k in range(ca.shape[1]):
        x = ca[i, k] * x0 + sa[i, k] * xt
        if x >= cut_cos[i, k]:
            total += norm[i, k] * math.exp(kappa[i, k] * (x - 1.0))
    return total


@njit_parallel
def toy_ratios(vectors, lg_e, sources, tangents, weights, log10_charge, fractions, params):
    """Ratios r (n_maps, N) of every CR for the given sources (oracle): ``vectors`` (n_maps, N,
    3) CR unit vectors, ``lg_e`` (n_maps, N) log10(E / eV), ``sources`` and ``tangents``
    (n_maps, n_src, 3), ``weights`` (n_maps, n_src) = w_j / Σ_l w_l A_l (flux share over the
    flux-weighted acceptance). No cut (``params[P_CUT]`` is ignored), finest level."""
    n_maps, n_cr = lg_e.shape
    out = np.zeros((n_maps, n_cr))
    for m in prange(n_maps):
        ca, sa, kappa, norm, cut_cos, _ = _toy_components(
            lg_e[m], log10_charge, fractions, params, 0.0, 0.0, 1e300
        )
        for j in range(sources.shape[1]):
            s = sources[m, j]
            t = tangents[m, j]
            for i in range(n_cr):
                d = vectors[m, i]
                x0 = d[0] * s[0] + d[1] * s[1] + d[2] * s[2]
                xt = d[0] * t[0] + d[1] * t[1] + d[2] * t[2]
                out[m, i] += weights[m, j] * _toy_ratio(i, x0, xt, ca, sa, kappa, norm, cut_cos)
    return out


@njit_kernel
def _toy_hypothesis(
    n_cr,
    keep,
    n_keep,
    x0,
    x1,
    x2,
    c,
    sn,
    acceptance,
    ca,
    sa,
    kappa,
    norm,
    cut_cos,
    values,
    tolerance,
):
    """(Λ_max, f_hat) of one hypothesis over the CRs ``keep[:n_keep]`` (the others have r = 0
    here), with d · s = x0[q] and d · t = c x1[q] + sn x2[q] for t = c e1 + sn e2."""
    n_values = 0
    inv_a = 1.0 / acceptance
    for q in range(n_keep):
        r = _toy_ratio(keep[q], x0[q], c * x1[q] + sn * x2[q], ca, sa, kappa, norm, cut_cos)
        if r > 0.0:
            values[n_values] = r * inv_a
            n_values += 1
    return profile_fraction(values, n_values, n_cr, tolerance)


@njit_kernel
def _within_reach(vectors, s, e1, e2, reach_cos, keep, x0, x1, x2):
    """CRs within reach of position s (their indices in ``keep``) and their dot products with
    s, e1 and e2."""
    n_keep = 0
    for i in range(vectors.shape[0]):
        d = vectors[i]
        x = d[0] * s[0] + d[1] * s[1] + d[2] * s[2]
        if x >= reach_cos[i]:
            keep[n_keep] = i
            x0[n_keep] = x
            x1[n_keep] = d[0] * e1[0] + d[1] * e1[1] + d[2] * e1[2]
            x2[n_keep] = d[0] * e2[0] + d[1] * e2[1] + d[2] * e2[2]
            n_keep += 1
    return n_keep


@njit_kernel
def _push(best_val, best_pos, best_phi, value, pos, phi):
    """Keep the K largest values (replace the smallest)."""
    low = 0
    for q in range(1, best_val.size):
        if best_val[q] < best_val[low]:
            low = q
    if value > best_val[low]:
        best_val[low] = value
        best_pos[low] = pos
        best_phi[low] = phi


@njit_kernel
def _level_smoothing(level, n_levels, n_pos, n_phi):
    """(position variance, axis step) added to the kernels at a level: the cell of a coarse
    level (Ω / 12 and Δφ), nothing at the finest (exact) level."""
    if level == n_levels - 1:
        return 0.0, 0.0
    return 4.0 * math.pi / n_pos / 12.0, 2.0 * math.pi / n_phi


@njit_kernel
def _toy_profile_one(
    vectors,
    lg_e,
    grid_vec,
    grid_e1,
    grid_e2,
    level_offset,
    n_phi0,
    a0,
    floor,
    n_candidates,
    log10_charge,
    fractions,
    node_lg_e,
    node_w,
    params,
    pole,
    table,
    table_params,
):
    """Coarse-to-fine profile of one map: every (position, axis) of level 0, then at each finer
    level the children of the ``n_candidates`` best hypotheses (4 NESTED children × 3 axis
    directions); coarse levels widen the kernels by their cell, the finest level is exact.
    Returns (Λ_max, f_hat, position index and axis index at the finest level, or −1)."""
    n_cr = lg_e.size
    n_levels = level_offset.size - 1
    cut = params[P_CUT]
    keep = np.empty(n_cr, dtype=np.int64)
    x0 = np.empty(n_cr)
    x1 = np.empty(n_cr)
    x2 = np.empty(n_cr)
    values = np.empty(n_cr)
    best_val = np.full(n_candidates, -1.0)
    best_pos = np.full(n_candidates, -1, dtype=np.int64)
    best_phi = np.full(n_candidates, -1, dtype=np.int64)
    result_val, result_f, result_pos, result_phi = 0.0, 0.0, -1, -1
    for level in range(n_levels):
        n_phi = n_phi0 << level
        n_pos = level_offset[level + 1] - level_offset[level]
        last = level == n_levels - 1
        tolerance = _F_TOLERANCE if last else 1e-6
        var_pos, dphi = _level_smoothing(level, n_levels, n_pos, n_phi)
        ca, sa, kappa, norm, cut_cos, reach_cos = _toy_components(
            lg_e, log10_charge, fractions, params, var_pos, dphi, cut
        )
        if level == 0:  # every hypothesis
            keys = np.arange(n_pos * n_phi)
        else:  # children of the candidates, sorted by position
            keys = np.empty(n_candidates * 12, dtype=np.int64)
            n_keys = 0
            for c_i in range(n_candidates):
                if best_pos[c_i] < 0:
                    continue
                for child in range(4):
                    pos = 4 * best_pos[c_i] + child
                    for dm in range(-1, 2):
                        keys[n_keys] = pos * n_phi + (2 * best_phi[c_i] + dm) % n_phi
                        n_keys += 1
            keys = np.unique(keys[:n_keys])
        best_val[:] = -1.0
        best_pos[:] = -1
        best_phi[:] = -1
        current = -1
        n_keep = 0
        for key in keys:
            pos = key // n_phi
            m = key % n_phi
            g = level_offset[level] + pos
            if level == 0:
                acceptance = a0[pos, m]
                if acceptance < floor:
                    continue
            if pos != current:
                current = pos
                n_keep = _within_reach(
                    vectors, grid_vec[g], grid_e1[g], grid_e2[g], reach_cos, keep, x0, x1, x2
                )
            if n_keep == 0:
                continue
            phi = 2.0 * math.pi * m / n_phi
            c, sn = math.cos(phi), math.sin(phi)
            if level > 0:
                t = c * grid_e1[g] + sn * grid_e2[g]
                acceptance = toy_acceptance(
                    grid_vec[g],
                    t,
                    var_pos,
                    dphi,
                    log10_charge,
                    fractions,
                    node_lg_e,
                    node_w,
                    params,
                    pole,
                    table,
                    table_params,
                )
                if acceptance < floor:
                    continue
            log_lr, f = _toy_hypothesis(
                n_cr,
                keep,
                n_keep,
                x0,
                x1,
                x2,
                c,
                sn,
                acceptance,
                ca,
                sa,
                kappa,
                norm,
                cut_cos,
                values,
                tolerance,
            )
            _push(best_val, best_pos, best_phi, log_lr, pos, m)
            if last and log_lr > result_val:
                result_val, result_f, result_pos, result_phi = log_lr, f, pos, m
    return result_val, result_f, result_pos, result_phi


@njit_parallel
def toy_profile_maps(
    vectors,
    lg_e,
    grid_vec,
    grid_e1,
    grid_e2,
    level_offset,
    n_phi0,
    a0,
    floor,
    n_candidates,
    log10_charge,
    fractions,
    node_lg_e,
    node_w,
    params,
    pole,
    table,
    table_params,
):
    """:func:`_toy_profile_one` for every map (``vectors`` (n_maps, N, 3), ``lg_e`` (n_maps,
    N)), parallel over maps: (Λ_max, f_hat, position, axis index) arrays (n_maps,)."""
    n_maps = lg_e.shape[0]
    log_lr = np.zeros(n_maps)
    f_hat = np.zeros(n_maps)
    position = np.full(n_maps, -1, dtype=np.int64)
    axis = np.full(n_maps, -1, dtype=np.int64)
    for m in prange(n_maps):
        log_lr[m], f_hat[m], position[m], axis[m] = _toy_profile_one(
            vectors[m],
            lg_e[m],
            grid_vec,
            grid_e1,
            grid_e2,
            level_offset,
            n_phi0,
            a0,
            floor,
            n_candidates,
            log10_charge,
            fractions,
            node_lg_e,
            node_w,
            params,
            pole,
            table,
            table_params,
        )
    return log_lr, f_hat, position, axis


# --- per-map wrappers of the oracle -----------------------------------------------------------


@njit_parallel
def exact_log_lr_maps(ratios, n_signal):
    """:func:`log_elementary_ratio` of every map: ``ratios`` (n_maps, N), ``n_signal`` (n_maps,)."""
    out = np.empty(ratios.shape[0])
    for m in prange(ratios.shape[0]):
        out[m] = log_elementary_ratio(ratios[m], n_signal[m])
    return out


@njit_parallel
def mixture_log_lr_maps(ratios, f):
    """:func:`mixture_log_lr` of every map at its fraction ``f`` (n_maps,)."""
    out = np.empty(ratios.shape[0])
    for m in prange(ratios.shape[0]):
        out[m] = mixture_log_lr(ratios[m], f[m])
    return out


@njit_parallel
def fit_fraction_maps(ratios):
    """(Λ_max, f_hat) (n_maps,) of every map for its fixed ratios (the oracle's source)."""
    n_maps, n_cr = ratios.shape
    log_lr = np.empty(n_maps)
    f_hat = np.empty(n_maps)
    for m in prange(n_maps):
        values = np.empty(n_cr)
        n = 0
        for i in range(n_cr):
            if ratios[m, i] > 0.0:
                values[n] = ratios[m, i]
                n += 1
        log_lr[m], f_hat[m] = profile_fraction(values, n, n_cr)
    return log_lr, f_hat
