"""The workflow config: schema defaults equal the library defaults; shipped datasets are valid."""

import yaml
from conftest import REPO

from crsky.sky.dataset import DATASET_DEFAULTS, DatasetConfig


def _schema_defaults(schema: dict) -> dict:
    out = {}
    for key, sub in schema["properties"].items():
        if sub.get("type") == "object" and sub.get("default") == {} and "properties" in sub:
            out[key] = _schema_defaults(sub)
        elif "default" in sub:
            out[key] = sub["default"]
    return out


def test_schema_defaults_are_the_library_defaults():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert _schema_defaults(schema["$defs"]["skymap_dataset"]) == DATASET_DEFAULTS


def _datasets(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())["skymaps"]["datasets"]


def test_shipped_datasets_are_valid():
    default, production = _datasets("config.yaml"), _datasets("production.yaml")
    assert set(default) == set(production)  # production overlays the default config
    for name, spec in default.items():
        merged = {**spec, **production[name]}
        assert set(spec) <= set(production[name]), f"{name}: production must set {set(spec)}"
        small, big = DatasetConfig.from_dict(name, spec), DatasetConfig.from_dict(name, merged)
        assert small.nside == 16 and big.nside == 64
        assert big.chunk_size == 20000
    assert DatasetConfig.from_dict("train", production["train"]).n_chunks == 25  # 500,000 maps
