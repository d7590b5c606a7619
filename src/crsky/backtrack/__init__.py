"""Backtracking of cosmic rays through a Galactic magnetic field.

A cosmic ray of charge +Z observed arriving from the unit direction d (Galactic frame, pointing to
the sky) is traced as a particle of charge -Z that starts at the Earth, (-8.5, 0, 0) kpc, with
momentum direction +d, until it reaches the sphere r = ``r_galaxy_kpc`` around the Galactic
Centre. Its momentum direction there, ``edge_direction``, is the extragalactic direction the cosmic
ray came from (DESIGN.md section 3). Only rigidity R = E / (Z e) enters, in volts.

The builtin engine is the compiled Runge–Kutta integrator of :mod:`crsky.backtrack._kernels`;
``engine="crpropa"`` runs CRPropa's ``PropagationCK`` where ``import crpropa`` works.
"""

from dataclasses import dataclass

import numba
import numpy as np

from crsky.backtrack._kernels import GYRO_KPC, trace_particles
from crsky.errors import ConfigError
from crsky.fields import FieldModel, get_field

__all__ = [
    "EARTH_POSITION_KPC",
    "GYRO_KPC",
    "Accuracy",
    "BacktrackResult",
    "TraceResult",
    "backtrack",
    "propagate",
    "resolved_integrator",
]

EARTH_POSITION_KPC = np.array([-8.5, 0.0, 0.0])
ENGINES = ("builtin", "crpropa")
# integrator name -> order of the builtin engine's Runge-Kutta pair ("auto": the field model's)
INTEGRATORS = {"dopri5": 5, "bs3": 3, "dop853": 8}


@dataclass(frozen=True)
class Accuracy:
    """Integrator settings; lengths in kpc.

    tolerance: maximum local error of the unit direction per step (absolute).
    min_step_kpc, max_step_kpc: step-size bounds.
    max_path_length_kpc: particles still inside the Galaxy after this path are "trapped".
    r_galaxy_kpc: radius of the sphere where backtracking stops.
    integrator: "dopri5" (Dormand-Prince 5(4)), "bs3" (Bogacki-Shampine 3(2)), "dop853"
        (Dormand-Prince 8(5,3)) or "auto" (the field model's choice: bs3 where it has jumps,
        dopri5 where it is smooth); builtin engine only.
    """

    tolerance: float = 1e-7
    min_step_kpc: float = 1e-4
    max_step_kpc: float = 1.0
    max_path_length_kpc: float = 1000.0
    r_galaxy_kpc: float = 20.0
    integrator: str = "auto"

    def __post_init__(self):
        if self.integrator not in ("auto", *INTEGRATORS):
            raise ConfigError(
                f"accuracy setting 'integrator' must be one of {['auto', *INTEGRATORS]}, "
                f"got {self.integrator!r}"
            )
        for name in (
            "tolerance",
            "min_step_kpc",
            "max_step_kpc",
            "max_path_length_kpc",
            "r_galaxy_kpc",
        ):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ConfigError(
                    f"accuracy setting {name!r} must be a positive number, got {value!r}"
                )
        if self.min_step_kpc > self.max_step_kpc:
            raise ConfigError(
                f"'min_step_kpc' ({self.min_step_kpc}) must not exceed 'max_step_kpc' "
                f"({self.max_step_kpc})"
            )


@dataclass(frozen=True)
class TraceResult:
    """Final states of traced particles: positions (N, 3) kpc, unit directions (N, 3), path
    lengths (N,) kpc, accepted integration steps (N,), whether each reached the sphere, and the
    field evaluations each took (N,; builtin engine only, else None)."""

    final_position_kpc: np.ndarray
    final_direction: np.ndarray
    path_length_kpc: np.ndarray
    n_steps: np.ndarray
    escaped: np.ndarray
    n_evaluations: np.ndarray | None = None


@dataclass(frozen=True)
class BacktrackResult:
    """Backtracking outcome per cosmic ray: ``edge_direction`` (N, 3) unit vectors in the
    Galactic frame (extragalactic arrival direction), ``escaped`` (N,) bool (False: trapped for
    ``max_path_length_kpc``), ``path_length_kpc`` (N,), and accepted ``n_steps`` (N,)."""

    edge_direction: np.ndarray
    escaped: np.ndarray
    path_length_kpc: np.ndarray
    n_steps: np.ndarray


def _as_field(field: str | FieldModel) -> FieldModel:
    return field if isinstance(field, FieldModel) else get_field(field)


def resolved_integrator(accuracy: "Accuracy", field: FieldModel) -> str:
    """The builtin engine's integrator for ``field``: ``accuracy.integrator`` unless "auto"."""
    return field.integrator if accuracy.integrator == "auto" else accuracy.integrator


