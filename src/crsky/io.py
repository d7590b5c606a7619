"""Atomic, reproducible output: write to a temporary name in the target folder, rename into place
when done; HDF5 files carry no timestamps, so the same inputs give the same bytes."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py

from crsky.errors import InputFileError

__all__ = ["atomic_h5", "atomic_output", "write_dataset"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only if the block succeeds.

    A job killed inside the block leaves at most a ``.<name>.*.tmp`` file, never a file under the
    final name. The folder is created if needed.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        raise InputFileError(f"cannot write output {str(target)!r}: {err.strerror}") from err
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600; give the file the permissions of an ordinary new file
        tmp.chmod(0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """An HDF5 file opened for writing under a temporary name, renamed to ``path`` on success.

    Creation-order tracking is off: it stores timestamps, which would make the bytes depend on
    the time of writing. Create datasets with :func:`write_dataset`.
    """
    with atomic_output(path) as tmp, h5py.File(tmp, "w", track_order=False) as f:
        yield f


def write_dataset(group: h5py.Group, name: str, data, **options) -> h5py.Dataset:
    """``group.create_dataset`` without the creation timestamp (same data, same bytes)."""
    return group.create_dataset(name, data=data, track_times=False, **options)
