"""HDF5 file locking: pipeline jobs (the ``crsky`` command) read HDF5 files without taking HDF5's
file lock, which NFS and Lustre mounts without lock support refuse. Simulated here by the one
situation a local disk shares with them: a lock HDF5 cannot get (another process holds the file
open for writing). A user's own HDF5_USE_FILE_LOCKING wins."""

import os
import subprocess
import sys

import h5py
import pytest

READER = """
import crsky.cli  # what the `crsky` console script imports first
import h5py
with h5py.File({path!r}, "r") as f:
    print(f["x"][()])
"""


@pytest.fixture
def locked_file(tmp_path):
    """An HDF5 file that another process keeps open for writing (holding HDF5's lock)."""
    path = tmp_path / "locked.h5"
    with h5py.File(path, "w") as f:
        f["x"] = 7
    env = {k: v for k, v in os.environ.items() if k != "HDF5_USE_FILE_LOCKING"}
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import h5py, sys; f = h5py.File({str(path)!r}, 'a'); "
         "print('open', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "open"
    yield path
    holder.stdin.close()
    holder.wait(timeout=30)
    holder.stdout.close()


def read_with(path, **env_overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HDF5_USE_FILE_LOCKING"}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", READER.format(path=str(path))],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_crsky_jobs_read_without_hdf5_file_locks(locked_file):
    result = read_with(locked_file)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "7"


def test_an_explicit_hdf5_locking_setting_is_respected(locked_file):
    result = read_with(locked_file, HDF5_USE_FILE_LOCKING="TRUE")
    assert result.returncode != 0 and "unable to lock file" in result.stderr