def _as_unit_vectors(direction, name: str) -> np.ndarray:
    d = np.ascontiguousarray(direction, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != 3:
        raise ConfigError(f"{name!r} must have shape (N, 3), got {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ConfigError(f"{name!r} contains NaN or infinite values")
    norm = np.linalg.norm(d, axis=1)
    if d.shape[0] and np.max(np.abs(norm - 1.0)) > 1e-6:
        raise ConfigError(
            f"{name!r} must be unit vectors (|d| = 1 within 1e-6), worst |d| = "
            f"{norm[np.argmax(np.abs(norm - 1.0))]:.9g}"
        )
    return d / norm[:, None]


def _as_rigidity(rigidity_V, n: int) -> np.ndarray:
    r = np.broadcast_to(np.asarray(rigidity_V, dtype=np.float64), (n,))
    if not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise ConfigError("'rigidity_V' must be positive finite rigidities in volts")
    return np.ascontiguousarray(r)


def propagate(
    position_kpc,
    direction,
    rigidity_V,
    charge_sign: int | np.ndarray,
    field: str | FieldModel = "jf12",
    accuracy: Accuracy = Accuracy(),
    threads: int | None = None,
) -> TraceResult:
    """Trace particles forward in a static field until |x| >= r_galaxy_kpc or the maximum path.

    Args:
        position_kpc: (N, 3) start positions, Galactocentric kpc.
        direction: (N, 3) unit momentum directions.
        rigidity_V: (N,) or scalar rigidity |p c / (Z e)| in volts.
        charge_sign: +1 or -1 (scalar or (N,)); the sign of the particle's charge.
        field: model name for :func:`crsky.fields.get_field`, or a :class:`FieldModel`.
        accuracy: integrator settings.
        threads: threads tracing chunks of particles side by side (default: numba's thread
            count, NUMBA_NUM_THREADS or all cores).
    """
    x0 = np.ascontiguousarray(position_kpc, dtype=np.float64)
    u0 = _as_unit_vectors(direction, "direction")
    if x0.shape != u0.shape:
        raise ConfigError(f"'position_kpc' {x0.shape} and 'direction' {u0.shape} differ in shape")
    n = u0.shape[0]
    sign = np.broadcast_to(np.asarray(charge_sign, dtype=np.float64), (n,))
    if not np.all(np.isin(sign, (-1.0, 1.0))):
        raise ConfigError("'charge_sign' must be +1 or -1")
    kappa = np.ascontiguousarray(sign / (GYRO_KPC * _as_rigidity(rigidity_V, n) / 1e18))
    model = _as_field(field)
    out_x = np.empty((n, 3))
    out_u = np.empty((n, 3))
    out_s = np.empty(n)
    out_steps = np.empty(n, dtype=np.int64)
    out_evaluations = np.empty(n, dtype=np.int64)
    trace_particles(
        model.piecewise_kernel,
        model.piece_index_kernel,
        model.jump_bound_kernel,
        model.params,
        x0,
        u0,
        kappa,
        accuracy.r_galaxy_kpc,
        accuracy.max_path_length_kpc,
        accuracy.tolerance,
        accuracy.min_step_kpc,
        accuracy.max_step_kpc,
        out_x,
        out_u,
        out_s,
        out_steps,
        out_evaluations,
        np.ascontiguousarray(model.fine_regions, dtype=np.float64).reshape(-1, 5),
        INTEGRATORS[resolved_integrator(accuracy, model)],
        numba.get_num_threads() if threads is None else threads,
    )
    escaped = np.einsum("ij,ij->i", out_x, out_x) >= accuracy.r_galaxy_kpc**2
    return TraceResult(out_x, out_u, out_s, out_steps, escaped, out_evaluations)


def backtrack(
    observed_direction,
    rigidity_V,
    field: str | FieldModel = "jf12",
    engine: str = "builtin",
    threads: int | None = None,
    **accuracy,
) -> BacktrackResult:
    """Backtrack cosmic rays observed at Earth to the edge of the Galaxy.

    Args:
        observed_direction: (N, 3) unit vectors towards the sky position each CR arrived from
            (Galactic frame: lon = atan2(y, x), lat = asin(z)).
        rigidity_V: (N,) or scalar rigidity in volts.
        field: model name or :class:`~crsky.fields.FieldModel`.
        engine: ``"builtin"`` or ``"crpropa"``.
        threads: threads of the builtin engine (default: numba's thread count).
        **accuracy: fields of :class:`Accuracy` (tolerance, min_step_kpc, ...).
    """
    settings = Accuracy(**accuracy)
    d = _as_unit_vectors(observed_direction, "observed_direction")
    if engine == "builtin":
        result = propagate(
            np.broadcast_to(EARTH_POSITION_KPC, d.shape),
            d,
            rigidity_V,
            -1,
            field,
            settings,
            threads,
        )
    elif engine == "crpropa":
        from crsky.backtrack.crpropa_engine import propagate_crpropa

        result = propagate_crpropa(
            np.broadcast_to(EARTH_POSITION_KPC, d.shape),
            d,
            _as_rigidity(rigidity_V, len(d)),
            -1,
            _as_field(field),
            settings,
        )
    else:
        raise ConfigError(f"unknown engine {engine!r}; expected one of {list(ENGINES)}")
    return BacktrackResult(
        edge_direction=result.final_direction,
        escaped=result.escaped,
        path_length_kpc=result.path_length_kpc,
        n_steps=result.n_steps,
    )
