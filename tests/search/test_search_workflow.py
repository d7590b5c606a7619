"""The random search as a Snakemake fan-out, run for real at a tiny size: one train and one
validation job per trial, one selection; adding trials reruns only the new trial and the
selection (Snakemake's metadata: a finished trial's parameters do not change)."""

import json

import pytest
import yaml
from helpers import job_counts, snakemake, workflow_copy

_SMALL = {"nside": 4, "n_cr": 200, "chunk_size": 1000}
TINY_SEARCH = {
    "skymaps": {
        "datasets": {
            "train": {**_SMALL, "n_maps": 96},
            "train_isotropy": {**_SMALL, "n_maps": 96},
            "validation": {**_SMALL, "n_maps": 32},
            "validation_isotropy": {**_SMALL, "n_maps": 64},
            "search_validation": {**_SMALL, "n_maps": 16, "signal_fraction": {"value": 0.1}},
            "test": _SMALL,  # the winner's evaluation (planned only)
            "isotropy": _SMALL,
        }
    },
    "models": [],
    "train": {"epochs": 1, "batch_size_per_replica": 32, "shuffle_buffer": 256},
    "search": {
        "trials": 2,
        "seed": 3,
        "space": {
            "depth": [1, 2],
            "channels": [4],
            "dense_layers": [1],
            "dense_units": [8],
            "K": [2, 3],
            "activation": ["relu", "tanh"],
            "learning_rate": [1.0e-3, 3.0e-3],
        },
        "validation_dataset": "search_validation",
        "isotropy_dataset": "validation_isotropy",
        "signal_fraction": 0.1,
    },
}
TABLE = "results/search/search.csv"


@pytest.mark.slow
def test_search_selects_the_lowest_p_value_and_more_trials_retrain_nothing(tmp_path):
    workdir = workflow_copy(tmp_path, TINY_SEARCH)
    config = ("--configfile", "config/test.yaml")
    snakemake(TABLE, *config, "--cores", "2", cwd=workdir)
    records = [
        json.loads((workdir / f"results/search/trials/trial000{i}/validation.json").read_text())
        for i in range(2)
    ]
    lowest = min(records, key=lambda r: (r["p_value"], r["val_loss"]))
    best = json.loads((workdir / "results/models/search_best/config.json").read_text())
    assert best["search"]["trial"] == lowest["trial"] == best["model"]["name"]
    rows = (workdir / TABLE).read_text().splitlines()
    assert len(rows) == 3 and rows[1].startswith(f"1,{lowest['trial']},")
    # a third trial: only its jobs and the selection run
    (workdir / "config" / "more.yaml").write_text(yaml.safe_dump({"search": {"trials": 3}}))
    more = (*config, "config/more.yaml")
    output = snakemake("-n", TABLE, *more, cwd=workdir)
    assert job_counts(output) == {"search_train": 1, "search_validate": 1, "search_select": 1}
    assert "wildcards: trial=trial0002" in output
    assert "trial=trial0000" not in output and "trial=trial0001" not in output
    # the winner is evaluated like a configured model; nothing is trained for it
    output = snakemake("-n", "results/evaluate/search_best/significance.csv", *more, cwd=workdir)
    counts = job_counts(output)
    assert counts["evaluate"] == 1 and counts["search_train"] == 1 and "train" not in counts
