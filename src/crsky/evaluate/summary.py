"""All models side by side (``crsky summary``): the significance tables of several evaluation
folders in one table with each method's distance to the ceiling, and σ against the number of
signal CRs of every method in one figure with the seeds' published points.

``summary.csv`` has ``model``, ``test_dataset`` and the columns of ``significance.csv``, then per
σ level L (e.g. 3 and 5): ``n_signal_<L>sigma`` (signal CRs where σ crosses L, crossings.csv),
``crossing_<L>sigma`` (its status) and ``oracle_ratio_<L>sigma``, that number divided by what
``likelihood_oracle`` needs on the same test set (1.0 is the Neyman–Pearson ceiling; empty if
either does not reach L). Methods that do not depend on the model (two_point,
likelihood_profiled, likelihood_oracle) appear once per test set (model "-") when every folder
of that test set has the same rows, and per model otherwise.
"""

import csv
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import h5py
import numpy as np
from matplotlib.figure import Figure

from crsky.errors import ConfigError, InputFileError
from crsky.evaluate.plots import METHOD_LABELS, draw_sigma_points, marker_handles
from crsky.io import atomic_folder, atomic_output
from crsky.plotting import save_png
from crsky.stats.significance import (
    Crossing,
    SignificanceRow,
    read_crossings_csv,
    read_significance_csv,
)

__all__ = [
    "MODEL_INDEPENDENT",
    "SEED_POINTS",
    "SeedPoint",
    "plot_sigma_summary",
    "summarize",
    "write_summary_csv",
]

MODEL_INDEPENDENT = ("two_point", "likelihood_profiled", "likelihood_oracle")


@dataclass(frozen=True)
class SeedPoint:
    """A published result of the seeds: ``sigma`` at ``n_signal`` signal CRs of ``n_cr``,
    for test maps deflected in ``mode`` ("toy" or "lens")."""

    label: str
    n_signal: float
    sigma: float
    n_cr: int
    mode: str


SEED_POINTS = (
    SeedPoint("seed 002 DeepSphere: 5σ at ≈30 of 1,000 CRs (toy, He)", 30.0, 5.0, 1000, "toy"),
    SeedPoint("seed 000 DNN: 3.4σ at 4 % of 651 CRs (JF12 lens)", 0.04 * 651, 3.4, 651, "lens"),
    SeedPoint("seed 000 two-point: 1.2σ at 4 % of 651 CRs", 0.04 * 651, 1.2, 651, "lens"),
)


@dataclass(frozen=True)
class _Folder:
    name: str
    test_dataset: str
    mode: str
    n_cr: int
    rows: list[SignificanceRow]
    crossings: list[Crossing]


def _open_folder(name: str, folder: Path) -> _Folder:
    folder = Path(folder)
    rows = read_significance_csv(folder / "significance.csv")
    crossings = read_crossings_csv(folder / "crossings.csv")
    try:
        with h5py.File(folder / "scores.h5", "r") as f:
            test = json.loads(f.attrs["test"])
    except (OSError, KeyError, ValueError) as err:
        where = str(folder / "scores.h5")
        raise InputFileError(f"cannot read the test set of {where!r}: {err}") from err
    mode = "lens" if test.get("lens_folder") else "toy"
    return _Folder(name, str(test["dataset"]), mode, int(test["n_cr"]), rows, crossings)


def _collect(folders: list[_Folder]) -> list[tuple[str, str, SignificanceRow, dict]]:
    """(model, test dataset, row, crossings of that row's method by level), model-independent
    methods once per test set when identical."""
    out = []
    for test in dict.fromkeys(f.test_dataset for f in folders):
        group = [f for f in folders if f.test_dataset == test]
        for folder in group:
            for row in folder.rows:
                if row.method in MODEL_INDEPENDENT and _shared(group, row.method):
                    continue
                out.append((folder.name, test, row, _levels(folder, row.method)))
        for method in MODEL_INDEPENDENT:
            if _shared(group, method):
                first = group[0]
                for row in (r for r in first.rows if r.method == method):
                    out.append(("-", test, row, _levels(first, method)))
    return out


def _shared(group: list[_Folder], method: str) -> bool:
    rows = [[r for r in f.rows if r.method == method] for f in group]
    return bool(rows[0]) and all(r == rows[0] for r in rows)


def _levels(folder: _Folder, method: str) -> dict[float, Crossing]:
    return {c.sigma_level: c for c in folder.crossings if c.method == method}


def _ratio(crossing: Crossing | None, oracle: Crossing | None) -> float | None:
    if crossing is None or oracle is None or crossing.n_signal is None or not oracle.n_signal:
        return None
    return crossing.n_signal / oracle.n_signal


