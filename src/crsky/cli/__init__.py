"""The crsky command: one subcommand per pipeline stage (the Snakemake rules call these).

Only the stage named on the command line is imported: ``crsky --help`` and the parsing of one
stage's options load none of the numerical libraries (numba, healpy, TensorFlow).
"""

import os

# HDF5 (>= 1.10) locks every file it opens, which fails on NFS and Lustre mounts without lock
# support ("unable to lock file, errno = 37"/"38"). crsky's pipeline never relies on the lock:
# every output is built privately and renamed into place once complete (crsky.io), and readers
# only open finished files. So jobs run without it unless HDF5_USE_FILE_LOCKING is set already;
# HDF5 reads the variable when h5py loads, hence before any import that may load h5py.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

import argparse
import importlib
import logging
import sys
from collections.abc import Collection

from crsky import __version__
from crsky.cli._options import HelpFormatter, OneLineParser
from crsky.errors import CrskyError

__all__ = ["STAGES", "build_parser", "main"]

# stage -> (module under crsky.cli that defines its options, one-line help)
STAGES = {
    "backtrack": ("backtrack", "trace one shard of one rigidity bin through the Galactic field"),
    "lens": ("lens", "build a Galactic lens (parts, lens.cfg, maps and plots)"),
    "skymaps": ("skymaps", "simulate one chunk of a skymap dataset"),
    "dataset-plots": ("skymaps", "spectrum, charges, exposure and mean counts of a dataset"),
    "train": ("train", "train one model on skymap chunks (needs the train extra)"),
    "search-validate": ("search", "validation p-value of one random-search trial"),
    "search-select": ("search", "rank the search trials; copy the winner's model folder"),
    "paircounts": ("evaluate", "two-point pair counts of every map of one skymap chunk"),
    "likelihood": ("evaluate", "likelihood scores of every map of one skymap chunk"),
    "evaluate": ("evaluate", "p-values, significance and plots of one model and the baselines"),
    "summary": ("evaluate", "every evaluated model in one table and figure"),
    "explain": ("explain", "LRP relevance of the CRs of test maps (pointcloud models)"),
    "robustness": ("robustness", "networks trained on some field models, tested on others"),
    "workflow": ("workflow", "snakemake ARGS, after one-line checks of the config files"),
}
_TENSORFLOW_MODULES = {"tensorflow", "keras", "tf_keras"}


def build_parser(stages: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The parser with the options of ``stages`` (None: every stage); the other stages are
    listed by name and help only, their modules not imported."""
    parser = OneLineParser(
        prog="crsky", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"crsky {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    sub = parser.add_subparsers(
        dest="stage", required=True, metavar="STAGE", help="crsky STAGE --help lists its options"
    )
    for name, (module, help) in STAGES.items():
        if stages is None or name in stages:
            add = importlib.import_module(f"crsky.cli.{module}").PARSERS[name]
            add(sub, name, help)
        else:
            sub.add_parser(name, help=help, add_help=False)
    return parser


def _stage(argv: list[str]) -> str | None:
    """The first argument that is not an option: the stage (crsky's own options take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input, with one message on stderr)."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    stage = _stage(argv)
    at = argv.index(stage) if stage is not None else len(argv)
    passed_on = argv[at + 1 :] if stage == "workflow" else []
    args = build_parser([stage] if stage in STAGES else []).parse_args(
        argv[: len(argv) - len(passed_on)]
    )
    if args.stage == "workflow":  # everything after it is Snakemake's
        args.snakemake_args = passed_on
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        args.run(args)
    except CrskyError as err:
        print(f"crsky {args.stage}: error: {err}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in _TENSORFLOW_MODULES:
            raise
        print(
            f"crsky {args.stage}: error: {err.name} is not installed here; install crsky's "
            "'train' extra (pip install -e '.[train]', CPU) or 'gpu' extra "
            "(pip install -e '.[gpu]', NVIDIA GPUs)",
            file=sys.stderr,
        )
        return 2
    return 0
