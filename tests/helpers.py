"""Helpers shared by test modules (imported as ``helpers``; conftest.py holds only fixtures)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
BIN = Path(sys.executable).parent
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "profiles", "envs")


def random_unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    """n isotropic unit vectors (n, 3)."""
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1)[:, None]


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between rows of two (N, 3) arrays of unit vectors (robust near 0)."""
    return np.degrees(2 * np.arctan2(np.linalg.norm(a - b, axis=1), np.linalg.norm(a + b, axis=1)))


def run_snakemake(*args: str, cwd: Path, check: bool = True) -> tuple[int, str]:
    """(exit status, stdout + stderr) of ``snakemake ARGS`` in ``cwd``, with this venv's
    ``crsky`` on the PATH. ``check``: raise AssertionError with the output on failure."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(
        [str(BIN / "snakemake"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{output}")
    return result.returncode, output


def snakemake(*args: str, cwd: Path, check: bool = True) -> str:
    """stdout + stderr of ``snakemake ARGS`` in ``cwd`` (see :func:`run_snakemake`)."""
    return run_snakemake(*args, cwd=cwd, check=check)[1]


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a (dry-)run."""
    table = output.split("Job stats:")[1]
    return {
        m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"
    }


def workflow_copy(folder: Path, overrides: dict | None = None) -> Path:
    """A user's checkout without results: the workflow files copied into ``folder``, plus
    config/test.yaml with ``overrides`` if given. Every test that runs Snakemake runs in such a
    copy, never in the repository (where ``make run`` may have left results/ and logs/)."""
    for name in WORKFLOW_FILES:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / name)
    if overrides:
        (folder / "config" / "test.yaml").write_text(yaml.safe_dump(overrides))
    return folder


def merged_config(*files: str) -> dict:
    """Config files of the repository merged the way Snakemake merges --configfile (mappings
    key by key)."""

    def merge(a: dict, b: dict) -> dict:
        out = dict(a)
        for key, value in b.items():
            both = isinstance(value, dict) and isinstance(a.get(key), dict)
            out[key] = merge(a[key], value) if both else value
        return out

    config: dict = {}
    for name in files:
        config = merge(config, yaml.safe_load((REPO / name).read_text()))
    return config
