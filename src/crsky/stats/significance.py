"""Significance of a signal strength against an isotropic reference set (seed 002 definition).

For the maps of one signal fraction, the p-value is the fraction of isotropic maps whose score is
≥ the median score of the signal maps (Langner, Erdmann & Wirtz 2019, seed 002: "relative amount
of isotropy p_signal larger or equal to signal median p_signal"); σ is its one-sided Gaussian
equivalent, ``scipy.stats.norm.isf(p)``. Higher scores mean more signal-like (network logit,
two-point ``-log10`` of its minimum local p-value, likelihood test statistics).

With N isotropic maps p is resolved in steps of 1/N. Each row says where its p comes from
(column ``p_source``):

- ``empirical``: the seed-002 definition, at least one isotropic map reaches the median; the
  68 % band (``sigma_low``, ``sigma_high``) is the Clopper–Pearson interval of k of N;
- ``extrapolated``: no isotropic map reaches the median; p from the exponential tail fitted to
  the top isotropic scores (:mod:`crsky.stats.tail`), band from bootstrap refits, down to
  p = 1 / (MAX_EXTRAPOLATION · N) and no further;
- ``importance`` (likelihood_oracle only): no isotropic map reaches the median; p from the
  signal maps themselves, P_0(ℓ ≥ m) = E_1[e^(−ℓ) 1(ℓ ≥ m)] for the exact log-likelihood ratio
  ℓ (importance sampling; band ± its standard error);
- ``bound``: beyond that depth, or neither is available: p < p_min (``p_bound = "<"``) and
  σ > isf(p_min) (``sigma_bound = ">"``) with p_min = 1 / (MAX_EXTRAPOLATION · N), or 1/N
  without a tail fit.

When every isotropic map reaches the median (p = 1), σ is the upper bound ``σ < isf(1 − 1/N)``
(``sigma_bound = "<"``). σ is never infinite. ``p_tail`` (the tail model's p wherever the
median lies in the fitted tail) and ``p_importance`` are given alongside for comparison.

The isotropy set need not resolve the requested σ levels: :func:`check_isotropy_size` only
requires enough maps for a tail fit, and crossings beyond 1/N are labelled.
"""

import csv
import math
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

import numpy as np
from scipy.stats import beta as beta_distribution
from scipy.stats import norm

from crsky.errors import ConfigError, InputFileError
from crsky.io import atomic_output
from crsky.stats.tail import TailFit, default_tail_size, fit_tail

__all__ = [
    "FRACTION_ATOL",
    "MAX_EXTRAPOLATION",
    "MIN_ISOTROPIC_MAPS",
    "P_SOURCES",
    "Crossing",
    "PValue",
    "SignificanceRow",
    "check_isotropy_size",
    "importance_p_value",
    "isotropic_maps_needed",
    "map_p_values",
    "median_p_value",
    "read_crossings_csv",
    "read_significance_csv",
    "select_fractions",
    "sigma_crossings",
    "significance_rows",
    "write_crossings_csv",
    "write_significance_csv",
]

P_SOURCES = ("empirical", "extrapolated", "importance", "bound")
MAX_EXTRAPOLATION = 1000  # the tail is trusted down to p = 1 / (1000 N), no further
MIN_ISOTROPIC_MAPS = 300  # a tail fit needs 30 exceedances of at most N / 10
_BAND = 0.6827  # central probability of the σ bands (± 1 Gaussian σ)
_SEED = 20240607  # bootstrap stream of the tail bands: same scores, same bytes


def isotropic_maps_needed(sigma: float) -> int:
    """Smallest N of isotropic maps whose resolution 1/N reaches the one-sided p of ``sigma``."""
    return math.ceil(1.0 / norm.sf(sigma) - 1e-9)


def check_isotropy_size(n_iso: int, sigma_levels, name: str = "isotropy") -> None:
    """ConfigError unless the isotropy set can calibrate the requested σ levels: empirically
    (N ≥ 1 / p of the largest level) or by a tail fit (N ≥ MIN_ISOTROPIC_MAPS, levels beyond
    1/N are then extrapolated and labelled)."""
    if n_iso == 0:
        raise ConfigError(f"the isotropy set {name!r} holds no maps")
    if len(sigma_levels) == 0:
        return
    top = max(sigma_levels)
    needed = isotropic_maps_needed(top)
    if n_iso < min(needed, MIN_ISOTROPIC_MAPS):
        raise ConfigError(
            f"the isotropy set {name!r} has {n_iso} maps, too few for σ = {top:g} "
            f"(evaluation.sigma_levels): p = {norm.sf(top):.3g} needs at least {needed} isotropic "
            f"maps (N ≥ 1 / p), or {MIN_ISOTROPIC_MAPS} for an extrapolated tail; add isotropy "
            "maps or lower the σ levels"
        )


