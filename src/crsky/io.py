"""Atomic, reproducible output: write to a temporary name in the target folder, rename into place
when done; HDF5 files carry no timestamps, so the same inputs give the same bytes.

Temporaries are named ``.<name>.<random>.tmp`` (files) or ``.<name>.<random>.tmp`` folders next
to the output ``<name>``; a job killed mid-write leaves at most such a hidden temporary, never a
file or folder under the final name, and :func:`prepare_output` / :func:`prepare_folder` remove
them when the job runs again. A failed write (disk full, quota, permissions) raises
InputFileError naming the output, never h5py's OSError.
"""

import glob
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py

from crsky.errors import CrskyError, InputFileError

__all__ = [
    "atomic_folder",
    "atomic_h5",
    "atomic_output",
    "file_sha256",
    "prepare_folder",
    "prepare_output",
    "write_dataset",
]

_TMP = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_error(target: Path, err: OSError) -> InputFileError:
    reason = err.strerror or str(err)
    return InputFileError(f"cannot write output {str(target)!r}: {reason}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _strays(folder: Path, name: str) -> list[Path]:
    """Temporaries of output ``name`` in ``folder`` left by killed writers."""
    return sorted(folder.glob(f".{glob.escape(name)}.*{_TMP}*"))


def _probe(folder: Path, name: str) -> None:
    fd, probe = tempfile.mkstemp(prefix=f".{name}.", suffix=_TMP, dir=folder)
    os.close(fd)
    os.unlink(probe)


def prepare_output(path: str | os.PathLike) -> Path:
    """At the start of a job, before any computation: create the output's folder, remove the
    temporaries a killed run of this output left (``.<name>.*.tmp*``), and check that the folder
    is writable. InputFileError naming the output otherwise."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        for stray in _strays(target.parent, target.name):
            _remove(stray)
        _probe(target.parent, target.name)
    except OSError as err:
        raise _write_error(target, err) from err
    return target


def prepare_folder(folder: str | os.PathLike) -> Path:
    """:func:`prepare_output` for a folder that one job owns: create it, remove every
    temporary in it (``.*.tmp*``), check that it is writable."""
    target = Path(folder)
    try:
        target.mkdir(parents=True, exist_ok=True)
        for stray in sorted(target.glob(f".*{_TMP}*")):
            _remove(stray)
        _probe(target, "probe")
    except OSError as err:
        raise _write_error(target, err) from err
    return target


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only if the block succeeds.

    A job killed inside the block leaves at most a ``.<name>.*.tmp`` file, never a file under the
    final name. The folder is created if needed. An OSError while writing (disk full, ...)
    becomes InputFileError naming ``path``.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=_TMP, dir=target.parent)
    except OSError as err:
        raise _write_error(target, err) from err
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600; give the file the permissions of an ordinary new file
        tmp.chmod(0o666 & ~_umask())
        os.replace(tmp, target)
    except OSError as err:
        if isinstance(err, CrskyError):
            raise
        raise _write_error(target, err) from err
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """An HDF5 file built in memory and written to ``path`` atomically when the block succeeds.

    The file lives in HDF5's in-memory ("core") driver and reaches the disk as one plain write of
    its image (the same bytes HDF5 would write to a file): a full disk is then one clean
    InputFileError, not an HDF5 write failure that poisons the library until exit. Memory: the
    whole file (at most ~60 MB for a 20,000-map skymap chunk). Creation-order tracking is off:
    it stores timestamps, which would make the bytes depend on the time of writing. Create
    datasets with :func:`write_dataset`.
    """
    with atomic_output(path) as tmp:
        f = h5py.File(tmp, "w", driver="core", backing_store=False, track_order=False)
        try:
            yield f
            f.flush()
            image = f.id.get_file_image()
        finally:
            f.close()
        with open(tmp, "wb") as out:
            out.write(image)


@contextmanager
def atomic_folder(path: str | os.PathLike, names) -> Iterator[Path]:
    """Yield a hidden staging folder next to ``path`` that replaces the folder ``path`` only when
    the block succeeds: a killed job never leaves a folder under the final name that looks
    finished (at worst the previous complete folder, or none). A previous folder is moved aside,
    the staging folder renamed into place, and the old one deleted. ``names``: the file names
    the job writes; an existing folder holding anything else is refused before any work
    (InputFileError), so that a mistyped ``--output`` never replaces a folder of other files."""
    target = Path(path)
    if target.is_dir():
        foreign = sorted(p.name for p in target.iterdir() if p.name not in set(names))
        if foreign:
            raise InputFileError(
                f"output folder {str(target)!r} holds files this job does not write "
                f"({foreign[:5]}); choose a new or empty folder"
            )
    elif target.exists():
        raise InputFileError(f"output {str(target)!r} exists and is not a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=_TMP, dir=target.parent))
    except OSError as err:
        raise _write_error(target, err) from err
    try:
        yield staging
        staging.chmod(0o777 & ~_umask())
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=_TMP, dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(staging, target)
            shutil.rmtree(old)
        else:
            os.replace(staging, target)
    except OSError as err:
        if isinstance(err, CrskyError):
            raise
        raise _write_error(target, err) from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_dataset(group: h5py.Group, name: str, data, **options) -> h5py.Dataset:
    """``group.create_dataset`` without the creation timestamp (same data, same bytes)."""
    return group.create_dataset(name, data=data, track_times=False, **options)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 8 MiB blocks); InputFileError naming the file."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 23):
                digest.update(block)
    except OSError as err:
        raise InputFileError(f"cannot read {str(path)!r}: {err.strerror}") from err
    return digest.hexdigest()
