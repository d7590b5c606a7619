"""Train one model on skymap chunks and write its folder (DESIGN.md section 4, "Model"):
``model.keras``, ``history.csv`` and ``timings.csv`` (crsky.history), ``config.json`` and
``checkpoints/`` (crsky.train.checkpoints).

Everything that can be checked is checked before the first step: the model spec against the
nside, the chunks against each other and the model, the GPUs against ``train.gpus``.
"""

import json
import logging
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from crsky import __version__
from crsky.devices import make_strategy
from crsky.errors import CrskyError, InputFileError
from crsky.history import HISTORY_NAME, TIMINGS_NAME, write_history
from crsky.io import atomic_output, prepare_folder
from crsky.models import ModelSpec, build_model
from crsky.models.render import RenderMaps, cr_inputs
from crsky.rng import job_rng, name_stream_id
from crsky.train.checkpoints import CheckpointFolder, best_epoch, write_keras
from crsky.train.pipeline import ChunkSet, training_dataset, validation_dataset
from crsky.train.settings import TrainSettings

__all__ = ["TrainJob", "build_cr_model", "train"]

log = logging.getLogger(__name__)

_DROPOUT_STREAM = name_stream_id("dropout")


def build_cr_model(spec: ModelSpec, nside: int) -> keras.Model:
    """The network of ``spec`` behind a RenderMaps layer: inputs are a chunk's CR lists
    (crsky.models.render.cr_inputs), the output the score. The map-level network is the
    layer named ``spec.name``. The ``pointcloud`` family reads the CR lists itself."""
    if spec.family == "pointcloud":
        return build_model(spec, nside)
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


class _EpochSeeds(keras.callbacks.Callback):
    """Dropout masks as a function of (seed, epoch, step): at the start of every epoch each of
    the model's seed generators restarts from a state drawn from ``job_rng(seed, "train",
    epoch, name_stream_id("dropout"), k)`` (k its place in the model); Keras then advances it
    once per call, i.e. once per step. A job resumed at an epoch boundary therefore draws the
    masks an uninterrupted run draws (Keras does not save seed generator states with the
    weights)."""

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        states = [v for v in self.model.variables if v.name == "seed_generator_state"]
        for k, state in enumerate(states):
            start = int(job_rng(self.seed, "train", epoch, _DROPOUT_STREAM, k).integers(2**31))
            state.assign(keras.ops.convert_to_tensor([start, 0], dtype=state.dtype))


class _Progress(keras.callbacks.Callback):
    """Progress within an epoch for the job log: a line after every tenth of the epoch's steps
    (``lines`` per epoch), with the maps per second so far and the time left in the epoch. Only
    the step count is used (no tensors), so the callback costs nothing on the device."""

    def __init__(self, steps: int, global_batch: int, epochs: int, lines: int = 10):
        super().__init__()
        self.steps, self.global_batch, self.epochs = steps, global_batch, epochs
        self.every = max(1, math.ceil(steps / lines))

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.epoch, self.begin = epoch, time.perf_counter()

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        done = batch + 1
        if done % self.every or done >= self.steps:
            return
        seconds = time.perf_counter() - self.begin
        log.info(
            "epoch %d/%d: step %d/%d (%d %%), %.0f maps/s, ETA %.0f s",
            self.epoch + 1,
            self.epochs,
            done,
            self.steps,
            100 * done // self.steps,
            done * self.global_batch / seconds,
            seconds / done * (self.steps - done),
        )


class _EpochEnd(keras.callbacks.Callback):
    """History row (timings apart), checkpoint and early-stopping bookkeeping after every
    epoch."""

    def __init__(self, folder: CheckpointFolder, rows: list, timings: list, patience: int, n_maps):
        super().__init__()
        self.folder, self.rows, self.timings = folder, rows, timings
        self.patience, self.n_maps = patience, n_maps

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.begin = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        seconds = time.perf_counter() - self.begin
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        row["learning_rate"] = float(self.model.optimizer.learning_rate.numpy())
        self.rows.append(row)
        self.timings.append(
            {"epoch": epoch + 1, "seconds": seconds, "maps_per_s": self.n_maps / seconds}
        )
        self.folder.save(epoch + 1, self.rows, self.timings, self.model)
        log.info(
            "epoch %d/%d done in %.1f s (%.0f maps/s): %s",
            epoch + 1,
            self.params.get("epochs", epoch + 1),
            seconds,
            self.n_maps / seconds,
            ", ".join(f"{k} {v:.5g}" for k, v in row.items() if k != "epoch"),
        )
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
    first_epoch, rows, timings = folder.start()
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
        _EpochSeeds(seed),
        _Progress(steps, global_batch, job.settings.epochs),
        _EpochEnd(
            folder, rows, timings, job.settings.early_stopping_patience, steps * global_batch
        ),
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
        try:
            model.fit(
                train_data,
                epochs=job.settings.epochs,
                initial_epoch=first_epoch,
                steps_per_epoch=steps,
                validation_data=val_data,
                callbacks=callbacks,
                shuffle=False,  # the pipeline shuffles
                verbose=0,  # one line per epoch from _EpochEnd, progress from _Progress
            )
        except tf.errors.OpError as err:
            raise _input_error(err) from None
    return _finish(model, folder, rows, timings, run, output)


def _input_error(err: "tf.errors.OpError") -> Exception:
    """The InputFileError that a chunk read inside the tf.data pipeline raised (TensorFlow
    wraps it in an OpError with its traceback), or ``err`` itself."""
    found = re.search(r"InputFileError: (.+)", err.message)
    return InputFileError(found[1].strip()) if found else err


def _stopped(rows: list[dict[str, float]], settings: TrainSettings) -> bool:
    """True if the resumed history already ended in an early stop."""
    return bool(rows) and rows[-1]["epoch"] - best_epoch(rows) >= settings.early_stopping_patience


def _finish(
    model: keras.Model, folder: CheckpointFolder, rows: list, timings: list, run: dict, output
) -> Path:
    bad = [r["epoch"] for r in rows if not math.isfinite(r["loss"] + r["val_loss"])]
    if bad:
        raise CrskyError(
            f"training diverged: loss is not finite at epoch {int(bad[0])}; lower "
            "train.learning_rate or check the inputs"
        )
    best = best_epoch(rows)
    model.load_weights(folder.weights_path(best))
    log.info("final model: weights of epoch %d (val_loss %.5f)", best, rows[best - 1]["val_loss"])
    write_history(output / HISTORY_NAME, rows)
    write_history(output / TIMINGS_NAME, timings)
    with atomic_output(output / "config.json") as tmp:
        tmp.write_text(json.dumps({**run, "best_epoch": best}, indent=2, sort_keys=True) + "\n")
    return write_keras(output / "model.keras", model)
