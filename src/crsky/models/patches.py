"""The 12-patch CNN (seed 000): the 12 HEALPix base pixels as 12 nside × nside images
(crsky.models.layout), one 2D CNN shared over the patches.

Seed 000's network is 4 × (3×3 convolution with 32 filters, max-pooling), dropout and 2 dense
layers of 768, written as Convolution3D layers with kernels (1, 3, 3) so the weights are shared
over the patch axis; we do the same. Convolutions use 'same' padding so every block exactly
halves nside, matching the NESTED 2×2 groups. Patch borders are not connected to each other: the
network sees each patch as a flat image, the limitation the DeepSphere family removes.
"""

import keras

from crsky.models.head import dense_head, regularizer
from crsky.models.layout import input_shape
from crsky.models.spec import ModelSpec

__all__ = ["build_patches"]


def build_patches(spec: ModelSpec, nside: int) -> keras.Model:
    """The ``patches`` network of ``spec`` for (12, nside, nside, channels) inputs."""
    nside = spec.check_nside(nside)
    inputs = keras.Input(input_shape("patches", nside, len(spec.inputs)), name="maps")
    pool = keras.layers.MaxPooling3D if spec.pooling == "max" else keras.layers.AveragePooling3D
    x = inputs
    for i, channels in enumerate(spec.channels):
        x = keras.layers.Conv3D(
            channels,
            (1, spec.kernel_size, spec.kernel_size),
            padding="same",
            activation=spec.activation,
            kernel_regularizer=regularizer(spec),
            name=f"conv{i}",
        )(x)
        x = pool((1, 2, 2), name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if spec.dropout > 0:
        x = keras.layers.Dropout(spec.dropout, name="flatten_dropout")(x)
    return keras.Model(inputs, dense_head(x, spec), name=spec.name)
