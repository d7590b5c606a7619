"""Per-epoch checkpoints and the training history, for resuming a killed job (no TensorFlow;
crsky.train.loop calls ``CheckpointFolder.save`` after every epoch).

The folder ``<model>/checkpoints`` holds ``run.json`` (what is being trained: model, settings,
input files), ``history.csv`` (one row per finished epoch) and ``epoch-NNNN.weights.h5`` (model
and optimizer state after epoch NNNN, counted from 1). After each epoch the history is written
first, then the weights, each atomically; only the newest epoch and the best one so far (lowest
``val_loss``) are kept. A rerun with the same ``run.json`` resumes after the newest epoch whose
weights exist, with the history cut to that many rows.
"""

import csv
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from crsky.errors import InputFileError
from crsky.io import atomic_output, prepare_folder

__all__ = [
    "CheckpointFolder",
    "atomic_keras_file",
    "best_epoch",
    "read_history",
    "write_history",
]

log = logging.getLogger(__name__)

_EPOCH_FILE = re.compile(r"^epoch-(\d{4})\.weights\.h5$")


def atomic_keras_file(path: str | os.PathLike, save: Callable[[Path], None]) -> Path:
    """Write a Keras file (``.keras``, ``.weights.h5``) atomically: ``save`` writes to a sibling
    temporary name that keeps the suffix Keras requires, which is then renamed to ``path``."""
    path = Path(path)
    suffix = ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix
    with atomic_output(path) as tmp:
        staged = tmp.with_name(tmp.name + suffix)
        try:
            save(staged)
            os.replace(staged, tmp)
        finally:
            staged.unlink(missing_ok=True)
    return path


def read_history(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a history.csv as dicts of floats (``epoch`` counted from 1)."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def write_history(path: str | os.PathLike, rows: list[dict[str, float]]) -> None:
    """Write history rows atomically (columns: epoch first, then the first row's order)."""
    columns = list(rows[0]) if rows else ["epoch"]
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (int(v) if k == "epoch" else repr(float(v))) for k, v in row.items()}
            )


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
        return self.folder / "history.csv"

    def weights_path(self, epoch: int) -> Path:
        return self.folder / f"epoch-{epoch:04d}.weights.h5"

    def saved_epochs(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        found = (_EPOCH_FILE.match(p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def start(self) -> tuple[int, list[dict[str, float]]]:
        """(epochs already done, their history rows). Starts afresh (clearing the folder) when
        it holds another run's checkpoints or none."""
        run_path = self.folder / "run.json"
        if run_path.exists():
            try:
                previous = json.loads(run_path.read_text())
            except json.JSONDecodeError as err:
                raise InputFileError(
                    f"checkpoint file {str(run_path)!r} is corrupt: {err}"
                ) from err
            comparable = {k: v for k, v in self.run.items() if k != "epochs"}
            if {k: v for k, v in previous.items() if k != "epochs"} == comparable:
                done = self.saved_epochs()
                rows = read_history(self.history_path) if self.history_path.exists() else []
                epoch = max((e for e in done if e <= len(rows)), default=0)
                if epoch:
                    log.info("resuming after epoch %d from %s", epoch, self.weights_path(epoch))
                    prepare_folder(self.folder)  # temporaries of the killed run
                    return epoch, rows[:epoch]
            else:
                log.warning("checkpoints in %s are from another run; starting afresh", self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        with atomic_output(run_path) as tmp:
            tmp.write_text(json.dumps(self.run, indent=2, sort_keys=True) + "\n")
        return 0, []

    def save(self, epoch: int, rows: list[dict[str, float]], save_weights: Callable) -> None:
        """After epoch ``epoch``: history, weights, then drop all but the newest and best."""
        write_history(self.history_path, rows)
        atomic_keras_file(self.weights_path(epoch), save_weights)
        keep = {epoch, best_epoch(rows)}
        for old in self.saved_epochs():
            if old not in keep:
                self.weights_path(old).unlink(missing_ok=True)
