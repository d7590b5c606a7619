"""Compiled helpers of the sky package (called by the public modules, which check inputs)."""

import numpy as np

from crsky._numba import njit_kernel

__all__ = [
    "alias_lookup",
    "background_keys",
    "build_alias_table",
    "categorical_lookup",
    "fisher_rows",
    "keep_first",
    "pack_alias_table",
    "perpendicular_rows",
    "rotate_rows",
    "scatter_keys",
    "sommers_rows",
    "sort_rows",
    "table_lookup",
    "toy_rows",
    "unpack_keys",
]

_TWO_TO_MINUS_53 = 2.0**-53  # a uniform in [0, 1) is the top 53 of 64 random bits times this


@njit_kernel
def build_alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table of non-negative float64 ``weights`` (k,) with a positive sum.

    Returns (accept (k,) float64, alias (k,) int64): draw i uniform in 0 ... k-1 and u in [0, 1);
    the outcome is i if u < accept[i], else alias[i]. Outcome j then has probability
    weights[j] / sum(weights) exactly (up to rounding of the float64 arithmetic).
    """
    k = weights.size
    scaled = weights * (k / weights.sum())
    accept = np.ones(k)
    alias = np.arange(k)
    small = np.empty(k, dtype=np.int64)
    large = np.empty(k, dtype=np.int64)
    n_small = 0
    n_large = 0
    for i in range(k):
        if scaled[i] < 1.0:
            small[n_small] = i
            n_small += 1
        else:
            large[n_large] = i
            n_large += 1
    while n_small > 0 and n_large > 0:
        n_small -= 1
        s = small[n_small]
        g = large[n_large - 1]
        accept[s] = scaled[s]
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        if scaled[g] < 1.0:
            n_large -= 1
            small[n_small] = g
            n_small += 1
    # leftovers (rounding): probability 1 of themselves
    return accept, alias


@njit_kernel
def _basis_row(dx: float, dy: float, dz: float) -> tuple[float, float, float, float, float, float]:
    """e1, e2 completing the unit vector d to a right-handed basis (e1 = helper × d, normalised)."""
    if abs(dx) > 0.9:  # helper = e_y
        e1x, e1y, e1z = dz, 0.0, -dx
    else:  # helper = e_x
        e1x, e1y, e1z = 0.0, -dz, dy
    norm = np.sqrt(e1x * e1x + e1y * e1y + e1z * e1z)
    e1x, e1y, e1z = e1x / norm, e1y / norm, e1z / norm
    return e1x, e1y, e1z, dy * e1z - dz * e1y, dz * e1x - dx * e1z, dx * e1y - dy * e1x


@njit_kernel
def _fisher_one(
    dx: float, dy: float, dz: float, kappa: float, u: float, phi: float
) -> tuple[float, float, float]:
    """One Fisher draw around the unit vector d with concentration ``kappa`` from a uniform
    ``u`` in (0, 1] (polar angle) and an azimuth ``phi`` in rad."""
    t = -np.log(u + (1.0 - u) * np.exp(-2.0 * kappa)) / kappa  # 1 − cos ψ
    t = min(max(t, 0.0), 2.0)
    s = np.sqrt(t * (2.0 - t))
    e1x, e1y, e1z, e2x, e2y, e2z = _basis_row(dx, dy, dz)
    a, b, c = s * np.cos(phi), s * np.sin(phi), 1.0 - t
    x = c * dx + a * e1x + b * e2x
    y = c * dy + a * e1y + b * e2y
    z = c * dz + a * e1z + b * e2z
    norm = np.sqrt(x * x + y * y + z * z)
    return x / norm, y / norm, z / norm


@njit_kernel
def fisher_rows(mean: np.ndarray, kappa: np.ndarray, u: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Fisher draws (n, 3) around unit vectors ``mean`` (n, 3) with concentrations ``kappa`` (n,),
    from uniforms ``u`` in (0, 1] (polar angle) and azimuths ``phi`` (n,) in rad."""
    n = mean.shape[0]
    out = np.empty((n, 3))
    for i in range(n):
        out[i, 0], out[i, 1], out[i, 2] = _fisher_one(
            mean[i, 0], mean[i, 1], mean[i, 2], kappa[i], u[i], phi[i]
        )
    return out


