"""The oracle's statistic for given per-CR ratios, and sources for maps without signal drawn as
the simulation draws them (package docstring: the likelihood)."""

import numpy as np

from crsky.errors import ConfigError
from crsky.likelihood import _kernels as K
from crsky.sky.simulate import SkySimulator

__all__ = ["draw_sources", "oracle_fraction", "oracle_log_lr"]


def oracle_log_lr(ratios, n_signal, signal_fraction, counting: str) -> np.ndarray:
    """Log-likelihood ratio (n_maps,) of every map at its signal strength: exact ln LR_n with
    n = ``n_signal`` for ``counting`` "round", the mixture Λ(f) at ``signal_fraction`` for
    "binomial". −inf where the map is impossible under the signal (fewer than n CRs with r > 0)."""
    r = np.ascontiguousarray(ratios, dtype=np.float64)
    if r.ndim != 2:
        raise ConfigError(f"'ratios' must be (n_maps, n_cr), got {r.shape}")
    if counting == "round":
        n = np.broadcast_to(np.asarray(n_signal, dtype=np.int64), r.shape[:1])
        if n.size and (n.min() < 0 or n.max() > r.shape[1]):
            raise ConfigError(f"'n_signal' must lie in 0 ... {r.shape[1]}")
        return K.exact_log_lr_maps(r, np.ascontiguousarray(n))
    if counting == "binomial":
        f = np.broadcast_to(np.asarray(signal_fraction, dtype=np.float64), r.shape[:1])
        return K.mixture_log_lr_maps(r, np.ascontiguousarray(f))
    raise ConfigError(f"'signal_count' must be 'round' or 'binomial', got {counting!r}")


def oracle_fraction(ratios) -> tuple[np.ndarray, np.ndarray]:
    """(Λ_max, f_hat) (n_maps,): the mixture likelihood maximised over f in [0, 1] with the
    sources fixed (the oracle's maximum-likelihood signal fraction)."""
    return K.fit_fraction_maps(np.ascontiguousarray(ratios, dtype=np.float64))


def draw_sources(simulator: SkySimulator, n_signal, rng: np.random.Generator):
    """Sources (n_maps, n_src, 3) and toy axes (or None) for maps scored as if they held
    ``n_signal`` signal CRs: the simulation's prior for signal maps of that strength."""
    return simulator.observable_sources(np.asarray(n_signal, dtype=np.int64), rng)
