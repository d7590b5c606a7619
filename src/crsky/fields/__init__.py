"""Galactic magnetic field models behind one interface.

``get_field(name, **options)`` returns a :class:`FieldModel`. Calling it on positions (N, 3) in kpc
(Galactocentric frame of DESIGN.md section 3) returns B (N, 3) in microgauss. The tracer uses the
model's compiled ``kernel(x_kpc, y_kpc, z_kpc, params) -> (bx, by, bz)`` with its ``params``
vector, so adding a model means adding one module with a kernel and a parameter vector and one
entry in ``_REGISTRY``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numba import prange

from crsky._numba import njit_parallel
from crsky.errors import ConfigError

__all__ = ["FieldModel", "available_fields", "get_field"]


@njit_parallel
def _evaluate(kernel, pos_kpc, params):
    b_ugauss = np.empty_like(pos_kpc)
    for i in prange(pos_kpc.shape[0]):
        bx, by, bz = kernel(pos_kpc[i, 0], pos_kpc[i, 1], pos_kpc[i, 2], params)
        b_ugauss[i, 0] = bx
        b_ugauss[i, 1] = by
        b_ugauss[i, 2] = bz
    return b_ugauss


@dataclass(frozen=True, eq=False)
class FieldModel:
    """A magnetic field model: a compiled point kernel plus its parameter vector.

    Attributes:
        name: registry name, e.g. ``"jf12"``.
        kernel: numba function ``(x_kpc, y_kpc, z_kpc, params) -> (bx, by, bz)`` in microgauss.
        params: float64 parameter vector the kernel reads.
        description: provenance (paper, options) written into output attributes.
    """

    name: str
    kernel: Callable
    params: np.ndarray
    description: str = ""
    options: dict = field(default_factory=dict)

    def __call__(self, pos_kpc: np.ndarray) -> np.ndarray:
        """Field B (N, 3) in microgauss at positions ``pos_kpc`` (N, 3) in kpc."""
        pos = np.asarray(pos_kpc, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 3:
            raise ConfigError(f"positions must have shape (N, 3) in kpc, got {pos.shape}")
        return _evaluate(self.kernel, np.ascontiguousarray(pos), self.params)


def _make_zero(**options) -> FieldModel:
    from crsky.fields.uniform import uniform_field

    if options:
        raise ConfigError(f"field 'zero' takes no options, got {sorted(options)}")
    return uniform_field((0.0, 0.0, 0.0), name="zero")


def _make_uniform(b_ugauss=(0.0, 0.0, 1.0), **options) -> FieldModel:
    from crsky.fields.uniform import uniform_field

    if options:
        raise ConfigError(f"field 'uniform' takes only 'b_ugauss', got {sorted(options)}")
    return uniform_field(b_ugauss)


def _make_jf12(components=("disk", "toroidal_halo", "x_field"), **options) -> FieldModel:
    from crsky.fields.jf12 import jf12_field

    if options:
        raise ConfigError(f"field 'jf12' takes only 'components', got {sorted(options)}")
    return jf12_field(components)


_REGISTRY: dict[str, Callable[..., FieldModel]] = {
    "zero": _make_zero,
    "uniform": _make_uniform,
    "jf12": _make_jf12,
}


def available_fields() -> list[str]:
    """Names accepted by :func:`get_field`."""
    return sorted(_REGISTRY)


def get_field(name: str, **options) -> FieldModel:
    """Return the field model registered under ``name`` (see :func:`available_fields`).

    >>> get_field("uniform", b_ugauss=(0, 0, 2))(np.zeros((1, 3)))
    array([[0., 0., 2.]])
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown field model {name!r}; expected one of {available_fields()}"
        ) from None
    return factory(**options)