def _iso_sorted(iso_scores) -> np.ndarray:
    iso = np.asarray(iso_scores, dtype=np.float64)
    if iso.ndim != 1 or iso.size == 0:
        raise ConfigError(f"the isotropic scores must be a non-empty 1-D array, got {iso.shape}")
    if np.any(np.isnan(iso)) or np.any(iso == np.inf):
        raise ConfigError("the isotropic scores contain NaN or +infinite values")
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


def _sigma(p: float) -> float | None:
    """isf(p), None for p ≤ 0 (an unbounded σ)."""
    return float(norm.isf(p)) if p > 0.0 else None


@dataclass(frozen=True)
class PValue:
    """p-value of a median score with its source, bound flags and σ equivalent (module
    docstring); ``sigma_low`` / ``sigma_high`` the 68 % band (None: unbounded or unknown)."""

    median_score: float
    n_iso_at_least: int
    n_iso: int
    p_value: float
    p_bound: str
    sigma: float
    sigma_bound: str
    p_source: str = "empirical"
    sigma_low: float | None = None
    sigma_high: float | None = None
    p_tail: float | None = None


def _clopper_pearson_sigma(k: int, n: int) -> tuple[float | None, float | None]:
    """σ band of the central 68 % Clopper–Pearson interval of p = k / n."""
    q = (1.0 - _BAND) / 2.0
    p_low = float(beta_distribution.ppf(q, k, n - k + 1)) if k > 0 else 0.0
    p_high = float(beta_distribution.ppf(1.0 - q, k + 1, n - k)) if k < n else 1.0
    return _sigma(p_high), _sigma(p_low)


def importance_p_value(log_lr, median: float) -> tuple[float, float]:
    """(p, standard error): P_0(ℓ ≥ median) = E_1[e^(−ℓ) 1(ℓ ≥ median)] estimated from signal
    maps with exact log-likelihood ratios ``log_lr`` (importance sampling)."""
    ell = np.asarray(log_lr, dtype=np.float64)
    weight = np.where(ell >= median, np.exp(-np.clip(ell, -700.0, None)), 0.0)
    return float(weight.mean()), float(weight.std(ddof=1) / math.sqrt(ell.size))


def median_p_value(
    signal_scores,
    iso_scores,
    tail: TailFit | None = None,
    importance: tuple[float, float] | None = None,
    rng: np.random.Generator | None = None,
) -> PValue:
    """p-value of the median of ``signal_scores`` against ``iso_scores`` (seed 002), with the
    ``tail`` fit of the isotropic scores or the ``importance`` estimate (p, error) beyond the
    set's resolution (module docstring)."""
    iso = _iso_sorted(iso_scores)
    sig = np.asarray(signal_scores, dtype=np.float64)
    if sig.size == 0:
        raise ConfigError("no signal maps to take the median score of")
    if np.any(np.isnan(sig)) or np.any(sig == np.inf):
        raise ConfigError("the signal scores contain NaN or +infinite values")
    median = float(np.median(sig))
    n_iso = iso.size
    k = int(n_iso - np.searchsorted(iso, median, side="left"))
    p_tail = None
    if tail is not None and median >= tail.threshold:
        p_tail = tail.p_value(median)
    if k == n_iso:
        bound = float(norm.isf(1.0 - 1.0 / n_iso)) if n_iso > 1 else 0.0
        return PValue(median, k, n_iso, 1.0, "", bound, "<", "empirical", None, bound, p_tail)
    if k > 0:
        p = k / n_iso
        low, high = _clopper_pearson_sigma(k, n_iso)
        return PValue(
            median, k, n_iso, p, "", float(norm.isf(p)), "", "empirical", low, high, p_tail
        )
    if importance is not None and importance[0] > 0.0:
        p, error = importance
        return PValue(
            median,
            0,
            n_iso,
            p,
            "",
            float(norm.isf(p)),
            "",
            "importance",
            _sigma(p + error),
            _sigma(p - error),
            p_tail,
        )
    p_min = 1.0 / (MAX_EXTRAPOLATION * n_iso)
    if p_tail is not None and p_tail >= p_min:
        p_low, p_high = tail.band(median, rng or np.random.default_rng(_SEED), _BAND)
        return PValue(
            median,
            0,
            n_iso,
            p_tail,
            "",
            float(norm.isf(p_tail)),
            "",
            "extrapolated",
            _sigma(p_high) if np.isfinite(p_high) else None,
            _sigma(p_low) if np.isfinite(p_low) else None,
            p_tail,
        )
    p = p_min if p_tail is not None else 1.0 / n_iso
    return PValue(median, 0, n_iso, p, "<", float(norm.isf(p)), ">", "bound", None, None, p_tail)


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
    """One line of ``significance.csv``: one method at one signal fraction (columns of
    :class:`PValue`, and for the oracle the importance-sampling estimate and its error)."""

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
    p_source: str = "empirical"
    sigma_low: float | None = None
    sigma_high: float | None = None
    p_tail: float | None = None
    p_importance: float | None = None
    p_importance_error: float | None = None