@njit_kernel
def _rotate_one(
    vx: float, vy: float, vz: float, kx: float, ky: float, kz: float, angle: float
) -> tuple[float, float, float]:
    """The unit vector v rotated about the unit axis k by ``angle`` rad (Rodrigues)."""
    c, s = np.cos(angle), np.sin(angle)
    kv = (kx * vx + ky * vy + kz * vz) * (1.0 - c)
    return (
        vx * c + (ky * vz - kz * vy) * s + kx * kv,
        vy * c + (kz * vx - kx * vz) * s + ky * kv,
        vz * c + (kx * vy - ky * vx) * s + kz * kv,
    )


@njit_kernel
def rotate_rows(v: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate unit vectors v (n, 3) about unit axes (n, 3) by angle (n,) rad (Rodrigues)."""
    n = v.shape[0]
    out = np.empty((n, 3))
    for i in range(n):
        out[i, 0], out[i, 1], out[i, 2] = _rotate_one(
            v[i, 0], v[i, 1], v[i, 2], axis[i, 0], axis[i, 1], axis[i, 2], angle[i]
        )
    return out


@njit_kernel
def toy_rows(
    source: np.ndarray,
    axis: np.ndarray,
    rows: np.ndarray,
    ev_over_r: np.ndarray,
    u: np.ndarray,
    phi: np.ndarray,
    rotation_rad_ev: float,
    blur_rad_ev: float,
) -> np.ndarray:
    """Seed 002's toy deflection in one pass: CR i leaves the unit vector ``source[rows[i]]``
    (source (m, 3)), is rotated about the unit ``axis[rows[i]]`` by θ = rotation_rad_ev · EV / R,
    then Fisher-blurred with σ = blur_rad_ev · EV / R (none if 0) from uniforms ``u`` (n,) in
    (0, 1] and azimuths ``phi`` (n,) rad; ``ev_over_r`` (n,) is EV / R. Returns (n, 3)."""
    n = rows.size
    out = np.empty((n, 3))
    for i in range(n):
        r = rows[i]
        x, y, z = _rotate_one(
            source[r, 0], source[r, 1], source[r, 2],
            axis[r, 0], axis[r, 1], axis[r, 2], rotation_rad_ev * ev_over_r[i],
        )  # fmt: skip
        if blur_rad_ev > 0.0:
            kappa = 1.0 / (blur_rad_ev * ev_over_r[i]) ** 2
            x, y, z = _fisher_one(x, y, z, kappa, u[i], phi[i])
        out[i, 0], out[i, 1], out[i, 2] = x, y, z
    return out


@njit_kernel
def perpendicular_rows(direction: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Unit vectors (n, 3) perpendicular to ``direction`` (n, 3) at azimuths ``phi`` (n,) rad."""
    n = direction.shape[0]
    out = np.empty((n, 3))
    for i in range(n):
        e1x, e1y, e1z, e2x, e2y, e2z = _basis_row(direction[i, 0], direction[i, 1], direction[i, 2])
        c, s = np.cos(phi[i]), np.sin(phi[i])
        out[i, 0], out[i, 1], out[i, 2] = c * e1x + s * e2x, c * e1y + s * e2y, c * e1z + s * e2z
    return out


@njit_kernel
def sommers_rows(
    direction: np.ndarray, pole: np.ndarray, latitude_rad: float, cos_theta_max: float, scale: float
) -> np.ndarray:
    """Sommers (2001) exposure (n,) of Galactic unit vectors (n, 3) divided by ``scale``; ``pole``
    is the Galactic unit vector of the North Celestial Pole (sin δ = pole · direction)."""
    n = direction.shape[0]
    out = np.empty(n)
    sin_a0, cos_a0 = np.sin(latitude_rad), np.cos(latitude_rad)
    for i in range(n):
        sin_dec = direction[i, 0] * pole[0] + direction[i, 1] * pole[1] + direction[i, 2] * pole[2]
        sin_dec = min(max(sin_dec, -1.0), 1.0)
        cos_dec = np.sqrt(1.0 - sin_dec * sin_dec)
        numerator = cos_theta_max - sin_a0 * sin_dec
        denominator = cos_a0 * cos_dec
        if numerator > denominator:  # ξ > 1 (also cos δ = 0 with a positive numerator)
            alpha_m = 0.0
        elif numerator < -denominator:  # ξ < −1
            alpha_m = np.pi
        else:
            alpha_m = np.arccos(numerator / denominator)
        value = cos_a0 * cos_dec * np.sin(alpha_m) + alpha_m * sin_a0 * sin_dec
        out[i] = max(value, 0.0) / scale
    return out


@njit_kernel
def _table_one(u: float, table: np.ndarray) -> float:
    k = table.size - 1
    x = u * k
    j = min(int(x), k - 1)
    return table[j] + (x - j) * (table[j + 1] - table[j])


@njit_kernel
def pack_alias_table(accept: np.ndarray, alias: np.ndarray) -> np.ndarray:
    """One uint64 per column (one memory access per draw): the acceptance threshold as a 32-bit
    fraction in the high word (exact to 2^-32), the alias index in the low word."""
    out = np.empty(accept.size, dtype=np.uint64)
    for j in range(accept.size):
        threshold = min(np.uint64(accept[j] * 4294967296.0), np.uint64(4294967296))
        out[j] = (threshold << np.uint64(32)) | np.uint64(alias[j])
    return out


@njit_kernel
def _alias_one(u: float, table: np.ndarray) -> int:
    k = table.size
    x = u * k
    j = min(int(x), k - 1)
    entry = table[j]
    fraction = np.uint64((x - j) * 4294967296.0)
    if fraction < (entry >> np.uint64(32)):
        return j
    return int(entry & np.uint64(0xFFFFFFFF))


@njit_kernel
def _categorical_one(u: float, cumulative: np.ndarray) -> int:
    j = 0
    last = cumulative.size - 1
    while j < last and u >= cumulative[j]:
        j += 1
    return j


@njit_kernel
def table_lookup(u: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Piecewise-linear inverse CDF: u (n,) in [0, 1) on a table (k + 1,) of equal u-steps."""
    out = np.empty(u.size)
    for i in range(u.size):
        out[i] = _table_one(u[i], table)
    return out


@njit_kernel
def alias_lookup(u: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Alias-method draws (n,) int64 from one uniform each and a packed table
    (:func:`pack_alias_table`): the integer part of u · k picks the column, the fractional part
    decides between it and its alias."""
    out = np.empty(u.size, dtype=np.int64)
    for i in range(u.size):
        out[i] = _alias_one(u[i], table)
    return out


@njit_kernel
def categorical_lookup(u: np.ndarray, cumulative: np.ndarray, values: np.ndarray) -> np.ndarray:
    """values[j] (n,) for the first j with u < cumulative[j] (cumulative increasing to 1)."""
    out = np.empty(u.size, dtype=values.dtype)
    for i in range(u.size):
        out[i] = values[_categorical_one(u[i], cumulative)]
    return out


@njit_kernel
def _key(pixel: int, energy_code: int, charge: int, is_signal: bool) -> np.uint64:
    flag = np.uint64(1) if is_signal else np.uint64(0)
    return (
        (np.uint64(pixel) << np.uint64(32))
        | (np.uint64(energy_code) << np.uint64(6))
        | (np.uint64(charge) << np.uint64(1))
        | flag
    )


@njit_kernel
def _xoshiro256ss(s0, s1, s2, s3):
    """One step of xoshiro256** (Blackman & Vigna 2018, "Scrambled linear pseudorandom number
    generators"): (64 random bits, next state)."""
    r = s1 * np.uint64(5)
    r = ((r << np.uint64(7)) | (r >> np.uint64(57))) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << np.uint64(45)) | (s3 >> np.uint64(19))
    return r, s0, s1, s2, s3


@njit_kernel
def background_keys(
    keys: np.ndarray,
    n_background: np.ndarray,
    state: np.ndarray,
    alias_table: np.ndarray,
    energy_table: np.ndarray,
    cumulative: np.ndarray,
    charges: np.ndarray,
    origin: float,
    step: float,
) -> None:
    """Fill keys[m, :n_background[m]] (keys (n_maps, n_cr) uint64) with isotropic CRs: pixel by
    packed alias table, log10 energy by inverse-CDF table rounded to origin + k · step, charge by
    cumulative fractions, from three uniforms per CR (pixel, energy, charge; each the top 53
    bits of a xoshiro256** output) drawn in the loop from ``state`` (4,) uint64, advanced in
    place. The dataset's energy range keeps every index within the storable 0 ... 65535."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    inverse_step = 1.0 / step
    for m in range(keys.shape[0]):
        for c in range(n_background[m]):
            r0, s0, s1, s2, s3 = _xoshiro256ss(s0, s1, s2, s3)
            r1, s0, s1, s2, s3 = _xoshiro256ss(s0, s1, s2, s3)
            r2, s0, s1, s2, s3 = _xoshiro256ss(s0, s1, s2, s3)
            pixel = _alias_one(float(r0 >> np.uint64(11)) * _TWO_TO_MINUS_53, alias_table)
            x = _table_one(float(r1 >> np.uint64(11)) * _TWO_TO_MINUS_53, energy_table)
            code = int(np.rint((x - origin) * inverse_step))
            u = float(r2 >> np.uint64(11)) * _TWO_TO_MINUS_53
            charge = charges[_categorical_one(u, cumulative)]
            keys[m, c] = _key(pixel, code, charge, False)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3


@njit_kernel
def keep_first(observed: np.ndarray, per_group: np.ndarray, need: np.ndarray) -> np.ndarray:
    """Mask (n,) of the first ``need[g]`` observed entries of each group g of ``observed`` (n,)
    bool, the groups being consecutive runs of ``per_group[g]`` entries."""
    keep = np.zeros(observed.size, dtype=np.bool_)
    i = 0
    for g in range(per_group.size):
        left = need[g]
        for _ in range(per_group[g]):
            if left > 0 and observed[i]:
                keep[i] = True
                left -= 1
            i += 1
    return keep


@njit_kernel
def scatter_keys(
    keys: np.ndarray,
    slot: np.ndarray,
    pixel: np.ndarray,
    energy_code: np.ndarray,
    charge: np.ndarray,
    is_signal: bool,
) -> None:
    """keys[slot[i]] = the 64-bit sort key of CR i: pixel in bits 32-63, energy index in bits
    6-31, charge in bits 1-5, is_signal in bit 0 (sorting keys sorts by pixel, then energy)."""
    for i in range(slot.size):
        keys[slot[i]] = _key(pixel[i], energy_code[i], charge[i], is_signal)


@njit_kernel
def sort_rows(keys: np.ndarray) -> None:
    """Sort each row of ``keys`` (n_rows, n) uint64 in place, ascending: the same result as
    ``keys.sort(axis=1)``. Least-significant-digit radix sort on bytes, skipping the bytes that
    are equal in every key of a row (for skymap keys 5 of 8 vary: ~4x faster than numpy's sort
    of rows of 1,000)."""
    n_rows, n = keys.shape
    buffer = np.empty(n, dtype=np.uint64)
    count = np.empty(256, dtype=np.int64)
    for r in range(n_rows):
        row = keys[r]
        all_or = np.uint64(0)
        all_and = ~np.uint64(0)
        for i in range(n):
            all_or |= row[i]
            all_and &= row[i]
        varying = all_or ^ all_and
        source, target = row, buffer
        for byte in range(8):
            shift = np.uint64(8 * byte)
            if (varying >> shift) & np.uint64(255) == 0:
                continue
            count[:] = 0
            for i in range(n):
                count[(source[i] >> shift) & np.uint64(255)] += 1
            total = 0
            for d in range(256):
                c = count[d]
                count[d] = total
                total += c
            for i in range(n):
                d = (source[i] >> shift) & np.uint64(255)
                target[count[d]] = source[i]
                count[d] += 1
            source, target = target, source
        if source is not row:
            row[:] = source


@njit_kernel
def unpack_keys(keys: np.ndarray):
    """Split sorted keys (n_maps, n_cr) into pixel (uint32), energy index (uint16), charge
    (uint8) and is_signal (bool) arrays of the same shape."""
    n_maps, n_cr = keys.shape
    pixel = np.empty((n_maps, n_cr), dtype=np.uint32)
    energy_code = np.empty((n_maps, n_cr), dtype=np.uint16)
    charge = np.empty((n_maps, n_cr), dtype=np.uint8)
    is_signal = np.empty((n_maps, n_cr), dtype=np.bool_)
    mask26 = np.uint64((1 << 26) - 1)
    for m in range(n_maps):
        for c in range(n_cr):
            k = keys[m, c]
            pixel[m, c] = np.uint32(k >> np.uint64(32))
            energy_code[m, c] = np.uint16((k >> np.uint64(6)) & mask26)
            charge[m, c] = np.uint8((k >> np.uint64(1)) & np.uint64(31))
            is_signal[m, c] = (k & np.uint64(1)) == np.uint64(1)
    return pixel, energy_code, charge, is_signal
