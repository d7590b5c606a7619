"""Train one model on skymap chunks and write its folder (DESIGN.md section 4, "Model"):
``model.keras``, ``history.csv``, ``config.json`` and ``checkpoints/`` (crsky.train.checkpoints).

Everything that can be checked is checked before the first step: the model spec against the
nside, the chunks against each other and the model, the GPUs against ``train.gpus``.
"""

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import keras

from crsky import __version__
from crsky.errors import CrskyError
from crsky.io import atomic_output, prepare_folder
from crsky.models import ModelSpec, build_model
from crsky.models.render import RenderMaps, cr_inputs
from crsky.rng import job_rng, name_stream_id
from crsky.train.checkpoints import CheckpointFolder, atomic_keras_file, best_epoch, write_history
from crsky.train.devices import make_strategy
from crsky.train.pipeline import ChunkSet, training_dataset, validation_dataset
from crsky.train.settings import TrainSettings

__all__ = ["TrainJob", "build_cr_model", "train"]

log = logging.getLogger(__name__)


def build_cr_model(spec: ModelSpec, nside: int) -> keras.Model:
    """The network of ``spec`` behind a RenderMaps layer: inputs are a chunk's CR lists
    (crsky.models.render.cr_inputs), the output the score. The map-level network is the
    layer named ``spec.name``."""
    crs = cr_inputs(spec.inputs)
    maps = RenderMaps(spec.family, nside, spec.inputs, name="render")(crs)
    return keras.Model(crs, build_model(spec, nside)(maps), name=f"{spec.name}_on_cr_lists")


@dataclass(frozen=True)
class TrainJob:
    """Everything one training job reads."""

    spec: ModelSpec
    settings: TrainSettings
    training: list[Path]
    validation: list[Path]
    seed: int
    nside: int | None = None  # None: the chunks' nside
    cpu_replicas: int = 1


def _learning_rate(settings: TrainSettings, steps_per_epoch: int):
    if settings.lr_schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            settings.learning_rate, steps_per_epoch, settings.lr_decay_rate
        )
    if settings.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            settings.learning_rate, steps_per_epoch * settings.epochs
        )
    return settings.learning_rate


def _compile(model: keras.Model, spec: ModelSpec, learning_rate) -> None:
    if spec.task == "classification":
        loss, metrics = "binary_crossentropy", [keras.metrics.AUC(name="auc")]
    else:
        loss, metrics = "mean_squared_error", [keras.metrics.MeanAbsoluteError(name="mae")]
    model.compile(keras.optimizers.Adam(learning_rate), loss, metrics=metrics)


class _EpochEnd(keras.callbacks.Callback):
    """History row, checkpoint and early-stopping bookkeeping after every epoch."""

    def __init__(self, folder: CheckpointFolder, rows: list, patience: int, n_maps: int):
        super().__init__()
        self.folder, self.rows, self.patience, self.n_maps = folder, rows, patience, n_maps

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.begin = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        seconds = time.perf_counter() - self.begin
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        row["learning_rate"] = float(self.model.optimizer.learning_rate.numpy())
        row["seconds"] = seconds
        row["maps_per_s"] = self.n_maps / seconds
        self.rows.append(row)
        self.folder.save(epoch + 1, self.rows, self.model.save_weights)
        log.info("epoch %d: %s", epoch + 1, {k: round(v, 5) for k, v in row.items()})
        if not all(math.isfinite(row[k]) for k in ("loss", "val_loss")):
            self.model.stop_training = True
        elif epoch + 1 - best_epoch(self.rows) >= self.patience:
            log.info("early stop: no better val_loss for %d epochs", self.patience)
            self.model.stop_training = True


def _check_inputs(job: TrainJob) -> tuple[int, ChunkSet, ChunkSet]:
    training = ChunkSet.open(job.training, "training")
    validation = ChunkSet.open(job.validation, "validation")
    nside = training.nside if job.nside is None else job.nside
    job.spec.check_nside(nside)
    training.check_nside(nside, job.spec.name)
    validation.check_nside(nside, job.spec.name)
    return nside, training, validation


