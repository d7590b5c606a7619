"""The input pipeline: every training map once per epoch, chunks mixed within batches, the order
a function of (seed, epoch) only, validation maps in file order with their targets."""

import numpy as np

from crsky.store import open_chunk
from crsky.train.pipeline import ChunkSet, training_dataset, validation_dataset


def _map_ids(pixel: np.ndarray) -> list[bytes]:
    """One identifier per map: the bytes of its (sorted) CR pixel list."""
    return [row.tobytes() for row in np.asarray(pixel, dtype=np.int32)]


def _epochs(chunks, first_epoch, epochs, seed=5):
    data, steps = training_dataset(
        chunks, False, "classification", 100, first_epoch, epochs, seed, 300, 2
    )
    batches = [(_map_ids(x["pixel"]), y.numpy()) for x, y in data]
    assert len(batches) == (epochs - first_epoch) * steps
    return [batches[e * steps : (e + 1) * steps] for e in range(epochs - first_epoch)], steps


def test_training_epochs_shuffle_every_map_once_from_both_chunks(toy_chunks):
    chunks = ChunkSet.open(toy_chunks["train"], "training")
    assert chunks.total_maps == 2000 and chunks.nside == 16 and chunks.n_cr == 100
    source = {}
    for k, path in enumerate(chunks.paths):
        with open_chunk(path) as chunk:
            labels = chunk.labels()["n_signal"] > 0
            for map_id, label in zip(_map_ids(chunk.cosmic_rays().pixel), labels, strict=True):
                source[map_id] = (k, float(label))
    assert len(source) == 2000  # every map's CR list is distinct
    (first, second), steps = _epochs(chunks, 0, 2)
    assert steps == 20
    for epoch in (first, second):
        ids = [i for batch, _ in epoch for i in batch]
        assert len(set(ids)) == len(ids) == 2000  # 2000 // 100 full batches: every map once
        for batch, target in epoch:
            assert [source[i][1] for i in batch] == list(target)  # targets travel with maps
            from_chunk = [source[i][0] for i in batch]
            assert 20 < sum(from_chunk) < 80  # each batch mixes both chunks
    assert [b for b, _ in first] != [b for b, _ in second]  # a new order every epoch
    # the order depends on (seed, epoch) only: a run resumed at epoch 1 sees epoch 1's batches
    (resumed,), _ = _epochs(chunks, 1, 2)
    assert [b for b, _ in resumed] == [b for b, _ in second]
    (other_seed, _), _ = _epochs(chunks, 0, 2, seed=6)
    assert [b for b, _ in other_seed] != [b for b, _ in first]


def test_validation_maps_in_file_order_with_targets(toy_chunks):
    chunks = ChunkSet.open(toy_chunks["validation"], "validation")
    for task, label in (("classification", "n_signal"), ("regression", "signal_fraction")):
        batches = list(validation_dataset(chunks, True, task, 64))
        assert len(batches) == 8  # ceil(500 / 64)
        pixel = np.concatenate([x["pixel"] for x, _ in batches])
        energy = np.concatenate([x["log10_energy"] for x, _ in batches])
        target = np.concatenate([y for _, y in batches])
        with open_chunk(chunks.paths[0]) as chunk:
            crs, labels = chunk.cosmic_rays(), chunk.labels()
        np.testing.assert_array_equal(pixel, crs.pixel)
        np.testing.assert_array_equal(energy, crs.log10_energy)
        expected = labels[label] > 0 if task == "classification" else 100.0 * labels[label]
        np.testing.assert_array_equal(target, expected.astype(np.float32))
