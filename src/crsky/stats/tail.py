"""Tail of an isotropic score distribution beyond what the isotropy set resolves.

N isotropic maps resolve a p-value down to 1/N. Further out, the upper tail is modelled by the
generalized Pareto distribution (GPD; Pickands–Balkema–de Haan: exceedances over a high
threshold of any distribution in a maximum domain of attraction are asymptotically GPD): with
the k largest of N scores as exceedances over the threshold u (the (k+1)-th largest),

    p(s) = (k / N) · (1 + ξ (s − u) / β)^(−1/ξ)       (ξ = 0: (k / N) · exp(−(s − u) / β)),

k = ``default_tail_size(N)`` = clip(2 √N, 30, N / 10). The shape is a choice (``SHAPES``):

- ``exponential`` (ξ = 0, β the mean excess; the default): the tail theory predicts for the
  likelihood-ratio statistics (Wilks, and Gross & Vitells for a maximum over source positions:
  P(TS > t) ∝ t^a e^(−t/2), so β ≈ 2 for TS = 2 Λ) and for the two-point minimum-p score
  (Bonferroni: P(S > s) ∝ 10^(−s), β ≈ 0.43); with ~100 exceedances a free ξ is too noisy to
  extrapolate far (±0.1–0.2);
- ``nonnegative`` (ξ ≥ 0) and ``free`` (ξ > −1): maximum likelihood with Grimshaw's reduction
  to one dimension (θ = ξ / β).

The 68 % band of p comes from refitting bootstrap resamples of the exceedances (their number
Poisson-fluctuated); it covers the statistical error of the fit, not the choice of shape.
:func:`validate_tail` checks an extrapolation on held-out maps: the tail fitted on part of the
set against the rest at levels beyond the fitted part's resolution.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from crsky.errors import ConfigError

__all__ = [
    "SHAPES",
    "TailFit",
    "TailValidation",
    "default_tail_size",
    "fit_gpd",
    "fit_tail",
    "gpd_survival",
    "validate_tail",
]

SHAPES = ("exponential", "nonnegative", "free")
_MIN_EXCEEDANCES = 30
_N_BOOTSTRAP = 200


def default_tail_size(n: int) -> int:
    """Exceedances used for the fit of N scores: 2 √N, at least 30, at most N / 10."""
    return int(min(max(round(2.0 * math.sqrt(n)), _MIN_EXCEEDANCES), n // 10))


def gpd_survival(y, xi: float, beta: float) -> np.ndarray:
    """P(Y > y) of the GPD (y ≥ 0): (1 + ξ y / β)^(−1/ξ), exp(−y / β) for ξ = 0; 0 beyond the
    end point −β / ξ of a bounded tail (ξ < 0)."""
    y = np.asarray(y, dtype=np.float64)
    if abs(xi) < 1e-12:
        return np.exp(-y / beta)
    z = 1.0 + xi * y / beta
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(z > 0.0, np.power(np.maximum(z, 1e-300), -1.0 / xi), 0.0)
    return out


def _profile_log_likelihood(theta: float, y: np.ndarray) -> tuple[float, float, float]:
    """(log-likelihood, ξ, β) maximised over β at fixed θ = ξ / β (Grimshaw 1993)."""
    n = y.size
    if abs(theta) < 1e-12 * (1.0 / y.max()):
        beta = float(y.mean())
        return -n * math.log(beta) - n, 0.0, beta
    log_terms = np.log1p(theta * y)
    xi = float(log_terms.mean())
    beta = xi / theta
    if beta <= 0.0 or xi <= -1.0:
        return -np.inf, xi, beta
    return -n * math.log(beta) - (1.0 + 1.0 / xi) * log_terms.sum(), xi, beta


def fit_gpd(excess, shape: str = "free") -> tuple[float, float]:
    """Maximum-likelihood (ξ, β) of the GPD for exceedances ``excess`` (≥ 0) with the given
    ``shape`` (``SHAPES``). Free shapes: the profile log-likelihood in θ = ξ / β is scanned on a
    grid over (−1 / max y, 10^4 / max y) (θ ≥ 0 for "nonnegative") and refined by a bounded
    scalar search around the best grid point."""
    if shape not in SHAPES:
        raise ConfigError(f"tail shape must be one of {SHAPES}, got {shape!r}")
    y = np.asarray(excess, dtype=np.float64)
    if y.ndim != 1 or y.size < 3 or not np.all(np.isfinite(y)) or np.any(y < 0):
        raise ConfigError("GPD fit needs at least 3 finite exceedances ≥ 0")
    y_max = float(y.max())
    if y_max <= 0.0:
        raise ConfigError("GPD fit needs exceedances that are not all zero")
    if shape == "exponential":
        return 0.0, float(y.mean())
    negative = -(1.0 - np.logspace(-8, -1e-3, 60)) / y_max if shape == "free" else np.zeros(0)
    positive = np.logspace(-6, 4, 80) / y_max
    grid = np.concatenate([negative, [0.0], positive])
    values = np.array([_profile_log_likelihood(t, y)[0] for t in grid])
    k = int(np.argmax(values))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    best_theta, best_value = grid[k], values[k]
    if hi > lo:
        res = minimize_scalar(
            lambda t: min(-_profile_log_likelihood(t, y)[0], 1e300),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-10 / y_max},
        )
        if res.success and -res.fun > best_value:
            best_theta = float(res.x)
    _, xi, beta = _profile_log_likelihood(best_theta, y)
    return xi, beta


@dataclass(frozen=True)
class TailFit:
    """GPD tail of N scores: ``n_exceed`` scores above ``threshold`` follow (ξ, β)."""

    threshold: float
    xi: float
    beta: float
    n_exceed: int
    n_total: int
    excess: tuple[float, ...]
    shape: str = "exponential"

    def p_value(self, score: float) -> float:
        """Tail probability P(S ≥ score) for a score above the threshold (NaN below)."""
        if score < self.threshold:
            return float("nan")
        y = score - self.threshold
        return float(self.n_exceed / self.n_total * gpd_survival(y, self.xi, self.beta))

    def band(self, score: float, rng: np.random.Generator, level: float = 0.6827):
        """(low, high) central ``level`` interval of the tail p at ``score`` from bootstrap refits
        (exceedances resampled, their count Poisson)."""
        y = np.asarray(self.excess)
        out = np.empty(_N_BOOTSTRAP)
        for b in range(_N_BOOTSTRAP):
            k = max(3, int(rng.poisson(self.n_exceed)))
            sample = rng.choice(y, size=self.n_exceed, replace=True)
            if np.all(sample == sample[0]):
                out[b] = np.nan
                continue
            xi, beta = fit_gpd(sample, self.shape)
            out[b] = k / self.n_total * gpd_survival(score - self.threshold, xi, beta)
        out = out[np.isfinite(out)]
        if out.size == 0:
            return float("nan"), float("nan")
        q = (1.0 - level) / 2.0
        return float(np.quantile(out, q)), float(np.quantile(out, 1.0 - q))


def fit_tail(scores, n_exceed: int | None = None, shape: str = "exponential") -> TailFit | None:
    """GPD fit of the upper tail of ``scores`` (finite values; −inf, i.e. impossible under the
    signal, count in N but never in the tail) with the given ``shape``. None when there are
    too few distinct scores above the threshold (fewer than 30 exceedances, or all tied)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or np.any(np.isnan(s)) or np.any(s == np.inf):
        raise ConfigError("tail fit needs a 1-D array of scores without NaN or +inf")
    n = s.size
    k = default_tail_size(n) if n_exceed is None else int(n_exceed)
    finite = np.sort(s[np.isfinite(s)])[::-1]
    if k < _MIN_EXCEEDANCES or finite.size <= k:
        return None
    threshold = float(finite[k])
    excess = finite[:k] - threshold
    excess = excess[excess > 0.0]  # scores tied with the threshold are not above it
    if excess.size < _MIN_EXCEEDANCES or np.all(excess == excess[0]):
        return None
    xi, beta = fit_gpd(excess, shape)
    return TailFit(threshold, xi, beta, int(excess.size), n, tuple(excess.tolist()), shape)


