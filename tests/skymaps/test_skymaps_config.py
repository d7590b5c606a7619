"""The workflow config: schema defaults equal the library defaults; shipped datasets are valid."""

import yaml
from helpers import REPO

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
    assert set(default) <= set(production)  # production overlays the default config
    for name, spec in production.items():
        given = default.get(name, {})
        assert set(given) <= set(spec), f"{name}: production must set {set(given)}"
        big = DatasetConfig.from_dict(name, {**given, **spec})
        assert big.nside == 64 and big.chunk_size == 20000 and big.n_cr == 1000
        if name in default:
            assert DatasetConfig.from_dict(name, given).nside == 16
    modes = {DatasetConfig.from_dict(n, s).deflection_mode for n, s in production.items()}
    assert modes == {"toy", "lens"}
    assert DatasetConfig.from_dict("train", production["train"]).n_chunks == 25  # 500,000 maps