def train(job: TrainJob, output: str | Path) -> Path:
    """Train ``job.spec`` and write the model folder ``output``; resumes from its checkpoints
    when they belong to the same job. Returns the path of ``model.keras``."""
    output = Path(output)
    nside, training, validation = _check_inputs(job)
    strategy = make_strategy(job.settings.gpus, job.cpu_replicas)
    replicas = strategy.num_replicas_in_sync
    global_batch = job.settings.batch_size_per_replica * replicas
    training.steps(global_batch)  # enough maps for one step, before anything is written
    stream = name_stream_id(job.spec.name)
    run = {
        "model": job.spec.to_config(),
        "train": job.settings.to_config(),
        "nside": nside,
        "ordering": "RING",  # of the input pixels; the model renders its own layout
        "seed": job.seed,
        "replicas": replicas,
        "training": [str(p) for p in training.paths],
        "validation": [str(p) for p in validation.paths],
        "crsky_version": __version__,
    }
    prepare_folder(output)  # writable; temporaries of a killed run removed
    folder = CheckpointFolder(output / "checkpoints", run)
    first_epoch, rows = folder.start()
    seed = int(job_rng(job.seed, "train", stream).integers(2**31))
    with_energy = "mean_log10_energy" in job.spec.inputs
    train_data, steps = training_dataset(
        training,
        with_energy,
        job.spec.task,
        global_batch,
        first_epoch,
        job.settings.epochs,
        seed,
        job.settings.shuffle_buffer,
        job.settings.interleave_chunks,
    )
    val_data = validation_dataset(validation, with_energy, job.spec.task, global_batch)
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        model = build_cr_model(job.spec, nside)
        _compile(model, job.spec, _learning_rate(job.settings, steps))
        if first_epoch:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(folder.weights_path(first_epoch))
    callbacks = [
        _EpochEnd(folder, rows, job.settings.early_stopping_patience, steps * global_batch)
    ]
    if job.settings.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(output / "tensorboard"))
    log.info(
        "training %s: %d training maps (%d steps of %d), %d validation maps, epochs %d-%d",
        job.spec.name,
        training.total_maps,
        steps,
        global_batch,
        validation.total_maps,
        first_epoch + 1,
        job.settings.epochs,
    )
    if first_epoch < job.settings.epochs and not _stopped(rows, job.settings):
        model.fit(
            train_data,
            epochs=job.settings.epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=steps,
            validation_data=val_data,
            callbacks=callbacks,
            shuffle=False,  # the pipeline shuffles
            verbose=2,
        )
    return _finish(model, folder, rows, run, output)


def _stopped(rows: list[dict[str, float]], settings: TrainSettings) -> bool:
    """True if the resumed history already ended in an early stop."""
    return bool(rows) and rows[-1]["epoch"] - best_epoch(rows) >= settings.early_stopping_patience


def _finish(model: keras.Model, folder: CheckpointFolder, rows: list, run: dict, output: Path):
    bad = [r["epoch"] for r in rows if not math.isfinite(r["loss"] + r["val_loss"])]
    if bad:
        raise CrskyError(
            f"training diverged: loss is not finite at epoch {int(bad[0])}; lower "
            "train.learning_rate or check the inputs"
        )
    best = best_epoch(rows)
    model.load_weights(folder.weights_path(best))
    log.info("final model: weights of epoch %d (val_loss %.5f)", best, rows[best - 1]["val_loss"])
    write_history(output / "history.csv", rows)
    with atomic_output(output / "config.json") as tmp:
        tmp.write_text(json.dumps({**run, "best_epoch": best}, indent=2, sort_keys=True) + "\n")
    return atomic_keras_file(output / "model.keras", model.save)
