"""The ``crsky evaluate`` job: one model, the two-point baseline and the likelihood analyses
(crsky.likelihood) on a test and an isotropy set, written to one evaluation folder (DESIGN.md
section 4):

- ``scores.h5``: groups ``test`` and ``isotropy``, per map ``signal_fraction``, ``n_signal``,
  ``chunk`` and ``map`` (where it came from), ``network_score`` (with a model: the logit),
  ``two_point_score`` (−log10 of the minimum local p over ψ) and ``two_point_best_psi_deg``,
  ``likelihood_profiled_score`` (TS = 2 Λ_max) and ``likelihood_profiled_f``,
  ``likelihood_oracle_score`` (ln LR at the map's own strength; isotropy group: one column per
  fraction of the attribute ``likelihood_fractions``); attributes: ``format``
  ("crsky-scores"), ``psi_deg``, ``sigma_levels``, ``model``, ``test`` and ``isotropy`` (JSON
  summaries of the sets), ``crsky_version``;
- ``scores.csv.gz``: the same per-map scores as one table for pandas (``pandas.read_csv``), a
  row per map with the column ``set`` (test or isotropy); the isotropic maps' oracle scores
  have one column per fraction, ``likelihood_oracle_score_f<fraction>``;
- ``significance.csv`` (crsky.stats.significance), ``crossings.csv`` (signal fraction and signal
  CRs where σ crosses each level) and ``significance.html`` (both tables, for the report);
- ``tail_validation.csv``: per method (the oracle at its largest fraction) the tail fitted on
  600 isotropic maps (2 % of larger sets) against the held-out rest at p levels 2, 5, 10 and
  30 times beyond the fit set's 1/N (crsky.stats.tail.validate_tail; empty below 1,200 maps);
- plots: ``skymaps.png``, ``score_distributions.png``, ``sigma.png``, ``roc.png`` (ROC curves of
  every method per signal fraction), ``best_psi.png`` (the two-point analysis's best angular
  scale per map), ``training.png`` (with a model), ``lens_deflection.png`` (when the maps were
  made with a lens).

Every check that can fail runs before any map is scored.
"""

import csv
import gzip
import html
import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from crsky import __version__
from crsky.errors import InputFileError
from crsky.evaluate.data import MapSet, check_compatible
from crsky.evaluate.likelihood_scores import (
    LikelihoodJob,
    method_scores,
    read_likelihood_scores,
    score_chunk,
)
from crsky.evaluate.pair_counts import read_pair_counts
from crsky.evaluate.plots import (
    plot_best_psi,
    plot_example_skymaps,
    plot_roc_curves,
    plot_score_distributions,
    plot_sigma_curves,
    plot_training_curves,
)
from crsky.evaluate.scoring import ModelFolder, score_maps
from crsky.io import atomic_folder, atomic_h5, atomic_output, write_dataset
from crsky.likelihood import ProfileGrid
from crsky.stats.significance import (
    Crossing,
    SignificanceRow,
    check_isotropy_size,
    select_fractions,
    sigma_crossings,
    significance_rows,
    write_crossings_csv,
    write_significance_csv,
)
from crsky.stats.tail import TailValidation, validate_tail
from crsky.stats.two_point import baseline_scores, cumulative_pair_counts, psi_grid_deg
from crsky.store import open_chunk

__all__ = ["OUTPUT_FILES", "EvaluateJob", "evaluate", "output_files"]

log = logging.getLogger(__name__)

OUTPUT_FILES = (
    "scores.h5",
    "scores.csv.gz",
    "roc.png",
    "best_psi.png",
    "significance.csv",
    "crossings.csv",
    "tail_validation.csv",
    "significance.html",
    "skymaps.png",
    "score_distributions.png",
    "sigma.png",
)


def output_files(with_model: bool, with_lens: bool) -> tuple[str, ...]:
    """Names of the files ``evaluate`` writes into its folder."""
    extra = ("training.png",) if with_model else ()
    return OUTPUT_FILES + extra + (("lens_deflection.png",) if with_lens else ())


@dataclass(frozen=True)
class EvaluateJob:
    """Everything one evaluation reads.

    ``test_pair_counts`` / ``isotropy_pair_counts``: per-chunk files of ``crsky paircounts``
    (one per chunk, same order); None computes the counts here. ``test_likelihood`` /
    ``isotropy_likelihood``: per-chunk files of ``crsky likelihood`` (roles test and isotropy,
    against the test set's signal model); None computes ``likelihood_methods`` here (empty:
    no likelihood analysis). ``signal_fractions``: the fractions to report (empty: every one
    in the test set). ``model``: a model folder, or None for the baselines alone. ``plots``:
    False writes the tables and scores only (the robustness evaluations).
    """

    test: tuple[Path, ...]
    isotropy: tuple[Path, ...]
    model: Path | None = None
    psi_deg: tuple[float, ...] = tuple(psi_grid_deg().tolist())
    sigma_levels: tuple[float, ...] = (3.0, 5.0)
    signal_fractions: tuple[float, ...] = ()
    test_pair_counts: tuple[Path, ...] | None = None
    isotropy_pair_counts: tuple[Path, ...] | None = None
    test_likelihood: tuple[Path, ...] | None = None
    isotropy_likelihood: tuple[Path, ...] | None = None
    likelihood_methods: tuple[str, ...] = ()
    likelihood_grid: ProfileGrid = field(default_factory=ProfileGrid)
    batch_size: int = 256
    gpus: int = 0
    threads: int | None = None
    plots: bool = True


