"""crsky explain: LRP relevance of the CRs of test maps for a trained model (crsky.explain)."""

import argparse
import os

from crsky.cli._options import add_stage, add_threads, output_path, positive_int

__all__ = ["PARSERS"]

_DESCRIPTION = """\
Layer-wise relevance propagation (LRP-epsilon) of a trained model's scores on test maps (any
family: deepsphere and patches through the pixels of the rendered map, each pixel's relevance
shared equally by its CRs; pointcloud per CR): relevance.csv (per signal fraction, the share of
the positive relevance on the true signal CRs and the share of the CRs that are signal) and
relevance.png (example skies, CRs coloured by relevance, signal CRs circled)."""


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = add_stage(sub, name, help, _DESCRIPTION)
    p.add_argument("--model", required=True, help="model folder (crsky train)")
    p.add_argument("--test", nargs="+", required=True, help="test chunks (.h5)")
    p.add_argument("--output", type=output_path, required=True, help="folder to write")
    p.add_argument("--examples", type=positive_int, default=4, help="example maps in the figure")
    p.add_argument(
        "--maps-per-fraction", type=positive_int, default=200, help="maps explained per fraction"
    )
    add_threads(p, "TensorFlow threads (default: all cores)")
    p.set_defaults(run=run)


PARSERS = {"explain": add_parser}


def run(args: argparse.Namespace) -> None:
    if args.threads is not None:  # before TensorFlow starts
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(args.threads))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(args.threads))
    from crsky.explain import explain

    explain(args.model, args.test, args.output, args.examples, args.maps_per_fraction)
