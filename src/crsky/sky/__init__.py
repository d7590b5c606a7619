"""Simulated UHECR skies: the physics of the skymap stage.

One small module per ingredient, all in the Galactic frame of DESIGN.md section 3 (unit vectors,
lon = atan2(y, x), lat = asin(z)), energies as log10(E / eV), rigidities as log10(R / V):

- :mod:`crsky.sky.coordinates`: equatorial <-> Galactic rotation, declination of a direction;
- :mod:`crsky.sky.spectrum`: Auger combined spectrum (ICRC 2019), power laws, inverse-CDF
  sampling;
- :mod:`crsky.sky.composition`: charge fractions, rigidity = E / Z;
- :mod:`crsky.sky.exposure`: Sommers (2001) relative exposure or a full sky;
- :mod:`crsky.sky.isotropic`: background pixels drawn from the exposure-weighted sky;
- :mod:`crsky.sky.sources`: source positions and fluxes, signal fractions and counts;
- :mod:`crsky.sky.deflection`: Fisher blurring, the toy deflection model (seed 002) and lens mode;
- :mod:`crsky.sky.dataset`: the dataset configuration (defaults, validation);
- :mod:`crsky.sky.simulate`: whole maps of one dataset, and the chunk job that writes them.
"""

__all__: list[str] = []
