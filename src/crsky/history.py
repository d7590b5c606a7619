"""The training history of a model folder (DESIGN.md section 4, "Model"), shared by training
(which writes it) and evaluation (which plots it); no TensorFlow.

``history.csv``: one row per finished epoch, ``epoch`` (from 1) first, then the loss and metrics
of training and validation and the learning rate, floats written with ``repr`` (they read back
exactly). Equal training, equal bytes. ``timings.csv``: ``epoch``, ``seconds`` and ``maps_per_s``
of every epoch, kept apart because wall times differ between runs.
"""

import csv
import os
from pathlib import Path

import numpy as np

from crsky.errors import InputFileError
from crsky.io import atomic_output

__all__ = [
    "HISTORY_NAME",
    "TIMINGS_NAME",
    "history_columns",
    "read_history",
    "write_history",
]

HISTORY_NAME = "history.csv"
TIMINGS_NAME = "timings.csv"


def write_history(path: str | os.PathLike, rows: list[dict[str, float]]) -> Path:
    """Write history (or timing) rows atomically: columns ``epoch`` first, then the first row's
    order; epochs as integers, other values as ``repr(float)``."""
    columns = list(rows[0]) if rows else ["epoch"]
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (int(v) if k == "epoch" else repr(float(v))) for k, v in row.items()}
            )
    return Path(path)


def read_history(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a history.csv (or timings.csv) as dicts of floats (``epoch`` counted from 1);
    InputFileError naming the file if it is missing or not such a table."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    except OSError as err:
        raise InputFileError(f"cannot read training history {str(path)!r}: {err.strerror}") from err
    except (TypeError, ValueError) as err:
        raise InputFileError(
            f"training history {str(path)!r} is not a table of numbers: {err}"
        ) from None
    if rows and "epoch" not in rows[0]:
        raise InputFileError(f"training history {str(path)!r} has no 'epoch' column")
    return rows


def history_columns(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The columns of a history.csv as float arrays; InputFileError if it holds no epoch."""
    rows = read_history(path)
    if not rows:
        raise InputFileError(f"training history {str(path)!r} has no epochs")
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}
