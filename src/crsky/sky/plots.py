"""What a physicist checks first in a simulated dataset, against the dataset's own config:

- the energy spectrum of all its CRs (counts per bin of log10 E with Poisson errors) against the
  configured model (crsky.sky.spectrum, the expected counts N ΔCDF per bin), the signal CRs apart;
- the charge fractions against the configured composition (binomial errors);
- the configured relative exposure and the mean counts per pixel of the maps, with the exposure's
  boundary (the declination beyond which the detector sees nothing);
- the mean counts map as HEALPix FITS (crsky.healpix_fits).

Chunks are read a block of maps at a time, so a production dataset (500,000 maps) needs no more
memory than a chunk's block.
"""

from dataclasses import dataclass
from pathlib import Path

import healpy as hp
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from crsky.errors import InputFileError
from crsky.healpix_fits import write_maps
from crsky.plotting import galactic_ticks, healpix_mesh, save_png, sky_line
from crsky.sky.composition import ELEMENT_CHARGE
from crsky.sky.coordinates import equatorial_to_galactic_matrix
from crsky.sky.dataset import DatasetConfig
from crsky.store import open_chunk

__all__ = ["DatasetSummary", "plot_dataset", "summarize_dataset"]

_BLOCK = 5000  # maps read at a time
_ENERGY_BINS = 30
_SYMBOL = {z: s for s, z in ELEMENT_CHARGE.items()}
_ENERGY_TICKS_EEV = (0.1, 0.3, 1, 3, 10, 20, 40, 60, 100, 150, 200, 300, 500, 1000, 3000)


@dataclass
class DatasetSummary:
    """Histograms of a whole dataset: CR counts per log10 E bin (all, signal), per charge, and
    the summed counts per RING pixel."""

    dataset: DatasetConfig
    n_maps: int
    energy_edges: np.ndarray
    energy_all: np.ndarray
    energy_signal: np.ndarray
    charges: np.ndarray  # counts per charge 0 ... 26
    pixel_sum: np.ndarray


def summarize_dataset(chunks: list[str | Path]) -> DatasetSummary:
    """Read every chunk of one dataset (all from the same dataset config) into histograms."""
    if not chunks:
        raise InputFileError("no skymap chunks given")
    summary = None
    for path in chunks:
        with open_chunk(path) as chunk:
            if summary is None:
                dataset = DatasetConfig.from_dict(chunk.dataset, chunk.config)
                edges = np.linspace(
                    dataset.log10_energy_min, dataset.log10_energy_max, _ENERGY_BINS + 1
                )
                summary = DatasetSummary(
                    dataset, 0, edges, np.zeros(_ENERGY_BINS), np.zeros(_ENERGY_BINS),
                    np.zeros(27), np.zeros(hp.nside2npix(chunk.nside)),
                )  # fmt: skip
            elif chunk.config != summary.dataset.config:
                raise InputFileError(
                    f"chunk {str(path)!r} belongs to another dataset config than {str(chunks[0])!r}"
                )
            _add_chunk(summary, chunk)
    return summary


def _add_chunk(summary: DatasetSummary, chunk) -> None:
    for start in range(0, chunk.n_maps, _BLOCK):
        crs = chunk.cosmic_rays(start, min(start + _BLOCK, chunk.n_maps))
        # stored energies are rounded to 2^-9 dex: keep the few just outside the limits
        energy = np.clip(crs.log10_energy, summary.energy_edges[0], summary.energy_edges[-1])
        summary.energy_all += np.histogram(energy, summary.energy_edges)[0]
        summary.energy_signal += np.histogram(energy[crs.is_signal], summary.energy_edges)[0]
        summary.charges += np.bincount(crs.charge.ravel(), minlength=27)[:27]
        summary.pixel_sum += np.bincount(crs.pixel.ravel(), minlength=summary.pixel_sum.size)
    summary.n_maps += chunk.n_maps


def _plot_spectrum(s: DatasetSummary, output) -> Path:
    edges, counts = s.energy_edges, s.energy_all
    sampler = s.dataset.energy_sampler
    expected = counts.sum() * np.diff(sampler.cdf(edges))
    energy_eev = 10 ** (edges - 18.0)
    centre = np.sqrt(energy_eev[1:] * energy_eev[:-1])
    fig = Figure(figsize=(7.6, 5.2))
    ax, low = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.stairs(expected, energy_eev, color="k", lw=1.2, label="configured model (expected counts)")
    ax.errorbar(
        centre, counts, yerr=np.sqrt(counts), fmt="o", ms=3, color="C0",
        label=f"all simulated CRs ({int(counts.sum()):,})",
    )  # fmt: skip
    if s.energy_signal.sum():
        ax.stairs(
            s.energy_signal, energy_eev, color="C3", ls="--",
            label=f"signal CRs ({int(s.energy_signal.sum()):,})",
        )  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel(f"CRs per bin of {np.diff(edges)[0]:.3f} in log10 E")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    spec = s.dataset.config["spectrum"]
    ax.set_title(f"Energy spectrum of dataset {s.dataset.name!r} ({spec.get('model')})")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = counts / expected
        error = np.sqrt(counts) / expected
    low.errorbar(centre, ratio, yerr=error, fmt="o", ms=3, color="C0")
    low.axhline(1.0, color="k", lw=1)
    low.set_ylabel("simulated / model")
    low.set_xlabel("energy E (EeV)")
    low.grid(alpha=0.3, which="both")
    low_eev, high_eev = energy_eev[0] * (1 - 1e-9), energy_eev[-1] * (1 + 1e-9)  # round-off
    ticks = [t for t in _ENERGY_TICKS_EEV if low_eev <= t <= high_eev]
    low.set_xticks(ticks, [f"{t:g}" for t in ticks])
    low.xaxis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
    return save_png(fig, output)


