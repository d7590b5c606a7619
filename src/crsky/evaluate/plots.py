"""Figures of the evaluation folder (PNG, matplotlib's Agg canvas, no pyplot state).

Sky maps are Mollweide projections in Galactic coordinates with the Galactic Centre in the middle
and longitude increasing to the left (as in crsky.lens.plots).
"""

from pathlib import Path

import healpy as hp
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from crsky.evaluate.data import MapSet
from crsky.history import history_columns
from crsky.plotting import galactic_ticks, save_png, sky_xy
from crsky.stats.significance import FRACTION_ATOL, Crossing, SignificanceRow
from crsky.store import open_chunk

__all__ = [
    "METHOD_LABELS",
    "SOURCE_MARKERS",
    "draw_sigma_points",
    "marker_handles",
    "marker_legend",
    "plot_best_psi",
    "plot_example_skymaps",
    "plot_roc_curves",
    "plot_score_distributions",
    "plot_sigma_curves",
    "plot_training_curves",
]

METHOD_LABELS = {
    "network": "network",
    "two_point": "two-point auto-correlation",
    "likelihood_profiled": "likelihood (source profiled)",
    "likelihood_oracle": "likelihood oracle (truth known)",
}
_SCORE_LABELS = {
    "network": "network logit",
    "two_point": "−log10(min over ψ of p)",
    "likelihood_profiled": "TS = 2 ln L(f̂, ŝ) / L(0)",
    "likelihood_oracle": "ln LR at the map's signal fraction",
}


def _example_maps(test: MapSet, fractions, labels: dict) -> list[tuple[float, int, int]]:
    """(fraction, chunk index, map index) of the first test map at each fraction."""
    out = []
    for f in fractions:
        hits = np.flatnonzero(
            np.isclose(labels["signal_fraction"], f, rtol=0.0, atol=FRACTION_ATOL)
        )
        if hits.size:
            out.append((float(f), int(labels["chunk"][hits[0]]), int(labels["map"][hits[0]])))
    return out


def plot_example_skymaps(output, test: MapSet, fractions, max_panels: int = 6) -> Path:
    """One example test map per signal fraction (at most ``max_panels``, spread over the
    fractions): background CRs grey, signal CRs red, source positions as stars."""
    fractions = np.sort(np.asarray(fractions, dtype=float))
    if fractions.size > max_panels:
        fractions = fractions[np.linspace(0, fractions.size - 1, max_panels).round().astype(int)]
    chosen = _example_maps(test, fractions, test.labels())
    n_cols = 2 if len(chosen) > 1 else 1
    n_rows = max(1, int(np.ceil(len(chosen) / n_cols)))
    fig = Figure(figsize=(5.2 * n_cols, 3.0 * n_rows + 0.5))
    for k, (f, c, m) in enumerate(chosen):
        with open_chunk(test.paths[c]) as chunk:
            crs = chunk.cosmic_rays(m, m + 1)
            labels = chunk.labels(m, m + 1)
        pixel = crs.pixel[0].astype(np.int64)
        signal = crs.is_signal[0]
        v = np.stack(hp.pix2vec(test.nside, pixel, nest=False), axis=-1)
        x, y = sky_xy(v)
        ax = fig.add_subplot(n_rows, n_cols, k + 1, projection="mollweide")
        ax.scatter(x[~signal], y[~signal], s=2, c="0.55", lw=0, label="background")
        ax.scatter(x[signal], y[signal], s=6, c="tab:red", lw=0, label="signal")
        sx, sy = sky_xy(np.asarray(labels["source_direction"][0], dtype=np.float64))
        ax.scatter(sx, sy, s=90, marker="*", c="gold", edgecolors="k", lw=0.6, label="source")
        ax.set_title(
            f"f = {f:g}: {int(signal.sum())} of {pixel.size} CRs signal", fontsize=9, pad=12
        )
        galactic_ticks(ax)
        if k == 0:
            ax.legend(loc="upper left", fontsize=7, bbox_to_anchor=(-0.08, 0.02), markerscale=2)
    fig.suptitle(f"Example test maps of {test.dataset!r} (Galactic, GC at centre, l to the left)")
    return save_png(fig, output)


