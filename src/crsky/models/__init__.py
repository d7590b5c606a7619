"""Spherical CNNs for HEALPix count maps (DESIGN.md section 5): the ``deepsphere`` graph CNN and
the ``patches`` 12-patch CNN, built from a ModelSpec (one entry of the config's ``models`` list).

Importing this package does not import TensorFlow; ``build_model`` does.
"""

from crsky.models.layout import FAMILIES, input_shape, ring_to_model
from crsky.models.spec import ModelSpec

__all__ = ["FAMILIES", "ModelSpec", "build_model", "input_shape", "ring_to_model"]


def build_model(spec: ModelSpec, nside: int):
    """The Keras model of ``spec`` for maps at ``nside`` (input layout: crsky.models.layout).
    Raises ConfigError for an impossible nside/depth before any layer is made."""
    spec.check_nside(nside)
    if spec.family == "deepsphere":
        from crsky.models.deepsphere import build_deepsphere

        return build_deepsphere(spec, nside)
    from crsky.models.patches import build_patches

    return build_patches(spec, nside)