@dataclass(frozen=True)
class _Prepared:
    test: MapSet
    isotropy: MapSet
    model: ModelFolder | None
    fractions: np.ndarray
    test_labels: dict
    iso_labels: dict


def _prepare(job: EvaluateJob) -> _Prepared:
    """Open and check every input (no scoring yet)."""
    test = MapSet.open(job.test, "test")
    isotropy = MapSet.open(job.isotropy, "isotropy")
    check_compatible(test, isotropy)
    check_isotropy_size(isotropy.total_maps, job.sigma_levels, isotropy.dataset)
    test_labels = test.labels()
    fractions = select_fractions(test_labels["signal_fraction"], job.signal_fractions)
    model = None
    if job.model is not None:
        model = ModelFolder.open(job.model)
        model.check_maps(test)
        model.check_maps(isotropy)
        if not (model.path / "history.csv").is_file():
            raise InputFileError(f"model folder {str(model.path)!r} has no 'history.csv'")
    for given, maps, what in (
        (job.test_pair_counts, test, "pair-count"),
        (job.isotropy_pair_counts, isotropy, "pair-count"),
        (job.test_likelihood, test, "likelihood"),
        (job.isotropy_likelihood, isotropy, "likelihood"),
    ):
        if given is not None and len(given) != len(maps.paths):
            raise InputFileError(
                f"{len(given)} {what} files for {len(maps.paths)} {maps.role} chunks"
            )
    if (job.test_likelihood is None) != (job.isotropy_likelihood is None):
        raise InputFileError(
            "likelihood score files are needed for both the test and isotropy sets"
        )
    return _Prepared(test, isotropy, model, fractions, test_labels, isotropy.labels())


def _pair_counts(maps: MapSet, files, psi: np.ndarray, threads) -> np.ndarray:
    if files is not None:
        return read_pair_counts(files, psi, maps.paths, maps.n_maps)
    parts = []
    for path in maps.paths:
        with open_chunk(path) as chunk:
            parts.append(
                cumulative_pair_counts(chunk.cosmic_rays().pixel, maps.nside, psi, threads)
            )
    return np.concatenate(parts)


def _likelihood_scores(job: EvaluateJob, prep: _Prepared) -> tuple[dict, dict]:
    """Scores of the likelihood methods for the test and isotropy maps: read from the per-chunk
    files, or computed here for ``job.likelihood_methods``."""
    fractions = prep.fractions
    if job.test_likelihood is not None:
        return (
            read_likelihood_scores(job.test_likelihood, prep.test.paths, prep.test.n_maps, "test"),
            read_likelihood_scores(
                job.isotropy_likelihood,
                prep.isotropy.paths,
                prep.isotropy.n_maps,
                "isotropy",
                fractions,
            ),
        )
    if not job.likelihood_methods:
        return {}, {}
    out = []
    for maps in (prep.test, prep.isotropy):
        parts: dict[str, list] = {}
        for path in maps.paths:
            data, attrs = score_chunk(
                LikelihoodJob(
                    path,
                    prep.test.paths[0],
                    maps.role,
                    tuple(float(f) for f in fractions),
                    job.likelihood_methods,
                    job.likelihood_grid,
                    threads=job.threads,
                )
            )
            scores = method_scores(data, attrs["fractions"], maps.role, fractions, str(path))
            for name, values in scores.items():
                parts.setdefault(name, []).append(values)
        out.append({name: np.concatenate(v) for name, v in parts.items()})
    return out[0], out[1]


def _network_scores(job: EvaluateJob, prep: _Prepared) -> tuple[np.ndarray, np.ndarray]:
    from crsky.devices import make_strategy

    strategy = make_strategy(job.gpus, key="resources.evaluate.gpus")
    with strategy.scope():
        model = prep.model.load()
    return (
        score_maps(model, prep.test, job.batch_size),
        score_maps(model, prep.isotropy, job.batch_size),
    )


