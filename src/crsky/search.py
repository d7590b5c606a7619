"""Random search over network architectures and training settings (seed 002, slide 11), no
TensorFlow.

The config's ``search`` section gives a space (a list of choices per key), a number of trials
and a seed. Trial ``i`` draws every key independently from ``job_rng(seed, "search", i,
name_stream_id(key))``, so a trial depends only on (seed, i, its key's choices): adding trials,
or adding a key to the space, never changes the draws of the other trials or keys, and
Snakemake retrains nothing that already finished. Each trial is trained like a configured model
(crsky.train) and scored on a validation set at one fixed signal fraction
(:func:`validation_record`, by ``crsky search-validate``); the selection (``crsky search-select``)
ranks the trials by the p-value of the median signal score against the isotropic validation maps
(lowest first; ties, which a small isotropic set makes common, by the best validation loss, then
by trial index), writes the table and copies the winner's model folder, which is then evaluated
like any configured model.

Space keys (every one optional; absent keys take the ``search.base`` value or the model default):
``family``, ``depth`` (convolution blocks), ``channels`` (one width for every block; absent:
16, 32, 64, 64, ...), ``K`` (Chebyshev order, deepsphere), ``kernel_size`` (patches),
``pooling``, ``activation`` (convolutions), ``dense_activation``, ``dense_layers``,
``dense_units`` (width of every dense layer), ``dropout``, ``l2`` and ``learning_rate``
(train.learning_rate of the trial).
"""

import csv
import json
import math
from pathlib import Path

from crsky.errors import ConfigError, InputFileError, check_options
from crsky.io import atomic_output
from crsky.models.spec import ModelSpec, default_channels
from crsky.rng import job_rng, name_stream_id

__all__ = [
    "BEST_MODEL",
    "MODEL_FILES",
    "RECORD_FORMAT",
    "SPACE_KEYS",
    "check_search",
    "rank_records",
    "read_record",
    "trial_name",
    "trial_setup",
    "write_search_table",
]

# keys of the space in the order of the table's columns (seed 002, slide 11)
SPACE_KEYS = (
    "family",
    "depth",
    "channels",
    "dense_layers",
    "dense_units",
    "activation",
    "dense_activation",
    "pooling",
    "K",
    "kernel_size",
    "dropout",
    "l2",
    "learning_rate",
)
_HEADERS = {
    "depth": "conv layers",
    "dense_layers": "dense layers",
    "dense_units": "dense units",
    "activation": "conv activation",
    "dense_activation": "dense activation",
    "K": "K order",
    "kernel_size": "kernel size",
    "learning_rate": "learning rate",
}
_FAMILY_KEYS = {"K": ("deepsphere", "pointcloud"), "kernel_size": ("patches",)}  # family keys
BEST_MODEL = "search_best"  # the model folder of the winner (evaluated like a configured model)
MODEL_FILES = ("model.keras", "history.csv", "config.json")
RECORD_FORMAT = "crsky-search-trial"


def trial_name(index: int) -> str:
    """Folder and wildcard name of trial ``index``: trial0000, trial0001, ..."""
    return f"trial{index:04d}"


def _draw(section: dict, index: int) -> dict:
    """{key: choice} of trial ``index`` for every key of ``section['space']``."""
    drawn = {}
    for key in SPACE_KEYS:
        choices = section["space"].get(key)
        if choices:
            rng = job_rng(section["seed"], "search", index, name_stream_id(key))
            drawn[key] = choices[int(rng.integers(len(choices)))]
    return drawn


def trial_setup(section: dict, index: int, learning_rate: float) -> tuple[dict, float]:
    """(model entry, learning rate) of trial ``index``: ``section['base']`` with the trial's
    draws; ``learning_rate`` (config train.learning_rate) unless the space draws one."""
    drawn = _draw(section, index)
    entry = {**section["base"], "name": trial_name(index)}
    entry.update({k: v for k, v in drawn.items() if k in ModelSpec.__dataclass_fields__})
    depth = entry.get("depth", ModelSpec.depth)
    width = entry.get("channels")
    entry["channels"] = (
        [width] * depth if isinstance(width, int) else list(width or default_channels(depth))
    )
    if "dense_layers" in drawn or "dense_units" in drawn:
        units = section["base"].get("dense_units", list(ModelSpec.dense_units))
        layers = drawn.get("dense_layers", len(units))
        entry["dense_units"] = [drawn.get("dense_units", units[0] if units else 64)] * layers
    return entry, float(drawn.get("learning_rate", learning_rate))


