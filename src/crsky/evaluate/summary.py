"""All models side by side (``crsky summary``): the significance tables of several evaluation
folders in one table, and σ against signal fraction of every network and of the two-point
baseline in one figure.

``summary.csv`` has the columns of ``significance.csv`` with ``model`` first; the baseline does
not depend on the model, so its rows appear once (with model "-") when every folder has the same
ones, and per model otherwise.
"""

import csv
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from crsky.errors import ConfigError
from crsky.io import atomic_folder, atomic_output
from crsky.stats.significance import SignificanceRow, read_significance_csv

__all__ = ["plot_sigma_summary", "summarize", "write_summary_csv"]

_PNG_METADATA = {"Software": None}


def _collect(folders: dict[str, Path]) -> list[tuple[str, SignificanceRow]]:
    tables = {
        name: read_significance_csv(Path(f) / "significance.csv") for name, f in folders.items()
    }
    baselines = {
        name: [r for r in rows if r.method == "two_point"] for name, rows in tables.items()
    }
    shared = all(b == next(iter(baselines.values())) for b in baselines.values())
    out = []
    for name, rows in tables.items():
        out += [(name, r) for r in rows if r.method != "two_point" or not shared]
    if shared:
        out += [("-", r) for r in next(iter(baselines.values()))]
    return out


def write_summary_csv(path, rows: list[tuple[str, SignificanceRow]]) -> Path:
    """One line per (model, method, signal fraction), written atomically."""
    header = ["model", *(f.name for f in fields(SignificanceRow))]
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            for model, row in rows:
                writer.writerow(
                    [model, *(repr(v) if isinstance(v, float) else v for v in asdict(row).values())]
                )
    return Path(path)


def plot_sigma_summary(path, rows: list[tuple[str, SignificanceRow]], levels) -> Path:
    """σ vs signal fraction: one line per model's network, the baseline dashed; triangles mark
    bounds (▲ σ larger, ▼ σ smaller), dotted lines the σ levels."""
    fig = Figure(figsize=(6.6, 4.4))
    ax = fig.add_subplot()
    curves = {}
    for model, r in rows:
        label = (
            "two-point" + ("" if model == "-" else f" ({model})")
            if r.method == "two_point"
            else model
        )
        curves.setdefault((label, r.method), []).append(r)
    for k, ((label, method), mine) in enumerate(sorted(curves.items())):
        mine.sort(key=lambda r: r.signal_fraction)
        f = np.array([r.signal_fraction for r in mine])
        sigma = np.array([r.sigma for r in mine])
        style = "--" if method == "two_point" else "-"
        ax.plot(f, sigma, style, color=f"C{k}", lw=1.3, label=label)
        for bound, marker in (("", "o"), (">", "^"), ("<", "v")):
            sel = np.array([r.sigma_bound == bound for r in mine])
            if sel.any():
                ax.plot(f[sel], sigma[sel], marker, color=f"C{k}", ms=4, ls="none")
    for level in levels:
        ax.axhline(level, color="k", ls=":", lw=1)
    ax.set_xlabel("signal fraction f")
    ax.set_ylabel("σ (one-sided Gaussian equivalent of p)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    FigureCanvasAgg(fig)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata=_PNG_METADATA)
    return Path(path)


def summarize(folders: dict[str, Path], output, levels) -> Path:
    """Write ``summary.csv`` and ``sigma_summary.png`` of the evaluation ``folders`` (model name
    -> folder) into ``output``."""
    if not folders:
        raise ConfigError("no evaluation folders to summarise")
    rows = _collect(folders)
    output = Path(output)
    # written as a whole: a killed job leaves no folder that looks finished
    with atomic_folder(output, ("summary.csv", "sigma_summary.png")) as staging:
        write_summary_csv(staging / "summary.csv", rows)
        plot_sigma_summary(staging / "sigma_summary.png", rows, levels)
    return output