class _IsotropicScores:
    """The isotropic scores a method's rows are compared with: one array for every fraction,
    or one column per fraction of ``iso_fractions``; each with its tail fit (once)."""

    def __init__(self, iso_scores, iso_fractions):
        iso = np.asarray(iso_scores, dtype=np.float64)
        if iso.ndim == 2:
            if iso_fractions is None or len(iso_fractions) != iso.shape[1]:
                raise ConfigError(
                    f"isotropic scores per fraction {iso.shape} need one fraction per column"
                )
            self.columns = [iso[:, k] for k in range(iso.shape[1])]
            self.fractions = np.asarray(iso_fractions, dtype=np.float64)
        else:
            self.columns = [iso]
            self.fractions = None
        self._tails: dict[int, TailFit | None] = {}

    def get(self, fraction: float) -> tuple[np.ndarray, TailFit | None]:
        k = 0
        if self.fractions is not None:
            hits = np.flatnonzero(np.isclose(self.fractions, fraction, atol=FRACTION_ATOL, rtol=0))
            if hits.size == 0:
                raise ConfigError(
                    f"no isotropic scores at signal fraction {fraction:g} (have "
                    f"{self.fractions.tolist()})"
                )
            k = int(hits[0])
        if k not in self._tails:
            column = self.columns[k]
            enough = default_tail_size(column.size) >= 30
            self._tails[k] = fit_tail(column) if enough else None
        return self.columns[k], self._tails[k]


def significance_rows(
    method: str,
    scores,
    signal_fraction,
    n_signal,
    iso_scores,
    fractions=None,
    iso_fractions=None,
    exact_log_lr: bool = False,
) -> list[SignificanceRow]:
    """Rows of one method for each signal fraction of the test maps.

    Args:
        method: name in the table ("network", "two_point", "likelihood_profiled", ...).
        scores, signal_fraction, n_signal: (n_maps,) per test map.
        iso_scores: (N,) scores of the isotropic maps, or (N, len(iso_fractions)) one column
            per tested fraction (the oracle's likelihood ratio at that fraction).
        fractions: the signal fractions to report (each must occur in the test maps); None =
            every distinct signal fraction of the test maps.
        exact_log_lr: the scores are exact log-likelihood ratios (the oracle): add the
            importance-sampling p and use it where the isotropy set does not resolve p.
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
    reference = _IsotropicScores(iso_scores, iso_fractions)
    rows = []
    for value in wanted:
        group = np.isclose(f, value, rtol=0.0, atol=FRACTION_ATOL)
        iso, tail = reference.get(float(value))
        importance = None
        if exact_log_lr and value > 0:
            importance = importance_p_value(s[group], float(np.median(s[group])))
        pv = median_p_value(s[group], iso, tail, importance, np.random.default_rng(_SEED))
        rows.append(
            SignificanceRow(
                method,
                float(value),
                float(n_sig[group].mean()),
                int(group.sum()),
                **asdict(pv),
                p_importance=None if importance is None else importance[0],
                p_importance_error=None if importance is None else importance[1],
            )
        )
    return rows


@dataclass(frozen=True)
class Crossing:
    """Signal strength where σ of one method first reaches ``sigma_level``.

    ``status``: "interpolated" (linear between the two fractions around the crossing, both
    empirical), "extrapolated" (one of them beyond the isotropy set's resolution:
    extrapolated or importance-sampled p), "upper_limit" (the upper point is a σ lower
    bound, so the crossing is at most this), "below_range" (already above at the smallest
    fraction: at most that fraction), "not_reached" (below at every fraction; values empty).
    ``n_signal_low`` / ``n_signal_high``: the crossing of the σ bands' upper and lower edges
    (None where a band is open or does not cross).
    """

    method: str
    sigma_level: float
    signal_fraction: float | None
    n_signal: float | None
    status: str
    n_signal_low: float | None = None
    n_signal_high: float | None = None


def sigma_crossings(rows: list[SignificanceRow], levels) -> list[Crossing]:
    """First upward crossing of each σ level per method, interpolated linearly in (fraction, σ)
    and (n_signal, σ) between the table's neighbouring signal fractions (:func:`_anchor`)."""
    out = []
    for method in dict.fromkeys(r.method for r in rows):
        mine = sorted((r for r in rows if r.method == method), key=lambda r: r.signal_fraction)
        for level in levels:
            out.append(_crossing(method, float(level), mine))
    return out


