"""``crsky paircounts``, ``crsky likelihood``, ``crsky evaluate`` and ``crsky summary``:
two-point pair counts and likelihood scores of one skymap chunk, the evaluation of one model (and
the baselines) on a test and an isotropy set, and every evaluated model side by side."""

import argparse
import os

from crsky.cli._options import add_threads, finite_float, non_negative_int, positive_int
from crsky.errors import ConfigError
from crsky.io import prepare_output

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "paircounts",
        help="two-point pair counts within ψ of every map of one skymap chunk",
        description="Count the CR pairs within each ψ per map of a skymap chunk (HDF5).",
    )
    p.add_argument("--chunk", required=True, help="skymap chunk (.h5)")
    p.add_argument("--output", required=True, help="pair-count file to write (.h5)")
    _psi_options(p)
    add_threads(p, "numba threads (default: all)")
    p.set_defaults(run=run_paircounts)

    lk = sub.add_parser(
        "likelihood",
        help="likelihood_profiled and likelihood_oracle scores of every map of one skymap chunk",
        description=(
            "Score every map of a skymap chunk with the likelihood analyses of the signal model "
            "of a test-set chunk (crsky.likelihood); write one HDF5 file."
        ),
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
    lk.add_argument("--output", required=True, help="likelihood score file to write (.h5)")
    lk.add_argument(
        "--fractions", nargs="*", type=finite_float, default=[], help="tested signal fractions"
    )
    lk.add_argument(
        "--methods", nargs="+", default=["profiled", "oracle"], choices=["profiled", "oracle"]
    )
    _grid_options(lk)
    lk.add_argument("--lens", default=None, help="lens folder (default: the signal chunk's)")
    add_threads(lk, "numba threads (default: all)")
    lk.set_defaults(run=run_likelihood)

    e = sub.add_parser(
        "evaluate",
        help="score test and isotropy maps; significance.csv and plots",
        description=(
            "Score every test and isotropic map with a trained model and the two-point baseline; "
            "write scores.h5, significance.csv, crossings.csv and plots into a folder."
        ),
    )
    e.add_argument("--output", required=True, help="evaluation folder to write")
    e.add_argument("--model", default=None, help="model folder (default: baseline only)")
    e.add_argument("--test", nargs="+", required=True, help="test chunks (.h5)")
    e.add_argument("--isotropy", nargs="+", required=True, help="isotropy chunks (.h5)")
    e.add_argument("--test-pair-counts", nargs="+", default=None, help="crsky paircounts files")
    e.add_argument("--isotropy-pair-counts", nargs="+", default=None)
    e.add_argument(
        "--test-likelihood", nargs="+", default=None, help="crsky likelihood files (role test)"
    )
    e.add_argument("--isotropy-likelihood", nargs="+", default=None)
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
    e.add_argument("--gpus", type=non_negative_int, default=0, help="GPUs for scoring (0: CPU)")
    add_threads(e, "numba/TensorFlow threads")
    e.set_defaults(run=run_evaluate)

    m = sub.add_parser(
        "summary",
        help="significance of several evaluated models in one table and figure",
        description="Write summary.csv and sigma_summary.png of several evaluation folders.",
    )
    m.add_argument("--evaluations", nargs="+", required=True, help="evaluation folders")
    m.add_argument("--output", required=True, help="folder to write")
    m.add_argument("--sigma-levels", nargs="*", type=finite_float, default=[3.0, 5.0])
    m.set_defaults(run=run_summary)


def _psi_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--psi",
        nargs=3,
        type=finite_float,
        default=[1.0, 180.0, 1.0],
        metavar=("MIN_DEG", "MAX_DEG", "STEP_DEG"),
        help="angles ψ of the cumulative pair counts (default 1 180 1)",
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
