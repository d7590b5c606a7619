"""Diagnostic plots of a lens folder (PNG, matplotlib's Agg canvas, no pyplot state).

- deflection vs rigidity: mean and median angle between observed and extragalactic direction
  per bin, with the escaped fraction (from ``diagnostics.csv``);
- transparency maps: column sums of a few parts in Mollweide projection, Galactic frame,
  longitude increasing to the left with the Galactic Centre in the middle (astronomers' view).
"""

from pathlib import Path

import healpy as hp
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from crsky.errors import ConfigError
from crsky.io import atomic_output
from crsky.lens.formats import read_diagnostics
from crsky.lens.reader import Lens

__all__ = ["plot_deflection", "plot_transparency"]

_PNG_METADATA = {"Software": None}  # no version string: same lens, same bytes


def _save(fig: Figure, path: str | Path) -> Path:
    FigureCanvasAgg(fig)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata=_PNG_METADATA)
    return Path(path)


def plot_deflection(folder: str | Path, output: str | Path) -> Path:
    """Mean/median deflection (deg) and escaped fraction vs log10(R / V), one point per bin."""
    d = read_diagnostics(folder)
    centre = 0.5 * (d["log10_rigidity_min"] + d["log10_rigidity_max"])
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    ax.plot(centre, d["deflection_mean_deg"], "o-", ms=3, label="mean")
    ax.plot(centre, d["deflection_median_deg"], "s--", ms=3, label="median")
    ax.set_xlabel("log10(R / V)")
    ax.set_ylabel("deflection (deg)")
    if np.all(d["deflection_median_deg"] > 0):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.plot(centre, d["escaped_fraction"], ":", color="grey", label="escaped fraction")
    twin.set_ylabel("escaped fraction")
    twin.set_ylim(0, 1.05)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper right")
    ax.set_title(f"Galactic deflection, lens {Path(folder).name}")
    fig.tight_layout()
    return _save(fig, output)


def _mollweide(ax, nside: int, values: np.ndarray, vmax: float):
    lon = np.linspace(-np.pi, np.pi, 361)
    lat = np.linspace(-np.pi / 2, np.pi / 2, 181)
    lon_c = 0.5 * (lon[1:] + lon[:-1])
    lat_c = 0.5 * (lat[1:] + lat[:-1])
    grid_lon, grid_lat = np.meshgrid(lon_c, lat_c)
    # the x axis of matplotlib's mollweide runs left to right; astronomers' longitude runs right
    # to left, so the pixel shown at x has Galactic longitude -x
    pix = hp.ang2pix(nside, np.pi / 2 - grid_lat, -grid_lon, nest=False)
    return ax.pcolormesh(lon, lat, values[pix], vmin=0.0, vmax=vmax, cmap="viridis", shading="flat")


def plot_transparency(folder: str | Path, output: str | Path, n_maps: int = 4) -> Path:
    """Mollweide maps of the transparency (column sums) of ``n_maps`` bins spread evenly over
    the lens."""
    if n_maps < 1:
        raise ConfigError(f"'n_maps' must be at least 1, got {n_maps}")
    lens = Lens.load(folder, max_cached_parts=1)
    chosen = np.unique(
        np.linspace(0, lens.n_bins - 1, min(n_maps, lens.n_bins)).round().astype(int)
    )
    n_cols = 2 if chosen.size > 1 else 1
    n_rows = int(np.ceil(chosen.size / n_cols))
    fig = Figure(figsize=(5.2 * n_cols, 3.0 * n_rows + 0.4))
    edges = lens.log10_rigidity_edges
    mesh = None
    for k, b in enumerate(chosen):
        ax = fig.add_subplot(n_rows, n_cols, k + 1, projection="mollweide")
        centre = 0.5 * (edges[b] + edges[b + 1])
        mesh = _mollweide(ax, lens.nside, lens.transparency(centre), 1.0)
        ax.set_title(f"log10(R/V) = {edges[b]:.2f} ... {edges[b + 1]:.2f}", fontsize=9)
        ax.set_xticklabels([])
        ax.grid(alpha=0.3)
    fig.colorbar(mesh, ax=fig.axes, orientation="horizontal", fraction=0.05, label="transparency")
    fig.suptitle(f"Transparency of lens {Path(folder).name} (Galactic, GC at centre)")
    return _save(fig, output)
