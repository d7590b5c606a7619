"""``crsky robustness``: networks trained on skies of some field models, tested on skies of
others, side by side (robustness.csv and robustness.png; crsky.evaluate.robustness)."""

import argparse

from crsky.cli._options import add_stage, finite_float, output_path

__all__ = ["PARSERS"]

_DESCRIPTION = """\
Put the evaluations of networks on several test sets side by side (robustness.csv, and
robustness.png: σ per signal fraction, trained-on x tested-on, the two-point baseline as the
last row). Each evaluation folder (crsky evaluate) names its model and test set; the chunks say
how their skies were deflected:

  crsky robustness --evaluations results/evaluate/net_jf12 \\
      results/evaluate/robustness/net_jf12/test_expX --output results/evaluate/robustness_table"""


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = add_stage(sub, name, help, _DESCRIPTION)
    p.add_argument(
        "--evaluations",
        nargs="+",
        required=True,
        help="evaluation folders (crsky evaluate), one per (model, test set)",
    )
    p.add_argument("--output", type=output_path, required=True, help="folder to write")
    p.add_argument(
        "--signal-fractions",
        nargs="*",
        type=finite_float,
        default=[],
        help="signal fractions shown in the figure (default: every one > 0 of the test sets)",
    )
    p.set_defaults(run=run)


PARSERS = {"robustness": add_parser}


def run(args: argparse.Namespace) -> None:
    from crsky.evaluate.robustness import robustness
    from crsky.io import prepare_output

    prepare_output(args.output)
    robustness(args.evaluations, args.output, args.signal_fractions)
