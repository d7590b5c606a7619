"""crsky workflow ARGS: snakemake ARGS after checking the config files it will read.

Snakemake 9 loads --configfile files before it reads the workflow, and reports a missing file
with a Python traceback and a YAML syntax error without the file's name. This command checks
each such file (and the workflow's own config/config.yaml) first and reports a problem in one
line naming the file, line and column; it then replaces itself with snakemake ARGS (same
arguments, same exit status). Everything after "workflow" goes to Snakemake unchanged, e.g.

  crsky workflow --cores all --configfile config/production.yaml
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

from crsky.cli._config import check_config_file
from crsky.cli._options import HelpFormatter
from crsky.errors import ConfigError

__all__ = ["PARSERS", "config_files"]

_WORKFLOW_CONFIG = Path("config/config.yaml")  # the Snakefile's configfile directive


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(
        name, help=help, description=__doc__, formatter_class=HelpFormatter, add_help=False
    )
    p.add_argument("snakemake_args", nargs="*", help="arguments of snakemake, passed on as given")
    p.set_defaults(run=run)


PARSERS = {"workflow": add_parser}


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


def _workflow_folder(args: list[str]) -> Path:
    for i, arg in enumerate(args):
        if arg in ("-d", "--directory") and i + 1 < len(args):
            return Path(args[i + 1])
        if arg.startswith("--directory="):
            return Path(arg.split("=", 1)[1])
    return Path()


# where the htcondor bindings look for a pool's configuration when CONDOR_CONFIG is unset
_CONDOR_CONFIG_FILES = (
    "~/.condor/condor_config",
    "/etc/condor/condor_config",
    "/usr/local/etc/condor_config",
    "~condor/condor_config",
)


def _quiet_htcondor() -> None:
    """Without a pool configuration, the htcondor bindings (imported by Snakemake's HTCondor
    plugin at every start, also for local runs) warn and set CONDOR_CONFIG=/dev/null; set it
    first, so local runs start without that warning. A pool's configuration is never masked."""
    if "CONDOR_CONFIG" not in os.environ and not any(
        os.path.isfile(os.path.expanduser(p)) for p in _CONDOR_CONFIG_FILES
    ):
        os.environ["CONDOR_CONFIG"] = "/dev/null"


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
    _quiet_htcondor()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(executable, [executable, *snakemake_args])
