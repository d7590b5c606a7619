"""The workflow's conda environment files (``envs/*.yaml``, for ``snakemake --sdm conda``), checked
against pyproject.toml's requirements without conda.

Snakemake copies an environment file into ``.snakemake/conda/`` before creating the
environment, so a relative path in it (``--editable ..``) points elsewhere. The files therefore
list packages only; crsky itself is installed by the file's post-deploy script
(``envs/<name>.post-deploy.sh``, run by Snakemake in the new environment) from the checkout that
runs the workflow, whose absolute path the Snakefile exports as ``CRSKY_SOURCE``.

:func:`check_env_file` stops with one line naming the file and the requirement when an
environment would not give crsky what pyproject.toml asks for: a missing package, a pinned
version outside pyproject's range (or outside the range of another requirement, e.g.
TensorFlow's own ``h5py<3.15``), a path or URL among the pip entries. Conda pins ``name=X.Y``
mean ``X.Y.*`` and are checked as version ``X.Y``.
"""

import tomllib
from pathlib import Path

import yaml

from crsky.errors import ConfigError

__all__ = ["ENV_FILES", "check_env_file", "env_pins", "pyproject_requirements"]

# each environment file and the pyproject extras its rules need on top of the base dependencies
ENV_FILES = {"envs/crsky.yaml": (), "envs/train.yaml": ("gpu",)}
# conda-forge package names that differ from the package index's
CONDA_NAMES = {"matplotlib-base": "matplotlib"}
# tools an environment may carry that are no requirement of crsky
TOOLS = {"pip", "setuptools", "wheel"}


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(CONDA_NAMES.get(name, name))


def pyproject_requirements(pyproject: str | Path, extras: tuple[str, ...] = ()) -> list:
    """packaging Requirements of pyproject's base dependencies plus ``extras``, and Python's
    requires-python as a Requirement on ``python``."""
    from packaging.requirements import Requirement

    project = tomllib.loads(Path(pyproject).read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(f"python{project['requires-python']}")] + [Requirement(r) for r in lines]


def env_pins(path: str | Path) -> dict[str, tuple[str | None, frozenset, str]]:
    """The packages an environment file installs: canonical name -> (pinned version or None,
    extras, the entry as written). ConfigError for a file that is not an environment file or
    a pip entry that is not a plain requirement."""
    from packaging.requirements import InvalidRequirement, Requirement

    path = Path(path)
    try:
        env = yaml.safe_load(path.read_text(encoding="utf-8"))
        dependencies = env["dependencies"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: not a readable conda environment file ({err})") from err
    pins = {}
    for entry in dependencies:
        if isinstance(entry, dict):
            for line in entry.get("pip", []):
                if line.startswith("-") or "/" in line or ":" in line:
                    raise ConfigError(
                        f"{path}: pip entry {line!r} installs from a path or URL, which breaks "
                        "once Snakemake copies the file into .snakemake/conda/; list packages "
                        "only (crsky itself comes from the post-deploy script)"
                    )
                try:
                    req = Requirement(line)
                except InvalidRequirement as err:
                    raise ConfigError(f"{path}: pip entry {line!r}: {err}") from err
                exact = [s.version for s in req.specifier if s.operator == "=="]
                pins[_canonical(req.name)] = (exact[0] if exact else None, req.extras, line)
        else:
            name, _, version = str(entry).partition("=")
            pins[_canonical(name.strip())] = (version.strip("=") or None, frozenset(), entry)
    return pins


def check_env_file(path: str | Path, requirements: list) -> None:
    """ConfigError naming ``path`` and the first requirement (packaging Requirement) the
    environment does not satisfy: absent, with other extras, unpinned, or pinned outside the
    requirement's range."""
    pins = env_pins(path)
    for req in requirements:
        name = _canonical(req.name)
        if name not in pins:
            raise ConfigError(f"{path}: {req} (pyproject.toml) is not in the environment")
        version, extras, entry = pins[name]
        if not req.extras <= extras:
            raise ConfigError(f"{path}: {entry!r} lacks the extras of {req} (pyproject.toml)")
        if version is None:
            raise ConfigError(f"{path}: {entry!r} is not pinned; pin a version within {req}")
        if not req.specifier.contains(version, prereleases=True):
            raise ConfigError(
                f"{path}: {entry!r} does not satisfy {req}; the environment cannot resolve "
                "to what crsky requires"
            )
