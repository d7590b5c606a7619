"""The robustness table (``crsky robustness``): networks trained on skies deflected by some
Galactic field models, tested on skies made with others.

Input: evaluation folders (``crsky evaluate``), one per (model, test set). Each folder's
``scores.h5`` names the model folder (whose ``config.json`` lists the training chunks) and the
test set; the chunks themselves say how their maps were deflected. A set's *deflection* is its
lens names joined by ``+`` (a lens mix: every lens of it), or its mode (``toy``, ``none``);
``trained_on`` joins the deflections of the model's training sets that hold signal maps
(isotropic sets carry no deflection).

``robustness.csv``: one row per (model, test set, method, signal fraction) with ``model``,
``trained_on``, ``test_dataset``, ``tested_on``, ``method`` (network; the two-point baseline
once per test set with model ``-``), ``signal_fraction``, ``n_signal_mean``, ``sigma``,
``sigma_bound``, ``p_value``, ``p_bound``, ``p_source``. ``robustness.png``: per signal
fraction, σ of every network (rows: model, trained on) on every test set (columns: tested on),
and the two-point baseline's σ on each test set as the last row.
"""

import csv
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import h5py
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from crsky.errors import ConfigError, InputFileError
from crsky.io import atomic_folder, atomic_output
from crsky.sky.dataset import DatasetConfig
from crsky.stats.significance import FRACTION_ATOL, read_significance_csv
from crsky.store import open_chunk

__all__ = [
    "BASELINE",
    "RobustnessRow",
    "deflection_label",
    "plot_robustness",
    "read_evaluation",
    "robustness",
    "write_robustness_csv",
]

BASELINE = "two_point"  # model-independent: one row of the figure per test set
_NETWORK = "network"
_PNG_METADATA = {"Software": None}


@dataclass(frozen=True)
class RobustnessRow:
    """σ of one method of one (model, test set) evaluation at one signal fraction."""

    model: str
    trained_on: str
    test_dataset: str
    tested_on: str
    method: str
    signal_fraction: float
    n_signal_mean: float
    sigma: float
    sigma_bound: str
    p_value: float
    p_bound: str
    p_source: str


def _chunk_deflection(path: Path) -> tuple[str, bool]:
    """(deflection label, holds signal) of the dataset a chunk belongs to."""
    with open_chunk(path) as chunk:
        names, config, dataset = chunk.lens_names, chunk.config, chunk.dataset
    mode = config.get("deflection", {}).get("mode", "toy")
    label = "+".join(names) if mode == "lens" and names else mode
    fraction = DatasetConfig.from_dict(dataset, config).signal_fraction
    signal = not (fraction.kind == "value" and float(fraction.parameters[0]) == 0.0)
    return label, signal


def deflection_label(chunk_paths) -> str:
    """The deflections of the datasets of ``chunk_paths`` that hold signal maps, joined by
    ``" & "`` (first chunk of each dataset read; "isotropic" when none holds signal)."""
    seen: dict[str, str] = {}
    for path in chunk_paths:
        key = str(Path(path).parent)  # one dataset per folder (results/skymaps/<dataset>/)
        if key not in seen:
            label, signal = _chunk_deflection(Path(path))
            seen[key] = label if signal else ""
    labels = list(dict.fromkeys(label for label in seen.values() if label))
    return " & ".join(labels) or "isotropic"


def read_evaluation(folder: str | Path) -> list[RobustnessRow]:
    """The rows of one evaluation folder: its ``significance.csv`` with the model, the test
    set and both deflections (from ``scores.h5`` and the files it names)."""
    folder = Path(folder)
    table = read_significance_csv(folder / "significance.csv")
    scores = folder / "scores.h5"
    try:
        with h5py.File(scores, "r") as f:
            model_path = Path(str(f.attrs["model"]))
            test = json.loads(f.attrs["test"])
    except (OSError, KeyError, ValueError) as err:
        where = str(scores)
        raise InputFileError(f"cannot read the model and test set of {where!r}: {err}") from None
    if not str(model_path) or str(model_path) == ".":
        raise InputFileError(f"{str(scores)!r} scores no network: a robustness row needs one")
    try:
        training = json.loads((model_path / "config.json").read_text())["training"]
    except (OSError, KeyError, ValueError) as err:
        raise InputFileError(
            f"cannot read the training sets of model {str(model_path)!r} (config.json): {err}"
        ) from None
    trained_on = deflection_label(training)
    tested_on = deflection_label(test["chunks"][:1])
    return [
        RobustnessRow(
            model=model_path.name if row.method != BASELINE else "-",
            trained_on=trained_on if row.method != BASELINE else "-",
            test_dataset=str(test["dataset"]),
            tested_on=tested_on,
            method=row.method,
            signal_fraction=row.signal_fraction,
            n_signal_mean=row.n_signal_mean,
            sigma=row.sigma,
            sigma_bound=row.sigma_bound,
            p_value=row.p_value,
            p_bound=row.p_bound,
            p_source=row.p_source,
        )
        for row in table
        if row.method in (_NETWORK, BASELINE)
    ]


