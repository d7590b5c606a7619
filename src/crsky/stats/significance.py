"""Significance of a signal strength against an isotropic reference set (seed 002 definition).

For the maps of one signal fraction, the p-value is the fraction of isotropic maps whose score is
≥ the median score of the signal maps (Langner, Erdmann & Wirtz 2019, seed 002: "relative amount
of isotropy p_signal larger or equal to signal median p_signal"); σ is its one-sided Gaussian
equivalent, ``scipy.stats.norm.isf(p)``. Higher scores mean more signal-like, for the network
(its output) and for the two-point baseline (``-log10`` of its minimum local p-value).

With N isotropic maps p is resolved in steps of 1/N. When no isotropic map reaches the median,
p is reported as the bound p < 1/N (``p_bound = "<"``) and σ as the lower bound
``σ > isf(1/N)`` (``sigma_bound = ">"``); when every isotropic map does (p = 1), σ is reported
as the upper bound ``σ < isf(1 - 1/N)`` (``sigma_bound = "<"``). σ is never infinite.
"""

import csv
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from scipy.stats import norm

from crsky.errors import ConfigError, InputFileError
from crsky.io import atomic_output

__all__ = [
    "FRACTION_ATOL",
    "Crossing",
    "PValue",
    "SignificanceRow",
    "check_isotropy_size",
    "isotropic_maps_needed",
    "map_p_values",
    "median_p_value",
    "read_significance_csv",
    "select_fractions",
    "sigma_crossings",
    "significance_rows",
    "write_crossings_csv",
    "write_significance_csv",
]


def isotropic_maps_needed(sigma: float) -> int:
    """Smallest N of isotropic maps whose resolution 1/N reaches the one-sided p of ``sigma``."""
    return math.ceil(1.0 / norm.sf(sigma) - 1e-9)


def check_isotropy_size(n_iso: int, sigma_levels, name: str = "isotropy") -> None:
    """ConfigError unless N isotropic maps can resolve the largest requested σ level."""
    if n_iso == 0:
        raise ConfigError(f"the isotropy set {name!r} holds no maps")
    if len(sigma_levels) == 0:
        return
    top = max(sigma_levels)
    needed = isotropic_maps_needed(top)
    if n_iso < needed:
        raise ConfigError(
            f"the isotropy set {name!r} has {n_iso} maps, too few for σ = {top:g} "
            f"(evaluation.sigma_levels): p = {norm.sf(top):.3g} needs at least {needed} isotropic "
            f"maps (N ≥ 1 / p); add isotropy maps or lower the σ levels"
        )


def _iso_sorted(iso_scores) -> np.ndarray:
    iso = np.asarray(iso_scores, dtype=np.float64)
    if iso.ndim != 1 or iso.size == 0:
        raise ConfigError(f"the isotropic scores must be a non-empty 1-D array, got {iso.shape}")
    if not np.all(np.isfinite(iso)):
        raise ConfigError("the isotropic scores contain NaN or infinite values")
    return np.sort(iso)


def map_p_values(scores, iso_scores, rng: np.random.Generator | None = None) -> np.ndarray:
    """Per-map p-values: fraction of isotropic maps with a score ≥ each score.

    With ``rng``, ties are broken at random, ``(#{iso > s} + U · (#{iso = s} + 1)) / (N + 1)``
    with U uniform in [0, 1): exactly uniform for a map exchangeable with the isotropic ones,
    which is what a uniformity (KS) test of a discrete statistic needs.
    """
    iso = _iso_sorted(iso_scores)
    s = np.asarray(scores, dtype=np.float64)
    above_or_equal = iso.size - np.searchsorted(iso, s, side="left")
    if rng is None:
        return above_or_equal / iso.size
    above = iso.size - np.searchsorted(iso, s, side="right")
    ties = above_or_equal - above
    return (above + rng.random(s.shape) * (ties + 1)) / (iso.size + 1)


@dataclass(frozen=True)
class PValue:
    """p-value of a median score with its bound flag and σ equivalent (module docstring)."""

    median_score: float
    n_iso_at_least: int
    n_iso: int
    p_value: float
    p_bound: str
    sigma: float
    sigma_bound: str


def median_p_value(signal_scores, iso_scores) -> PValue:
    """p-value of the median of ``signal_scores`` against ``iso_scores`` (seed 002)."""
    iso = _iso_sorted(iso_scores)
    sig = np.asarray(signal_scores, dtype=np.float64)
    if sig.size == 0:
        raise ConfigError("no signal maps to take the median score of")
    if not np.all(np.isfinite(sig)):
        raise ConfigError("the signal scores contain NaN or infinite values")
    median = float(np.median(sig))
    n_iso = iso.size
    k = int(n_iso - np.searchsorted(iso, median, side="left"))
    if k == 0:
        return PValue(median, 0, n_iso, 1.0 / n_iso, "<", float(norm.isf(1.0 / n_iso)), ">")
    if k == n_iso:
        bound = float(norm.isf(1.0 - 1.0 / n_iso)) if n_iso > 1 else 0.0
        return PValue(median, k, n_iso, 1.0, "", bound, "<")
    p = k / n_iso
    return PValue(median, k, n_iso, p, "", float(norm.isf(p)), "")


FRACTION_ATOL = 1e-6  # labels are float32: 0.055 is stored as 0.0549999997


