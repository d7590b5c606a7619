"""Whole simulated skies of one dataset, and the chunk job that writes them (``crsky skymaps``).

A map of N CRs with signal fraction f (drawn per map) has n_signal = round(f N) (or binomial) CRs
from its sources and N − n_signal isotropic CRs drawn on the exposure-weighted sky
(:mod:`crsky.sky.isotropic`). Every CR gets an energy from the spectrum above the threshold and a
charge from the composition; energies are quantised to the stored grid (``crsky.store``) *before*
rigidities are computed, so a stored (E, Z) is exactly the one that was deflected.

Signal CRs are drawn as *emitted* CRs and kept only when *observed*: a source is picked by flux,
the CR is deflected (toy model, lens, or not at all), and kept with probability ω / max ω of the
relative exposure at its arrival direction (lens mode: pixel-averaged exposure at the lens nside)
and, in lens mode, only if the lens does not lose it (transparency). Rejected CRs are replaced by
new emitted ones until the map has its n_signal observed signal CRs, so exposure and transparency
shape the signal's arrival directions, energies and charges (see :mod:`crsky.sky.deflection`).
If a map's sources are practically unobservable (none of the first 100 emitted CRs observed, or
fewer than 1 in ``MAX_ATTEMPTS_PER_CR`` = 20 overall: the sources sit where the detector has less
than about 5 % of its best exposure), random sources are redrawn for that map (counted in the
chunk attribute ``n_source_redraws``): random source positions are conditioned on an observable
signal. Fixed sources that cannot be observed are a configuration error.

A lens mix (``deflection.lens`` lists several lenses) deflects each map with one of them, drawn
uniformly per map (``lens_index``, after the signal counts, from the chunk's stream); single-lens
and other datasets draw nothing extra, so their bytes do not change.
"""

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import healpy as hp
import numpy as np

from crsky import __version__
from crsky.errors import ConfigError
from crsky.rng import job_rng
from crsky.sky._kernels import (
    background_keys,
    keep_first,
    scatter_keys,
    sort_rows,
    unpack_keys,
)
from crsky.sky.dataset import DatasetConfig, dataset_stream_id
from crsky.sky.deflection import LensDeflection, LensLike, check_lens_coverage, perpendicular_axes
from crsky.sky.isotropic import isotropic_sampler
from crsky.sky.sources import signal_counts
from crsky.store import (
    LOG10_ENERGY_ORIGIN,
    LOG10_ENERGY_STEP,
    decode_energies,
    pixel_lookup,
    write_chunk,
)

__all__ = [
    "BATCH_MAPS",
    "MAX_ATTEMPTS_PER_CR",
    "MapBatch",
    "SkySimulator",
    "check_lens_compatible",
    "check_lens_mix",
    "dequantise_log10_energy",
    "lens_acceptance",
    "quantise_log10_energy",
    "run_chunk",
]

log = logging.getLogger(__name__)

BATCH_MAPS = 1024  # maps simulated (and written) at once; part of what fixes the bytes
MAX_ATTEMPTS_PER_CR = 20  # acceptance floor 1 / 20 below which a map's sources are unobservable
_MAX_REDRAWS = 1000  # per map
_PRIOR_DRAWS = 20.0  # weight of the lens's expected acceptance, in emitted CRs
_PILOT = 100  # emitted CRs without any observed one that mark a source as unobservable
_MAX_CANDIDATES = 1 << 21  # emitted signal candidates evaluated per round


def quantise_log10_energy(log10_energy: np.ndarray) -> np.ndarray:
    """Index (int64) of the nearest stored value LOG10_ENERGY_ORIGIN + k · LOG10_ENERGY_STEP."""
    return np.rint((np.asarray(log10_energy) - LOG10_ENERGY_ORIGIN) / LOG10_ENERGY_STEP).astype(
        np.int64
    )


def dequantise_log10_energy(code: np.ndarray) -> np.ndarray:
    """Stored log10(E / eV) (float64, exactly representable in float32) of energy indices."""
    return LOG10_ENERGY_ORIGIN + np.asarray(code, dtype=np.float64) * LOG10_ENERGY_STEP