def _first_crossing(x: list[float], sigma: list[float | None], level: float) -> float | None:
    """Linear interpolation of the first upward crossing of ``level`` (None if σ never
    reaches it or a needed σ is unknown)."""
    for i, value in enumerate(sigma):
        if value is None:
            return None
        if value < level:
            continue
        if i == 0:
            return x[0]
        lo = sigma[i - 1]
        w = (level - lo) / (value - lo)
        return x[i - 1] + w * (x[i] - x[i - 1])
    return None


def _anchor(row: SignificanceRow) -> float:
    """σ of a row for interpolation: an upper bound below 0 (p = 1, every isotropic map ties
    with the median, e.g. the oracle at f = 0 where the likelihood ratio is 1) counts as 0."""
    return max(row.sigma, 0.0) if row.sigma_bound == "<" else row.sigma


def _crossing(method: str, level: float, rows: list[SignificanceRow]) -> Crossing:
    n = [r.n_signal_mean for r in rows]
    band_low = _first_crossing(n, [r.sigma_high for r in rows], level)
    band_high = _first_crossing(n, [r.sigma_low for r in rows], level)
    for i, r in enumerate(rows):
        if r.sigma < level:
            continue
        if i == 0:
            return Crossing(
                method, level, r.signal_fraction, r.n_signal_mean, "below_range", None, band_high
            )
        lo = rows[i - 1]
        w = (level - _anchor(lo)) / (r.sigma - _anchor(lo))
        if r.sigma_bound == ">":
            status = "upper_limit"
        elif "empirical" == r.p_source == lo.p_source:
            status = "interpolated"
        else:
            status = "extrapolated"
        return Crossing(
            method,
            level,
            lo.signal_fraction + w * (r.signal_fraction - lo.signal_fraction),
            lo.n_signal_mean + w * (r.n_signal_mean - lo.n_signal_mean),
            status,
            band_low,
            band_high,
        )
    return Crossing(method, level, None, None, "not_reached", band_low, band_high)


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


def _parse(kind, text: str):
    """A CSV cell as the dataclass field type (empty cell: None for optional fields)."""
    if kind in (str, "str"):
        return text
    if text == "":
        return None
    if kind in (int, "int"):
        return int(text)
    return float(text)


def _read_csv(path, cls, what: str) -> list:
    types = {f.name: f.type for f in fields(cls)}
    required = {f.name for f in fields(cls) if f.default is MISSING}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            records = list(csv.DictReader(f))
    except OSError as err:
        raise InputFileError(f"cannot read {str(path)!r}: {err.strerror}") from err
    if not records or not required <= set(records[0]) or not set(records[0]) <= set(types):
        raise InputFileError(f"{str(path)!r} is not a {what} (columns {list(types)})")
    return [cls(**{k: _parse(_base_type(types[k]), v) for k, v in r.items()}) for r in records]


def _base_type(kind):
    """float for ``float | None``, otherwise the type itself."""
    args = getattr(kind, "__args__", None)
    return args[0] if args else kind


def read_significance_csv(path) -> list[SignificanceRow]:
    """Rows of a ``significance.csv`` written by :func:`write_significance_csv`."""
    return _read_csv(path, SignificanceRow, "significance table")


def read_crossings_csv(path) -> list[Crossing]:
    """Crossings of a ``crossings.csv`` written by :func:`write_crossings_csv`."""
    return _read_csv(path, Crossing, "crossings table")
