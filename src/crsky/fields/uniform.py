"""Uniform magnetic field (and the zero field): analytic test cases for the tracer."""

import numpy as np

from crsky._numba import njit_kernel

__all__ = ["uniform_field", "uniform_kernel"]


@njit_kernel
def uniform_kernel(x_kpc, y_kpc, z_kpc, params):
    """B = (params[0], params[1], params[2]) microgauss everywhere."""
    return params[0], params[1], params[2]


def uniform_field(b_ugauss, name: str = "uniform"):
    """A :class:`~crsky.fields.FieldModel` with the constant field ``b_ugauss`` (3,) in µG."""
    from crsky.errors import ConfigError
    from crsky.fields import FieldModel

    try:
        b = np.asarray(b_ugauss, dtype=np.float64)
    except (TypeError, ValueError):
        b = np.full(1, np.nan)
    if b.shape != (3,) or not np.all(np.isfinite(b)):
        raise ConfigError(
            f"field.options.b_ugauss of the uniform field must be 3 finite numbers in µG, "
            f"got {b_ugauss!r}"
        )
    return FieldModel(
        name=name,
        kernel=uniform_kernel,
        params=b,
        description=f"uniform field B = ({b[0]:g}, {b[1]:g}, {b[2]:g}) µG",
        options={"b_ugauss": b.tolist()},
    )
