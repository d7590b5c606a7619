"""The ``crsky`` command: one subcommand per pipeline stage (the Snakemake rules call these)."""

import os

# HDF5 (>= 1.10) locks every file it opens, which fails on NFS and Lustre mounts without lock
# support ("unable to lock file, errno = 37"/"38"). crsky's pipeline never relies on the lock:
# every output is built privately and renamed into place once complete (crsky.io), and readers
# only open finished files. So jobs run without it unless HDF5_USE_FILE_LOCKING is set already;
# HDF5 reads the variable when h5py loads, hence before any import that may load h5py.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

import argparse
import logging
import sys

from crsky import __version__
from crsky.cli import backtrack, evaluate, lens, skymaps, train, workflow
from crsky.cli._options import OneLineParser
from crsky.errors import CrskyError

__all__ = ["main"]

_STAGES = (backtrack, lens, skymaps, train, evaluate, workflow)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="crsky", description=__doc__)
    parser.add_argument("--version", action="version", version=f"crsky {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for stage in _STAGES:
        stage.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input, with one message on stderr)."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    stage = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))
    passed_on = argv[stage + 1 :] if argv[stage : stage + 1] == ["workflow"] else []
    args = build_parser().parse_args(argv[: len(argv) - len(passed_on)])
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
    return 0
