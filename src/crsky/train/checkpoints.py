"""Per-epoch checkpoints and the training history, for resuming a killed job (no TensorFlow;
crsky.train.loop calls ``CheckpointFolder.save`` after every epoch).

The folder ``<model>/checkpoints`` holds ``run.json`` (what is being trained: model, settings,
input files), ``history.csv`` and ``timings.csv`` (one row per finished epoch, crsky.history) and
``epoch-NNNN.keras`` (model and optimizer state after epoch NNNN, counted from 1). After each
epoch the history is written first, then the weights, each atomically; only the newest epoch and
the best one so far (lowest ``val_loss``) are kept. A rerun whose ``run.json`` differs at most in
``train.epochs`` resumes after the newest epoch whose weights exist (if it is not beyond the new
``epochs``), with the history cut to that many rows; anything else starts afresh.

Keras archives (checkpoints and ``model.keras``) are built in memory and written atomically
(:func:`write_keras`): a full disk is one clean error, not an HDF5 file that Keras left half
written on disk (HDF5 then fails again, fatally, when Python exits). They are byte-reproducible:
fixed member times, no save date, numbered shared-object ids.
"""

import io
import json
import logging
import math
import os
import re
import shutil
import zipfile
from pathlib import Path

from crsky.errors import InputFileError
from crsky.history import HISTORY_NAME, TIMINGS_NAME, read_history, write_history
from crsky.io import atomic_output, prepare_folder

__all__ = ["CheckpointFolder", "best_epoch", "reproducible_keras_archive", "write_keras"]

log = logging.getLogger(__name__)

_EPOCH_FILE = re.compile(r"^epoch-(\d{4})\.keras$")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # earliest zip time stamp: reproducible bytes
_KERAS_METADATA = "metadata.json"
_KERAS_CONFIG = "config.json"


def _renumber_shared_objects(node, numbers: dict) -> None:
    """Replace Keras' ``shared_object_id`` values (Python ``id()`` of the shared objects, so
    memory addresses) by 1, 2, 3, ... in order of appearance; sharing is unchanged."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "shared_object_id":
                node[key] = numbers.setdefault(value, len(numbers) + 1)
            else:
                _renumber_shared_objects(value, numbers)
    elif isinstance(node, list):
        for value in node:
            _renumber_shared_objects(value, numbers)


def reproducible_keras_archive(data: bytes) -> bytes:
    """A ``.keras`` zip rewritten so that equal models give equal bytes: every member gets the
    fixed time stamp 1980-01-01, ``metadata.json`` loses ``date_saved`` and ``config.json``'s
    shared-object ids (memory addresses) become 1, 2, 3, ... (Keras' loader reads no date and
    only matches the ids with each other)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, content in members:
            if info.filename == _KERAS_METADATA:
                metadata = json.loads(content)
                metadata.pop("date_saved", None)
                content = json.dumps(metadata, sort_keys=True).encode()
            elif info.filename == _KERAS_CONFIG:
                config = json.loads(content)
                _renumber_shared_objects(config, {})
                content = json.dumps(config).encode()
            member = zipfile.ZipInfo(info.filename, date_time=_ZIP_DATE)
            member.compress_type = info.compress_type
            member.external_attr = 0o644 << 16
            archive.writestr(member, content)
    return buffer.getvalue()


def write_keras(path: str | os.PathLike, model) -> Path:
    """``model`` (architecture, weights and optimizer state) as a reproducible ``.keras``
    archive at ``path``: built in memory, then written atomically (crsky.io)."""
    from keras.src.saving import saving_lib  # the public model.save refuses file objects

    buffer = io.BytesIO()
    saving_lib.save_model(model, buffer)
    with atomic_output(path) as tmp:
        tmp.write_bytes(reproducible_keras_archive(buffer.getvalue()))
    return Path(path)


def best_epoch(rows: list[dict[str, float]], monitor: str = "val_loss") -> int:
    """Epoch (from 1) with the lowest finite ``monitor``; 0 if there is none."""
    finite = [r for r in rows if math.isfinite(r.get(monitor, math.nan))]
    return int(min(finite, key=lambda r: r[monitor])["epoch"]) if finite else 0


class CheckpointFolder:
    """The checkpoints of one training run (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike, run: dict):
        self.folder = Path(folder)
        self.run = run

    @property
    def history_path(self) -> Path:
        return self.folder / HISTORY_NAME

    @property
    def timings_path(self) -> Path:
        return self.folder / TIMINGS_NAME

    def weights_path(self, epoch: int) -> Path:
        return self.folder / f"epoch-{epoch:04d}.keras"

    def saved_epochs(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        found = (_EPOCH_FILE.match(p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def _resumable(self, previous: dict) -> bool:
        """The same run, except perhaps for the number of epochs."""

        def without_epochs(run: dict) -> dict:
            return {**run, "train": {**run.get("train", {}), "epochs": None}}

        return without_epochs(previous) == without_epochs(self.run)

    def start(self) -> tuple[int, list[dict[str, float]], list[dict[str, float]]]:
        """(epochs already done, their history rows, their timing rows). Starts afresh
        (clearing the folder) when it holds another run's checkpoints or none, or when its
        newest epoch lies beyond the run's ``train.epochs``."""
        run_path = self.folder / "run.json"
        if run_path.exists():
            try:
                previous = json.loads(run_path.read_text())
            except json.JSONDecodeError as err:
                raise InputFileError(
                    f"checkpoint file {str(run_path)!r} is corrupt: {err}"
                ) from err
            if self._resumable(previous):
                epoch = self._newest_complete_epoch()
                if 0 < epoch <= self.run["train"]["epochs"]:
                    log.info("resuming after epoch %d from %s", epoch, self.weights_path(epoch))
                    prepare_folder(self.folder)  # temporaries of the killed run
                    self._write_run(run_path)  # the new number of epochs
                    timings = read_history(self.timings_path)[:epoch]
                    return epoch, read_history(self.history_path)[:epoch], timings
            else:
                log.warning("checkpoints in %s are from another run; starting afresh", self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self._write_run(run_path)
        return 0, [], []

    def _newest_complete_epoch(self) -> int:
        """The newest epoch with weights, a history row and a timing row (0: none)."""
        rows = [p for p in (self.history_path, self.timings_path) if p.exists()]
        if len(rows) < 2:
            return 0
        recorded = min(len(read_history(p)) for p in rows)
        return max((e for e in self.saved_epochs() if e <= recorded), default=0)

    def _write_run(self, path: Path) -> None:
        with atomic_output(path) as tmp:
            tmp.write_text(json.dumps(self.run, indent=2, sort_keys=True) + "\n")

    def save(
        self,
        epoch: int,
        rows: list[dict[str, float]],
        timings: list[dict[str, float]],
        model,
    ) -> None:
        """After epoch ``epoch``: history and timings, weights, then drop all but the newest
        and the best epoch's weights."""
        write_history(self.history_path, rows)
        write_history(self.timings_path, timings)
        write_keras(self.weights_path(epoch), model)
        keep = {epoch, best_epoch(rows)}
        for old in self.saved_epochs():
            if old not in keep:
                self.weights_path(old).unlink(missing_ok=True)