def _finite(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v[np.isfinite(v)]


def plot_score_distributions(output, methods: dict, fractions) -> Path:
    """Histograms of the scores of the isotropic maps and of the test maps at a few signal
    fractions, one panel per method, with the median of each signal group dashed. Scores of
    −inf (maps impossible under the oracle's signal) are counted in the legend, not drawn.

    ``methods``: name -> (test scores, test signal fractions, isotropic scores, None or the
    fractions of the isotropic score columns (one column per fraction: the oracle)).
    """
    fractions = np.sort(np.asarray(fractions, dtype=float))
    if fractions.size > 4:
        fractions = fractions[np.linspace(0, fractions.size - 1, 4).round().astype(int)]
    fig = Figure(figsize=(5.6 * len(methods), 4.0))
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for k, (name, (scores, f, iso, iso_fractions)) in enumerate(methods.items()):
        ax = fig.add_subplot(1, len(methods), k + 1)
        everything = np.concatenate([_finite(scores), _finite(iso)])
        if everything.size == 0:
            everything = np.zeros(1)
        bins = np.linspace(everything.min(), everything.max(), 41)
        if bins[0] == bins[-1]:
            bins = np.linspace(bins[0] - 0.5, bins[0] + 0.5, 41)
        if iso_fractions is None:
            ax.hist(
                _finite(iso),
                bins=bins,
                density=True,
                color="0.6",
                alpha=0.7,
                label=f"isotropy (N = {iso.shape[0]})",
            )
        for colour, value in zip(colours, fractions, strict=False):
            group = scores[np.isclose(f, value, rtol=0.0, atol=FRACTION_ATOL)]
            if group.size == 0:
                continue
            if iso_fractions is not None:
                column = np.flatnonzero(
                    np.isclose(iso_fractions, value, rtol=0, atol=FRACTION_ATOL)
                )
                reference = _finite(iso[:, column[0]])
                impossible = iso.shape[0] - reference.size
                if reference.size:
                    ax.hist(
                        reference,
                        bins=bins,
                        density=True,
                        histtype="step",
                        ls=":",
                        lw=1.2,
                        color=colour,
                        label=f"isotropy at f = {value:g}"
                        + (f" ({impossible} at −∞)" if impossible else ""),
                    )
            finite = _finite(group)
            if finite.size:
                ax.hist(
                    finite,
                    bins=bins,
                    density=True,
                    histtype="step",
                    lw=1.5,
                    color=colour,
                    label=f"f = {value:g} ({group.size} maps)",
                )
                ax.axvline(np.median(group), color=colour, ls="--", lw=1)
        ax.set_xlabel(_SCORE_LABELS.get(name, "score"))
        ax.set_ylabel("density")
        ax.set_yscale("log")
        ax.set_title(METHOD_LABELS.get(name, name))
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, output)


# marker of a σ point by where its p comes from (crsky.stats.significance P_SOURCES)
SOURCE_MARKERS = {
    "empirical": {"marker": "o"},
    "extrapolated": {"marker": "o", "mfc": "none"},
    "importance": {"marker": "D", "mfc": "none"},
    "bound": {"marker": "^"},
}
_MARKER_MEANINGS = (
    ({"marker": "o"}, "p from the isotropic maps; bar: 68 % binomial (Clopper-Pearson) error"),
    ({"marker": "o", "mfc": "none"}, "p beyond 1/N: fitted tail of the isotropic scores"),
    ({"marker": "D", "mfc": "none"}, "p beyond 1/N: importance sampling (oracle)"),
    ({"marker": "^"}, "lower bound: no isotropic map reached the median (p < 1/N)"),
    ({"marker": "v"}, "upper bound: every isotropic map reached the median"),
    ({"marker": "x", "mew": 1.5}, "interpolated crossing of a σ level"),
)


def marker_handles(crossings: bool = True) -> list[Line2D]:
    """Legend entries (in black) of what each σ marker means; ``crossings``: with the marker of
    an interpolated σ-level crossing."""
    meanings = _MARKER_MEANINGS if crossings else _MARKER_MEANINGS[:-1]
    return [
        Line2D([], [], color="k", ls="none", ms=6, label=label, **style)
        for style, label in meanings
    ]


def marker_legend(ax, **options):
    """A legend of what each σ marker means; returns it, so that a method legend can be added
    beside it (``ax.add_artist``)."""
    return ax.legend(handles=marker_handles(), **{"fontsize": 7, **options})