def write_summary_csv(path, rows, levels) -> Path:
    """One line per (model, method, signal fraction), with the crossings of every σ level and
    their ratio to the oracle's on the same test set, written atomically."""
    oracles = {
        test: crossings for model, test, r, crossings in rows if r.method == "likelihood_oracle"
    }
    tags = [f"{level:g}" for level in levels]
    header = ["model", "test_dataset", *(f.name for f in fields(SignificanceRow))]
    for tag in tags:
        header += [f"n_signal_{tag}sigma", f"crossing_{tag}sigma", f"oracle_ratio_{tag}sigma"]
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            for model, test, row, crossings in rows:
                line = [model, test, *(_cell(v) for v in asdict(row).values())]
                for level in levels:
                    c = crossings.get(float(level))
                    ratio = _ratio(c, oracles.get(test, {}).get(float(level)))
                    line += [
                        _cell(None if c is None else c.n_signal),
                        "" if c is None else c.status,
                        _cell(ratio),
                    ]
                writer.writerow(line)
    return Path(path)


def _cell(value) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def plot_sigma_summary(path, rows, levels, cases: dict[str, tuple[str, int]]) -> Path:
    """σ against the number of signal CRs, one panel per test set (``cases``: test set ->
    (deflection mode, CRs per map)): every model's network solid, the model-independent
    methods dashed, markers by where p comes from, the σ levels dotted, and the seeds'
    published points of the same deflection mode as stars (their CRs per map in the label)."""
    tests = list(cases)
    fig = Figure(figsize=(7.2 * len(tests), 5.0))
    for k, test in enumerate(tests):
        ax = fig.add_subplot(1, len(tests), k + 1)
        curves: dict[tuple[str, str], list[SignificanceRow]] = {}
        for model, t, r, _ in rows:
            if t == test:
                curves.setdefault((model, r.method), []).append(r)
        for i, ((model, method), mine) in enumerate(sorted(curves.items(), key=_curve_order)):
            mine.sort(key=lambda r: r.n_signal_mean)
            n = np.array([r.n_signal_mean for r in mine])
            sigma = np.array([r.sigma for r in mine])
            label = METHOD_LABELS.get(method, method) if method != "network" else model
            if model != "-" and method != "network":
                label += f" ({model})"
            colour = f"C{i}"
            style = "-" if method == "network" else "--"
            ax.plot(n, sigma, style, color=colour, lw=1.4, label=label)
            draw_sigma_points(ax, n, mine, colour)
        mode, n_cr = cases[test]
        for j, point in enumerate(p for p in SEED_POINTS if p.mode == mode):
            ax.plot(
                point.n_signal, point.sigma, marker="*", ms=13, ls="none", mec="k",
                color=("gold", "violet", "orange")[j % 3], label=point.label,
            )  # fmt: skip
        for level in levels:
            ax.axhline(level, color="k", ls=":", lw=1)
        ax.set_xlabel("signal CRs per map")
        ax.set_ylabel("σ (one-sided Gaussian equivalent of p)")
        ax.set_title(f"test set {test!r} ({mode}, {n_cr} CRs per map)", fontsize=10)
        ax.set_ylim(bottom=min(-0.5, ax.get_ylim()[0]))
        ax.grid(alpha=0.3)
        ax.legend(
            fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=2,
            title="curves (network: solid) and the seeds' points", title_fontsize=7,
        )  # fmt: skip
    fig.tight_layout()
    fig.legend(
        handles=marker_handles(crossings=False), loc="lower center", bbox_to_anchor=(0.5, 1.0),
        ncol=2, fontsize=7, title="markers (each in its curve's colour)", title_fontsize=7,
    )  # fmt: skip
    return save_png(fig, path)


def _curve_order(item):
    (model, method), _ = item
    return (method != "network", method, model)


def summarize(folders: dict[str, Path], output, levels) -> Path:
    """Write ``summary.csv`` and ``sigma_summary.png`` of the evaluation ``folders`` (model name
    -> folder) into ``output``."""
    if not folders:
        raise ConfigError("no evaluation folders to summarise")
    opened = [_open_folder(name, folder) for name, folder in folders.items()]
    rows = _collect(opened)
    cases = {f.test_dataset: (f.mode, f.n_cr) for f in opened}
    output = Path(output)
    # written as a whole: a killed job leaves no folder that looks finished
    with atomic_folder(output, ("summary.csv", "sigma_summary.png")) as staging:
        write_summary_csv(staging / "summary.csv", rows, levels)
        plot_sigma_summary(staging / "sigma_summary.png", rows, levels, cases)
    return output
