"""Layer-wise relevance propagation (LRP; Bach et al. 2015, PLoS ONE 10, e0130140; Montavon et
al. 2019, "Layer-Wise Relevance Propagation: An Overview", LNCS 11700, 193; seed 002, slide 16)
for the three network families: how much each CR of a map contributed to its score.

The score explained is the logit z of the signal probability (the evaluation's score; the output
itself for a regression model). The network is walked as the chain of its layers and, going
backwards, every layer passes the relevance R_j of its outputs to its inputs a_i by one rule:

- affine layers z = A a + b (Dense; the Chebyshev graph convolution z = Σ_k T_k(L̃) a θ_k + b of
  DeepSphere; the 2D convolution of the patches CNN): the ε rule,

      R_i = a_i Σ_j A_ji R_j / (z_j + ε sign z_j),   and to the bias  b_j R_j / (z_j + ε sign z_j).

  Aᵀ is the transposed map: T_k(L̃) is symmetric, so the graph convolution's is the same
  polynomial with θ_kᵀ; the convolution's is the convolution with the flipped kernel. ε is used
  for the convolutions too (Montavon et al. prefer z⁺ in the lower layers of image CNNs for
  smoother heat maps): one rule keeps one code path and exact conservation with signed inputs.
- activations, dropout (off at inference) and flatten pass relevance through unchanged;
- average pooling (4 NESTED children, 2×2 patch pixels, or the mean over CRs of the pointcloud
  readout) is the ε rule of the mean: R_i = (a_i / n) / (ā + ε sign ā) R; max pooling gives all
  of R to the maximal input (tied inputs share it equally);
- DeepSphere's statistics readout (mean and variance over pixels per channel): the mean as
  average pooling; the variance var = mean(a²) − ā² by the ε rule on its two pieces, the
  average pooling of a_p² and ā² = ā · ā (the average pooling of a_p, weighted by ā), which
  gives pixel p together R_p = a_p (a_p − ā) / (N (var + ε)) R_var (half the gradient × input:
  var is homogeneous of degree 2). It vanishes on zero activations, as every rule below must
  for conservation (they pass relevance in proportion to a_p); pixels below the channel mean
  get negative relevance from the variance. (Sharing R_var in proportion to the non-negative
  terms (a_p − ā)² would hand relevance to zero activations, where the layers below lose it.)

At the input, pointcloud: a CR's relevance is the sum over its input features (neighbour
densities at every scale, energies). deepsphere and patches: the relevance of every pixel and
channel of the rendered input map (counts; the mean energy where the model reads it). Empty
pixels have input 0 and so relevance 0; a pixel's relevance (summed over its channels) is shared
equally by the CRs in it: the counts channel is a sum of identical contributions of its CRs, so
equal shares are what the ε rule through that sum gives, and the mean energy treats its CRs
symmetrically (the ε rule on Σ_i e_i / n would share in proportion to log10(E / EeV), which
changes sign at 1 EeV).

Conservation: Σ (CR relevances) + Σ (bias relevances) = z up to the ε terms (tested); the biases'
share is returned apart. All arithmetic in float64 numpy on the weights of the saved model
(activation functions evaluated by Keras); no TensorFlow gradients.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crsky.errors import ConfigError

__all__ = [
    "BATCH_MAPS",
    "EPSILON",
    "EXPLAIN_FILES",
    "Relevance",
    "cr_relevance",
    "explain",
    "signal_share",
]

EPSILON = 1e-9
BATCH_MAPS = 16  # maps per pass: at nside 64 a 64-channel layer holds 16 × 49152 × 64 floats

# a layer's forward pass a -> (z before the activation, output) and its LRP rule
# (a, z, output relevance, ε) -> (input relevance, bias relevance per map)
_Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
_Backward = Callable[[np.ndarray, np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Relevance:
    """``cr`` (n_maps, n_cr): relevance of every CR in the input order; ``bias`` (n_maps,): the
    share absorbed by the biases; ``logit`` (n_maps,): the explained score; ``pixel``
    (n_maps, *input map shape) for deepsphere and patches: the relevance of every pixel and
    channel of the rendered input map in the model's layout (None for pointcloud)."""

    cr: np.ndarray
    bias: np.ndarray
    logit: np.ndarray
    pixel: np.ndarray | None = None