def check_search(section: dict, nside: int, learning_rate: float) -> None:
    """ConfigError naming ``search.space.<key>`` or ``search.base.<key>`` for a choice no
    network could be built with at ``nside``; every trial's model checked."""
    from crsky.train import TrainSettings

    if section["trials"] == 0:
        return
    check_options(section["space"], set(SPACE_KEYS), "search.space")
    firsts = {key: choices[:1] for key, choices in section["space"].items()}
    for key, choices in section["space"].items():
        for value in choices:
            if key == "learning_rate":
                TrainSettings(learning_rate=value).validate(f"search.space.{key}")
                continue
            trial = {**section, "space": {**firsts, key: [value]}}
            try:
                ModelSpec.from_config(trial_setup(trial, 0, learning_rate)[0], "model").check_nside(
                    nside
                )
            except ConfigError as err:
                raise ConfigError(f"search.space.{key} = {value!r}: {err}") from None
    for index in range(section["trials"]):
        entry, _ = trial_setup(section, index, learning_rate)
        try:
            ModelSpec.from_config(entry, "search.base").check_nside(nside)
        except ConfigError as err:
            raise ConfigError(f"search: {trial_name(index)}: {err}") from None


def validation_record(
    trial: str, model_config: dict, signal_scores, iso_scores, fraction: float, val_loss: float
) -> dict:
    """The record of one trial: p-value of its median signal score at signal fraction
    ``fraction`` against the isotropic validation scores (seed 002), and its best validation
    loss."""
    from crsky.stats.significance import median_p_value

    p = median_p_value(signal_scores, iso_scores)
    return {
        "format": RECORD_FORMAT,
        "trial": trial,
        "model": model_config["model"],
        "learning_rate": model_config["train"]["learning_rate"],
        "signal_fraction": fraction,
        "n_signal_maps": len(signal_scores),
        "n_isotropy_maps": p.n_iso,
        "median_score": p.median_score,
        "n_isotropy_at_least": p.n_iso_at_least,
        "p_value": p.p_value,
        "p_bound": p.p_bound,
        "val_loss": val_loss,
    }