@dataclass(frozen=True)
class TailValidation:
    """One held-out check: at ``score`` the held-out maps give p = n_held_at_least / n_held
    (Poisson error), the tail fitted on ``n_fit`` other maps gives ``p_tail`` (68 % band)."""

    score: float
    n_fit: int
    n_held: int
    n_held_at_least: int
    p_empirical: float
    p_tail: float
    p_tail_low: float
    p_tail_high: float

    @property
    def pull(self) -> float:
        """(ln p_tail − ln p_emp) over the combined error in ln p (Poisson and bootstrap)."""
        sigma_emp = 1.0 / math.sqrt(self.n_held_at_least)
        if self.p_tail_low > 0.0:
            sigma_fit = 0.5 * (math.log(self.p_tail_high) - math.log(self.p_tail_low))
        else:  # the band reaches p = 0 (a bounded tail): its upper half only
            sigma_fit = math.log(self.p_tail_high) - math.log(self.p_tail)
        return (math.log(self.p_tail) - math.log(self.p_empirical)) / math.hypot(
            sigma_emp, sigma_fit
        )


def validate_tail(
    scores,
    rng: np.random.Generator,
    fit_fraction: float = 0.05,
    factors=(2, 5, 10, 30),
    shape: str = "exponential",
) -> list[TailValidation]:
    """Fit the tail on a random ``fit_fraction`` of ``scores`` and compare it with the held-out
    maps at the score levels whose held-out p is 1 / (factor · N_fit): ``factors`` times beyond
    what the fit set resolves (levels with fewer than 3 held-out maps are skipped), with the
    tail ``shape`` of :func:`fit_tail`. Empty if the fit set is too small for a tail."""
    s = np.asarray(scores, dtype=np.float64)
    order = rng.permutation(s.size)
    n_fit = round(fit_fraction * s.size)
    fit_part, held = s[order[:n_fit]], np.sort(s[order[n_fit:]])[::-1]
    fit = fit_tail(fit_part, shape=shape)
    out = []
    if fit is None:
        return out
    for factor in factors:
        k = round(held.size / (factor * n_fit))
        if k < 3:
            continue
        level = float(held[k - 1])
        n_at_least = int(np.count_nonzero(held >= level))
        if not np.isfinite(level) or level < fit.threshold:
            continue
        p_tail = fit.p_value(level)
        if not p_tail > 0.0:
            continue
        low, high = fit.band(level, rng)
        out.append(
            TailValidation(
                level, n_fit, held.size, n_at_least, n_at_least / held.size, p_tail, low, high
            )
        )
    return out