def _stabilised(z: np.ndarray, eps: float) -> np.ndarray:
    return z + eps * np.where(z >= 0, 1.0, -1.0)


def _epsilon_rule(a, z, relevance, transpose: Callable, bias, eps: float):
    """ε rule through z = A a + b (``transpose`` applies Aᵀ): (input relevance, bias relevance
    summed per map)."""
    ratio = relevance / _stabilised(z, eps)
    r_bias = (ratio * bias).reshape(a.shape[0], -1).sum(axis=1)
    return a * transpose(ratio), r_bias


def _pool_rule(groups: np.ndarray, relevance: np.ndarray, mode: str, eps: float) -> np.ndarray:
    """Relevance of the inputs ``groups`` (reduced over axis -2) of a max or average pooling
    whose outputs carry ``relevance``."""
    if mode == "max":
        winner = (groups == groups.max(axis=-2, keepdims=True)).astype(np.float64)
        winner /= winner.sum(axis=-2, keepdims=True)  # tied inputs share it
        return winner * relevance[..., None, :]
    pooled = groups.mean(axis=-2, keepdims=True)
    return (groups / groups.shape[-2]) / _stabilised(pooled, eps) * relevance[..., None, :]


def _pool(groups: np.ndarray, mode: str) -> np.ndarray:
    return groups.max(axis=-2) if mode == "max" else groups.mean(axis=-2)


def _activate(layer, z: np.ndarray) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(layer.activation(z.astype(np.float32))), float)


def _graph_filter(a: np.ndarray, kernel: np.ndarray, laplacian) -> np.ndarray:
    """Σ_k T_k(L̃) a θ_k for a (batch, npix, c_in), kernel θ (K + 1, c_in, c_out)."""
    from crsky.models.deepsphere import chebyshev_terms

    n_maps, npix, c_in = a.shape
    f = a.transpose(1, 0, 2).reshape(npix, -1)  # one sparse product filters all maps
    terms = chebyshev_terms(f, kernel.shape[0] - 1, lambda x: laplacian @ x)
    y = sum(t.reshape(npix, n_maps, c_in) @ theta for t, theta in zip(terms, kernel, strict=True))
    return y.transpose(1, 0, 2)


def _convolve(a: np.ndarray, kernel: np.ndarray, before: int, after: int) -> np.ndarray:
    """Convolution (Keras' cross-correlation) of the patches a (batch, 12, n, n, c_in) with a
    (1, k, k, c_in, c_out) kernel, zero padding ``before``/``after`` rows and columns."""
    n, k = a.shape[2], kernel.shape[1]
    padded = np.pad(a, ((0, 0), (0, 0), (before, after), (before, after), (0, 0)))
    return sum(
        padded[:, :, i : i + n, j : j + n] @ kernel[0, i, j] for i in range(k) for j in range(k)
    )


def _check(layer, **expected) -> None:
    for key, value in expected.items():
        got = getattr(layer, key)
        if (tuple(got) if isinstance(got, list) else got) != value:
            raise ConfigError(
                f"layer {layer.name!r}: LRP handles {key} {value}, the layer has {got}"
            )


def _affine(layer) -> tuple[Callable, Callable, np.ndarray] | None:
    """(x ↦ A x, r ↦ Aᵀ r, b) of a Dense, ChebConv or patch Conv3D layer, else None."""
    import keras

    from crsky.models.deepsphere import ChebConv
    from crsky.models.healpix_graph import rescaled_laplacian

    if not isinstance(layer, keras.layers.Dense | ChebConv | keras.layers.Conv3D):
        return None
    kernel, *bias = (np.asarray(w, np.float64) for w in layer.get_weights())
    bias = bias[0] if bias else np.zeros(kernel.shape[-1])
    if isinstance(layer, keras.layers.Dense):
        return (lambda a: a @ kernel), (lambda r: r @ kernel.T), bias
    if isinstance(layer, ChebConv):
        laplacian = rescaled_laplacian(layer.nside).astype(np.float64)  # the model's values
        transposed = kernel.transpose(0, 2, 1)
        return (
            lambda a: _graph_filter(a, kernel, laplacian),
            lambda r: _graph_filter(r, transposed, laplacian),
            bias,
        )
    _check(layer, padding="same", strides=(1, 1, 1), dilation_rate=(1, 1, 1))
    _check(layer, data_format="channels_last")
    size = kernel.shape[1]
    if kernel.shape[0] != 1 or kernel.shape[2] != size:
        raise ConfigError(
            f"layer {layer.name!r}: LRP handles (1, k, k) kernels, not {kernel.shape[:3]}"
        )
    before = (size - 1) // 2  # Keras' 'same' padding puts the odd one after
    flipped = kernel[:, ::-1, ::-1].transpose(0, 1, 2, 4, 3)
    return (
        lambda a: _convolve(a, kernel, before, size - 1 - before),
        lambda r: _convolve(r, flipped, size - 1 - before, before),
        bias,
    )


