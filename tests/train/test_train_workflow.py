"""The train rule: one job per configured model with the config's GPUs, and bad train configs
stopped before any job (dry-runs; no pool, no GPU)."""

import pytest
import yaml
from helpers import run_snakemake


def dry_run(checkout, tmp_path, overrides: dict) -> tuple[int, str]:
    """``snakemake -n -p`` of the default config with ``overrides`` merged over it, in a
    checkout without results."""
    extra = tmp_path / "override.yaml"
    extra.write_text(yaml.safe_dump(overrides))
    return run_snakemake("-n", "-p", "--configfile", str(extra), cwd=checkout, check=False)


def test_one_train_job_per_model_on_the_configured_gpus(checkout, tmp_path):
    models = [
        {"name": "a", "family": "deepsphere", "depth": 2},
        {"name": "b", "family": "patches", "depth": 4, "channels": 8},
        {"name": "c", "task": "regression", "inputs": ["counts", "mean_log10_energy"]},
    ]
    code, output = dry_run(checkout, tmp_path, {"models": models, "train": {"gpus": 2}})
    assert code == 0, output
    jobs = [block for block in output.split("rule train:")[1:]]
    assert len(jobs) == 3
    for block in jobs:
        assert "request_gpus=2" in block
        assert "crsky train --output results/models/" in block
        assert "results/skymaps/train_isotropy/chunk0000.h5" in block  # classes mixed
        assert '"gpus": 2' in block and "--seed 20191127" in block


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"models": [{"name": "deep", "depth": 5}]}, "depth 5 pools nside 16 below 1"),
        (
            {"train": {"training_datasets": ["train", "isotropy"]}},
            "the evaluation's test or isotropy",
        ),
        ({"models": [{"name": "x"}, {"name": "x", "family": "patches"}]}, "names must be unique"),
    ],
    ids=["too-deep", "trains-on-evaluation-maps", "duplicate-names"],
)
def test_bad_train_config_stops_before_any_job(checkout, tmp_path, overrides, message):
    code, output = dry_run(checkout, tmp_path, overrides)
    assert code != 0 and message in output
