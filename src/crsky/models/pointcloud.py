"""The ``pointcloud`` family: a Deep Sets network on the CR list itself, with rotation-invariant
pair features (seed 002's outlook: "dynamic graph network methods where the graph is built
according to the CRs" instead of a mostly empty pixel grid).

Per CR i (direction x_i, the centre of its stored pixel) the network sees, at K angular scales
σ_s log-spaced from twice the pixel size to 60°, the Fisher-kernel density of the other CRs
around it

    n_s(i) = Σ_(j ≠ i) exp((x_i · x_j − 1) / σ_s²),

divided by its isotropic full-sky mean (N − 1) (1 − e^(−2/σ_s²)) σ_s² / 2, minus 1 (0 on average
for an isotropic full sky), and, with the energy input, the kernel-weighted mean log10(E / EeV)
of those neighbours and the CR's own. These features depend on the CRs only through the dot
products x_i · x_j and the energies, so a global rotation of the sky changes them only through
the pixelisation (exactly invariant for continuous directions). A shared MLP (``channels``, one
Dense layer per entry) maps each CR's features, a symmetric readout over CRs (``pooling``:
average = mean, max = maximum) makes the map's vector, and the dense head scores it.

The CRs are first put into a canonical order (by pixel, then energy), so the score is a function
of the set of CRs and exactly (bit for bit) independent of their order in the list: float sums
over CRs in another order would differ in the last bits.

Cost: O(N²) per map (the Gram matrix of N CRs, K kernels), memory batch × N² floats.
"""

import math

import healpy as hp
import keras
import numpy as np
import tensorflow as tf

from crsky.models.head import dense_head, regularizer
from crsky.models.render import LOG10_EEV, cr_inputs
from crsky.models.spec import ModelSpec

__all__ = ["CanonicalOrder", "NeighbourDensities", "SetReadout", "build_pointcloud", "scales_deg"]

MAX_SCALE_DEG = 60.0


def scales_deg(nside: int, k: int) -> np.ndarray:
    """``k`` kernel scales σ (degrees), log-spaced from twice the pixel size √(4π / npix) (below
    it the pixelisation decides which CRs are neighbours) to 60°."""
    smallest = 2.0 * math.degrees(math.sqrt(4.0 * math.pi / hp.nside2npix(nside)))
    return np.geomspace(smallest, MAX_SCALE_DEG, k) if k > 1 else np.array([smallest])


@keras.saving.register_keras_serializable(package="crsky")
class CanonicalOrder(keras.layers.Layer):
    """CR lists (``pixel``, optional ``log10_energy``) sorted by pixel, then energy: CRs that
    compare equal are identical, so the output does not depend on the input order."""

    def call(self, crs: dict) -> dict:
        pixel = crs["pixel"]
        order = tf.range(tf.shape(pixel)[-1])[None, :] * tf.ones_like(pixel)
        if "log10_energy" in crs:
            order = tf.argsort(crs["log10_energy"], axis=-1, stable=True)
        by_pixel = tf.argsort(tf.gather(pixel, order, batch_dims=1), axis=-1, stable=True)
        order = tf.gather(order, by_pixel, batch_dims=1)
        return {name: tf.gather(value, order, batch_dims=1) for name, value in crs.items()}


@keras.saving.register_keras_serializable(package="crsky")
class NeighbourDensities(keras.layers.Layer):
    """Per CR: normalised neighbour densities at the scales ``scales`` (degrees) and, with
    energies, the neighbours' kernel-weighted mean and the CR's own log10(E / EeV):
    (batch, N) CR lists at ``nside`` (RING) -> (batch, N, K or 2 K + 1)."""

    def __init__(self, nside: int, scales: list[float], **kwargs):
        super().__init__(**kwargs)
        self.nside = int(nside)
        self.scales = [float(s) for s in scales]
        x = np.array(hp.pix2vec(self.nside, np.arange(hp.nside2npix(self.nside))), np.float32)
        self._vectors = x.T.copy()
        self._kappa = [1.0 / math.radians(s) ** 2 for s in self.scales]

    def call(self, crs: dict) -> tf.Tensor:
        x = tf.gather(tf.constant(self._vectors), crs["pixel"])
        dot = tf.linalg.matmul(x, x, transpose_b=True)  # (batch, N, N)
        n = tf.cast(tf.shape(dot)[-1], tf.float32)
        energy = None
        if "log10_energy" in crs:
            energy = crs["log10_energy"] - LOG10_EEV
        features = []
        for kappa in self._kappa:
            weight = tf.exp(kappa * (dot - 1.0))
            density = tf.reduce_sum(weight, axis=-1) - 1.0  # without the CR itself
            mean = (n - 1.0) * (1.0 - math.exp(-2.0 * kappa)) / (2.0 * kappa)
            features.append(density / mean - 1.0)
            if energy is not None:
                weighted = tf.linalg.matvec(weight, energy) - energy
                features.append(weighted / tf.maximum(density, 1e-6))
        if energy is not None:
            features.append(energy)
        return tf.stack(features, axis=-1)

    def compute_output_shape(self, input_shape: dict) -> tuple:
        k = len(self.scales)
        n_features = 2 * k + 1 if "log10_energy" in input_shape else k
        return (*input_shape["pixel"], n_features)

    def get_config(self) -> dict:
        return {**super().get_config(), "nside": self.nside, "scales": self.scales}


@keras.saving.register_keras_serializable(package="crsky")
class SetReadout(keras.layers.Layer):
    """Mean or maximum over the CR axis: (batch, N, c) -> (batch, c)."""

    def __init__(self, pooling: str = "average", **kwargs):
        super().__init__(**kwargs)
        self.pooling = pooling

    def call(self, x: tf.Tensor) -> tf.Tensor:
        if self.pooling == "max":
            return tf.reduce_max(x, axis=1)
        return tf.reduce_mean(x, axis=1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], input_shape[2])

    def get_config(self) -> dict:
        return {**super().get_config(), "pooling": self.pooling}


def build_pointcloud(spec: ModelSpec, nside: int) -> keras.Model:
    """The ``pointcloud`` network of ``spec`` on CR lists at ``nside``: canonical order,
    neighbour densities at ``spec.K`` scales, ``spec.depth`` shared Dense layers per CR
    (``spec.channels``), readout over CRs (``spec.pooling``), dense head."""
    nside = spec.check_nside(nside)
    crs = cr_inputs(spec.inputs)
    ordered = CanonicalOrder(name="canonical_order")(crs)
    x = NeighbourDensities(nside, scales_deg(nside, spec.K).tolist(), name="neighbours")(ordered)
    for i, channels in enumerate(spec.channels):
        x = keras.layers.Dense(
            channels, spec.activation, kernel_regularizer=regularizer(spec), name=f"phi{i}"
        )(x)
    x = SetReadout(spec.pooling, name="readout")(x)
    return keras.Model(crs, dense_head(x, spec), name=spec.name)
