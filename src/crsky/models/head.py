"""Dense head shared by both families: hidden dense layers with dropout, then one output."""

import keras

from crsky.models.spec import ModelSpec

__all__ = ["dense_head", "regularizer"]


def regularizer(spec: ModelSpec) -> keras.regularizers.Regularizer | None:
    """L2 penalty ``spec.l2 · Σ w²`` on kernels, or None when ``spec.l2`` is 0."""
    return keras.regularizers.L2(spec.l2) if spec.l2 > 0 else None


def dense_head(x: keras.KerasTensor, spec: ModelSpec) -> keras.KerasTensor:
    """``spec.dense_units`` dense layers (activation ``spec.dense_activation``, or
    ``spec.activation`` when empty; each followed by dropout), then the output ``score``:
    the signal probability (sigmoid) for classification, the signal fraction in percent for
    regression."""
    activation = spec.dense_activation or spec.activation
    for i, units in enumerate(spec.dense_units):
        x = keras.layers.Dense(
            units, activation, kernel_regularizer=regularizer(spec), name=f"dense{i}"
        )(x)
        if spec.dropout > 0:
            x = keras.layers.Dropout(spec.dropout, name=f"dense{i}_dropout")(x)
    activation = "sigmoid" if spec.task == "classification" else None
    return keras.layers.Dense(1, activation, name="score")(x)