def _blocks(a: np.ndarray) -> tuple[np.ndarray, Callable]:
    """The 2×2 pixel blocks of patches a (batch, 12, n, n, c) as (batch, 12, n/2, n/2, 4, c),
    and the map back."""
    b, p, n, _, c = a.shape
    h = n // 2
    # axes (batch, patch, row block, row in block, column block, column in block, channel):
    # swapping the two middle ones puts each block's 4 pixels together
    swap = (0, 1, 2, 4, 3, 5, 6)

    def back(r: np.ndarray) -> np.ndarray:
        return r.reshape(b, p, h, h, 2, 2, c).transpose(swap).reshape(a.shape)

    return a.reshape(b, p, h, 2, h, 2, c).transpose(swap).reshape(b, p, h, h, 4, c), back


def _pooling(layer) -> tuple[Callable, str] | None:
    """(a ↦ (groups reduced over axis -2, the map back to a's shape), mode) of a pooling or
    readout layer, else None."""
    import keras

    from crsky.models.deepsphere import HealpixPool
    from crsky.models.pointcloud import SetReadout

    if isinstance(layer, HealpixPool):  # 4 consecutive NESTED pixels
        return (
            lambda a: (a.reshape(a.shape[0], -1, 4, a.shape[-1]), lambda r: r.reshape(a.shape))
        ), layer.mode
    if isinstance(layer, SetReadout):
        return (lambda a: (a, lambda r: r)), layer.pooling
    if isinstance(layer, keras.layers.MaxPooling3D | keras.layers.AveragePooling3D):
        _check(layer, pool_size=(1, 2, 2), strides=(1, 2, 2), padding="valid")
        _check(layer, data_format="channels_last")
        return _blocks, "max" if isinstance(layer, keras.layers.MaxPooling3D) else "average"
    return None


