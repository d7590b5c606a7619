"""A trained model folder (DESIGN.md section 4, "Model") and the scores it gives to maps.

The folder holds ``model.keras`` and ``config.json`` (the config used; crsky.train.loop). A crsky
model reads a chunk's CR lists as they are stored, ``pixel`` (batch, n_cr) int32 RING pixels at
the model's ``nside`` and, if it has such an input, ``log10_energy`` (batch, n_cr) float32, and
renders them into its own layout (crsky.models.render). ``config.json`` gives ``nside`` and may
give ``ordering`` (default "RING"). The score of a map is the model's output before a final
sigmoid, i.e. the logit of the signal probability (classification), or the predicted signal
fraction in percent (regression); higher means more signal-like either way. The logit is a monotone
transform of the probability, so the seed-002 p-values are unchanged, but unlike the float32
probability it does not saturate at 1 for strong signals, so the isotropic tail can be fitted
and the significance of such maps extrapolated (crsky.stats.significance).

TensorFlow is imported by :meth:`ModelFolder.load`, not at import time.
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crsky.errors import ConfigError, InputFileError
from crsky.evaluate.data import MapSet
from crsky.store import open_chunk

__all__ = ["MODEL_INPUTS", "ModelFolder", "score_maps"]

MODEL_INPUTS = ("pixel", "log10_energy")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelFolder:
    """A model folder's path, its ``config.json`` and the nside and ordering of its input."""

    path: Path
    config: dict
    nside: int
    ordering: str

    @property
    def name(self) -> str:
        return str(self.config.get("model", {}).get("name", self.path.name))

    @classmethod
    def open(cls, path) -> "ModelFolder":
        """Read ``config.json``; InputFileError naming the file if the folder is incomplete."""
        path = Path(path)
        for name in ("model.keras", "config.json"):
            if not (path / name).is_file():
                raise InputFileError(
                    f"model folder {str(path)!r} has no {name!r} (expected model.keras and "
                    "config.json, as written by crsky train)"
                )
        try:
            config = json.loads((path / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise InputFileError(f"cannot read {str(path / 'config.json')!r}: {err}") from err
        nside = config.get("nside") if isinstance(config, dict) else None
        if isinstance(nside, bool) or not isinstance(nside, int) or nside < 1:
            raise InputFileError(
                f"{str(path / 'config.json')!r} must give the model's input 'nside', got {nside!r}"
            )
        return cls(path, config, nside, str(config.get("ordering", "RING")))

    def check_maps(self, maps: MapSet) -> None:
        """InputFileError unless the maps are at the model's nside and pixel ordering."""
        if maps.nside != self.nside:
            raise InputFileError(
                f"model {str(self.path)!r} reads maps at nside {self.nside}, but the {maps.role} "
                f"set {maps.dataset!r} ({str(maps.paths[0])!r}) is at nside {maps.nside}"
            )
        if maps.ordering != self.ordering:
            raise InputFileError(
                f"model {str(self.path)!r} reads {self.ordering} pixels, but the {maps.role} set "
                f"{maps.dataset!r} ({str(maps.paths[0])!r}) is in {maps.ordering} ordering"
            )

    def load(self):
        """The Keras model (crsky's custom layers registered), without its optimizer."""
        from crsky.models import load_model
        from crsky.models.render import RenderMaps

        try:
            model = load_model(self.path / "model.keras")
        except (OSError, ValueError, TypeError) as err:
            raise InputFileError(f"cannot load {str(self.path / 'model.keras')!r}: {err}") from err
        names = [t.name for t in model.inputs]
        unknown = sorted(set(names) - set(MODEL_INPUTS))
        if unknown or "pixel" not in names:
            raise InputFileError(
                f"model {str(self.path)!r} has inputs {names}; evaluation feeds CR lists "
                f"{list(MODEL_INPUTS)} and needs 'pixel'"
            )
        _logit_output(model)
        render = next((layer for layer in model.layers if isinstance(layer, RenderMaps)), None)
        if render is not None and int(render.nside) != self.nside:
            raise InputFileError(
                f"model {str(self.path)!r}: config.json says nside {self.nside}, its layer "
                f"{render.name!r} renders nside {render.nside}"
            )
        return model


def _logit_output(model) -> bool:
    """Score with the logit: drop the sigmoid of the model's final Dense layer (searched
    through nested models). True if there was one."""
    import keras

    layer = model.layers[-1]
    while hasattr(layer, "layers") and layer.layers:
        layer = layer.layers[-1]
    if (
        isinstance(layer, keras.layers.Dense)
        and getattr(layer.activation, "__name__", "") == "sigmoid"
    ):
        layer.activation = keras.activations.linear
        return True
    return False


def _chunk_inputs(path: Path, names: list[str], start: int, stop: int) -> dict[str, np.ndarray]:
    """CR columns of maps start ... stop - 1 (the chunk's format was checked by MapSet.open)."""
    with open_chunk(path) as chunk:
        out = {"pixel": chunk.read("pixel", slice(start, stop)).astype(np.int32)}
        if "log10_energy" in names:
            out["log10_energy"] = chunk.read("log10_energy", slice(start, stop))
    return out


def _structured(model, columns: dict[str, np.ndarray]):
    """The CR columns in the structure of the model's inputs (dict, list or single tensor)."""
    if isinstance(model.input, dict):
        return {key: columns[tensor.name] for key, tensor in model.input.items()}
    if isinstance(model.input, list | tuple):
        return [columns[tensor.name] for tensor in model.input]
    return columns[model.input.name]


def score_maps(model, maps: MapSet, batch_size: int = 256, read_maps: int = 8192) -> np.ndarray:
    """(total_maps,) float64 score of every map of ``maps``, in chunk order."""
    if batch_size < 1 or read_maps < 1:
        raise ConfigError(
            f"'batch_size' and 'read_maps' must be >= 1, got {batch_size}, {read_maps}"
        )
    names = [t.name for t in model.inputs]
    scores = []
    for path, n in zip(maps.paths, maps.n_maps, strict=True):
        for start in range(0, n, read_maps):
            stop = min(start + read_maps, n)
            inputs = _structured(model, _chunk_inputs(path, names, start, stop))
            out = np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0))
            if out.ndim == 2 and out.shape[1] == 2:
                out = out[:, 1]  # softmax (p_isotropy, p_signal)
            out = out.reshape(stop - start, -1)
            if out.shape[1] != 1:
                raise InputFileError(
                    f"model output has {out.shape[1]} values per map; evaluation needs one score"
                )
            scores.append(out[:, 0].astype(np.float64))
        log.info("scored %s set chunk %s (%d maps)", maps.role, path, n)
    result = np.concatenate(scores)
    if not np.all(np.isfinite(result)):
        raise InputFileError(f"the model gives NaN or infinite scores on the {maps.role} set")
    return result