def draw_sigma_points(ax, x: np.ndarray, rows: list[SignificanceRow], colour: str) -> None:
    """σ points of one method marked by p_source (filled circle: empirical, open circle:
    extrapolated tail, open diamond: importance sampling, triangle: bound; ▼ for σ upper
    bounds), with their 68 % bands as error bars (binomial for empirical p); an open band (no
    upper limit) is drawn up to σ + 3."""
    sigma = np.array([r.sigma for r in rows])
    for source, style in SOURCE_MARKERS.items():
        sel = np.array([r.p_source == source and r.sigma_bound != "<" for r in rows])
        if sel.any():
            ax.plot(x[sel], sigma[sel], ls="none", color=colour, ms=5, **style)
    upper = np.array([r.sigma_bound == "<" for r in rows])
    if upper.any():
        ax.plot(x[upper], sigma[upper], "v", color=colour, ms=5, ls="none")
    for xi, r in zip(x, rows, strict=True):
        if r.sigma_low is None and r.sigma_high is None:
            continue
        low = r.sigma_low if r.sigma_low is not None else r.sigma
        high = r.sigma_high if r.sigma_high is not None else r.sigma + 3.0
        ax.errorbar(
            [xi], [r.sigma], yerr=[[max(r.sigma - low, 0.0)], [max(high - r.sigma, 0.0)]],
            fmt="none", ecolor=colour, elinewidth=0.9, capsize=2.5, alpha=0.8,
        )  # fmt: skip


def plot_sigma_curves(
    output, rows: list[SignificanceRow], crossings: list[Crossing], levels, n_cr: int
) -> Path:
    """σ vs signal fraction per method with 68 % bands; markers say where p comes from
    (:func:`draw_sigma_points`), dotted lines the σ levels, crosses the interpolated crossings.
    Top axis: signal CRs f × n_cr."""
    fig = Figure(figsize=(10.5, 4.6))
    ax = fig.add_subplot()
    for k, method in enumerate(dict.fromkeys(r.method for r in rows)):
        mine = sorted((r for r in rows if r.method == method), key=lambda r: r.signal_fraction)
        f = np.array([r.signal_fraction for r in mine])
        sigma = np.array([r.sigma for r in mine])
        colour = f"C{k}"
        ax.plot(f, sigma, "-", color=colour, lw=1.2, label=METHOD_LABELS.get(method, method))
        draw_sigma_points(ax, f, mine, colour)
        for c in crossings:
            if c.method == method and c.signal_fraction is not None:
                ax.plot(c.signal_fraction, c.sigma_level, "x", color=colour, ms=8, mew=1.5)
    for level in levels:
        ax.axhline(level, color="k", ls=":", lw=1)
        ax.annotate(
            f"{level:g}σ",
            (1.0, level),
            xycoords=("axes fraction", "data"),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_xlabel("signal fraction f (signal CRs per map / CRs per map)")
    ax.set_ylabel("significance σ (one-sided Gaussian equivalent of p)")
    top = ax.secondary_xaxis("top", functions=(lambda f: f * n_cr, lambda n: n / n_cr))
    top.set_xlabel(f"signal CRs per map (f × {n_cr})")
    ax.grid(alpha=0.3)
    methods = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, title="method")
    ax.add_artist(methods)
    marker_legend(ax, loc="upper left", bbox_to_anchor=(1.02, 0.55), title="markers")
    fig.tight_layout()
    return save_png(fig, output)


