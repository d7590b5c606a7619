"""crsky paircounts, likelihood, evaluate and summary: two-point pair counts and likelihood
scores of one skymap chunk, the evaluation of one model (and the baselines) on a test and an
isotropy set, and every evaluated model side by side."""

import argparse
import os

from crsky.cli._options import (
    add_stage,
    add_threads,
    finite_float,
    non_negative_int,
    output_path,
    positive_int,
)
from crsky.errors import ConfigError
from crsky.io import prepare_output

__all__ = ["PARSERS"]


def add_paircounts(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = add_stage(
        sub, name, help, "Count the CR pairs within each angle ψ per map of a skymap chunk (HDF5)."
    )
    p.add_argument("--chunk", required=True, help="skymap chunk (.h5)")
    p.add_argument(
        "--output", type=output_path, required=True, help="pair-count file to write (.h5)"
    )
    _psi_options(p)
    add_threads(p, "numba threads (default: all cores)")
    p.set_defaults(run=run_paircounts)


def add_likelihood(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    lk = add_stage(
        sub,
        name,
        help,
        "Score every map of a skymap chunk with the likelihood analyses of the signal model "
        "of a test-set chunk (likelihood_profiled, likelihood_oracle); write one HDF5 file.",
    )
    lk.add_argument("--chunk", required=True, help="skymap chunk to score (.h5)")
    lk.add_argument(
        "--signal-chunk", required=True, help="a chunk of the test set: its config and lens"
    )
    lk.add_argument(
        "--role",
        required=True,
        choices=["test", "isotropy"],
        help="test: oracle with the stored sources; isotropy: with drawn sources per fraction",
    )
    lk.add_argument(
        "--output", type=output_path, required=True, help="likelihood score file to write (.h5)"
    )
    lk.add_argument(
        "--fractions",
        nargs="*",
        type=finite_float,
        default=[],
        help="tested signal fractions (0 ... 1)",
    )
    lk.add_argument(
        "--methods",
        nargs="+",
        default=["profiled", "oracle"],
        choices=["profiled", "oracle"],
        help="likelihood analyses to run",
    )
    _grid_options(lk)
    lk.add_argument("--lens", default=None, help="lens folder (default: the signal chunk's)")
    add_threads(lk, "numba threads (default: all cores)")
    lk.set_defaults(run=run_likelihood)


def add_evaluate(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    e = add_stage(
        sub,
        name,
        help,
        "Score every test and isotropic map with a trained model and the baselines; write "
        "scores.h5, significance.csv, crossings.csv and plots into a folder.",
    )
    e.add_argument("--output", type=output_path, required=True, help="evaluation folder to write")
    e.add_argument(
        "--model", default=None, help="model folder (default: the baselines only, no network)"
    )
    e.add_argument("--test", nargs="+", required=True, help="test chunks (.h5)")
    e.add_argument("--isotropy", nargs="+", required=True, help="isotropy chunks (.h5)")
    e.add_argument(
        "--test-pair-counts",
        nargs="+",
        default=None,
        help="crsky paircounts files of the test chunks (default: counted here)",
    )
    e.add_argument(
        "--isotropy-pair-counts",
        nargs="+",
        default=None,
        help="crsky paircounts files of the isotropy chunks (default: counted here)",
    )
    e.add_argument(
        "--test-likelihood",
        nargs="+",
        default=None,
        help="crsky likelihood files of the test chunks (role test; default: no likelihood)",
    )
    e.add_argument(
        "--isotropy-likelihood",
        nargs="+",
        default=None,
        help="crsky likelihood files of the isotropy chunks (role isotropy)",
    )
    _psi_options(e)
    e.add_argument(
        "--sigma-levels",
        nargs="*",
        type=finite_float,
        default=[3.0, 5.0],
        help="σ levels whose crossing is interpolated; the isotropy set must resolve the largest",
    )
    e.add_argument(
        "--signal-fractions",
        nargs="*",
        type=finite_float,
        default=[],
        help="signal fractions to report (default: every one in the test set)",
    )
    e.add_argument("--batch-size", type=positive_int, default=256, help="maps per model call")
    e.add_argument("--gpus", type=non_negative_int, default=0, help="GPUs for scoring (0: the CPU)")
    e.add_argument(
        "--no-plots",
        dest="plots",
        action="store_false",
        help="write scores.h5 and the tables only, no figures",
    )
    add_threads(e, "numba and TensorFlow threads (default: all cores)")
    e.set_defaults(run=run_evaluate)


def add_summary(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    m = add_stage(
        sub,
        name,
        help,
        "Write summary.csv and sigma_summary.png of several evaluation folders.",
    )
    m.add_argument("--evaluations", nargs="+", required=True, help="evaluation folders")
    m.add_argument("--output", type=output_path, required=True, help="folder to write")
    m.add_argument(
        "--sigma-levels",
        nargs="*",
        type=finite_float,
        default=[3.0, 5.0],
        help="σ levels drawn and whose crossings are listed",
    )
    m.set_defaults(run=run_summary)


PARSERS = {
    "paircounts": add_paircounts,
    "likelihood": add_likelihood,
    "evaluate": add_evaluate,
    "summary": add_summary,
}


def _psi_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--psi",
        nargs=3,
        type=finite_float,
        default=[1.0, 180.0, 1.0],
        metavar=("MIN_DEG", "MAX_DEG", "STEP_DEG"),
        help="angles ψ of the cumulative pair counts, degrees (default: 1 180 1)",
    )


def _grid_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--grid",
        nargs=4,
        type=non_negative_int,
        default=[64, 64, 4, 16],
        metavar=("NSIDE", "N_AXES", "LEVELS", "CANDIDATES"),
        help="toy profile grid: finest nside and axes, coarse-to-fine levels, candidates per "
        "level (default 64 64 4 16)",
    )


def _grid(args: argparse.Namespace):
    from crsky.likelihood import ProfileGrid

    return ProfileGrid(*args.grid)


def run_likelihood(args: argparse.Namespace) -> None:
    from pathlib import Path

    from crsky.evaluate.likelihood_scores import LikelihoodJob, write_likelihood_scores

    prepare_output(args.output)
    job = LikelihoodJob(
        chunk=Path(args.chunk),
        signal_chunk=Path(args.signal_chunk),
        role=args.role,
        fractions=tuple(args.fractions),
        methods=tuple(args.methods),
        grid=_grid(args),
        lens_folder=None if args.lens is None else Path(args.lens),
        threads=args.threads,
    )
    write_likelihood_scores(job, args.output)


def _psi(args: argparse.Namespace):
    from crsky.stats.two_point import psi_grid_deg

    return psi_grid_deg(*args.psi)


def run_paircounts(args: argparse.Namespace) -> None:
    from crsky.evaluate.pair_counts import write_pair_counts

    prepare_output(args.output)
    write_pair_counts(args.chunk, args.output, _psi(args), threads=args.threads)


def run_evaluate(args: argparse.Namespace) -> None:
    prepare_output(args.output)
    if args.threads is not None:  # before TensorFlow starts
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(args.threads))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(args.threads))
    if args.model is not None:
        from crsky._tf_import import import_tensorflow

        import_tensorflow()
    from crsky.evaluate.run import EvaluateJob, evaluate

    job = EvaluateJob(
        test=tuple(args.test),
        isotropy=tuple(args.isotropy),
        model=args.model,
        psi_deg=tuple(_psi(args).tolist()),
        sigma_levels=tuple(args.sigma_levels),
        signal_fractions=tuple(args.signal_fractions),
        test_pair_counts=None if args.test_pair_counts is None else tuple(args.test_pair_counts),
        isotropy_pair_counts=(
            None if args.isotropy_pair_counts is None else tuple(args.isotropy_pair_counts)
        ),
        test_likelihood=None if args.test_likelihood is None else tuple(args.test_likelihood),
        isotropy_likelihood=(
            None if args.isotropy_likelihood is None else tuple(args.isotropy_likelihood)
        ),
        batch_size=args.batch_size,
        gpus=args.gpus,
        threads=args.threads,
        plots=args.plots,
    )
    evaluate(job, args.output)


def run_summary(args: argparse.Namespace) -> None:
    from pathlib import Path

    from crsky.evaluate.summary import summarize

    prepare_output(args.output)
    folders = {Path(f).name: Path(f) for f in args.evaluations}
    if len(folders) != len(args.evaluations):
        raise ConfigError(f"'--evaluations' folder names must be distinct, got {args.evaluations}")
    summarize(folders, args.output, args.sigma_levels)
