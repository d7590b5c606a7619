"""``crsky workflow ARGS``: ``snakemake ARGS`` after checking the config files it will read.

Snakemake 9 loads ``--configfile`` files before it reads the workflow, and reports a missing file
with a Python traceback and a YAML syntax error without the file's name (snakemake.common.
configfile). This command checks each such file (and the workflow's own ``config/config.yaml``)
first and reports a problem in one line naming the file, line and column; it then replaces itself
with ``snakemake ARGS`` (same arguments, same exit status). Everything after ``workflow`` goes to
Snakemake unchanged, e.g. ``crsky workflow --cores all --configfile config/production.yaml``.
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

import yaml

from crsky.errors import ConfigError, InputFileError

__all__ = ["add_parser", "check_config_file", "config_files"]

_WORKFLOW_CONFIG = Path("config/config.yaml")  # the Snakefile's configfile directive


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "workflow",
        help="snakemake ARGS, after one-line checks of the config files",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    p.add_argument("snakemake_args", nargs="*", help="arguments of snakemake, passed on as given")
    p.set_defaults(run=run)


def config_files(args: list[str]) -> list[Path]:
    """The files of ``--configfile``/``--configfiles`` in Snakemake arguments (both the
    ``--configfile A B`` and the ``--configfile=A`` forms), in order."""
    files, taking = [], False
    for arg in args:
        name, eq, value = arg.partition("=")
        if name in ("--configfile", "--configfiles"):
            taking = not eq
            if eq:
                files.append(Path(value))
        elif taking and not arg.startswith("-"):
            files.append(Path(arg))
        else:
            taking = False
    return files


def check_config_file(path: Path) -> None:
    """InputFileError naming ``path`` if it is missing, unreadable, not YAML/JSON (with line and
    column) or not a mapping of keys."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InputFileError(f"config file {str(path)!r}: {err.strerror}") from None
    try:
        config = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(filter(None, (err.context, err.problem)))
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys, got {config!r}")


def _workflow_folder(args: list[str]) -> Path:
    for i, arg in enumerate(args):
        if arg in ("-d", "--directory") and i + 1 < len(args):
            return Path(args[i + 1])
        if arg.startswith("--directory="):
            return Path(arg.split("=", 1)[1])
    return Path()


def run(args: argparse.Namespace) -> None:
    snakemake_args = list(args.snakemake_args)
    own = _workflow_folder(snakemake_args) / _WORKFLOW_CONFIG
    for path in ([own] if own.exists() else []) + config_files(snakemake_args):
        check_config_file(path)
    executable = shutil.which(
        "snakemake", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    if executable is None:
        raise ConfigError("snakemake is not installed here: pip install -e '.[workflow]'")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(executable, [executable, *snakemake_args])
