"""Spherical CNNs for HEALPix count maps (DESIGN.md section 5): the ``deepsphere`` graph CNN and
the ``patches`` 12-patch CNN, and the ``pointcloud`` Deep Sets network on the CR list itself,
built from a ModelSpec (one entry of the config's ``models`` list).

Importing this package (or ``crsky``) does not import TensorFlow; ``build_model``,
``load_model`` and ``register_keras_objects`` do. A saved ``model.keras`` uses crsky's own layers
(registered with Keras under the package name ``crsky``), so load it with::

    from crsky.models import load_model
    model = load_model("results/models/deepsphere/model.keras")   # safe_mode=True

or call ``crsky.models.register_keras_objects()`` once, after which plain
``keras.saving.load_model(path, safe_mode=True)`` works too.
"""

from crsky.models.layout import FAMILIES, input_shape, ring_to_model
from crsky.models.spec import ModelSpec

__all__ = [
    "FAMILIES",
    "ModelSpec",
    "build_model",
    "input_shape",
    "load_model",
    "register_keras_objects",
    "ring_to_model",
]


def build_model(spec: ModelSpec, nside: int):
    """The Keras model of ``spec`` for maps at ``nside`` (input layout: crsky.models.layout).
    Raises ConfigError for an impossible nside/depth before any layer is made."""
    spec.check_nside(nside)
    if spec.family == "deepsphere":
        from crsky.models.deepsphere import build_deepsphere

        return build_deepsphere(spec, nside)
    if spec.family == "pointcloud":
        from crsky.models.pointcloud import build_pointcloud

        return build_pointcloud(spec, nside)
    from crsky.models.patches import build_patches

    return build_patches(spec, nside)


def register_keras_objects() -> None:
    """Register every crsky layer with Keras (``crsky>RenderMaps``, ``crsky>ChebConv``, ...) by
    importing the modules that define them; idempotent. Imports TensorFlow."""
    import crsky.models.deepsphere
    import crsky.models.head
    import crsky.models.patches
    import crsky.models.pointcloud
    import crsky.models.render  # noqa: F401


def load_model(path, compile: bool = False):
    """The Keras model saved at ``path`` (a ``model.keras`` file of either family), loaded with
    ``safe_mode=True`` after :func:`register_keras_objects`; without its optimizer state unless
    ``compile``."""
    import keras

    register_keras_objects()
    return keras.saving.load_model(path, compile=compile, safe_mode=True)
