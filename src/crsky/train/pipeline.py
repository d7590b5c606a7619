"""Input pipeline: skymap chunks (crsky.store) -> shuffled batches of CR lists (tf.data).

Each element is one map's CR list, ``{"pixel": (n_cr,) int32 RING, ["log10_energy": (n_cr,)
float32 log10(E / eV)]}``, with its target: 1 for a map with signal CRs (``n_signal`` > 0) and 0
for an isotropic one (classification), or its signal fraction in percent, ``100 ·
signal_fraction`` (regression: in percent, the squared error of a useful network, ~1-10 %², is
not drowned by the L2 penalty of a wide dense head, ~0.1, as it is in fractions, ~1e-3). Counts
maps are rendered from these lists by the model's first layer (crsky.models.render), on the
device.

Training order, per epoch e: the chunks in a random order; each chunk's maps permuted when it is
read (``job_rng(seed, "train", e, chunk)``, ``seed`` the model's training seed, drawn by
crsky.train.loop from ``job_rng(config seed, "train", name_stream_id(model name))``);
``interleave_chunks`` chunks read side by side, map by map; a shuffle buffer; batches of the
global batch size (the remainder is dropped, so every epoch has the same number of steps). Every
random choice depends only on the seed and the epoch, so a job resumed at epoch e sees the same
batches as an uninterrupted one.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from crsky.errors import ConfigError, InputFileError
from crsky.rng import job_rng
from crsky.store import open_chunk

__all__ = [
    "ChunkSet",
    "dataset_options",
    "load_chunk",
    "targets",
    "training_dataset",
    "validation_dataset",
]


@dataclass(frozen=True)
class ChunkSet:
    """Skymap chunks of one role ('training', 'validation'), checked to fit together."""

    role: str
    paths: tuple[Path, ...]
    n_maps: tuple[int, ...]
    nside: int
    n_cr: int

    @classmethod
    def open(cls, paths: list[str | Path], role: str) -> "ChunkSet":
        """Read every chunk's header; InputFileError naming the file for an empty chunk or one
        whose nside or number of CRs per map differs from the first chunk's."""
        if not paths:
            raise ConfigError(f"no {role} chunks given")
        paths = tuple(Path(p) for p in paths)
        n_maps, shapes = [], []
        for path in paths:
            with open_chunk(path) as chunk:
                if chunk.n_maps == 0:
                    raise InputFileError(f"{role} chunk {str(path)!r} holds no maps")
                n_maps.append(chunk.n_maps)
                shapes.append((chunk.nside, chunk.n_cr))
        for path, shape in zip(paths, shapes, strict=True):
            if shape != shapes[0]:
                raise InputFileError(
                    f"{role} chunk {str(path)!r} has (nside, CRs per map) = {shape}, but "
                    f"{str(paths[0])!r} has {shapes[0]}; one model reads one kind of map"
                )
        return cls(role, paths, tuple(n_maps), shapes[0][0], shapes[0][1])

    @property
    def total_maps(self) -> int:
        return sum(self.n_maps)

    def steps(self, global_batch: int) -> int:
        """Full batches of ``global_batch`` maps per epoch; ConfigError if there is none."""
        if self.total_maps < global_batch:
            raise ConfigError(
                f"the {self.total_maps} {self.role} maps do not fill one global batch of "
                f"{global_batch} (train.batch_size_per_replica × replicas)"
            )
        return self.total_maps // global_batch

    def check_nside(self, nside: int, model: str) -> None:
        """InputFileError unless the chunks are at the model's nside."""
        if self.nside != nside:
            raise InputFileError(
                f"{self.role} chunk {str(self.paths[0])!r} is at nside {self.nside}, "
                f"model {model!r} is built for nside {nside}"
            )


def targets(labels: dict[str, np.ndarray], task: str) -> np.ndarray:
    """(n,) float32 training targets from a chunk's labels (see the module docstring)."""
    if task == "classification":
        return (labels["n_signal"] > 0).astype(np.float32)
    return (100.0 * labels["signal_fraction"]).astype(np.float32)


