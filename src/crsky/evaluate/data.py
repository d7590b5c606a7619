"""The maps an evaluation reads: a test set (signal maps at known signal fractions) and an
isotropy set (maps without signal), each one or more skymap chunks (crsky.store)."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crsky.errors import ConfigError, InputFileError
from crsky.store import open_chunk

__all__ = ["MapSet", "check_compatible"]


@dataclass(frozen=True)
class MapSet:
    """Skymap chunks of one role ("test" or "isotropy"), in the given order.

    ``lens_folder`` is the lens the maps were simulated with (deflection mode "lens"), or None
    (no lens, or a lens mix); ``lens_folders`` every lens (several for a mix, in lens_index
    order).
    """

    role: str
    paths: tuple[Path, ...]
    n_maps: tuple[int, ...]
    dataset: str
    nside: int
    n_cr: int
    ordering: str
    lens_folder: str | None
    lens_folders: tuple[str, ...] = ()

    @classmethod
    def open(cls, paths, role: str) -> "MapSet":
        """Read every chunk's header. ConfigError for no chunks, InputFileError naming the file
        for an empty chunk or one whose dataset, nside, CRs per map or ordering differ."""
        paths = tuple(Path(p) for p in paths)
        if not paths:
            raise ConfigError(f"no {role} chunks given: the {role} set is empty")
        heads = []
        for path in paths:
            with open_chunk(path) as chunk:
                if chunk.n_maps == 0:
                    raise InputFileError(f"{role} chunk {str(path)!r} holds no maps")
                attrs = chunk.attrs
                heads.append(
                    (
                        chunk.n_maps,
                        (
                            chunk.dataset,
                            chunk.nside,
                            chunk.n_cr,
                            str(attrs.get("ordering", "RING")),
                            attrs.get("lens_folder"),
                            chunk.lens_folders,
                        ),
                    )
                )
        first = heads[0][1]
        for path, (_, head) in zip(paths, heads, strict=True):
            if head != first:
                raise InputFileError(
                    f"{role} chunk {str(path)!r} has (dataset, nside, CRs per map, ordering, "
                    f"lens, lenses) = {head}, but {str(paths[0])!r} has {first}"
                )
        return cls(role, paths, tuple(h[0] for h in heads), *first)

    @property
    def total_maps(self) -> int:
        return sum(self.n_maps)

    def labels(self) -> dict[str, np.ndarray]:
        """``signal_fraction`` (float64), ``n_signal`` (int64), ``chunk`` and ``map`` (index of
        the chunk in ``paths`` and of the map in its chunk) of every map, concatenated."""
        parts = {"signal_fraction": [], "n_signal": [], "chunk": [], "map": []}
        for k, path in enumerate(self.paths):
            with open_chunk(path) as chunk:
                labels = chunk.labels()
            parts["signal_fraction"].append(labels["signal_fraction"].astype(np.float64))
            parts["n_signal"].append(labels["n_signal"].astype(np.int64))
            parts["chunk"].append(np.full(self.n_maps[k], k, dtype=np.int32))
            parts["map"].append(np.arange(self.n_maps[k], dtype=np.int32))
        return {name: np.concatenate(arrays) for name, arrays in parts.items()}

    def describe(self) -> dict:
        """JSON-able summary for file attributes."""
        return {
            "role": self.role,
            "dataset": self.dataset,
            "chunks": [str(p) for p in self.paths],
            "n_maps": self.total_maps,
            "nside": self.nside,
            "n_cr": self.n_cr,
            "ordering": self.ordering,
            "lens_folder": self.lens_folder,
            "lens_folders": list(self.lens_folders),
        }

    def dataset_config(self) -> dict:
        """The dataset config the first chunk was simulated with."""
        with open_chunk(self.paths[0]) as chunk:
            return json.loads(json.dumps(chunk.config))


def check_compatible(test: MapSet, isotropy: MapSet) -> None:
    """InputFileError unless the isotropy set is signal-free and its maps are comparable with
    the test maps (same nside, CRs per map and ordering: pair counts and scores depend on all)."""
    for what in ("nside", "n_cr", "ordering"):
        a, b = getattr(test, what), getattr(isotropy, what)
        if a != b:
            raise InputFileError(
                f"test set {test.dataset!r} ({str(test.paths[0])!r}) has {what} {a}, isotropy "
                f"set {isotropy.dataset!r} ({str(isotropy.paths[0])!r}) has {b}; p-values need "
                "maps of the same kind"
            )
    n_signal = isotropy.labels()["n_signal"]
    if np.any(n_signal > 0):
        bad = int(np.argmax(n_signal > 0))
        raise InputFileError(
            f"isotropy set {isotropy.dataset!r} has {int(np.count_nonzero(n_signal))} maps with "
            f"signal CRs (first: map {bad} overall); it must be simulated with signal fraction 0"
        )