def _statistics_forward(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = np.concatenate([a.mean(axis=1), a.var(axis=1)], axis=-1)
    return out, out


def _statistics_rule(a: np.ndarray, z, relevance: np.ndarray, eps: float):
    """Mean: average pooling of a; variance: average pooling of a (a − ā), whose mean is var."""
    c = a.shape[-1]
    terms = a * (a - a.mean(axis=1, keepdims=True))
    r_mean = _pool_rule(a, relevance[:, :c], "average", eps)
    return r_mean + _pool_rule(terms, relevance[:, c:], "average", eps), 0.0


def _passed(a, z, relevance, eps):
    return relevance.reshape(a.shape), 0.0


def _step(model, layer) -> tuple[_Forward, _Backward]:
    """The forward pass and LRP rule of one layer; ConfigError for a layer without a rule."""
    import keras

    from crsky.models.deepsphere import PixelStatistics

    affine, pooling = _affine(layer), _pooling(layer)
    if affine is not None:
        linear, transpose, bias = affine
        activated = hasattr(layer, "activation")  # ChebConv: a separate Activation layer

        def forward(a):
            z = linear(a) + bias
            return z, _activate(layer, z) if activated else z

        return forward, lambda a, z, r, eps: _epsilon_rule(a, z, r, transpose, bias, eps)
    if pooling is not None:
        group, mode = pooling

        def pool(a):
            out = _pool(group(a)[0], mode)
            return out, out

        def pool_rule(a, z, r, eps):
            groups, back = group(a)
            return back(_pool_rule(groups, r, mode, eps)), 0.0

        return pool, pool_rule
    if isinstance(layer, PixelStatistics):
        return _statistics_forward, _statistics_rule
    if isinstance(layer, keras.layers.Activation):
        return (lambda a: (a, _activate(layer, a))), _passed
    if isinstance(layer, keras.layers.Dropout):  # off at inference
        return (lambda a: (a, a)), _passed
    if isinstance(layer, keras.layers.Flatten):
        return (lambda a: (a.reshape(len(a), -1),) * 2), _passed
    raise ConfigError(
        f"model {model.name!r}: layer {layer.name!r} ({type(layer).__name__}) has no LRP rule "
        "(crsky explain handles the deepsphere, patches and pointcloud networks of crsky.models)"
    )


def _propagate(model, layers: list, x: np.ndarray, eps: float):
    """(relevance of the input x, bias relevance per map, logit) through the chain ``layers``;
    the logit is the last layer's output before its activation."""
    import keras

    last = layers[-1] if layers else None
    if not isinstance(last, keras.layers.Dense) or last.units != 1:
        raise ConfigError(f"model {model.name!r} does not end in a one-unit Dense score layer")
    steps = [_step(model, layer) for layer in layers]
    inputs, pre_activations, a = [], [], x
    for forward, _ in steps:
        inputs.append(a)
        z, a = forward(a)
        pre_activations.append(z)
    logit = pre_activations[-1][:, 0]
    relevance, bias = logit[:, None], np.zeros_like(logit)
    for (_, rule), a, z in zip(
        reversed(steps), reversed(inputs), reversed(pre_activations), strict=True
    ):
        relevance, r_bias = rule(a, z, relevance, eps)
        bias = bias + r_bias
    return relevance, bias, logit


def _canonical_order(crs: dict) -> np.ndarray:
    """The permutation CanonicalOrder applies (stable sorts by energy, then pixel)."""
    pixel = np.asarray(crs["pixel"])
    order = np.broadcast_to(np.arange(pixel.shape[1]), pixel.shape)
    if "log10_energy" in crs:
        order = np.argsort(np.asarray(crs["log10_energy"]), axis=1, kind="stable")
    by_pixel = np.argsort(np.take_along_axis(pixel, order, axis=1), axis=1, kind="stable")
    return np.take_along_axis(order, by_pixel, axis=1)


def _pointcloud_relevance(model, crs: dict, eps: float) -> Relevance:
    """Through the layers after ``neighbours`` (on the canonically ordered CRs); a CR's
    relevance is the sum over its features."""
    order = _canonical_order(crs)
    ordered = {k: np.take_along_axis(v, order, axis=1) for k, v in crs.items()}
    x = np.asarray(model.get_layer("neighbours")(ordered), dtype=np.float64)
    after = [layer.name for layer in model.layers].index("neighbours") + 1
    relevance, bias, logit = _propagate(model, model.layers[after:], x, eps)
    cr = np.empty(order.shape)
    np.put_along_axis(cr, order, relevance.sum(axis=2), axis=1)
    return Relevance(cr, bias, logit)


def _share_among_crs(per_pixel: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Per CR: the relevance of its pixel (n_maps, npix) divided by the CRs in that pixel
    (``positions`` (n_maps, n_cr): each CR's flat pixel position in the model layout)."""
    n_maps, npix = per_pixel.shape
    flat = positions + npix * np.arange(n_maps)[:, None]
    counts = np.bincount(flat.ravel(), minlength=n_maps * npix).reshape(n_maps, npix)
    return np.take_along_axis(per_pixel / np.maximum(counts, 1), positions, axis=1)


def _map_relevance(model, render, crs: dict, eps: float) -> Relevance:
    """deepsphere and patches: through the map network behind the ``render`` layer, from the
    rendered input maps; each pixel's relevance shared equally by its CRs."""
    import keras

    from crsky.models.layout import ring_to_model

    network = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(network) != 1:
        raise ConfigError(f"model {model.name!r}: expected one map network behind {render.name!r}")
    layers = [
        layer for layer in network[0].layers if not isinstance(layer, keras.layers.InputLayer)
    ]
    x = np.asarray(render(crs), dtype=np.float64)
    relevance, bias, logit = _propagate(model, layers, x, eps)
    per_pixel = relevance.reshape(len(x), -1, x.shape[-1]).sum(axis=2)
    positions = ring_to_model(render.family, render.nside)[np.asarray(crs["pixel"])]
    return Relevance(_share_among_crs(per_pixel, positions), bias, logit, relevance)


def _relevance(model, crs: dict, eps: float) -> Relevance:
    from crsky.models.render import RenderMaps

    render = [layer for layer in model.layers if isinstance(layer, RenderMaps)]
    if render:
        return _map_relevance(model, render[0], crs, eps)
    if "neighbours" in [layer.name for layer in model.layers]:
        return _pointcloud_relevance(model, crs, eps)
    raise ConfigError(
        f"model {model.name!r} has neither a RenderMaps layer (deepsphere, patches) nor a "
        "'neighbours' layer (pointcloud); crsky explain explains crsky's trained models"
    )


def cr_relevance(model, crs: dict, eps: float = EPSILON, batch_maps: int = BATCH_MAPS) -> Relevance:
    """LRP-ε relevance of every CR of the maps ``crs`` (``pixel`` (n_maps, n_cr) RING and, if
    the model reads them, ``log10_energy``) for a trained crsky model of any family (the model
    of ``model.keras``: CR lists in, score out), ``batch_maps`` maps at a time."""
    wanted = [tensor.name for tensor in model.inputs]  # pixel, and log10_energy if it reads it
    missing = sorted(set(wanted) - set(crs))
    if missing:
        raise ConfigError(f"model {model.name!r} reads {wanted}; the CR lists lack {missing}")
    inputs = {name: np.asarray(crs[name]) for name in wanted}
    n_maps = len(inputs["pixel"])
    parts = [
        _relevance(model, {k: v[i : i + batch_maps] for k, v in inputs.items()}, eps)
        for i in range(0, n_maps, batch_maps)
    ]
    pixel = None if parts[0].pixel is None else np.concatenate([p.pixel for p in parts])
    return Relevance(
        *(np.concatenate([getattr(p, name) for p in parts]) for name in ("cr", "bias", "logit")),
        pixel,
    )


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
    """``crsky explain``: LRP relevance of the CRs of test maps for a model folder of any family.
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
    from crsky.models import FAMILIES
    from crsky.plotting import save_png, sky_xy
    from crsky.stats.significance import FRACTION_ATOL, select_fractions

    folder = ModelFolder.open(model_folder)
    maps = MapSet.open(test_chunks, "test")
    folder.check_maps(maps)
    family = folder.config.get("model", {}).get("family")
    if family not in FAMILIES:
        raise ConfigError(
            f"model {str(folder.path)!r} is a {family!r} network (config.json model.family); "
            f"crsky explain implements LRP for {', '.join(FAMILIES)}"
        )
    labels = maps.labels()
    fractions = [f for f in select_fractions(labels["signal_fraction"]) if f > 0]
    if not fractions:
        raise ConfigError(f"test set {maps.dataset!r} has no maps with signal to explain")
    model = folder.load()
    rows, examples = [], None
    for f in fractions:
        hits = np.flatnonzero(np.isclose(labels["signal_fraction"], f, atol=FRACTION_ATOL))
        crs = _read_maps(maps, hits[:maps_per_fraction])
        inputs = {k: crs[k] for k in ("pixel", "log10_energy")}
        r = cr_relevance(model, inputs)
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
            signal = crs["is_signal"][i]
            ax.scatter(x[signal], y[signal], s=30, facecolors="none", edgecolors="0.3", lw=0.4)
            top = np.argsort(np.abs(relevance[i]))  # the most relevant CRs drawn last, on top
            points = ax.scatter(
                x[top], y[top], c=relevance[i][top], s=6, cmap="coolwarm", vmin=-scale, vmax=scale
            )
            share = signal_share(relevance[i : i + 1], signal[None])[0]
            ax.set_title(f"signal fraction {f:g}: {share:.0%} of it on signal CRs", fontsize=8)
            ax.set_xticklabels([])
            ax.set_yticklabels([])
            fig.colorbar(points, ax=ax, shrink=0.6, label="LRP relevance")
        save_png(fig, staging / "relevance.png")
    return Path(output)