def read_record(path) -> dict:
    """One trial's record (written by ``crsky search-validate``); InputFileError naming the
    file if it is not one."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise InputFileError(f"cannot read search trial record {str(path)!r}: {err}") from err
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise InputFileError(f"{str(path)!r} is not a search trial record ({RECORD_FORMAT})")
    for key in ("p_value", "val_loss"):
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise InputFileError(f"{str(path)!r}: {key!r} must be a number, got {value!r}")
    return record


def rank_records(records: list[dict]) -> list[dict]:
    """Records sorted best first: lowest p-value, then lowest validation loss, then trial."""
    if not records:
        raise ConfigError("no search trials to select from")
    return sorted(records, key=lambda r: (r["p_value"], r["val_loss"], r["trial"]))


def _cell(record: dict, key: str):
    model = record["model"]
    if key == "learning_rate":
        return record["learning_rate"]
    if key == "dense_layers":
        return len(model["dense_units"])
    if key == "dense_units":
        return "/".join(str(u) for u in model["dense_units"])
    if key == "channels":
        return "/".join(str(c) for c in model["channels"])
    if key == "dense_activation":
        return model.get("dense_activation") or model["activation"]
    if key in _FAMILY_KEYS and model["family"] not in _FAMILY_KEYS[key]:
        return "-"
    return model[key]


def _table(ranked: list[dict]) -> tuple[list[str], list[list]]:
    keys = [k for k in SPACE_KEYS]
    header = ["rank", "trial", "p_value", "val_loss", *[_HEADERS.get(k, k) for k in keys]]
    rows = []
    for rank, r in enumerate(ranked, 1):
        p = f"{r['p_bound']}{r['p_value']:.4g}"
        rows.append([rank, r["trial"], p, f"{r['val_loss']:.5g}", *[_cell(r, k) for k in keys]])
    return header, rows


def write_search_table(ranked: list[dict], csv_path, markdown_path) -> None:
    """The ranked trials as ``search.csv`` and a Markdown table (seed 002, slide 11), written
    atomically."""
    header, rows = _table(ranked)
    with atomic_output(csv_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    first = ranked[0]
    lines = [
        f"Random search: {len(ranked)} trials ranked by the validation p-value of the median "
        f"signal score at signal fraction {first['signal_fraction']:g} "
        f"({first['n_signal_maps']} signal maps, {first['n_isotropy_maps']} isotropic maps; "
        "ties by validation loss).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(str(c) for c in row) + " |" for row in rows),
    ]
    with atomic_output(markdown_path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def validate_trial(
    trial_folder, signal_chunks, isotropy_chunks, fraction: float, output, batch_size: int = 256
) -> dict:
    """Score a trained trial (its model folder) on the validation maps at signal fraction
    ``fraction`` and on the isotropic validation maps; write its record to ``output`` (JSON,
    atomically) and return it. Every check runs before the model is loaded."""
    import numpy as np

    from crsky.evaluate.data import MapSet, check_compatible
    from crsky.evaluate.scoring import ModelFolder, score_maps
    from crsky.history import read_history
    from crsky.stats.significance import FRACTION_ATOL

    folder = ModelFolder.open(trial_folder)
    signal = MapSet.open(signal_chunks, "validation")
    isotropy = MapSet.open(isotropy_chunks, "isotropy")
    check_compatible(signal, isotropy)
    folder.check_maps(signal)
    folder.check_maps(isotropy)
    at_fraction = np.abs(signal.labels()["signal_fraction"] - fraction) <= FRACTION_ATOL
    if not at_fraction.any():
        raise InputFileError(
            f"validation set {signal.dataset!r} ({str(signal.paths[0])!r}) has no maps at "
            f"signal fraction {fraction}"
        )
    rows = read_history(Path(trial_folder) / "history.csv")
    best = int(folder.config.get("best_epoch", 0))
    if not 1 <= best <= len(rows):
        raise InputFileError(
            f"{str(Path(trial_folder) / 'config.json')!r}: best_epoch {best} is not an epoch of "
            "history.csv"
        )
    model = folder.load()
    signal_scores = score_maps(model, signal, batch_size)[at_fraction]
    iso_scores = score_maps(model, isotropy, batch_size)
    record = validation_record(
        Path(trial_folder).name,
        folder.config,
        signal_scores,
        iso_scores,
        fraction,
        rows[best - 1]["val_loss"],
    )
    with atomic_output(output) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return record


def select_trials(trial_folders, output_folder, best_folder) -> dict:
    """Rank the trials by their records (``validation.json`` in each trial folder), write
    ``search.csv`` and ``search.md`` into ``output_folder`` and copy the winner's model files
    into ``best_folder`` (its config.json gains the key ``search``: trial, p-value, rank table).
    Returns the winner's record."""
    from crsky.io import atomic_folder

    folders = {Path(f).name: Path(f) for f in trial_folders}
    records = [read_record(f / "validation.json") for f in folders.values()]
    for name, record in zip(folders, records, strict=True):
        if record["trial"] != name:
            raise InputFileError(
                f"{str(folders[name] / 'validation.json')!r} records trial {record['trial']!r}, "
                f"not {name!r}"
            )
    ranked = rank_records(records)
    winner = folders[ranked[0]["trial"]]
    for name in MODEL_FILES:
        if not (winner / name).is_file():
            raise InputFileError(f"the winning trial folder {str(winner)!r} has no {name!r}")
    output_folder = Path(output_folder)
    write_search_table(ranked, output_folder / "search.csv", output_folder / "search.md")
    config = json.loads((winner / "config.json").read_text(encoding="utf-8"))
    config["search"] = {
        "trial": ranked[0]["trial"],
        "p_value": ranked[0]["p_value"],
        "signal_fraction": ranked[0]["signal_fraction"],
        "trials": len(ranked),
    }
    with atomic_folder(best_folder, MODEL_FILES) as staging:
        for name in ("model.keras", "history.csv"):
            (staging / name).write_bytes((winner / name).read_bytes())
        (staging / "config.json").write_text(
            json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    return ranked[0]
