"""crsky search-validate and crsky search-select: the random search's per-trial validation
p-value and the selection of the best trial (crsky.search)."""

import argparse
import os

from crsky.cli._options import add_stage, add_threads, finite_float, output_path, positive_int

__all__ = ["PARSERS"]

_VALIDATE = """\
Score a trained search trial on validation maps at one signal fraction and on isotropic maps;
write its record (JSON): the p-value of the median signal score among the isotropic scores."""

_SELECT = """\
Rank the search trials by their recorded validation p-values (lowest first; ties by the best
validation loss), write search.csv and search.md, and copy the winner's model folder."""


def add_validate(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    v = add_stage(sub, name, help, _VALIDATE)
    v.add_argument("--trial", required=True, help="the trial's model folder (crsky train)")
    v.add_argument("--signal", nargs="+", required=True, help="validation signal chunks (.h5)")
    v.add_argument("--isotropy", nargs="+", required=True, help="isotropic chunks (.h5)")
    v.add_argument(
        "--signal-fraction", type=finite_float, required=True, help="the signal fraction scored"
    )
    v.add_argument("--output", type=output_path, required=True, help="record to write (.json)")
    v.add_argument("--batch-size", type=positive_int, default=256, help="maps per model call")
    add_threads(v, "TensorFlow threads (default: all cores)")
    v.set_defaults(run=run_validate)


def add_select(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    s = add_stage(sub, name, help, _SELECT)
    s.add_argument("--trials", nargs="+", required=True, help="trial folders (validation.json)")
    s.add_argument("--output", required=True, help="folder for search.csv and search.md")
    s.add_argument("--best", type=output_path, required=True, help="model folder of the winner")
    s.set_defaults(run=run_select)


PARSERS = {"search-validate": add_validate, "search-select": add_select}


def run_validate(args: argparse.Namespace) -> None:
    from crsky.io import prepare_output

    prepare_output(args.output)
    if args.threads is not None:  # before TensorFlow starts
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(args.threads))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(args.threads))
    from crsky.search import validate_trial

    validate_trial(
        args.trial, args.signal, args.isotropy, args.signal_fraction, args.output, args.batch_size
    )


def run_select(args: argparse.Namespace) -> None:
    import logging

    from crsky.search import select_trials

    best = select_trials(args.trials, args.output, args.best)
    logging.getLogger(__name__).info(
        "best trial %s: p = %s%g", best["trial"], best["p_bound"], best["p_value"]
    )
