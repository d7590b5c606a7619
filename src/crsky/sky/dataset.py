"""The configuration of one skymap dataset (``skymaps.datasets.<name>`` in the workflow config).

Every key has a default (``DATASET_DEFAULTS``, the same values as
workflow/schemas/config.schema.yaml); a dataset lists only what differs. Sections merge key by
key, except ``composition``, ``signal_fraction`` and ``spectrum``, which replace the default as a
whole. Energies are in EeV, angles in degrees. Maps are cut into chunks of ``chunk_size`` maps:
chunk k holds maps k · chunk_size ... min((k + 1) · chunk_size, n_maps) − 1, and is one job.
"""

import copy
import hashlib
import math
import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from crsky.errors import ConfigError, did_you_mean
from crsky.sky.composition import Composition
from crsky.sky.deflection import ToyDeflection
from crsky.sky.exposure import Exposure
from crsky.sky.sources import SIGNAL_COUNT_MODES, SignalFraction, Sources
from crsky.sky.spectrum import EnergySampler, spectrum_from_config
from crsky.sphere import check_nside
from crsky.store import LOG10_ENERGY_MAX, LOG10_ENERGY_ORIGIN

__all__ = [
    "DATASET_DEFAULTS",
    "DEFLECTION_MODES",
    "MAX_CHUNK_SIZE",
    "MAX_LENSES_PER_MIX",
    "DatasetConfig",
    "dataset_stream_id",
]

DEFLECTION_MODES = ("toy", "lens", "none")
MAX_LENSES_PER_MIX = 255  # lens_index is stored as uint8
# Maps per chunk (one job, one file): seed 000 held at most 20,000 maps at once; a chunk job's
# memory and the training pipeline's interleaving are sized for that.
MAX_CHUNK_SIZE = 20_000

DATASET_DEFAULTS = {
    "n_maps": 1000,
    "chunk_size": 20000,
    "n_cr": 1000,
    "nside": 64,
    "energy_min_eev": 40.0,
    "energy_max_eev": 316.0,
    "spectrum": {"model": "auger2019"},
    "composition": {"H": 0.15, "He": 0.45, "N": 0.40},
    "exposure": {"model": "sommers", "latitude_deg": -35.2, "theta_max_deg": 60.0},
    "sources": {"n_sources": 1, "positions": "random", "fluxes": "equal"},
    "signal_fraction": {"value": 0.055},
    "signal_count": "round",
    "deflection": {
        "mode": "toy",
        "blur_fraction": 0.5,
        "rotation_rad_ev": 2.79,
        "extragalactic_smearing_deg": 0.0,
        "lens": None,
    },
}
_REPLACED = ("composition", "signal_fraction", "spectrum")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _merge(defaults: dict, given: dict, where: str) -> dict:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}: unknown key{did_you_mean(unknown[0], defaults)} "
            f"(keys of {where}: {', '.join(sorted(defaults))})"
        )
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        if isinstance(defaults[key], dict) and key not in _REPLACED:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.{key} must be a mapping, got {value!r}")
            out[key] = _merge(defaults[key], value, f"{where}.{key}")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _positive_int(config: dict, key: str, where: str, maximum: int) -> int:
    value = config[key]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or not 1 <= value <= maximum
    ):
        raise ConfigError(f"{where}.{key} must be an integer in 1 ... {maximum}, got {value!r}")
    return int(value)


