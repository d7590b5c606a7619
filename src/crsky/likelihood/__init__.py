r"""Likelihood-ratio analyses built from the simulation's own model (crsky.sky): the ceiling
against which the networks and the two-point baseline are measured.

**Frames and units.** CRs are the stored ones of a skymap chunk: HEALPix RING pixel p at the
chunk's nside in the Galactic frame (DESIGN.md section 3) and log10(E / eV); sources are
Galactic unit vectors (extragalactic directions, lens mode: the edge of the Galaxy); rigidity
R = E / Z in volts; angles in radians.

**The likelihood.** A map holds N CRs; each is background with density b and, under a signal
hypothesis H (source positions, toy rotation axes) with signal fraction f, signal with density
s_H. Densities are over (pixel, energy) since the charge is not observed:

    b(p, E) = p(E) ω_p / Σ_p' ω_p',
    s_H(p, E) = p(E) Σ_k c_k Σ_j w_j D_j(p | R = E / Z_k) ω_p / Σ_j w_j A_j,

with p(E) the spectrum between the dataset's energy limits, c_k the charge fractions of the
composition, ω_p the pixel-averaged relative exposure, w_j the sources' flux shares, D_j the
deflection model's probability that a CR of rigidity R emitted by source j arrives in pixel p
(toy: Fisher blurring of width σ = blur_fraction · 2.79 rad EV / R around the source rotated by
θ = rotation_rad_ev · EV / R about its axis; lens: the lens column of the source's
extragalactic pixel, summed over the lens pixels within p and weighted by their exposure, with
the column sum ≤ 1 as transparency; none: the source pixel), and

    A_j = Σ_k c_k ∫ p(E) Σ_p D_j(p | E / Z_k) ω_p dE

the fraction of the CRs source j emits that are observed. This is exactly how crsky.sky.simulate
selects observed signal CRs (emitted CRs rejected by exposure or lens are replaced), so the
observed signal is reshaped by exposure and transparency and normalised over what the selection
keeps. Only the ratio r_i = s_H(p_i, E_i) / b(p_i, E_i) enters: p(E) cancels, the spectrum acts
through A_j only. The map's log-likelihood ratio is

    Λ(f, H) = Σ_i ln(1 − f + f r_i)       (binomial mixture: each CR signal with probability f),

and with exactly n signal CRs (``signal_count: round``, any n-subset equally likely)

    ln LR_n(H) = ln [ e_n(r_1 ... r_N) / C(N, n) ]   (e_n: elementary symmetric polynomial).

**What each analysis may know.**

- ``likelihood_profiled`` (a realistic analysis): each CR's pixel and energy, the exposure,
  spectrum and composition fractions, the deflection model of the dataset (toy law, or the
  lens and its transparency) and the number of sources; not the charges (mixed over the
  composition as above), not which CRs are signal, not the source position or the toy's axis:
  its statistic is max over f in [0, 1] and H on the profile grid of Λ(f, H) (one source;
  toy: coarse-to-fine grid of positions and axes, :class:`ProfileGrid`; lens: every lens pixel;
  none: every map pixel). Source hypotheses whose acceptance A is below half of the
  simulation's floor for random sources are not considered. The look-elsewhere effect is
  calibrated on the isotropy set.
- ``likelihood_oracle`` (the Neyman–Pearson ceiling): also the true source positions (and toy
  axes) and, at each tested signal fraction, the signal strength: its statistic is ln LR_n at
  n = round(f N) (exact, O(N n)) or, for ``signal_count: binomial``, Λ(f). Isotropic maps are
  scored with sources drawn exactly as the simulation draws them for signal maps
  (:meth:`crsky.sky.simulate.SkySimulator.observable_sources`), so the statistic is the
  likelihood ratio of (map, source) jointly and the most powerful test of isotropy against
  that signal.

**Approximations** (both methods): a CR's direction is its pixel centre, the pixel integral of
the Fisher density is the density at the centre with σ² widened by Ω_pix / 12 (the pixel's
variance), the exposure is constant within a pixel, and in toy mode A is computed with the
exposure smoothed by the Fisher kernel (tabulated in sin δ and σ) at 24 energy nodes; the
profile cuts Fisher components below 1e-4 of their peak. Lens mode needs
``extragalactic_smearing_deg: 0``; the profile handles one source (the oracle any number).
"""

from crsky.likelihood.model import (
    PROFILE_ACCEPTANCE_FLOOR,
    PixelModel,
    ProfileGrid,
    ProfileResult,
    SignalModel,
    ToyModel,
    check_likelihood_dataset,
    signal_model,
)
from crsky.likelihood.oracle import draw_sources, oracle_fraction, oracle_log_lr

__all__ = [
    "PROFILE_ACCEPTANCE_FLOOR",
    "PixelModel",
    "ProfileGrid",
    "ProfileResult",
    "SignalModel",
    "ToyModel",
    "check_likelihood_dataset",
    "draw_sources",
    "oracle_fraction",
    "oracle_log_lr",
    "signal_model",
]