def _collect(folders) -> list[RobustnessRow]:
    """Rows of every folder; the baseline once per test set."""
    rows, baseline_seen = [], set()
    for folder in folders:
        for row in read_evaluation(folder):
            if row.method == BASELINE:
                key = (row.test_dataset, row.tested_on, row.signal_fraction)
                if key in baseline_seen:
                    continue
                baseline_seen.add(key)
            rows.append(row)
    networks = [
        (r.model, r.test_dataset, r.tested_on, r.signal_fraction) for r in rows if r.model != "-"
    ]
    if len(set(networks)) != len(networks):
        raise ConfigError("crsky robustness: a (model, test set) pair is given twice")
    return rows


def write_robustness_csv(rows: list[RobustnessRow], path: str | Path) -> Path:
    """``robustness.csv`` (columns: the fields of :class:`RobustnessRow`)."""
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([field.name for field in fields(RobustnessRow)])
        for row in rows:
            writer.writerow(repr(v) if isinstance(v, float) else v for v in asdict(row).values())
    return Path(path)


def _chosen_fractions(rows: list[RobustnessRow], fractions) -> list[float]:
    """The signal fractions of the figure's panels: ``fractions`` (each one present in the
    rows), or every one > 0."""
    present = sorted({r.signal_fraction for r in rows})
    if not fractions:
        return [f for f in present if f > 0]
    chosen = []
    for value in fractions:
        hit = [f for f in present if abs(f - value) <= FRACTION_ATOL]
        if not hit:
            raise ConfigError(
                f"evaluation.robustness.signal_fractions: {value:g} is not a signal fraction of "
                f"the test sets ({present})"
            )
        chosen.append(hit[0])
    return chosen


def _cell(rows, model: str, test: tuple[str, str], fraction: float) -> RobustnessRow | None:
    """The row of ``model`` on test set ``test`` = (dataset, tested_on) at ``fraction``."""
    for row in rows:
        if (row.model, (row.test_dataset, row.tested_on)) == (model, test) and abs(
            row.signal_fraction - fraction
        ) <= FRACTION_ATOL:
            return row
    return None


def plot_robustness(rows: list[RobustnessRow], path: str | Path, fractions=()) -> Path:
    """One panel per signal fraction: σ of each network (row) on each test set (column), the
    two-point baseline as the last row; numbers in the cells (">" a lower bound)."""
    chosen = _chosen_fractions(rows, fractions)
    models = list(dict.fromkeys((r.model, r.trained_on) for r in rows if r.model != "-"))
    tests = list(dict.fromkeys((r.test_dataset, r.tested_on) for r in rows))
    row_keys = [*models, ("-", "-")]
    row_labels = [f"{m}\n(trained on {t})" for m, t in models] + ["two-point baseline"]
    col_labels = [f"{d}\n({t})" for d, t in tests]
    n_panels = max(len(chosen), 1)
    n_cols = min(n_panels, 2)
    n_rows = -(-n_panels // n_cols)
    width = 1.6 + 1.3 * len(tests)
    fig = Figure(figsize=(n_cols * width + 1.0, n_rows * (0.9 + 0.55 * len(row_keys)) + 0.6))
    sigma_max = max([r.sigma for r in rows if np.isfinite(r.sigma)] + [1.0])
    image = None
    for k, fraction in enumerate(chosen):
        ax = fig.add_subplot(n_rows, n_cols, k + 1)
        grid = np.full((len(row_keys), len(tests)), np.nan)
        n_signal = []
        for i, (model, _) in enumerate(row_keys):
            for j, test in enumerate(tests):
                cell = _cell(rows, model, test, fraction)
                if cell is None:
                    continue
                grid[i, j] = cell.sigma
                n_signal.append(cell.n_signal_mean)
                bound = cell.sigma_bound if cell.sigma_bound in ("<", ">") else ""
                ax.text(j, i, f"{bound}{cell.sigma:.1f}", ha="center", va="center", fontsize=8)
        image = ax.imshow(grid, vmin=0.0, vmax=sigma_max, cmap="viridis", alpha=0.8)
        ax.set_xticks(range(len(tests)), col_labels, fontsize=7)
        ax.set_yticks(range(len(row_keys)), row_labels, fontsize=7)
        ax.set_title(
            f"signal fraction {fraction:g} (≈ {np.mean(n_signal):.0f} signal CRs)", fontsize=9
        )
    if image is not None:
        fig.colorbar(image, ax=fig.axes, label="σ (one-sided)", shrink=0.8)
    fig.suptitle("Robustness: σ of networks trained on one deflection, tested on others")
    FigureCanvasAgg(fig)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata=_PNG_METADATA)
    return Path(path)


def robustness(folders, output: str | Path, fractions=()) -> Path:
    """Read every evaluation folder, write ``robustness.csv`` and ``robustness.png`` into the
    folder ``output`` (written as a whole)."""
    folders = [Path(f) for f in folders]
    if not folders:
        raise ConfigError("crsky robustness: no evaluation folders given")
    rows = _collect(folders)
    _chosen_fractions(rows, fractions)  # a bad fraction stops before anything is written
    with atomic_folder(output, ("robustness.csv", "robustness.png")) as staging:
        write_robustness_csv(rows, staging / "robustness.csv")
        plot_robustness(rows, staging / "robustness.png", fractions)
    return Path(output)
