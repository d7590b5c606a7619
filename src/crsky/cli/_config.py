"""Workflow config files for stage commands run by hand (``crsky skymaps --config ...``).

The files are read as the Snakefile reads them: the checkout's ``config/config.yaml`` first,
then each given file merged over it key by key (Snakemake's ``--configfile``), the schema's
defaults filled in and every check of :mod:`crsky.config` applied, so a command run by hand
makes exactly the file the workflow would.
"""

from pathlib import Path

import yaml

from crsky.errors import ConfigError, InputFileError

__all__ = ["SCHEMA", "check_config_file", "load_config_files", "merge_configs", "read_config_file"]

SCHEMA = Path("workflow/schemas/config.schema.yaml")  # in the checkout
_BASE = Path("config/config.yaml")  # the Snakefile's configfile directive


def read_config_file(path: Path) -> dict:
    """The mapping in a YAML/JSON config file; InputFileError naming ``path`` if it is missing
    or unreadable, ConfigError with line and column if it is not valid YAML or not a mapping."""
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
    return config


def check_config_file(path: Path) -> None:
    """:func:`read_config_file`, for its errors only."""
    read_config_file(path)


def _checkout(files: list[Path]) -> Path:
    """The crsky checkout the config files belong to: the folder holding the schema, searched
    above the first file, then the working directory."""
    candidates = [*Path(files[0]).resolve().parents, Path.cwd()]
    for folder in candidates:
        if (folder / SCHEMA).is_file():
            return folder
    raise ConfigError(
        f"no {SCHEMA} above {str(files[0])!r} or in the working directory: run from the crsky "
        "checkout whose workflow uses this config"
    )


def merge_configs(base: dict, override: dict) -> dict:
    """``override`` merged into ``base`` as Snakemake merges --configfile (mappings key by key)."""
    out = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = merge_configs(base[key], value) if both else value
    return out


def load_config_files(files: list[str | Path]) -> dict:
    """The workflow config of ``files`` (module docstring): checked, defaults filled in. Errors
    are one line naming the file or the key."""
    from crsky.config import check_config, validate_config

    paths = [Path(f) for f in files]
    for path in paths:
        check_config_file(path)
    checkout = _checkout(paths)
    base = checkout / _BASE
    config: dict = {}
    for path in [base] + [p for p in paths if p.resolve() != base.resolve()]:
        config = merge_configs(config, read_config_file(path))
    validate_config(config, checkout / SCHEMA)
    check_config(config)
    return config