def _write_scores(path: Path, job: EvaluateJob, prep: _Prepared, scores: dict, psi) -> None:
    with atomic_h5(path) as f:
        for role, labels in (("test", prep.test_labels), ("isotropy", prep.iso_labels)):
            group = f.create_group(role, track_order=False)
            for name, values in labels.items():
                write_dataset(group, name, values)
            for name, values in scores[role].items():
                write_dataset(group, name, values)
        f.attrs["format"] = "crsky-scores"
        f.attrs["psi_deg"] = psi
        f.attrs["sigma_levels"] = np.asarray(job.sigma_levels, dtype=np.float64)
        f.attrs["model"] = "" if prep.model is None else str(prep.model.path)
        f.attrs["likelihood_fractions"] = np.asarray(prep.fractions, dtype=np.float64)
        f.attrs["test"] = json.dumps(prep.test.describe(), sort_keys=True)
        f.attrs["isotropy"] = json.dumps(prep.isotropy.describe(), sort_keys=True)
        f.attrs["crsky_version"] = __version__


def _write_scores_table(path: Path, prep: _Prepared, scores: dict) -> None:
    """scores.csv.gz (module docstring): one row per map, reproducible gzip (no time stamp)."""
    import pandas as pd

    frames = []
    for role, labels in (("test", prep.test_labels), ("isotropy", prep.iso_labels)):
        columns = {"set": role, **labels}
        for name, values in scores[role].items():
            values = np.asarray(values)
            if values.ndim == 1:
                columns[name] = values
                continue
            for k, fraction in enumerate(prep.fractions):
                columns[f"{name}_f{fraction:g}"] = values[:, k]
        frames.append(pd.DataFrame(columns))
    table = pd.concat(frames, ignore_index=True)
    with atomic_output(path) as tmp, open(tmp, "wb") as raw:
        # no file name and no time stamp in the gzip header: same scores, same bytes
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed:
            packed.write(table.to_csv(index=False).encode())


def _html_table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _write_html(path: Path, prep: _Prepared, rows: list[SignificanceRow], crossings) -> None:
    sig_header = [f.name for f in fields(SignificanceRow)]
    cross_header = [f.name for f in fields(Crossing)]
    model = "none (baseline only)" if prep.model is None else str(prep.model.path)
    text = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Significance</title>"
        "<style>table{border-collapse:collapse;font:13px sans-serif}"
        "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}</style></head><body>"
        f"<p>Model: {html.escape(model)}. Test set {html.escape(prep.test.dataset)!s} "
        f"({prep.test.total_maps} maps of {prep.test.n_cr} CRs, nside {prep.test.nside}); "
        f"isotropy set {html.escape(prep.isotropy.dataset)} ({prep.isotropy.total_maps} maps). "
        "p_source: empirical (seed 002), extrapolated (fitted tail of the isotropic scores), "
        "importance (oracle: importance sampling of its signal maps) or bound (p &lt; 1/N, "
        "sigma_bound '&gt;': σ is a lower bound; '&lt;': an upper bound); sigma_low/high: "
        "68 % band.</p>"
        "<h3>p-value and σ per signal fraction</h3>"
        + _html_table(sig_header, [[getattr(r, h) for h in sig_header] for r in rows])
        + "<h3>Where σ crosses each level</h3>"
        + _html_table(cross_header, [[getattr(c, h) for h in cross_header] for c in crossings])
        + "</body></html>\n"
    )
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


_TAIL_SEED = 20260101  # split of the isotropic maps for the tail validation
_TAIL_FIT_MAPS = 600  # maps the validation fits (at least; 2 % of larger sets)


def write_tail_validation_csv(path: Path, methods: dict) -> Path:
    """Held-out checks of the tail extrapolation of every method's isotropic scores."""
    header = ["method", "fraction", *(f.name for f in fields(TailValidation)), "pull"]
    lines = []
    for name, (_, iso, options) in methods.items():
        iso = np.asarray(iso, dtype=np.float64)
        fraction = ""
        if iso.ndim == 2:  # the oracle: the column of the largest fraction
            fraction = float(options["iso_fractions"][-1])
            iso = iso[:, -1]
        iso = iso[np.isfinite(iso)]
        fit_fraction = max(_TAIL_FIT_MAPS / max(iso.size, 1), 0.02)
        if fit_fraction > 0.5:  # too few maps to hold any out
            continue
        for check in validate_tail(iso, np.random.default_rng(_TAIL_SEED), fit_fraction):
            values = [getattr(check, f.name) for f in fields(TailValidation)]
            lines.append([name, fraction, *values, check.pull])
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(
                [[repr(v) if isinstance(v, float) else v for v in line] for line in lines]
            )
    return path


def evaluate(job: EvaluateJob, output) -> Path:
    """Score, compute the significance table and plot into the folder ``output``, written as a
    whole (crsky.io.atomic_folder): a killed job never leaves a folder that looks finished."""
    output = Path(output)
    with atomic_folder(output, output_files(with_model=True, with_lens=True)) as staging:
        _write_evaluation(job, staging)
    return output