@dataclass
class MapBatch:
    """Simulated maps: CR arrays (n_maps, n_cr) sorted within each map, and labels per map.
    ``energy_code`` (uint16) is the stored energy index k of log10(E / eV) = origin + k · step
    (crsky.store); :attr:`log10_energy` gives the energies."""

    pixel: np.ndarray
    energy_code: np.ndarray
    charge: np.ndarray
    is_signal: np.ndarray
    signal_fraction: np.ndarray
    n_signal: np.ndarray
    source_direction: np.ndarray
    source_flux: np.ndarray
    deflection_axis: np.ndarray | None
    n_source_redraws: int
    lens_index: np.ndarray | None = None

    @property
    def log10_energy(self) -> np.ndarray:
        """log10(E / eV) (n_maps, n_cr) float32, exactly the stored values."""
        return decode_energies(self.energy_code)


class SkySimulator:
    """Simulates maps of ``dataset``. Lens mode needs ``lens`` (see
    :func:`crsky.sky.deflection.load_lens`): one lens, or for a lens mix the list of lenses in
    the order of the dataset's ``deflection.lens``."""

    def __init__(self, dataset: DatasetConfig, lens: LensLike | Sequence[LensLike] | None = None):
        self.dataset = dataset
        self.mode = dataset.deflection_mode
        self.background = isotropic_sampler(dataset.nside, dataset.exposure)
        self.lens = None
        self.mix: list[SkySimulator] = []
        if self.mode != "lens":
            return
        lenses = [] if lens is None else list(lens) if isinstance(lens, list | tuple) else [lens]
        if not lenses:
            raise ConfigError(
                f"skymaps dataset {dataset.name!r} uses deflection 'lens' but no lens was given"
            )
        check_lens_mix(dataset, lenses)
        if len(lenses) > 1:  # one single-lens simulator per lens; maps are shared out
            self.mix = [SkySimulator(dataset, one) for one in lenses]
            return
        lens = lenses[0]
        self.lens = LensDeflection(
            lens, float(dataset.config["deflection"]["extragalactic_smearing_deg"])
        )
        self._lens_exposure = dataset.exposure.pixel_exposure(lens.nside)
        self._lens_to_stored = pixel_lookup(lens.nside, dataset.nside, False)
        self._lens_acceptance = lens_acceptance(dataset, lens, self._lens_exposure)

    # --- one CR population at a time -------------------------------------------------------
    def _energies_and_charges(self, n: int, rng: np.random.Generator):
        code = quantise_log10_energy(self.dataset.energy_sampler.sample(n, rng))
        charge = self.dataset.composition.sample(n, rng)
        return code, charge

    def _signal_candidates(self, rows, source_direction, axis, source_pixel, rng):
        """Emit one CR from each source ``rows`` (n,) int64 indexes, a flat index map · n_src +
        source into the maps' ``source_direction`` (n_maps, n_src, 3), toy ``axis`` (same shape)
        and, in lens mode, extragalactic lens pixels ``source_pixel`` (n_maps, n_src):
        (observed, pixel, code, charge)."""
        n = rows.size
        code, charge = self._energies_and_charges(n, rng)
        log10_r = dequantise_log10_energy(code) - np.log10(charge.astype(np.float64))
        directions = source_direction.reshape(-1, 3)
        if self.mode == "lens":
            smeared = self.lens.extragalactic_smearing_deg > 0
            observed_pixel = self.lens.observed_pixels(
                np.take(directions, rows, axis=0) if smeared else None,
                log10_r,
                rng,
                source_pixel.reshape(-1)[rows],
            )
            seen = observed_pixel >= 0
            exposure = np.zeros(n)
            exposure[seen] = self._lens_exposure[observed_pixel[seen]]
            observed = rng.random(n) < exposure
            pixel = np.where(observed, self._lens_to_stored[np.maximum(observed_pixel, 0)], -1)
            return observed, pixel, code, charge
        if self.mode == "toy":
            direction = self.dataset.toy_deflection.apply(
                directions, axis.reshape(-1, 3), log10_r, rng, rows
            )
        else:
            direction = np.take(directions, rows, axis=0)
        observed = rng.random(n) < self.dataset.exposure.of_direction(direction)
        pixel = np.full(n, -1, dtype=np.int64)
        d = direction[observed]
        pixel[observed] = hp.vec2pix(self.dataset.nside, d[:, 0], d[:, 1], d[:, 2])
        return observed, pixel, code, charge

    def _draw_sources(self, n_maps: int, rng: np.random.Generator):
        """Directions (n_maps, n_src, 3), toy axes (or None) and flux shares drawn per map
        (or None for fixed fluxes) of the sources of ``n_maps`` maps."""
        direction = self.dataset.sources.directions(n_maps, rng)
        axis = None
        if self.mode == "toy":
            flat = direction.reshape(-1, 3)
            axis = perpendicular_axes(flat, rng).reshape(direction.shape)
        return direction, axis, self.dataset.sources.draw_shares(n_maps, rng)

    def _expected_acceptance(self, source_direction: np.ndarray, shares):
        """Lens mode: (source pixels (n_maps, n_src), expected observed fraction (n_maps,) of the
        emitted signal CRs). Other modes: (None, None)."""
        if self.mode != "lens":
            return None, None
        d = source_direction.reshape(-1, 3)
        pixel = hp.vec2pix(self.lens.lens.nside, d[:, 0], d[:, 1], d[:, 2]).astype(np.int64)
        pixel = pixel.reshape(source_direction.shape[:2])
        if shares is None:
            return pixel, self._lens_acceptance[pixel] @ self.dataset.sources.flux_share
        return pixel, (self._lens_acceptance[pixel] * shares).sum(axis=1)

    def _redraw_unobservable(self, n_signal, source_direction, axis, shares, rng, redraws):
        """Lens mode: redraw sources whose expected acceptance is below the floor, up front."""
        source_pixel, prior = self._expected_acceptance(source_direction, shares)
        while prior is not None:
            hopeless = (n_signal > 0) & (prior * MAX_ATTEMPTS_PER_CR < 1.0)
            if not hopeless.any():
                break
            self._redraw(hopeless, source_direction, axis, shares, rng, redraws)
            source_pixel, prior = self._expected_acceptance(source_direction, shares)
        return source_pixel, prior

    def _signal(self, n_signal, source_direction, axis, shares, rng):
        """Observed signal CRs of every map: flat (map, pixel, code, charge), the final source
        directions, axes and drawn flux shares (redrawn where unobservable), and the number of
        redraws."""
        n_maps = n_signal.size
        sources = self.dataset.sources
        need = n_signal.copy()
        attempts = np.zeros(n_maps, dtype=np.int64)
        seen = np.zeros(n_maps, dtype=np.int64)
        redraws = np.zeros(n_maps, dtype=np.int64)
        generation = np.zeros(n_maps, dtype=np.int64)
        last = np.zeros(n_maps, dtype=np.int64)  # candidates of each map in the last round
        source_pixel, prior = self._redraw_unobservable(
            n_signal, source_direction, axis, shares, rng, redraws
        )
        kept = []
        while (active := np.flatnonzero(need > 0)).size:
            if prior is None:  # adaptive: grow by at most 2x per round
                acceptance = (seen[active] + 1.0) / (attempts[active] + 2.0)
                per_map = np.ceil(need[active] * np.minimum(1.15 / acceptance, MAX_ATTEMPTS_PER_CR))
                per_map = np.minimum(per_map, np.maximum(2 * need[active], 2 * last[active]))
            else:  # the lens's expected acceptance, as 20 pseudo-draws
                acceptance = (seen[active] + _PRIOR_DRAWS * prior[active]) / (
                    attempts[active] + _PRIOR_DRAWS
                )
                per_map = np.ceil(need[active] * np.minimum(1.1 / acceptance, MAX_ATTEMPTS_PER_CR))
                per_map += 2
            per_map = per_map.astype(np.int64)
            total = per_map.sum()
            if total > _MAX_CANDIDATES:
                per_map = np.maximum(1, per_map * _MAX_CANDIDATES // total)
            last[active] = per_map
            m = np.repeat(active, per_map)
            k = sources.pick(m.size, rng, None if shares is None else shares[m])
            observed, pixel, code, charge = self._signal_candidates(
                m * sources.n_sources + k, source_direction, axis, source_pixel, rng
            )
            # the first need[m] observed candidates of each map (candidates are grouped by map)
            keep = keep_first(observed, per_map, need[active])
            kept.append((m[keep], generation[m[keep]], pixel[keep], code[keep], charge[keep]))
            need -= np.bincount(m[keep], minlength=n_maps)
            attempts += np.bincount(m, minlength=n_maps)
            seen += np.bincount(m[observed], minlength=n_maps)
            hopeless = (need > 0) & (attempts > MAX_ATTEMPTS_PER_CR * n_signal + _PILOT)
            if prior is None:
                hopeless |= (need > 0) & (seen == 0) & (attempts >= _PILOT)
            if hopeless.any():
                self._redraw(hopeless, source_direction, axis, shares, rng, redraws)
                generation[hopeless] += 1
                need[hopeless] = n_signal[hopeless]
                attempts[hopeless] = seen[hopeless] = last[hopeless] = 0
                source_pixel, prior = self._redraw_unobservable(
                    n_signal, source_direction, axis, shares, rng, redraws
                )
        if kept:
            m, gen, pixel, code, charge = (np.concatenate(c) for c in zip(*kept, strict=True))
        else:
            m = gen = pixel = code = np.zeros(0, np.int64)
            charge = np.zeros(0, np.uint8)
        current = gen == generation[m]
        return (m[current], pixel[current], code[current], charge[current]), int(redraws.sum())

    def _redraw(self, hopeless, source_direction, axis, shares, rng, redraws) -> None:
        where = np.flatnonzero(hopeless)
        name = self.dataset.name
        if self.dataset.sources.positions_deg is not None:
            raise ConfigError(
                f"skymaps dataset {name!r}: fewer than 1 in {MAX_ATTEMPTS_PER_CR} CRs from the "
                "fixed source positions is observed (exposure and lens); choose other 'positions'"
            )
        redraws[where] += 1
        if redraws.max() > _MAX_REDRAWS:
            raise ConfigError(
                f"skymaps dataset {name!r}: no observable source position found in {_MAX_REDRAWS} "
                "random draws (check the exposure and the lens transparency)"
            )
        new_direction, new_axis, new_shares = self._draw_sources(where.size, rng)
        source_direction[where] = new_direction
        if axis is not None:
            axis[where] = new_axis
        if shares is not None:
            shares[where] = new_shares

    def _background_keys(self, keys, n_background, rng) -> None:
        """Isotropic CRs into keys[m, :n_background[m]]: one compiled pass drawing 3 uniforms
        per CR from a xoshiro256** stream whose 256-bit state is drawn from ``rng`` (cheaper
        than having ``rng`` fill an array of uniforms first)."""
        d = self.dataset
        state = rng.integers(0, 1 << 64, size=4, dtype=np.uint64, endpoint=False)
        state[0] |= np.uint64(state.any() == 0)  # xoshiro's one forbidden state: all zero
        background_keys(
            keys,
            n_background,
            state,
            self.background.alias_table,
            d.energy_sampler.inverse_table,
            d.composition.cumulative,
            np.asarray(d.composition.charges, dtype=np.uint8),
            LOG10_ENERGY_ORIGIN,
            LOG10_ENERGY_STEP,
        )

    # --- whole maps ------------------------------------------------------------------------
    def observable_sources(self, n_signal: np.ndarray, rng: np.random.Generator):
        """Source directions (n_maps, n_src, 3) and toy rotation axes (or None) drawn exactly as
        :meth:`simulate` draws them for maps with ``n_signal`` (n_maps,) signal CRs: random
        positions are redrawn where that signal cannot be observed, which the signal CRs
        themselves decide (they are simulated and discarded). Used to score isotropic maps
        with sources from the same prior as the signal maps'."""
        if self.mix:
            raise ConfigError(
                f"skymaps dataset {self.dataset.name!r} mixes lenses: drawing sources for its "
                "signal model needs one lens (the likelihood analyses do not model lens mixes)"
            )
        n_signal = np.asarray(n_signal, dtype=np.int64)
        direction, axis, shares = self._draw_sources(n_signal.size, rng)
        self._signal(n_signal, direction, axis, shares, rng)
        return direction, axis

    def _mixed_signal(self, lens_index, n_signal, source_direction, axis, shares, rng):
        """:meth:`_signal` of a lens mix (lens mode: no axes): the maps of each lens k
        (``lens_index`` == k) by the simulator of lens k, in lens order; source directions and
        drawn flux shares redrawn in place."""
        parts, redraws = [], 0
        for k, simulator in enumerate(self.mix):
            maps = np.flatnonzero(lens_index == k)
            if maps.size == 0:
                continue
            direction = source_direction[maps]
            share = None if shares is None else shares[maps]
            part, n = simulator._signal(n_signal[maps], direction, axis, share, rng)
            source_direction[maps] = direction
            if shares is not None:
                shares[maps] = share
            parts.append((maps[part[0]], *part[1:]))
            redraws += n
        if not parts:
            empty = np.zeros(0, np.int64)
            return (empty, empty, empty, np.zeros(0, np.uint8)), 0
        return tuple(np.concatenate(c) for c in zip(*parts, strict=True)), redraws

    def simulate(self, n_maps: int, rng: np.random.Generator) -> MapBatch:
        """Simulate ``n_maps`` maps with ``rng``."""
        d = self.dataset
        n_cr = d.n_cr
        fraction = d.signal_fraction.sample(n_maps, rng)
        n_signal = signal_counts_for(d, fraction, rng)
        lens_index = rng.integers(len(self.mix), size=n_maps) if self.mix else None
        source_direction, axis, shares = self._draw_sources(n_maps, rng)
        n_background = n_cr - n_signal
        keys = np.empty((n_maps, n_cr), dtype=np.uint64)
        self._background_keys(keys, n_background, rng)
        if self.mix:
            signal = self._mixed_signal(lens_index, n_signal, source_direction, axis, shares, rng)
        else:
            signal = self._signal(n_signal, source_direction, axis, shares, rng)
        (sig_map, sig_pixel, sig_code, sig_charge), redraws = signal
        order = np.argsort(sig_map, kind="stable")
        sig_map = sig_map[order]
        first_sig = np.repeat(np.cumsum(n_signal) - n_signal, n_signal)
        sig_slot = sig_map * n_cr + n_background[sig_map] + np.arange(sig_map.size) - first_sig
        flat = keys.reshape(-1)  # a view
        scatter_keys(flat, sig_slot, sig_pixel[order], sig_code[order], sig_charge[order], True)
        sort_rows(keys)  # = keys.sort(axis=1), faster
        pixel, energy_code, charge, is_signal = unpack_keys(keys)
        return MapBatch(
            pixel=pixel,
            energy_code=energy_code,
            charge=charge,
            is_signal=is_signal,
            signal_fraction=fraction,
            n_signal=n_signal,
            source_direction=source_direction,
            source_flux=d.sources.map_shares(n_maps, shares),
            deflection_axis=axis,
            n_source_redraws=redraws,
            lens_index=lens_index,
        )


def check_lens_compatible(dataset: DatasetConfig, lens: LensLike) -> None:
    """ConfigError unless ``lens`` can deflect every signal CR of ``dataset``: the dataset's
    nside must not exceed the lens nside, and the lens bins must cover log10(E / Z) for every
    charge and every stored energy (energies rounded to the stored grid)."""
    if lens.nside < dataset.nside:
        raise ConfigError(
            f"{dataset.key}.nside: 'nside' {dataset.nside} exceeds the lens nside {lens.nside}"
        )
    stored = dequantise_log10_energy(
        quantise_log10_energy([dataset.log10_energy_min, dataset.log10_energy_max])
    )
    try:
        check_lens_coverage(lens, stored[0], stored[1], dataset.composition.charges)
    except ConfigError as err:
        raise ConfigError(f"{dataset.key}: {err}") from None


def check_lens_mix(
    dataset: DatasetConfig, lenses: Sequence[LensLike], names: Sequence[str] | None = None
) -> None:
    """ConfigError unless the lenses of a mix have one nside and one set of rigidity bins (the
    maps of one dataset share their resolution and the rigidities the lens resolves) and each
    fits ``dataset`` (check_lens_compatible). ``names``: the lenses' names, for the message
    (default: the dataset's deflection.lens)."""
    if len(lenses) > 1:
        names = list(names or dataset.lens_names or [f"lens {k}" for k in range(len(lenses))])
        _check_same_grid(f"skymaps.datasets.{dataset.name}.deflection.lens", lenses, names)
    for lens in lenses:
        check_lens_compatible(dataset, lens)


def _check_same_grid(key: str, lenses: Sequence[LensLike], names: list[str]) -> None:
    nsides = [int(lens.nside) for lens in lenses]
    if len(set(nsides)) > 1:
        listed = ", ".join(f"{n}: {v}" for n, v in zip(names, nsides, strict=True))
        raise ConfigError(
            f"{key}: the mixed lenses have different nside ({listed}); a mix needs one nside"
        )
    first = np.asarray(lenses[0].log10_rigidity_edges, dtype=np.float64)
    for name, lens in zip(names[1:], lenses[1:], strict=True):
        edges = np.asarray(lens.log10_rigidity_edges, dtype=np.float64)
        if edges.shape != first.shape or not np.allclose(edges, first, rtol=0.0, atol=1e-9):
            raise ConfigError(
                f"{key}: the mixed lenses have different rigidity bins ({names[0]}: "
                f"{first.size - 1} bins {first[0]:g} ... {first[-1]:g}, {name}: "
                f"{edges.size - 1} bins {edges[0]:g} ... {edges[-1]:g}); a mix needs one set "
                "of bins"
            )


def lens_acceptance(dataset: DatasetConfig, lens: LensLike, exposure: np.ndarray) -> np.ndarray:
    """Expected fraction (npix,) of emitted signal CRs from each extragalactic lens pixel j that
    are observed: Σ_b P(b) Σ_i M_b[i, j] ω_i, with P(b) the share of the dataset's CRs (energy
    spectrum and composition) whose rigidity falls in lens bin b and ω the pixel-averaged
    relative exposure (npix,) at the lens nside."""
    edges = np.asarray(lens.log10_rigidity_edges, dtype=np.float64)
    sampler, composition = dataset.energy_sampler, dataset.composition
    share = np.zeros(edges.size - 1)
    for charge, fraction in zip(composition.charges, composition.fractions, strict=True):
        share += fraction * np.diff(sampler.cdf(edges + np.log10(charge)))
    out = np.zeros(hp.nside2npix(lens.nside))
    for b in np.flatnonzero(share > 0):
        out += share[b] * (lens.matrix(0.5 * (edges[b] + edges[b + 1])).T @ exposure)
    return out


def signal_counts_for(
    dataset: DatasetConfig, fraction: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """n_signal per map for the dataset's counting mode."""
    return signal_counts(fraction, dataset.n_cr, dataset.config["signal_count"], rng)


def _lens_attributes(dataset: DatasetConfig, folders: list) -> dict:
    """Lens provenance of a lens-mode chunk: ``lens_names`` (JSON list; the dataset's
    deflection.lens, else the folder names) and, for one lens, ``lens_folder`` and
    ``lens_cfg`` (its lens.cfg text); for a mix ``lens_folders`` and ``lens_cfgs`` (JSON lists,
    in lens_index order)."""
    names = list(dataset.lens_names) or [Path(folder).name for folder in folders]
    if len(names) != len(folders):
        raise ConfigError(
            f"skymaps dataset {dataset.name!r} names lenses {names}, but {len(folders)} lens "
            "folders were given; give one folder per lens, in the same order"
        )
    cfgs = [(Path(folder) / "lens.cfg").read_text() for folder in folders]
    attrs = {"lens_names": json.dumps(names)}
    if len(folders) == 1:
        attrs["lens_folder"], attrs["lens_cfg"] = str(folders[0]), cfgs[0]
    else:
        attrs["lens_folders"] = json.dumps([str(folder) for folder in folders])
        attrs["lens_cfgs"] = json.dumps(cfgs)
    return attrs


def chunk_attributes(
    dataset: DatasetConfig,
    chunk: int,
    seed: int,
    lens_folder: str | Path | Sequence[str | Path] | None,
) -> dict:
    """Attributes of a chunk file (crsky.store documents them); ``lens_folder``: the lens
    folder, or the folders of a lens mix in lens_index order."""
    first, _ = dataset.chunk_range(chunk)
    attrs = {
        "dataset": dataset.name,
        "chunk": chunk,
        "n_chunks": dataset.n_chunks,
        "first_map": first,
        "nside": dataset.nside,
        "ordering": "RING",
        "n_cr": dataset.n_cr,
        "seed": int(seed),
        "config": json.dumps(dataset.config, sort_keys=True),
        "log10_energy_step": LOG10_ENERGY_STEP,
        "log10_energy_origin": LOG10_ENERGY_ORIGIN,
        "deflection_mode": dataset.deflection_mode,
        "crsky_version": __version__,
    }
    if lens_folder is not None:
        folders = list(lens_folder) if isinstance(lens_folder, list | tuple) else [lens_folder]
        attrs.update(_lens_attributes(dataset, folders))
    return attrs


def run_chunk(
    dataset: DatasetConfig,
    chunk: int,
    seed: int,
    output: str | Path,
    lens: LensLike | Sequence[LensLike] | None = None,
    lens_folder: str | Path | Sequence[str | Path] | None = None,
) -> Path:
    """Simulate chunk ``chunk`` of ``dataset`` and write it atomically to ``output`` (HDF5).
    Lens mode: ``lens`` and ``lens_folder`` are one lens and its folder, or lists (a lens mix,
    in the order of the dataset's deflection.lens).

    The random stream is job_rng(seed, "skymaps", dataset_stream_id(name), chunk): rerunning a
    chunk alone gives the same bytes.
    """
    first, stop = dataset.chunk_range(chunk)
    attrs = chunk_attributes(dataset, chunk, seed, lens_folder)
    simulator = SkySimulator(dataset, lens)
    rng = job_rng(seed, "skymaps", dataset_stream_id(dataset.name), chunk)
    n_maps, n_cr, n_src = stop - first, dataset.n_cr, dataset.sources.n_sources
    redraws = 0
    begin = time.perf_counter()
    toy = dataset.deflection_mode == "toy"
    with write_chunk(
        output,
        n_maps,
        n_cr,
        n_src,
        dataset.nside,
        deflection_axis=toy,
        lens_index=bool(simulator.mix),
    ) as writer:
        for start in range(0, n_maps, BATCH_MAPS):
            end = min(start + BATCH_MAPS, n_maps)
            batch = simulator.simulate(end - start, rng)
            redraws += batch.n_source_redraws
            writer.write(start, {name: getattr(batch, name) for name in writer.columns})
            elapsed = time.perf_counter() - begin
            log.info(
                "%s chunk %d: %d/%d maps (%.0f maps/s)",
                dataset.name,
                chunk,
                end,
                n_maps,
                end / elapsed,
            )
        writer.finish({**attrs, "n_source_redraws": redraws})
    return Path(output)