def select_fractions(signal_fraction, fractions=None) -> np.ndarray:
    """The signal fractions to report, sorted: ``fractions`` (each must occur among the test
    maps' ``signal_fraction``), or every distinct one when None. ConfigError for an empty test
    set, a missing fraction, or continuous fractions (no groups to take a median of)."""
    f = np.asarray(signal_fraction, dtype=np.float64)
    if f.size == 0:
        raise ConfigError("the test set holds no maps")
    # shortest decimals of the float32 labels: 0.0549999997 is reported as 0.055
    present = np.array([float(str(v)) for v in np.unique(f.astype(np.float32))])
    if fractions is None or len(fractions) == 0:
        if present.size > max(64, f.size // 10):
            raise ConfigError(
                f"the test maps have {present.size} distinct signal fractions: the p-value "
                "needs groups of maps at fixed fractions (a 'values' signal-fraction "
                "distribution) or a list in evaluation.signal_fractions"
            )
        return present
    wanted = np.asarray(sorted(fractions), dtype=np.float64)
    for value in wanted:
        if not np.any(np.isclose(f, value, rtol=0.0, atol=FRACTION_ATOL)):
            shown = ", ".join(f"{x:g}" for x in present[:20])
            raise ConfigError(
                f"no test map has signal fraction {value:g} (evaluation.signal_fractions); "
                f"the test set has {shown}"
            )
    return wanted


@dataclass(frozen=True)
class SignificanceRow:
    """One line of ``significance.csv``: one method at one signal fraction."""

    method: str
    signal_fraction: float
    n_signal_mean: float
    n_maps: int
    median_score: float
    n_iso_at_least: int
    n_iso: int
    p_value: float
    p_bound: str
    sigma: float
    sigma_bound: str


def significance_rows(
    method: str,
    scores,
    signal_fraction,
    n_signal,
    iso_scores,
    fractions=None,
) -> list[SignificanceRow]:
    """Rows of one method for each signal fraction of the test maps.

    Args:
        method: name in the table ("network", "two_point").
        scores, signal_fraction, n_signal: (n_maps,) per test map.
        iso_scores: (N,) scores of the isotropic maps.
        fractions: the signal fractions to report (each must occur in the test maps); None =
            every distinct signal fraction of the test maps.
    """
    s = np.asarray(scores, dtype=np.float64)
    f = np.asarray(signal_fraction, dtype=np.float64)
    n_sig = np.asarray(n_signal, dtype=np.float64)
    if not (s.shape == f.shape == n_sig.shape and s.ndim == 1):
        raise ConfigError(
            f"scores {s.shape}, signal fractions {f.shape} and n_signal {n_sig.shape} must be "
            "1-D arrays of the same length"
        )
    wanted = select_fractions(f, fractions)
    rows = []
    for value in wanted:
        group = np.isclose(f, value, rtol=0.0, atol=FRACTION_ATOL)
        pv = median_p_value(s[group], iso_scores)
        rows.append(
            SignificanceRow(
                method,
                float(value),
                float(n_sig[group].mean()),
                int(group.sum()),
                **{k: v for k, v in asdict(pv).items()},
            )
        )
    return rows


@dataclass(frozen=True)
class Crossing:
    """Signal strength where σ of one method first reaches ``sigma_level``.

    ``status``: "interpolated" (linear between the two fractions around the crossing),
    "upper_limit" (the upper point is a σ lower bound, so the crossing is at most this),
    "below_range" (already above at the smallest fraction: at most that fraction),
    "not_reached" (below at every fraction; the values are empty).
    """

    method: str
    sigma_level: float
    signal_fraction: float | None
    n_signal: float | None
    status: str


def sigma_crossings(rows: list[SignificanceRow], levels) -> list[Crossing]:
    """First upward crossing of each σ level per method, interpolated linearly in (fraction, σ)
    and (n_signal, σ) between the table's neighbouring signal fractions."""
    out = []
    for method in dict.fromkeys(r.method for r in rows):
        mine = sorted((r for r in rows if r.method == method), key=lambda r: r.signal_fraction)
        for level in levels:
            out.append(_crossing(method, float(level), mine))
    return out


def _crossing(method: str, level: float, rows: list[SignificanceRow]) -> Crossing:
    for i, r in enumerate(rows):
        if r.sigma < level:
            continue
        if i == 0:
            return Crossing(method, level, r.signal_fraction, r.n_signal_mean, "below_range")
        lo = rows[i - 1]
        w = (level - lo.sigma) / (r.sigma - lo.sigma)
        status = "upper_limit" if r.sigma_bound == ">" else "interpolated"
        return Crossing(
            method,
            level,
            lo.signal_fraction + w * (r.signal_fraction - lo.signal_fraction),
            lo.n_signal_mean + w * (r.n_signal_mean - lo.n_signal_mean),
            status,
        )
    return Crossing(method, level, None, None, "not_reached")


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _write_csv(path, header: list[str], rows: list[list]) -> Path:
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows([[_fmt(v) for v in row] for row in rows])
    return Path(path)


def write_significance_csv(path, rows: list[SignificanceRow]) -> Path:
    """Write ``significance.csv`` (one line per method and signal fraction) atomically."""
    header = [f.name for f in fields(SignificanceRow)]
    return _write_csv(path, header, [[getattr(r, h) for h in header] for r in rows])


def write_crossings_csv(path, crossings: list[Crossing]) -> Path:
    """Write the σ-level crossings (``crossings.csv``) atomically."""
    header = [f.name for f in fields(Crossing)]
    return _write_csv(path, header, [[getattr(c, h) for h in header] for c in crossings])


def read_significance_csv(path) -> list[SignificanceRow]:
    """Rows of a ``significance.csv`` written by :func:`write_significance_csv`."""
    types = {f.name: f.type for f in fields(SignificanceRow)}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            records = list(csv.DictReader(f))
    except OSError as err:
        raise InputFileError(f"cannot read {str(path)!r}: {err.strerror}") from err
    if not records or set(records[0]) != set(types):
        raise InputFileError(f"{str(path)!r} is not a significance table (columns {list(types)})")
    return [SignificanceRow(**{k: types[k](v) for k, v in r.items()}) for r in records]