def dataset_stream_id(name: str) -> int:
    """Stable 63-bit integer of a dataset name, one entry of the chunk's SeedSequence."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") >> 1


@dataclass(frozen=True)
class DatasetConfig:
    """A validated dataset: ``name`` and the full ``config`` (defaults filled in)."""

    name: str
    config: dict

    @classmethod
    def from_dict(cls, name: str, given: dict) -> "DatasetConfig":
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"skymaps.datasets: dataset name {name!r} must start with a letter and contain "
                "only letters, digits and underscores"
            )
        if not isinstance(given, dict):
            raise ConfigError(f"skymaps.datasets.{name} must be a mapping, got {given!r}")
        dataset = cls(name, _merge(DATASET_DEFAULTS, given, f"skymaps.datasets.{name}"))
        dataset.validate()
        return dataset

    # --- validation and parsed parts ------------------------------------------------------
    @property
    def key(self) -> str:
        """The dataset's config key, ``skymaps.datasets.<name>``, that error messages name."""
        return f"skymaps.datasets.{self.name}"

    def validate(self) -> None:
        """Build every part once, so that bad values stop here with a message naming
        ``skymaps.datasets.<name>.<key>``."""
        c, where = self.config, self.key
        _positive_int(c, "n_maps", where, 2**62)
        _positive_int(c, "chunk_size", where, MAX_CHUNK_SIZE)
        _positive_int(c, "n_cr", where, 65535)
        check_nside(_positive_int(c, "nside", where, 8192), f"{where}.nside")
        for key in ("energy_min_eev", "energy_max_eev"):
            value = c[key]
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (number and np.isfinite(value) and value > 0):
                raise ConfigError(f"{where}.{key} must be a positive number, got {value!r}")
        if c["energy_max_eev"] <= c["energy_min_eev"]:
            raise ConfigError(
                f"{where}.energy_max_eev = {c['energy_max_eev']!r} must exceed "
                f"energy_min_eev = {c['energy_min_eev']!r}"
            )
        if self.log10_energy_min < LOG10_ENERGY_ORIGIN or self.log10_energy_max > LOG10_ENERGY_MAX:
            raise ConfigError(
                f"{where}: energies {c['energy_min_eev']!r} ... {c['energy_max_eev']!r} EeV must "
                f"lie in the storable range 10^{LOG10_ENERGY_ORIGIN - 18:g} ... "
                f"10^{LOG10_ENERGY_MAX - 18:g} EeV (crsky.store)"
            )
        if c["signal_count"] not in SIGNAL_COUNT_MODES:
            raise ConfigError(
                f"{where}.signal_count must be one of {list(SIGNAL_COUNT_MODES)}, "
                f"got {c['signal_count']!r}"
            )
        if self.deflection_mode not in DEFLECTION_MODES:
            raise ConfigError(
                f"{where}.deflection.mode must be one of {list(DEFLECTION_MODES)}, "
                f"got {self.deflection_mode!r}"
            )
        self._check_lens_names()
        for key, part in (
            ("spectrum", "energy_sampler"),
            ("composition", "composition"),
            ("exposure", "exposure"),
            ("sources", "sources"),
            ("signal_fraction", "signal_fraction"),
            ("deflection", "toy_deflection"),
        ):
            try:
                getattr(self, part)
            except (TypeError, ValueError) as err:  # ConfigError, or a value of the wrong kind
                raise ConfigError(f"{where}.{key}: {err}") from None

    @property
    def n_maps(self) -> int:
        return int(self.config["n_maps"])

    @property
    def chunk_size(self) -> int:
        return int(self.config["chunk_size"])

    @property
    def n_cr(self) -> int:
        return int(self.config["n_cr"])

    @property
    def nside(self) -> int:
        return int(self.config["nside"])

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.n_maps / self.chunk_size)

    def chunk_range(self, chunk: int) -> tuple[int, int]:
        """(first map, one past the last map) of chunk ``chunk``."""
        if isinstance(chunk, bool) or not 0 <= chunk < self.n_chunks:
            raise ConfigError(
                f"chunk index {chunk!r} is outside dataset {self.name!r}'s chunks "
                f"0 ... {self.n_chunks - 1}"
            )
        first = chunk * self.chunk_size
        return first, min(first + self.chunk_size, self.n_maps)

    @property
    def log10_energy_min(self) -> float:
        return 18.0 + math.log10(self.config["energy_min_eev"])

    @property
    def log10_energy_max(self) -> float:
        return 18.0 + math.log10(self.config["energy_max_eev"])

    @property
    def deflection_mode(self) -> str:
        return self.config["deflection"]["mode"]

    @property
    def lens_names(self) -> tuple[str, ...]:
        """The lenses named by ``deflection.lens`` (lens mode): one, several to mix, or none
        (the workflow's only lens, resolved by the workflow before the chunk jobs run)."""
        given = self.config["deflection"]["lens"]
        if given is None:
            return ()
        return (given,) if isinstance(given, str) else tuple(given)

    @property
    def is_lens_mix(self) -> bool:
        """Each map is deflected by one of several lenses (recorded in its label lens_index)."""
        return len(self.lens_names) > 1

    def _check_lens_names(self) -> None:
        given = self.config["deflection"]["lens"]
        key = f"{self.key}.deflection.lens"
        if given is None:
            return
        if self.deflection_mode != "lens":
            raise ConfigError(
                f"{key} = {given!r}: names a lens, but deflection.mode is "
                f"{self.deflection_mode!r}; set mode: lens or remove 'lens'"
            )
        names = [given] if isinstance(given, str) else given
        if (
            not isinstance(names, list)
            or not names
            or not all(isinstance(n, str) and n for n in names)
        ):
            raise ConfigError(f"{key} = {given!r}: expected a lens name or a list of lens names")
        if len(set(names)) != len(names):
            raise ConfigError(f"{key} = {given!r}: a lens is listed twice; list each lens once")
        if len(names) > MAX_LENSES_PER_MIX:
            raise ConfigError(
                f"{key}: a mix holds at most {MAX_LENSES_PER_MIX} lenses, got {len(names)}"
            )

    @cached_property
    def energy_sampler(self) -> EnergySampler:
        return EnergySampler(
            spectrum_from_config(self.config["spectrum"]),
            self.log10_energy_min,
            self.log10_energy_max,
        )

    @cached_property
    def composition(self) -> Composition:
        return Composition.from_config(self.config["composition"])

    @cached_property
    def exposure(self) -> Exposure:
        return Exposure.from_config(self.config["exposure"])

    @cached_property
    def sources(self) -> Sources:
        return Sources.from_config(self.config["sources"])

    @cached_property
    def signal_fraction(self) -> SignalFraction:
        return SignalFraction.from_config(self.config["signal_fraction"])

    @cached_property
    def toy_deflection(self) -> ToyDeflection:
        d = self.config["deflection"]
        return ToyDeflection(float(d["blur_fraction"]), float(d["rotation_rad_ev"]))