def load_chunk(
    path: str | Path, with_energy: bool, task: str, permutation_rng: np.random.Generator | None
) -> tuple[np.ndarray, ...]:
    """(pixel int32, [log10_energy float32,] target float32) of every map of a chunk, in a
    random order when ``permutation_rng`` is given.

    The chunk is opened (and its format checked) with crsky.store; the CR columns are then read
    one by one, so a model without the energy channel reads only ``pixel``: that column alone
    decompresses 4-5 times faster than the four CR columns that ``cosmic_rays()`` returns.
    """
    names = ("pixel", "log10_energy") if with_energy else ("pixel",)
    with open_chunk(path) as chunk:
        target = targets(chunk.labels(), task)
        columns = [chunk.read(name) for name in names]
    order = slice(None) if permutation_rng is None else permutation_rng.permutation(len(target))
    columns[0] = columns[0].astype(np.int32)
    return (*(c[order] for c in columns), target[order])


def _map_dataset(
    chunks: ChunkSet,
    index: tf.Tensor,
    epoch: tf.Tensor | None,
    with_energy: bool,
    task: str,
    seed: int | None,
) -> tf.data.Dataset:
    """Maps of chunk ``index`` (in a permuted order for epoch ``epoch`` if ``seed`` is given)."""

    def read(i: np.int64, e: np.int64) -> tuple[np.ndarray, ...]:
        rng = None if seed is None else job_rng(seed, "train", int(e), int(i))
        return load_chunk(chunks.paths[int(i)], with_energy, task, rng)

    dtypes = [tf.int32, tf.float32, tf.float32] if with_energy else [tf.int32, tf.float32]
    epoch = tf.constant(0, tf.int64) if epoch is None else epoch
    columns = tf.numpy_function(read, [index, epoch], dtypes, stateful=False)
    for column in columns[:-1]:
        column.set_shape((None, chunks.n_cr))
    columns[-1].set_shape((None,))
    features = {"pixel": columns[0]}
    if with_energy:
        features["log10_energy"] = columns[1]
    return tf.data.Dataset.from_tensor_slices((features, columns[-1]))


def dataset_options() -> tf.data.Options:
    """No auto-sharding: MirroredStrategy splits each global batch over its replicas, and the
    pipeline's maps are not files a worker could own."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return options


def training_dataset(
    chunks: ChunkSet,
    with_energy: bool,
    task: str,
    global_batch: int,
    first_epoch: int,
    epochs: int,
    seed: int,
    shuffle_buffer: int,
    interleave_chunks: int,
) -> tuple[tf.data.Dataset, int]:
    """Batches for epochs ``first_epoch`` … ``epochs`` - 1, one after the other, and the number of
    steps per epoch (``chunks.total_maps // global_batch``)."""
    steps = chunks.steps(global_batch)
    n_chunks = len(chunks.paths)
    epoch_seeds = tf.constant(
        [int(job_rng(seed, "train", e).integers(2**62)) for e in range(epochs)], tf.int64
    )

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        epoch_seed = epoch_seeds[epoch]
        order = tf.data.Dataset.range(n_chunks).shuffle(n_chunks, seed=epoch_seed)
        maps = order.interleave(
            lambda i: _map_dataset(chunks, i, epoch, with_energy, task, seed),
            cycle_length=min(interleave_chunks, n_chunks),
            block_length=1,
            num_parallel_calls=min(interleave_chunks, n_chunks),
            deterministic=True,
        )
        maps = maps.shuffle(shuffle_buffer, seed=epoch_seed + 1, reshuffle_each_iteration=False)
        return maps.batch(global_batch, drop_remainder=True)

    dataset = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality((epochs - first_epoch) * steps))
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(dataset_options()), steps


def validation_dataset(
    chunks: ChunkSet, with_energy: bool, task: str, batch: int
) -> tf.data.Dataset:
    """Every validation map once, in file order, in batches of ``batch``."""
    maps = tf.data.Dataset.range(len(chunks.paths)).flat_map(
        lambda i: _map_dataset(chunks, i, None, with_energy, task, None)
    )
    n_batches = -(-chunks.total_maps // batch)
    maps = maps.batch(batch).apply(tf.data.experimental.assert_cardinality(n_batches))
    return maps.prefetch(tf.data.AUTOTUNE).with_options(dataset_options())