def plot_training_curves(output, history_path, name: str | None = None) -> Path:
    """Loss and each metric vs epoch, training (solid) and validation (dashed), and the
    learning rate, from a model folder's ``history.csv``; ``name`` titles the figure."""
    h = history_columns(history_path)
    metrics = [k for k in h if not k.startswith("val_") and f"val_{k}" in h]
    panels = [*metrics, "learning_rate"] if "learning_rate" in h else metrics
    fig = Figure(figsize=(4.2 * max(1, len(panels)), 3.6))
    for k, column in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        label = "training" if column in metrics else column
        ax.plot(h["epoch"], h[column], "o-", ms=3, label=label)
        if f"val_{column}" in h:
            ax.plot(h["epoch"], h[f"val_{column}"], "s--", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(column)
        if column in ("loss", "learning_rate") and np.all(h[column] > 0):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Training of model {name or Path(history_path).parent.name!r}")
    fig.tight_layout()
    return save_png(fig, output)


def roc_curve(signal, isotropic) -> tuple[np.ndarray, np.ndarray, float]:
    """(false positive rate, true positive rate, area under the curve) of scores of signal maps
    against isotropic maps, a map counted positive when its score ≥ the threshold; ties share
    their step (the area is the Mann-Whitney probability P(signal > isotropic) + P(=)/2)."""
    signal = np.sort(np.asarray(signal, dtype=np.float64))
    isotropic = np.sort(np.asarray(isotropic, dtype=np.float64))
    thresholds = np.unique(np.concatenate([signal, isotropic]))[::-1]
    tpr = (signal.size - np.searchsorted(signal, thresholds, side="left")) / signal.size
    fpr = (isotropic.size - np.searchsorted(isotropic, thresholds, side="left")) / isotropic.size
    fpr, tpr = np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def plot_roc_curves(output, methods: dict, fractions) -> Path:
    """ROC curves per method (one panel each): test maps at each signal fraction > 0 against
    the isotropic maps, with the area under each curve; ``methods`` as in
    :func:`plot_score_distributions`."""
    fractions = [f for f in np.sort(np.asarray(fractions, dtype=float)) if f > FRACTION_ATOL]
    fig = Figure(figsize=(4.4 * len(methods) + 2.2, 4.4))
    axes = fig.subplots(1, len(methods), squeeze=False)[0]
    for ax, (name, (scores, f, iso, iso_fractions)) in zip(axes, methods.items(), strict=True):
        for k, value in enumerate(fractions):
            group = scores[np.isclose(f, value, rtol=0.0, atol=FRACTION_ATOL)]
            reference = iso
            if iso_fractions is not None:
                same = np.isclose(iso_fractions, value, rtol=0, atol=FRACTION_ATOL)
                reference = iso[:, np.flatnonzero(same)[0]]
            if group.size == 0 or reference.size == 0:
                continue
            fpr, tpr, area = roc_curve(group, reference)
            ax.plot(fpr, tpr, color=f"C{k}", lw=1.3, label=f"f = {value:g} (AUC {area:.3f})")
        ax.plot([0, 1], [0, 1], ":", color="grey", lw=1, label="chance")
        ax.set_xlabel("false positive rate (isotropic maps above threshold)")
        ax.set_ylabel("true positive rate (signal maps above threshold)")
        ax.set_title(METHOD_LABELS.get(name, name))
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.03, 1.0), fontsize=7, title="test maps")
    fig.tight_layout()
    return save_png(fig, output)


def plot_best_psi(output, best_psi_test, f, best_psi_iso, fractions, psi_deg) -> Path:
    """Distribution of the two-point analysis's best angular scale ψ per map: isotropic maps
    and test maps at up to four signal fractions."""
    fractions = np.sort(np.asarray(fractions, dtype=float))
    if fractions.size > 4:
        fractions = fractions[np.linspace(0, fractions.size - 1, 4).round().astype(int)]
    psi = np.asarray(psi_deg, dtype=np.float64)
    step = psi[1] - psi[0] if psi.size > 1 else 1.0
    edges = np.append(psi - step / 2, psi[-1] + step / 2)
    fig = Figure(figsize=(8.8, 4.2))
    ax = fig.add_subplot()
    ax.hist(best_psi_iso, bins=edges, density=True, color="0.6", alpha=0.7,
            label=f"isotropic maps ({len(best_psi_iso)})")  # fmt: skip
    for k, value in enumerate(fractions):
        group = best_psi_test[np.isclose(f, value, rtol=0.0, atol=FRACTION_ATOL)]
        if group.size:
            ax.hist(group, bins=edges, density=True, histtype="step", lw=1.4, color=f"C{k}",
                    label=f"test maps f = {value:g} ({group.size})")  # fmt: skip
    ax.set_xlabel("best angular scale ψ of the two-point analysis (degrees)")
    ax.set_ylabel("fraction of maps per degree")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    ax.set_title("Where the two-point auto-correlation is most significant, per map")
    fig.tight_layout()
    return save_png(fig, output)
