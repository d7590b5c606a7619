"""Optional engine: the same propagation done by CRPropa 3 (``PropagationCK``).

Used where ``import crpropa`` works (CRPropa is not installable from the package index, so it is
never required). CRPropa's frame is the one of DESIGN.md section 3 (Galactocentric, Earth at
(-8.5, 0, 0) kpc), and its ``tolerance`` bounds the same per-step direction error as ours.
Particles are antiprotons (or protons for charge_sign +1) with energy E = R * 1 eV/V, which is
exact for an ultra-relativistic particle of charge 1.
"""

import numpy as np

from crsky.errors import ConfigError

__all__ = ["crpropa_field", "propagate_crpropa"]


def crpropa_field(field, crpropa):
    """CRPropa magnetic field equal to the crsky ``FieldModel`` ``field``."""
    if field.name in ("zero", "uniform"):
        b = field.params[:3]
        return crpropa.UniformMagneticField(crpropa.Vector3d(*b) * crpropa.muG)
    if field.name == "jf12":
        components = field.options.get("components", ["disk", "toroidal_halo", "x_field"])
        model = crpropa.JF12Field()
        model.setUseStriated(False)
        model.setUseTurbulent(False)
        model.setUseDiskField("disk" in components)
        model.setUseToroidalHaloField("toroidal_halo" in components)
        model.setUseXField("x_field" in components)
        return model
    raise ConfigError(f"field model {field.name!r} has no CRPropa counterpart in crsky")


def propagate_crpropa(position_kpc, direction, rigidity_V, charge_sign, field, accuracy):
    """Like :func:`crsky.backtrack.propagate`, one particle at a time through CRPropa."""
    from crsky.backtrack import TraceResult

    try:
        import crpropa
    except ImportError as err:
        raise ConfigError("engine 'crpropa' needs CRPropa 3 (`import crpropa` failed)") from err
    kpc = crpropa.kpc
    modules = crpropa.ModuleList()
    modules.add(
        crpropa.PropagationCK(
            crpropa_field(field, crpropa),
            accuracy.tolerance,
            accuracy.min_step_kpc * kpc,
            accuracy.max_step_kpc * kpc,
        )
    )
    modules.add(crpropa.SphericalBoundary(crpropa.Vector3d(0.0), accuracy.r_galaxy_kpc * kpc))
    modules.add(crpropa.MaximumTrajectoryLength(accuracy.max_path_length_kpc * kpc))
    n = len(direction)
    sign = np.broadcast_to(np.asarray(charge_sign), (n,))
    out_x, out_u = np.empty((n, 3)), np.empty((n, 3))
    out_s, out_steps = np.empty(n), np.zeros(n, dtype=np.int64)
    for i in range(n):
        state = crpropa.ParticleState()
        state.setId(int(sign[i]) * crpropa.nucleusId(1, 1))
        state.setEnergy(float(rigidity_V[i]) * crpropa.eV)
        state.setPosition(crpropa.Vector3d(*position_kpc[i]) * kpc)
        state.setDirection(crpropa.Vector3d(*direction[i]))
        candidate = crpropa.Candidate(state)
        modules.run(candidate)
        final = candidate.current
        pos, u = final.getPosition() / kpc, final.getDirection()
        out_x[i] = pos.x, pos.y, pos.z
        out_u[i] = u.x, u.y, u.z
        out_s[i] = candidate.getTrajectoryLength() / kpc
    escaped = np.einsum("ij,ij->i", out_x, out_x) >= accuracy.r_galaxy_kpc**2 * (1 - 1e-9)
    return TraceResult(out_x, out_u, out_s, out_steps, escaped)
