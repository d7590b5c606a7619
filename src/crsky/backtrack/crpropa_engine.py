"""Optional engine: the same propagation done by CRPropa 3 (``PropagationCK``), for cross-checks.

Used where ``import crpropa`` works (CRPropa is not installable from the package index, so it is
never required; ``shared/crpropa/activate.sh`` makes a prebuilt CRPropa 3.2 importable). CRPropa's
frame is the one of DESIGN.md section 3 (Galactocentric, Earth at (-8.5, 0, 0) kpc) for every
model, and its ``tolerance`` bounds the same per-step absolute error of the unit direction as
crsky's builtin engine. Particles are antiprotons (protons for charge_sign +1) of energy
E = R * 1 eV/V, exact for an ultra-relativistic particle of charge 1.

Differences from the builtin engine, and how they are handled:
- CRPropa clips every step to ``min_step_kpc`` even where its ``SphericalBoundary`` asks for a
  shorter one, so particles stop up to ``min_step_kpc`` outside the sphere. The boundary's margin
  is set to zero, and the final state is moved back along its direction onto the sphere (a
  straight line: the curvature over <= 0.1 pc is below 1e-8 rad even at 1 EeV in 10 µG), which
  corrects the path length too.
- CRPropa does not count steps; a small module counts ``process`` calls per candidate.
- CRPropa has one maximum step; where the field model has fine regions (structure thinner than
  a step, e.g. KST24's Local Bubble shell, which steps of 0.1 kpc can miss by several degrees at
  10 EeV), the engine uses the finest region's step everywhere (slow, but right).
- Turbulent and striated JF12 components are random fields: CRPropa draws its own realisation
  (a periodic grid), so the engines agree statistically, not particle by particle, with them.
"""

import numpy as np

from crsky.errors import ConfigError

__all__ = ["crpropa_field", "propagate_crpropa"]

_STEP_KEY = "crsky_n_steps"
_ESCAPED_KEY = "crsky_escaped"


def _jf12(field, crpropa):
    from dataclasses import asdict

    from crsky.fields.turbulence import StriationSpec, TurbulenceSpec

    components = field.options.get("components", ["disk", "toroidal_halo", "x_field"])
    model = crpropa.JF12Field()
    model.setUseStriatedField(False)
    model.setUseTurbulentField(False)
    turbulence = field.options.get("turbulence")
    if turbulence is not None:
        # CRPropa's own realisation: 256³ grid of 4 pc, Kolmogorov 8-272 pc, unit rms
        fixed = {k: v for k, v in asdict(TurbulenceSpec()).items() if k not in ("seed", "n_modes")}
        if any(turbulence[k] != v for k, v in fixed.items()):
            raise ConfigError(
                "engine 'crpropa': CRPropa's JF12 turbulence is fixed at 8-272 pc and the "
                f"published strength; field.options.turbulence {turbulence!r} has no counterpart"
            )
        model.randomTurbulent(int(turbulence["seed"]))
    striated = field.options.get("striated")
    if striated is not None:
        fixed = {k: v for k, v in asdict(StriationSpec()).items() if k != "seed"}
        if any(striated[k] != v for k, v in fixed.items()):
            raise ConfigError(
                "engine 'crpropa': CRPropa's JF12 striation has beta 1.36 and 100 pc cells; "
                f"field.options.striated {striated!r} has no counterpart"
            )
        model.randomStriated(int(striated["seed"]))
    model.setUseDiskField("disk" in components)
    model.setUseToroidalHaloField("toroidal_halo" in components)
    model.setUseXField("x_field" in components)
    return model


def _uf23(field, crpropa):
    return crpropa.UF23Field(getattr(crpropa.UF23Field, field.options["variant"]))


def _pt11(field, crpropa):
    model = crpropa.PT11Field()
    disk = field.options["disk"]
    if disk == "bss":
        model.setUseBSS(True)
    elif disk is None:
        model.setUseASS(False)
    model.setUseHalo(bool(field.options["halo"]))
    return model


def _kst24(field, crpropa):
    from crsky.fields.kst24 import KST24_ARMS

    if list(field.options["arms"]) != list(KST24_ARMS):
        raise ConfigError(
            "engine 'crpropa': CRPropa's KST24Field has all five arms; field.options.arms "
            f"{field.options['arms']!r} has no CRPropa counterpart"
        )
    return crpropa.KST24Field()


def _uniform(field, crpropa):
    return crpropa.UniformMagneticField(crpropa.Vector3d(*field.params[:3]) * crpropa.muG)


