"""crsky: Galactic lenses, simulated UHECR skies and spherical CNNs, as one Snakemake pipeline.

Frames and units follow DESIGN.md section 3: Galactocentric Cartesian coordinates in kpc with the
Earth at (-8.5, 0, 0) kpc, magnetic fields in microgauss, rigidities in volts.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("crsky")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
