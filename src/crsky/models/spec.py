"""Model specifications: one entry of the config's ``models`` list, checked before anything is
built (numpy only; no TensorFlow import)."""

import re
from dataclasses import asdict, dataclass, fields

from crsky.errors import ConfigError, check_options
from crsky.models.layout import FAMILIES
from crsky.sphere import check_nside

__all__ = [
    "ACTIVATIONS",
    "INPUTS",
    "POOLINGS",
    "SEED000_PATCHES",
    "TASKS",
    "ModelSpec",
    "default_channels",
]

TASKS = ("classification", "regression")
POOLINGS = ("average", "max")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "sigmoid", "softsign")
# Input channels rendered from the CR lists (crsky.train.pipeline): CR counts per pixel, and the
# mean log10(E / EeV) of the CRs in the pixel (0 where empty); seed 002 feeds both.
INPUTS = ("counts", "mean_log10_energy")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # a folder and Snakemake wildcard value


@dataclass(frozen=True)
class ModelSpec:
    """One network of either family (DESIGN.md section 5).

    ``depth`` blocks, each a convolution with ``channels[i]`` output channels (default
    16, 32, 64, 64, ...) followed by a pooling
    that halves nside (4 NESTED children → 1 pixel, or 2×2 in a patch), then a head of dense
    layers (``dense_units``) and one output: a sigmoid signal probability (classification) or the
    signal fraction in percent (regression). ``K`` is the Chebyshev order of the ``deepsphere``
    filters (K + 1 coefficients, reaching the K-th neighbour ring; 0 = per-pixel dense layer);
    ``kernel_size`` is
    the square kernel of the ``patches`` 2D convolutions. The ``pointcloud`` family
    (crsky.models.pointcloud) reads the CR list: ``K`` ≥ 1 angular scales of its neighbour
    densities, ``depth`` shared Dense layers per CR of ``channels[i]`` units, a readout over CRs
    (``pooling``: average = mean, max = maximum); no pixel pooling, so any depth fits any nside.
    """

    name: str
    family: str = "deepsphere"
    task: str = "classification"
    depth: int = 3
    channels: tuple[int, ...] = ()  # () = default_channels(depth)
    K: int = 5
    kernel_size: int = 3
    pooling: str = "average"
    dropout: float = 0.2
    l2: float = 1.0e-4
    activation: str = "relu"
    dense_activation: str = ""  # "" = activation
    dense_units: tuple[int, ...] = (64,)
    inputs: tuple[str, ...] = ("counts",)

    def __post_init__(self) -> None:
        if not self.channels and isinstance(self.depth, int):
            object.__setattr__(self, "channels", default_channels(self.depth))

    @classmethod
    def from_config(cls, entry: dict, key: str = "models[0]") -> "ModelSpec":
        """Build and validate a spec from one config entry; ``key`` names it in error messages."""
        check_options(entry, {f.name for f in fields(cls)}, key)
        if "name" not in entry:
            raise ConfigError(f"{key!r}: missing 'name'")
        values = dict(entry)
        channels = values.get("channels", ())
        if isinstance(channels, int) and not isinstance(channels, bool):
            depth = values.get("depth", cls.depth)
            channels = (channels,) * depth if isinstance(depth, int) else (channels,)
        values["channels"] = tuple(channels)
        for name in ("dense_units", "inputs"):
            if name in values:
                values[name] = tuple(values[name])
        spec = cls(**values)
        spec.validate(key)
        return spec

    def validate(self, key: str = "model") -> None:
        """Raise ConfigError naming ``key.option`` for any value out of range."""
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(
                f"{key}.name must start with a letter and hold only letters, digits and "
                f"underscores, got {self.name!r}"
            )
        _choice(key, "family", self.family, FAMILIES)
        _choice(key, "task", self.task, TASKS)
        _choice(key, "pooling", self.pooling, POOLINGS)
        _choice(key, "activation", self.activation, ACTIVATIONS)
        if self.dense_activation:
            _choice(key, "dense_activation", self.dense_activation, ACTIVATIONS)
        _integer(key, "depth", self.depth, 1)
        _integer(key, "K", self.K, 1 if self.family == "pointcloud" else 0)
        _integer(key, "kernel_size", self.kernel_size, 1)
        if len(self.channels) != self.depth:
            raise ConfigError(
                f"{key}.channels: expected one channel count per block (depth {self.depth}), "
                f"got {list(self.channels)}"
            )
        for i, c in enumerate(self.channels):
            _integer(key, f"channels[{i}]", c, 1)
        for i, u in enumerate(self.dense_units):
            _integer(key, f"dense_units[{i}]", u, 1)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{key}.dropout must be in [0, 1), got {self.dropout}")
        if not self.l2 >= 0.0:
            raise ConfigError(f"{key}.l2 must be >= 0, got {self.l2}")
        if not self.inputs or len(set(self.inputs)) != len(self.inputs):
            raise ConfigError(f"{key}.inputs must list distinct channels of {INPUTS}")
        for i, name in enumerate(self.inputs):
            _choice(key, f"inputs[{i}]", name, INPUTS)

    def check_nside(self, nside: int, key: str = "nside") -> int:
        """Raise ConfigError unless ``nside`` is a power of 2 that the ``depth`` poolings (each
        halving nside) leave at least 1."""
        nside = check_nside(nside, key)
        if self.family != "pointcloud" and 2**self.depth > nside:
            raise ConfigError(
                f"model {self.name!r}: depth {self.depth} pools nside {nside} below 1 (each "
                f"block halves nside; at most {nside.bit_length() - 1} blocks at nside {nside})"
            )
        return nside

    def to_config(self) -> dict:
        """Plain JSON-able dict; ``ModelSpec.from_config(spec.to_config())`` gives ``spec``."""
        out = asdict(self)
        for name in ("channels", "dense_units", "inputs"):
            out[name] = list(out[name])
        return out


def default_channels(depth: int) -> tuple[int, ...]:
    """16, 32, 64, 64, ...: channels doubling per block up to 64 (seed 002's last blocks)."""
    return tuple(min(16 << i, 64) for i in range(max(depth, 0)))


def _choice(key: str, option: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}.{option} must be one of {list(allowed)}, got {value!r}")


def _integer(key: str, option: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key}.{option} must be an integer >= {minimum}, got {value!r}")


# Seed 000's 12-patch network (Model.summary in the talk): 4 x (conv 3x3, 32 filters, max-pool),
# dropout, two dense layers of 768; 5,338,016 parameters at nside 64 before the output layer.
SEED000_PATCHES = ModelSpec(
    name="seed000",
    family="patches",
    depth=4,
    channels=(32,) * 4,
    pooling="max",
    dropout=0.5,
    dense_units=(768, 768),
)