_COUNTERPARTS = {"zero": _uniform, "uniform": _uniform, "jf12": _jf12, "uf23": _uf23}
_COUNTERPARTS.update(pt11=_pt11, kst24=_kst24)


def crpropa_field(field, crpropa):
    """CRPropa magnetic field equal to the crsky ``FieldModel`` ``field`` (same frame, µG)."""
    try:
        make = _COUNTERPARTS[field.name]
    except KeyError:
        raise ConfigError(
            f"engine 'crpropa': field model {field.name!r} has no CRPropa counterpart; "
            f"expected one of {sorted(_COUNTERPARTS)}"
        ) from None
    return make(field, crpropa)


def _step_counter(crpropa):
    """A CRPropa module that counts its calls per candidate (one call per propagation step)."""

    class StepCounter(crpropa.Module):
        def process(self, candidate):
            n = candidate.getProperty(_STEP_KEY) if candidate.hasProperty(_STEP_KEY) else 0
            candidate.setProperty(_STEP_KEY, int(n) + 1)

    return StepCounter()


def _back_onto_sphere(x, u, r_max):
    """Straight-line distance (kpc, >= 0) to go back from x along -u onto |x| = r_max."""
    xu = np.einsum("ij,ij->i", x, u)
    excess = np.einsum("ij,ij->i", x, x) - r_max * r_max
    # solve |x - t u|² = r² for the smallest t >= 0
    disc = np.maximum(xu * xu - excess, 0.0)
    return np.where(excess > 0.0, xu - np.sqrt(disc), 0.0)


def propagate_crpropa(position_kpc, direction, rigidity_V, charge_sign, field, accuracy):
    """Like :func:`crsky.backtrack.propagate`, through CRPropa's ``PropagationCK``."""
    from crsky.backtrack import TraceResult

    try:
        import crpropa
    except ImportError as err:
        raise ConfigError("engine 'crpropa' needs CRPropa 3 (`import crpropa` failed)") from err
    kpc = crpropa.kpc
    model = crpropa_field(field, crpropa)
    max_step_kpc = min([accuracy.max_step_kpc, *np.asarray(field.fine_regions)[:, 4]])
    modules = crpropa.ModuleList()
    modules.add(
        crpropa.PropagationCK(
            model,
            accuracy.tolerance,
            min(accuracy.min_step_kpc, max_step_kpc) * kpc,
            max_step_kpc * kpc,
        )
    )
    boundary = crpropa.SphericalBoundary(crpropa.Vector3d(0.0), accuracy.r_galaxy_kpc * kpc)
    boundary.setMargin(0.0)
    boundary.setRejectFlag(_ESCAPED_KEY, "yes")
    modules.add(boundary)
    modules.add(crpropa.MaximumTrajectoryLength(accuracy.max_path_length_kpc * kpc))
    counter = _step_counter(crpropa)  # kept referenced while CRPropa runs it
    modules.add(counter)
    n = len(direction)
    sign = np.broadcast_to(np.asarray(charge_sign), (n,))
    candidates = crpropa.CandidateVector()
    for i in range(n):
        state = crpropa.ParticleState()
        state.setId(int(sign[i]) * crpropa.nucleusId(1, 1))
        state.setEnergy(float(rigidity_V[i]) * crpropa.eV)
        state.setPosition(crpropa.Vector3d(*position_kpc[i]) * kpc)
        state.setDirection(crpropa.Vector3d(*direction[i]))
        candidates.push_back(crpropa.CandidateRefPtr(crpropa.Candidate(state)))
    modules.run(candidates)
    out_x, out_u = np.empty((n, 3)), np.empty((n, 3))
    out_s, out_steps = np.empty(n), np.zeros(n, dtype=np.int64)
    escaped = np.zeros(n, dtype=bool)
    for i in range(n):
        candidate = candidates[i]
        final = candidate.current
        pos, u = final.getPosition() / kpc, final.getDirection()
        out_x[i] = pos.x, pos.y, pos.z
        out_u[i] = u.x, u.y, u.z
        out_s[i] = candidate.getTrajectoryLength() / kpc
        out_steps[i] = int(candidate.getProperty(_STEP_KEY))
        escaped[i] = candidate.hasProperty(_ESCAPED_KEY)
    back = np.where(escaped, _back_onto_sphere(out_x, out_u, accuracy.r_galaxy_kpc), 0.0)
    out_x -= back[:, None] * out_u
    out_s -= back
    return TraceResult(out_x, out_u, out_s, out_steps, escaped)