def _write_evaluation(job: EvaluateJob, output: Path) -> None:
    prep = _prepare(job)
    psi = np.asarray(job.psi_deg, dtype=np.float64)
    log.info(
        "evaluating on %d test and %d isotropic maps (%d CRs, nside %d), model %s",
        prep.test.total_maps,
        prep.isotropy.total_maps,
        prep.test.n_cr,
        prep.test.nside,
        prep.model.path if prep.model else "none",
    )
    test_counts = _pair_counts(prep.test, job.test_pair_counts, psi, job.threads)
    iso_counts = _pair_counts(prep.isotropy, job.isotropy_pair_counts, psi, job.threads)
    baseline = baseline_scores(test_counts, iso_counts, psi)
    scores = {
        "test": {
            "two_point_score": baseline.test,
            "two_point_best_psi_deg": baseline.best_psi_test_deg,
        },
        "isotropy": {
            "two_point_score": baseline.isotropy,
            "two_point_best_psi_deg": baseline.best_psi_isotropy_deg,
        },
    }
    methods = {}
    if prep.model is not None:
        net_test, net_iso = _network_scores(job, prep)
        scores["test"]["network_score"] = net_test
        scores["isotropy"]["network_score"] = net_iso
        methods["network"] = (net_test, net_iso, {})
    methods["two_point"] = (baseline.test, baseline.isotropy, {})
    lik_test, lik_iso = _likelihood_scores(job, prep)
    if "profiled" in lik_test:
        for role, values in (("test", lik_test), ("isotropy", lik_iso)):
            scores[role]["likelihood_profiled_score"] = values["profiled"]
            scores[role]["likelihood_profiled_f"] = values["profiled_f"]
        methods["likelihood_profiled"] = (lik_test["profiled"], lik_iso["profiled"], {})
    if "oracle" in lik_test:
        scores["test"]["likelihood_oracle_score"] = lik_test["oracle"]
        scores["isotropy"]["likelihood_oracle_score"] = lik_iso["oracle"]
        exact = prep.test.dataset_config().get("signal_count", "round") == "round"
        options = {"iso_fractions": prep.fractions, "exact_log_lr": exact}
        methods["likelihood_oracle"] = (lik_test["oracle"], lik_iso["oracle"], options)
    _write_scores(output / "scores.h5", job, prep, scores, psi)
    _write_scores_table(output / "scores.csv.gz", prep, scores)

    f, n_signal = prep.test_labels["signal_fraction"], prep.test_labels["n_signal"]
    rows = []
    for name, (test_scores, iso_scores, options) in methods.items():
        rows += significance_rows(
            name, test_scores, f, n_signal, iso_scores, prep.fractions, **options
        )
    crossings = sigma_crossings(rows, job.sigma_levels)
    write_tail_validation_csv(output / "tail_validation.csv", methods)
    write_significance_csv(output / "significance.csv", rows)
    write_crossings_csv(output / "crossings.csv", crossings)
    _write_html(output / "significance.html", prep, rows, crossings)
    for r in rows:
        log.info(
            "%s f = %g: p %s %.3g, σ %s %.2f",
            r.method,
            r.signal_fraction,
            r.p_bound or "=",
            r.p_value,
            r.sigma_bound or "=",
            r.sigma,
        )

    if job.plots:
        _write_plots(output, job, prep, methods, baseline, rows, crossings)


def _write_plots(
    output: Path, job: EvaluateJob, prep: _Prepared, methods, baseline, rows, crossings
) -> None:
    """The evaluation's figures (skymaps, score distributions, ROC curves, the two-point best
    ψ, σ curves, training curves, the test set's lens deflection)."""
    psi = np.asarray(job.psi_deg, dtype=np.float64)
    f = prep.test_labels["signal_fraction"]
    plot_example_skymaps(output / "skymaps.png", prep.test, prep.fractions)
    by_method = {name: (t, f, i, o.get("iso_fractions")) for name, (t, i, o) in methods.items()}
    plot_score_distributions(output / "score_distributions.png", by_method, prep.fractions)
    plot_roc_curves(output / "roc.png", by_method, prep.fractions)
    plot_best_psi(
        output / "best_psi.png",
        baseline.best_psi_test_deg,
        f,
        baseline.best_psi_isotropy_deg,
        prep.fractions,
        psi,
    )
    plot_sigma_curves(output / "sigma.png", rows, crossings, job.sigma_levels, prep.test.n_cr)
    if prep.model is not None:
        plot_training_curves(
            output / "training.png", prep.model.path / "history.csv", prep.model.name
        )
    if prep.test.lens_folders:
        from crsky.lens.plots import plot_deflection

        plot_deflection(prep.test.lens_folders, output / "lens_deflection.png")
