"""Counts maps from CR lists, inside the model so that on a GPU the rendering runs on the device
and only the CR lists (4 bytes per CR, not 4 bytes per pixel) cross the host-device link.

The input is the skymap chunk's CR list (crsky.store): ``pixel`` (batch, n_cr) int32 RING pixels
at the model's nside and, for models that use it, ``log10_energy`` (batch, n_cr) float32,
log10(E / eV). Each RING pixel is mapped to its flat position in the model layout
(crsky.models.layout.ring_to_model) and one bincount per channel renders the batch:
channel ``counts`` is the number of CRs per pixel divided by the mean number per pixel,
n_cr / npix (so an isotropic full-sky map has mean 1 whatever n_cr and nside), channel
``mean_log10_energy`` the mean log10(E / EeV) of the CRs in the pixel (0 where there are none).
"""

import keras
import tensorflow as tf

from crsky.models.layout import input_shape, ring_to_model
from crsky.models.spec import INPUTS

__all__ = ["LOG10_EEV", "RenderMaps", "cr_inputs"]

LOG10_EEV = 18.0  # log10(1 EeV / 1 eV)


def cr_inputs(inputs: tuple[str, ...]) -> dict[str, keras.KerasTensor]:
    """Keras inputs of the CR lists a model with input channels ``inputs`` reads."""
    out = {"pixel": keras.Input((None,), dtype="int32", name="pixel")}
    if "mean_log10_energy" in inputs:
        out["log10_energy"] = keras.Input((None,), dtype="float32", name="log10_energy")
    return out


@keras.saving.register_keras_serializable(package="crsky")
class RenderMaps(keras.layers.Layer):
    """CR lists -> counts maps (batch, *input_shape(family, nside, len(inputs))) float32."""

    def __init__(self, family: str, nside: int, inputs: tuple[str, ...] = ("counts",), **kwargs):
        super().__init__(**kwargs)
        unknown = sorted(set(inputs) - set(INPUTS))
        if unknown:
            raise ValueError(f"unknown input channels {unknown}; known: {list(INPUTS)}")
        self.family = family
        self.nside = int(nside)
        self.inputs = tuple(inputs)
        self._shape = input_shape(family, self.nside, len(self.inputs))
        self._positions = ring_to_model(family, self.nside)

    def call(self, crs: dict[str, tf.Tensor]) -> tf.Tensor:
        npix = 12 * self.nside**2
        position = tf.gather(tf.constant(self._positions), crs["pixel"])
        counts = tf.math.bincount(
            position, minlength=npix, maxlength=npix, dtype=tf.float32, axis=-1
        )
        channels = []
        for name in self.inputs:
            if name == "counts":
                n_cr = tf.cast(tf.shape(position)[-1], tf.float32)
                channels.append(counts * (npix / n_cr))
            else:
                energy_sum = tf.math.bincount(
                    position,
                    weights=crs["log10_energy"] - LOG10_EEV,
                    minlength=npix,
                    maxlength=npix,
                    axis=-1,
                )
                channels.append(energy_sum / tf.maximum(counts, 1.0))
        maps = tf.stack(channels, axis=-1)
        return tf.reshape(maps, (-1, *self._shape))

    def compute_output_shape(self, input_shape: dict) -> tuple:
        return (None, *self._shape)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "family": self.family,
            "nside": self.nside,
            "inputs": list(self.inputs),
        }
