"""Layer-wise relevance propagation (LRP; Bach et al. 2015, PLoS ONE 10, e0130140; seed 002,
slide 16) for the ``pointcloud`` family: how much each CR of a map contributed to its score.

The score explained is the logit z of the signal probability (the evaluation's score). Going
backwards through the network, every Dense layer a → z = a W + b passes the relevance R_j of its
outputs to its inputs with the ε rule

    R_i = Σ_j a_i W_ij / (z_j + ε sign z_j) R_j,   and to its bias  R_b = Σ_j b_j / (…) R_j,

activations pass relevance through unchanged, the mean readout over CRs r_c = (1/N) Σ_i h_ic
passes R_ic = (h_ic / N) / (r_c + ε sign r_c) R_c (the max readout all of R_c to the maximal
CR, shared equally by tied ones), and a CR's relevance is the sum over its input features (its
neighbour densities at every scale, and energies). Conservation: Σ_i R_i + Σ (bias
relevances) = z up to the ε terms (tested); the biases' share is returned apart. All arithmetic
in float64 on the weights of the saved model; no TensorFlow gradients.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crsky.errors import ConfigError

__all__ = [
    "EPSILON",
    "EXPLAIN_FILES",
    "Relevance",
    "explain",
    "pointcloud_relevance",
    "signal_share",
]

EPSILON = 1e-9


@dataclass(frozen=True)
class Relevance:
    """``cr`` (n_maps, n_cr): relevance of every CR in the input order; ``bias`` (n_maps,): the
    share absorbed by the biases; ``logit`` (n_maps,): the explained score."""

    cr: np.ndarray
    bias: np.ndarray
    logit: np.ndarray


def _dense(a: np.ndarray, layer, relevance: np.ndarray, eps: float):
    """ε rule through one Dense layer: (input relevance, bias relevance summed per map)."""
    kernel, bias = (np.asarray(w, dtype=np.float64) for w in layer.get_weights())
    z = a @ kernel + bias
    ratio = relevance / (z + eps * np.where(z >= 0, 1.0, -1.0))
    r_in = a * (ratio @ kernel.T)
    r_bias = (ratio * bias).reshape(a.shape[0], -1).sum(axis=1)
    return r_in, r_bias


def _activate(layer, z: np.ndarray) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(layer.activation(z.astype(np.float32))), float)


def _canonical_order(crs: dict) -> np.ndarray:
    """The permutation CanonicalOrder applies (stable sorts by energy, then pixel)."""
    pixel = np.asarray(crs["pixel"])
    order = np.broadcast_to(np.arange(pixel.shape[1]), pixel.shape)
    if "log10_energy" in crs:
        order = np.argsort(np.asarray(crs["log10_energy"]), axis=1, kind="stable")
    by_pixel = np.argsort(np.take_along_axis(pixel, order, axis=1), axis=1, kind="stable")
    return np.take_along_axis(order, by_pixel, axis=1)


def pointcloud_relevance(model, crs: dict, eps: float = EPSILON) -> Relevance:
    """LRP-ε relevance of every CR of the maps ``crs`` (``pixel`` (n_maps, n_cr) RING and,
    if the model reads them, ``log10_energy``) for a ``pointcloud`` model (crsky.models)."""
    names = [layer.name for layer in model.layers]
    if "neighbours" not in names or "readout" not in names:
        raise ConfigError(
            f"model {model.name!r} is not a pointcloud network (layers 'neighbours' and "
            "'readout' expected); LRP is implemented for the pointcloud family"
        )
    wanted = [tensor.name for tensor in model.inputs]  # pixel, and log10_energy if it reads it
    missing = sorted(set(wanted) - set(crs))
    if missing:
        raise ConfigError(f"model {model.name!r} reads {wanted}; the CR lists lack {missing}")
    inputs = {name: np.asarray(crs[name]) for name in wanted}
    order = _canonical_order(inputs)
    ordered = {k: np.take_along_axis(v, order, axis=1) for k, v in inputs.items()}
    a = np.asarray(model.get_layer("neighbours")(ordered), dtype=np.float64)
    phi = [model.get_layer(n) for n in names if n.startswith("phi")]
    head = [model.get_layer(n) for n in names if n.startswith("dense") and "dropout" not in n]
    score = model.get_layer("score")
    readout = model.get_layer("readout")
    per_cr = [a]
    for layer in phi:
        kernel, bias = layer.get_weights()
        per_cr.append(_activate(layer, per_cr[-1] @ kernel + bias))
    h = per_cr[-1]
    pooled = h.max(axis=1) if readout.pooling == "max" else h.mean(axis=1)
    vectors = [pooled]
    for layer in head:
        kernel, bias = layer.get_weights()
        vectors.append(_activate(layer, vectors[-1] @ kernel + bias))
    kernel, bias = (np.asarray(w, np.float64) for w in score.get_weights())
    logit = (vectors[-1] @ kernel + bias)[:, 0]
    bias_total = np.zeros(logit.shape)
    relevance, r_bias = _dense(vectors[-1], score, logit[:, None], eps)
    bias_total += r_bias
    for layer, x in zip(reversed(head), reversed(vectors[:-1]), strict=True):
        relevance, r_bias = _dense(x, layer, relevance, eps)
        bias_total += r_bias
    if readout.pooling == "max":
        winner = (h == h.max(axis=1, keepdims=True)).astype(np.float64)
        winner /= winner.sum(axis=1, keepdims=True)  # tied (identical) CRs share it
        relevance = winner * relevance[:, None, :]
    else:
        n = h.shape[1]
        stabilised = pooled + eps * np.where(pooled >= 0, 1.0, -1.0)
        relevance = (h / n) / stabilised[:, None, :] * relevance[:, None, :]
    for layer, x in zip(reversed(phi), reversed(per_cr[:-1]), strict=True):
        relevance, r_bias = _dense(x, layer, relevance, eps)
        bias_total += r_bias
    ordered_relevance = relevance.sum(axis=2)
    cr = np.empty_like(ordered_relevance)
    np.put_along_axis(cr, order, ordered_relevance, axis=1)
    return Relevance(cr, bias_total, logit)


EXPLAIN_FILES = ("relevance.csv", "relevance.png")


def _read_maps(maps, indices: np.ndarray) -> dict[str, np.ndarray]:
    """``pixel``, ``log10_energy`` and ``is_signal`` of the maps at global ``indices``."""
    from crsky.store import open_chunk

    labels = maps.labels()
    parts = {"pixel": [], "log10_energy": [], "is_signal": []}
    for k, path in enumerate(maps.paths):
        local = labels["map"][indices[labels["chunk"][indices] == k]]
        if local.size == 0:
            continue
        with open_chunk(path) as chunk:
            crs = chunk.cosmic_rays()
        for name in parts:
            parts[name].append(np.asarray(getattr(crs, name))[local])
    out = {name: np.concatenate(values) for name, values in parts.items()}
    out["pixel"] = out["pixel"].astype(np.int32)
    out["log10_energy"] = out["log10_energy"].astype(np.float32)
    return out


def signal_share(relevance: np.ndarray, is_signal: np.ndarray) -> np.ndarray:
    """Per map: the share of the positive relevance that falls on the true signal CRs."""
    positive = np.clip(relevance, 0.0, None)
    total = positive.sum(axis=1)
    on_signal = np.where(is_signal, positive, 0.0).sum(axis=1)
    return np.divide(on_signal, total, out=np.zeros_like(total), where=total > 0)


def explain(model_folder, test_chunks, output, n_examples: int = 4, maps_per_fraction: int = 200):
    """``crsky explain``: LRP relevance of the CRs of test maps for a pointcloud model folder.
    Writes into the folder ``output`` ``relevance.csv`` (per signal fraction > 0: maps, mean
    signal CRs, the mean share of the positive relevance on the true signal CRs and, for
    comparison, the share of the CRs that are signal) and ``relevance.png`` (the ``n_examples``
    first maps at the largest fraction: CRs coloured by relevance, true signal CRs circled)."""
    import csv

    import healpy as hp
    from matplotlib.figure import Figure

    from crsky.evaluate.data import MapSet
    from crsky.evaluate.scoring import ModelFolder
    from crsky.io import atomic_folder
    from crsky.models import load_model
    from crsky.plotting import save_png, sky_xy
    from crsky.stats.significance import FRACTION_ATOL, select_fractions

    folder = ModelFolder.open(model_folder)
    maps = MapSet.open(test_chunks, "test")
    folder.check_maps(maps)
    if folder.config.get("model", {}).get("family") != "pointcloud":
        raise ConfigError(
            f"model {str(folder.path)!r} is a {folder.config.get('model', {}).get('family')!r} "
            "network; crsky explain implements LRP for the pointcloud family"
        )
    labels = maps.labels()
    fractions = [f for f in select_fractions(labels["signal_fraction"]) if f > 0]
    if not fractions:
        raise ConfigError(f"test set {maps.dataset!r} has no maps with signal to explain")
    model = load_model(folder.path / "model.keras")
    rows, examples = [], None
    for f in fractions:
        hits = np.flatnonzero(np.isclose(labels["signal_fraction"], f, atol=FRACTION_ATOL))
        crs = _read_maps(maps, hits[:maps_per_fraction])
        inputs = {k: crs[k] for k in ("pixel", "log10_energy")}
        r = pointcloud_relevance(model, inputs)
        share = signal_share(r.cr, crs["is_signal"])
        rows.append([f"{f:g}", share.size, f"{crs['is_signal'].sum(axis=1).mean():.4g}",
                     f"{share.mean():.4g}", f"{crs['is_signal'].mean():.4g}"])  # fmt: skip
        examples = (f, crs, r.cr)
    with atomic_folder(output, EXPLAIN_FILES) as staging:
        with open(staging / "relevance.csv", "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(
                ["signal_fraction", "n_maps", "n_signal_mean", "relevance_on_signal",
                 "signal_cr_share"]
            )  # fmt: skip
            writer.writerows(rows)
        f, crs, relevance = examples
        n = min(n_examples, relevance.shape[0])
        fig = Figure(figsize=(6.0 * min(n, 2), 3.4 * ((n + 1) // 2)))
        for i in range(n):
            ax = fig.add_subplot((n + 1) // 2, min(n, 2), i + 1, projection="mollweide")
            v = np.array(hp.pix2vec(maps.nside, crs["pixel"][i])).T
            x, y = sky_xy(v)
            scale = np.abs(relevance[i]).max() or 1.0
            points = ax.scatter(x, y, c=relevance[i], s=6, cmap="coolwarm", vmin=-scale, vmax=scale)
            signal = crs["is_signal"][i]
            ax.scatter(x[signal], y[signal], s=40, facecolors="none", edgecolors="k", lw=0.6)
            share = signal_share(relevance[i : i + 1], signal[None])[0]
            ax.set_title(f"signal fraction {f:g}: {share:.0%} of it on signal CRs", fontsize=8)
            ax.set_xticklabels([])
            ax.set_yticklabels([])
            fig.colorbar(points, ax=ax, shrink=0.6, label="LRP relevance")
        save_png(fig, staging / "relevance.png")
    return Path(output)
