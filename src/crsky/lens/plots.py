"""Diagnostic plots of a lens folder (crsky.plotting: PNG, Agg canvas, Galactic mollweide maps
with the Galactic Centre in the middle and longitude increasing to the left):

- deflection against rigidity: mean and median angle between observed and extragalactic
  direction per bin with the 16-84 % band of the particles (one lens also the 5-95 % band and a
  1/R guide) and the escaped fraction (from ``diagnostics.csv``), of one lens or of several
  overlaid (a field ensemble, a lens mix);
- magnification maps: each extragalactic pixel's transparency (column sum) over the mean of
  its bin, on a log scale, so that lensing (factors of several) stands apart from the shot noise
  of the backtracked particles (about 1/sqrt(p m) at p particles per pixel), from
  ``transparency.fits``;
- deflection maps: the mean deflection per observed pixel, from ``deflection.fits``.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, NullFormatter

from crsky.errors import ConfigError
from crsky.healpix_fits import read_maps
from crsky.lens.build import DEFLECTION_MAPS_NAME, TRANSPARENCY_MAPS_NAME
from crsky.lens.formats import CFG_NAME, read_cfg, read_diagnostics
from crsky.plotting import galactic_ticks, healpix_mesh, save_png

__all__ = ["plot_deflection", "plot_deflection_maps", "plot_magnification"]


def plot_deflection(folders: str | Path | Sequence[str | Path], output: str | Path) -> Path:
    """Deflection (degrees) against rigidity (V, log scale) per bin of one lens folder or of
    several overlaid (one colour per lens, labelled with its folder name): median with the
    16-84 % band of the particles and mean; for one lens also the 5-95 % band and a 1/R guide
    through the highest bin's median; escaped fraction below."""
    folders = [folders] if isinstance(folders, str | Path) else list(folders)
    if not folders:
        raise ConfigError("plot_deflection needs at least one lens folder")
    single = len(folders) == 1
    fig = Figure(figsize=(7.6, 5.0))
    ax, low = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    positive = True
    for k, folder in enumerate(folders):
        d = read_diagnostics(folder)
        rigidity = 10 ** (0.5 * (d["log10_rigidity_min"] + d["log10_rigidity_max"]))
        colour, name = f"C{k % 10}", ("" if single else f"{Path(folder).name} ")
        if single:
            ax.fill_between(
                rigidity, d["deflection_p05_deg"], d["deflection_p95_deg"], color=colour,
                alpha=0.15, lw=0, label="5-95 % of particles",
            )  # fmt: skip
        ax.fill_between(
            rigidity, d["deflection_p16_deg"], d["deflection_p84_deg"], color=colour,
            alpha=0.3 if single else 0.15, lw=0, label=f"{name}16-84 % of particles",
        )  # fmt: skip
        ax.plot(
            rigidity, d["deflection_median_deg"], "s-", ms=3, color=colour, label=f"{name}median"
        )
        ax.plot(rigidity, d["deflection_mean_deg"], "o--", ms=3, color=colour, label=f"{name}mean")
        low.plot(rigidity, d["escaped_fraction"], "o-", ms=3, color=colour)
        positive &= bool(np.all(d["deflection_p16_deg"] > 0))
        top = int(np.argmax(rigidity))
        if single and d["deflection_median_deg"][top] > 0:
            guide = d["deflection_median_deg"][top] * rigidity[top] / rigidity
            ax.plot(rigidity, guide, ":", color="k", lw=1, label="∝ 1/R (through the last median)")
    ax.set_xscale("log")
    if positive:
        ax.set_yscale("log")
    ax.set_ylabel("deflection angle (degrees)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8 if len(folders) < 4 else 6)
    low.set_ylim(0, 1.05)
    low.set_ylabel("escaped fraction")
    low.set_xlabel("rigidity R = E / Z (volts)")
    low.grid(alpha=0.3)
    low.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    title = f"lens {Path(folders[0]).name}" if single else f"{len(folders)} lenses"
    ax.set_title(f"Galactic deflection, {title}")
    fig.tight_layout()
    return save_png(fig, output)


def _chosen(columns: list[str], n_maps: int) -> list[str]:
    """``n_maps`` bins spread evenly over the lens (first and last included)."""
    if n_maps < 1:
        raise ConfigError(f"'n_maps' must be at least 1, got {n_maps}")
    picks = np.unique(np.linspace(0, len(columns) - 1, min(n_maps, len(columns))).round())
    return [columns[int(k)] for k in picks]


def _title(column: str) -> str:
    lo, hi = column.removeprefix("log10R_").split("-")
    return f"R = 10^{lo} ... 10^{hi} V"


def _grid(n: int) -> tuple[int, int]:
    n_cols = 2 if n > 1 else 1
    return int(np.ceil(n / n_cols)), n_cols


def plot_magnification(folder: str | Path, output: str | Path, n_maps: int = 4) -> Path:
    """Mollweide maps of the magnification (transparency / its mean over the sky, log colour
    scale) of ``n_maps`` bins; pixels no backtracked particle reached are grey."""
    maps, _ = read_maps(Path(folder) / TRANSPARENCY_MAPS_NAME)
    per_pixel = float(read_cfg(Path(folder) / CFG_NAME).header.get("particles_per_pixel", "nan"))
    chosen = _chosen(list(maps), n_maps)
    n_rows, n_cols = _grid(len(chosen))
    fig = Figure(figsize=(5.6 * n_cols, 3.2 * n_rows + 1.2))
    norm = LogNorm(vmin=0.1, vmax=10.0)
    mesh = None
    for k, column in enumerate(chosen):
        t = maps[column].astype(np.float64)
        magnification = np.where(t > 0, t / t.mean(), np.nan) if t.mean() > 0 else t * np.nan
        ax = fig.add_subplot(n_rows, n_cols, k + 1, projection="mollweide")
        ax.set_facecolor("0.75")
        mesh = healpix_mesh(ax, magnification, cmap="RdBu_r", norm=norm)
        ax.set_title(_title(column), fontsize=9, pad=10)
        galactic_ticks(ax)
    fig.colorbar(
        mesh, ax=fig.axes, orientation="horizontal", fraction=0.05, pad=0.08, extend="both",
        label="magnification m = transparency / sky mean (log scale; grey: never reached)",
    )  # fmt: skip
    noise = 1 / np.sqrt(per_pixel) if per_pixel > 0 else float("nan")
    fig.suptitle(
        f"Magnification of lens {Path(folder).name} (Galactic, GC at centre, l to the left)\n"
        f"{per_pixel:g} backtracked particles per observed pixel: shot noise ≈ 1/√({per_pixel:g}"
        f" m), ±{100 * noise:.0f} % at m = 1; real lensing is a factor of several",
        fontsize=10,
    )
    return save_png(fig, output)


def plot_deflection_maps(folder: str | Path, output: str | Path, n_maps: int = 4) -> Path:
    """Mollweide maps of the mean deflection (degrees) per observed pixel of ``n_maps`` bins,
    one colour bar per bin (deflections scale as 1/R)."""
    maps, _ = read_maps(Path(folder) / DEFLECTION_MAPS_NAME)
    chosen = _chosen(list(maps), n_maps)
    n_rows, n_cols = _grid(len(chosen))
    fig = Figure(figsize=(5.6 * n_cols, 3.6 * n_rows + 0.6))
    for k, column in enumerate(chosen):
        values = maps[column].astype(np.float64)
        finite = values[np.isfinite(values)]
        top = float(np.percentile(finite, 99)) if finite.size else 1.0
        ax = fig.add_subplot(n_rows, n_cols, k + 1, projection="mollweide")
        ax.set_facecolor("0.75")
        mesh = healpix_mesh(ax, values, cmap="viridis", vmin=0.0, vmax=max(top, 1e-3))
        ax.set_title(_title(column), fontsize=9, pad=10)
        galactic_ticks(ax)
        fig.colorbar(
            mesh, ax=ax, orientation="horizontal", fraction=0.06, pad=0.06, extend="max",
            label="mean deflection (degrees)",
        )  # fmt: skip
    fig.suptitle(
        f"Mean deflection per observed direction, lens {Path(folder).name} (Galactic, GC at "
        "centre, l to the left; grey: no escaped particle)",
        fontsize=10,
    )
    return save_png(fig, output)