def _plot_charges(s: DatasetSummary, output) -> Path:
    composition = s.dataset.composition
    charges = sorted(set(composition.charges) | set(np.flatnonzero(s.charges).tolist()))
    total = s.charges.sum()
    simulated = s.charges[charges] / total
    error = np.sqrt(simulated * (1 - simulated) / total)
    configured = dict(zip(composition.charges, composition.fractions, strict=True))
    x = np.arange(len(charges))
    fig = Figure(figsize=(6.8, 4.0))
    ax = fig.add_subplot()
    ax.bar(x, simulated, yerr=error, color="C0", alpha=0.7, capsize=3, label="simulated")
    ax.plot(
        x, [configured.get(z, 0.0) for z in charges], "D", color="k", ms=6, mfc="none",
        label="configured composition",
    )  # fmt: skip
    ax.set_xticks(x, [f"{_SYMBOL.get(z, '?')} (Z = {z})" for z in charges])
    ax.set_ylabel("fraction of all CRs")
    ax.set_xlabel("element (charge Z)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title(f"Charges of dataset {s.dataset.name!r} ({int(total):,} CRs)")
    fig.tight_layout()
    return save_png(fig, output)


def exposure_boundaries(dataset: DatasetConfig) -> list[np.ndarray]:
    """Galactic unit vectors (721, 3) along each declination where the relative exposure
    reaches 0 (δ = a0 ± θmax when inside ±90°); none for a full-sky exposure."""
    exposure = dataset.exposure
    if exposure.full_sky:
        return []
    lines = []
    ra = np.linspace(0.0, 2 * np.pi, 721)
    matrix = equatorial_to_galactic_matrix()
    for limit in (exposure.latitude_deg + exposure.theta_max_deg,
                  exposure.latitude_deg - exposure.theta_max_deg):  # fmt: skip
        if -90.0 < limit < 90.0:
            dec = np.radians(limit)
            equatorial = np.stack(
                [np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.full_like(ra, np.sin(dec))],
                axis=1,
            )
            lines.append(equatorial @ matrix.T)
    return lines


def _plot_exposure(s: DatasetSummary, output) -> Path:
    nside = hp.npix2nside(s.pixel_sum.size)
    relative = s.dataset.exposure.pixel_exposure(nside)
    mean_counts = s.pixel_sum / s.n_maps
    fig = Figure(figsize=(11.2, 4.2))
    panels = (
        (relative, "relative exposure (maximum 1)", "configured exposure", "magma"),
        (mean_counts, "mean CRs per pixel and map", f"mean counts of {s.n_maps:,} maps", "viridis"),
    )
    for k, (values, label, title, cmap) in enumerate(panels):
        ax = fig.add_subplot(1, 2, k + 1, projection="mollweide")
        mesh = healpix_mesh(ax, values, cmap=cmap, vmin=0.0)
        for n, line in enumerate(exposure_boundaries(s.dataset)):
            sky_line(ax, line, color="cyan", lw=1.2, label="exposure boundary" if n == 0 else None)
        ax.set_title(title, fontsize=9, pad=10)
        galactic_ticks(ax)
        fig.colorbar(mesh, ax=ax, orientation="horizontal", fraction=0.06, pad=0.06, label=label)
        if k == 0 and ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(-0.08, 0.02), fontsize=8)
    config = ", ".join(f"{k} {v}" for k, v in s.dataset.config["exposure"].items())
    fig.suptitle(
        f"Exposure of dataset {s.dataset.name!r} ({config})\n"
        f"Galactic coordinates, GC at centre, longitude to the left; nside {nside}",
        fontsize=10,
    )
    return save_png(fig, output)


def plot_dataset(
    chunks: list[str | Path], spectrum_png, charges_png, exposure_png, mean_counts_fits
) -> DatasetSummary:
    """Read the chunks of one dataset and write the three figures and the mean counts map."""
    summary = summarize_dataset(chunks)
    _plot_spectrum(summary, spectrum_png)
    _plot_charges(summary, charges_png)
    _plot_exposure(summary, exposure_png)
    write_maps(
        mean_counts_fits,
        {"mean_counts": summary.pixel_sum / summary.n_maps},
        "counts",
        f"mean CRs per pixel and map of dataset {summary.dataset.name} ({summary.n_maps} maps)",
    )
    return summary
