"""Figure helpers shared by every stage's plots (PNG, matplotlib's Agg canvas, no pyplot state).

Sky maps are Mollweide projections in Galactic coordinates with the Galactic Centre in the
middle and longitude increasing to the left, as astronomers draw them; matplotlib's mollweide
axes run x from -π to π left to right, so the point drawn at x has Galactic longitude -x.
Longitude labels say the Galactic longitude in degrees.
"""

from pathlib import Path

import healpy as hp
import numpy as np
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from crsky.io import atomic_output

__all__ = [
    "galactic_ticks",
    "healpix_mesh",
    "save_png",
    "sky_line",
    "sky_xy",
]

_PNG_METADATA = {"Software": None}  # no version string: same inputs, same bytes
_LON_TICKS_DEG = (-120, -60, 0, 60, 120)  # axes x in degrees


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG atomically (110 dpi, tight box, reproducible bytes)."""
    FigureCanvasAgg(fig)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata=_PNG_METADATA)
    return Path(path)


def sky_xy(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mollweide axes coordinates (x = -longitude, y = latitude, radians) of Galactic unit
    vectors (..., 3)."""
    v = np.asarray(vectors, dtype=np.float64)
    lon = np.arctan2(v[..., 1], v[..., 0])
    lat = np.arcsin(np.clip(v[..., 2], -1.0, 1.0))
    return -lon, lat


def galactic_ticks(ax, fontsize: float = 7) -> None:
    """Galactic longitude labels (degrees, increasing to the left, 0 at the centre) and a grid
    on a mollweide axes."""
    ax.set_xticks(np.radians(_LON_TICKS_DEG))
    ax.set_xticklabels([f"{(-x) % 360:d}°" for x in _LON_TICKS_DEG], fontsize=fontsize)
    ax.tick_params(axis="y", labelsize=fontsize)
    halo = [patheffects.withStroke(linewidth=2, foreground="white")]
    for label in ax.get_xticklabels():  # drawn over the map: readable on dark pixels too
        label.set_path_effects(halo)
    ax.grid(alpha=0.3)


def healpix_mesh(ax, values: np.ndarray, **style):
    """Draw a RING-ordered HEALPix map on a mollweide axes (0.5° cells); ``style`` goes to
    ``pcolormesh`` (cmap, norm, vmin, vmax). Returns the mesh (for a colour bar)."""
    nside = hp.npix2nside(len(values))
    lon = np.linspace(-np.pi, np.pi, 721)
    lat = np.linspace(-np.pi / 2, np.pi / 2, 361)
    grid_lon, grid_lat = np.meshgrid(0.5 * (lon[1:] + lon[:-1]), 0.5 * (lat[1:] + lat[:-1]))
    pix = hp.ang2pix(nside, np.pi / 2 - grid_lat, -grid_lon, nest=False)
    return ax.pcolormesh(lon, lat, np.asarray(values)[pix], shading="flat", **style)


def sky_line(ax, vectors: np.ndarray, **style) -> None:
    """Draw a line through Galactic unit vectors (n, 3) on a mollweide axes, broken where it
    wraps around longitude ±180°."""
    x, y = sky_xy(vectors)
    breaks = np.flatnonzero(np.abs(np.diff(x)) > np.pi) + 1
    for k, (xs, ys) in enumerate(zip(np.split(x, breaks), np.split(y, breaks), strict=True)):
        ax.plot(xs, ys, **(style if k == 0 else {**style, "label": None}))
