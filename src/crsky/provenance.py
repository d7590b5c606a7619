"""Provenance of a workflow run, as one table for the report (``provenance.csv``): crsky's
version and the git commit of the workflow checkout, the versions of the packages the results
depend on, the SHA-256 of the resolved config, the master seed, and the machine the table was
written on. Run times per job are in the Snakemake report's Statistics page.
"""

import hashlib
import json
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

from crsky.io import atomic_output

__all__ = ["PACKAGES", "config_sha256", "git_commit", "provenance_rows", "write_provenance"]

PACKAGES = (
    "crsky", "numpy", "scipy", "numba", "healpy", "astropy", "h5py", "pandas", "matplotlib",
    "tensorflow", "keras", "snakemake",
)  # fmt: skip


def config_sha256(config: dict) -> str:
    """SHA-256 of the config as canonical JSON (sorted keys): same settings, same hash."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def git_commit(folder: str | Path) -> str:
    """The commit checked out in ``folder`` (with "+ local changes" when files differ from it),
    or "not a git checkout"."""

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, check=False
        )

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return "not a git checkout"
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except OSError:
        return "not a git checkout (no git here)"
    return head.stdout.strip() + (" + local changes" if dirty else "")


def _version(package: str) -> str:
    for distribution in (package, f"{package}-cpu"):  # tensorflow-cpu provides tensorflow
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def provenance_rows(config: dict, workflow_dir: str | Path) -> list[tuple[str, str]]:
    """(item, value) rows of the provenance table."""
    rows = [
        ("crsky git commit", git_commit(workflow_dir)),
        ("config SHA-256", config_sha256(config)),
        ("master seed", str(config.get("seed", ""))),
        ("field models", ", ".join(_field_names(config))),
        ("machine", f"{socket.gethostname()} ({platform.machine()}, {os.cpu_count()} CPUs)"),
        ("operating system", platform.platform()),
        ("python", platform.python_version()),
    ]
    rows += [(f"{package} version", _version(package)) for package in PACKAGES]
    return rows


def _field_names(config: dict) -> list[str]:
    fields = config.get("fields") or [config.get("field", {})]
    return [str(f.get("name") or f.get("model", "?")) for f in fields if isinstance(f, dict)]


def write_provenance(path: str | Path, config: dict, workflow_dir: str | Path) -> Path:
    """Write the provenance table as CSV (columns item, value) atomically."""
    import csv

    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["item", "value"])
        writer.writerows(provenance_rows(config, workflow_dir))
    return Path(path)
