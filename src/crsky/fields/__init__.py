"""Galactic magnetic field models behind one interface.

``get_field(name, **options)`` returns a :class:`FieldModel`. Calling it on positions (N, 3) in kpc
(Galactocentric frame of DESIGN.md section 3) returns B (N, 3) in microgauss. The tracer uses the
model's compiled ``kernel(x_kpc, y_kpc, z_kpc, params) -> (bx, by, bz)`` with its ``params``
vector, so adding a model means adding one module with a kernel and a parameter vector and one
:class:`FieldEntry` in ``_REGISTRY`` that declares the model's option names: the workflow checks
``field.options`` against them when it builds the DAG (:func:`check_field_options`).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from numba import prange

from crsky._numba import njit_closure, njit_kernel, njit_taking_kernels
from crsky.errors import ConfigError

__all__ = [
    "FieldEntry",
    "FieldModel",
    "available_fields",
    "check_field_options",
    "field_entry",
    "field_options",
    "get_field",
]


@njit_taking_kernels(parallel=True)
def _evaluate(kernel, pos_kpc, params):
    b_ugauss = np.empty_like(pos_kpc)
    for i in prange(pos_kpc.shape[0]):
        bx, by, bz = kernel(pos_kpc[i, 0], pos_kpc[i, 1], pos_kpc[i, 2], params)
        b_ugauss[i, 0] = bx
        b_ugauss[i, 1] = by
        b_ugauss[i, 2] = bz
    return b_ugauss


@njit_kernel(inline="always")
def model_switch(params, index, mode):
    """A model's 0/1 switch: on if ``mode`` is 1, off if 0, ``params[index] != 0`` if -1.

    Kernels built per switch combination pass 0 or 1 (closure constants: the compiled kernel
    holds only the code the model uses, without branches, so loops over it vectorise); the
    generic kernels pass -1 and read the switch from the parameter vector."""
    return params[index] != 0.0 if mode < 0 else mode == 1


@cache
def _one_piece(kernel: Callable) -> Callable:
    """``kernel`` as a region kernel of a smooth model: piece 0 everywhere."""

    @njit_closure(inline="always")
    def region_kernel(x_kpc, y_kpc, z_kpc, params):
        bx, by, bz = kernel(x_kpc, y_kpc, z_kpc, params)
        return bx, by, bz, 0

    return region_kernel


@njit_taking_kernels
def _piece_zero(x_kpc, y_kpc, z_kpc, params):
    """Piece index of a smooth model: 0 everywhere."""
    return 0


@njit_kernel
def _jump_unknown(changed, x0_kpc, y0_kpc, z0_kpc, x1_kpc, y1_kpc, z1_kpc, params):
    """Jump bound of a model that gives none: every crossing is located."""
    return np.inf


@cache
def _piece_of(region_kernel: Callable) -> Callable:
    """The piece index of ``region_kernel`` alone (it still evaluates the field)."""

    @njit_closure()
    def piece_kernel(x_kpc, y_kpc, z_kpc, params):
        return region_kernel(x_kpc, y_kpc, z_kpc, params)[3]

    return piece_kernel


@dataclass(frozen=True, eq=False)
class FieldModel:
    """A magnetic field model: a compiled point kernel plus its parameter vector.

    Attributes:
        name: registry name, e.g. ``"jf12"``.
        kernel: numba function ``(x_kpc, y_kpc, z_kpc, params) -> (bx, by, bz)`` in microgauss.
        params: float64 parameter vector the kernel reads.
        description: provenance (paper, options) written into output attributes.
        options: the options the model was built with.
        fine_regions: (M, 5) float64 rows (x, y, z, radius, max_step), all kpc: spheres holding
            structure thinner than a tracer step could see (e.g. KST24's 30 pc Local Bubble
            shell); the tracer keeps its steps within a sphere at most ``max_step`` long.
        integrator: the builtin tracer's default Runge-Kutta pair for this field: "dopri5" for
            smooth fields, "bs3" where the field jumps (higher order buys nothing there).
        region_kernel: numba function ``(x_kpc, y_kpc, z_kpc, params) -> (bx, by, bz, piece)``
            with the same field values as ``kernel`` and the integer index of the piece of the
            model the point lies in, for models that jump (or kink) on surfaces: smooth within a
            piece, so the tracer steps onto the surfaces instead of across them. None: the model
            is smooth everywhere (one piece, see :attr:`piecewise_kernel`).
        piece_kernel: numba function ``(x_kpc, y_kpc, z_kpc, params) -> piece``: the piece index
            of ``region_kernel`` without the field, for models where that is much cheaper (the
            tracer's bisections onto a surface need only the index). None: the index comes from
            ``region_kernel`` (see :attr:`piece_index_kernel`).
        jump_kernel: numba function ``(changed, x0_kpc, y0_kpc, z0_kpc, x1_kpc, y1_kpc, z1_kpc,
            params) -> µG``: an upper bound of the jumps of B on the surfaces that a path from
            point 0 to point 1 (a tracer step, nearly straight) can cross when the pieces it
            visits differ from its first piece only in the bits ``changed`` (the OR of the XOR of
            their indices with the first one), ``inf`` where the model cannot bound them. The
            tracer steps across a jump that bound makes harmless at its tolerance instead of
            locating it. None: every crossing is located.
    """

    name: str
    kernel: Callable
    params: np.ndarray
    description: str = ""
    options: dict = field(default_factory=dict)
    fine_regions: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)))
    integrator: str = "dopri5"
    region_kernel: Callable | None = None
    piece_kernel: Callable | None = None
    jump_kernel: Callable | None = None

    @property
    def piecewise_kernel(self) -> Callable:
        """``region_kernel``, or for a smooth model ``kernel`` with piece index 0 everywhere."""
        return self.region_kernel if self.region_kernel is not None else _one_piece(self.kernel)

    @property
    def piece_index_kernel(self) -> Callable:
        """``piece_kernel``, else ``region_kernel``'s piece index, else 0 (a smooth model)."""
        if self.piece_kernel is not None:
            return self.piece_kernel
        return _piece_zero if self.region_kernel is None else _piece_of(self.region_kernel)

    @property
    def jump_bound_kernel(self) -> Callable:
        """``jump_kernel``, or one that bounds nothing (``inf``: every crossing is located)."""
        return self.jump_kernel if self.jump_kernel is not None else _jump_unknown

    def __call__(self, pos_kpc: np.ndarray) -> np.ndarray:
        """Field B (N, 3) in microgauss at positions ``pos_kpc`` (N, 3) in kpc."""
        pos = np.asarray(pos_kpc, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 3:
            raise ConfigError(f"positions must have shape (N, 3) in kpc, got {pos.shape}")
        return _evaluate(self.kernel, np.ascontiguousarray(pos), self.params)


@dataclass(frozen=True)
class FieldEntry:
    """A registered field model: ``factory(**options) -> FieldModel`` and the names of the
    options it accepts (``field.options`` of the workflow config). The factory raises
    ConfigError naming ``field.options.<option>`` for a bad value; unknown option names never
    reach it (:func:`check_field_options`)."""

    factory: Callable[..., FieldModel]
    options: tuple[str, ...] = ()


def _make_zero() -> FieldModel:
    from crsky.fields.uniform import uniform_field

    return uniform_field((0.0, 0.0, 0.0), name="zero")


def _make_uniform(b_ugauss=(0.0, 0.0, 1.0)) -> FieldModel:
    from crsky.fields.uniform import uniform_field

    return uniform_field(b_ugauss)


def _make_jf12(
    components=("disk", "toroidal_halo", "x_field"), turbulence=None, striated=None
) -> FieldModel:
    from crsky.fields.jf12 import jf12_field

    return jf12_field(components, turbulence, striated)


def _make_uf23(variant="base") -> FieldModel:
    from crsky.fields.uf23 import uf23_field

    return uf23_field(variant)


def _make_pt11(disk="ass", halo=True) -> FieldModel:
    from crsky.fields.pt11 import pt11_field

    return pt11_field(disk, halo)


def _make_kst24(arms=None) -> FieldModel:
    from crsky.fields.kst24 import kst24_field

    return kst24_field(arms)


# A new model: one module with a kernel and a parameter vector, and one entry here declaring
# its options (the workflow checks field.options against them before building the DAG).
_REGISTRY: dict[str, FieldEntry] = {
    "zero": FieldEntry(_make_zero),
    "uniform": FieldEntry(_make_uniform, ("b_ugauss",)),
    "jf12": FieldEntry(_make_jf12, ("components", "turbulence", "striated")),
    "uf23": FieldEntry(_make_uf23, ("variant",)),
    "pt11": FieldEntry(_make_pt11, ("disk", "halo")),
    "kst24": FieldEntry(_make_kst24, ("arms",)),
}


def available_fields() -> list[str]:
    """Names accepted by :func:`get_field`."""
    return sorted(_REGISTRY)


def field_options(name: str) -> tuple[str, ...]:
    """Option names accepted by field model ``name``; ConfigError for an unknown model."""
    return field_entry(name).options


def field_entry(name: str, key: str = "field.model") -> FieldEntry:
    """The registry entry of field model ``name``; ConfigError naming ``key`` if unknown."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"{key}: unknown field model {name!r}; expected one of {available_fields()}"
        ) from None


def check_field_options(name: str, options: dict, key: str = "field.options") -> FieldModel:
    """Build field model ``name`` with ``options`` (the workflow config's ``field`` section);
    ConfigError naming ``<key>.<option>`` for an option the model does not declare, or the
    model's own error for a bad value. Returns the model (building one is cheap: no tracing,
    no compilation)."""
    entry = field_entry(name)
    if not isinstance(options, dict):
        raise ConfigError(f"{key} must be a mapping of options, got {options!r}")
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        known = list(entry.options) or "none"
        raise ConfigError(
            f"{key}.{unknown[0]}: unknown option of field model {name!r}; its options: {known}"
        )
    return entry.factory(**options)


def get_field(name: str, **options) -> FieldModel:
    """Return the field model registered under ``name`` (see :func:`available_fields`) with
    ``options`` (see :func:`field_options`).

    >>> get_field("uniform", b_ugauss=(0, 0, 2))(np.zeros((1, 3)))
    array([[0., 0., 2.]])
    """
    return check_field_options(name, options)
