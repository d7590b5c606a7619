"""Random search (crsky.search): trial identity, the space checks, the ranking and the
selection job's files (no TensorFlow; the workflow run is in test_search_workflow.py)."""

import copy
import csv
import json

import pytest
from helpers import REPO, merged_config

from crsky.config import check_config, validate_config
from crsky.errors import ConfigError, InputFileError
from crsky.search import (
    RECORD_FORMAT,
    rank_records,
    select_trials,
    trial_name,
    trial_setup,
)

SPACE = {
    "depth": [2, 3],
    "dense_layers": [1, 2, 4],
    "activation": ["relu", "tanh", "softsign"],
    "pooling": ["average", "max"],
    "K": [3, 5, 10],
    "dropout": [0.2, 0.3, 0.4],
    "learning_rate": [1e-5, 1e-4],
}
SECTION = {"trials": 8, "seed": 7, "base": {"family": "deepsphere"}, "space": SPACE}


def test_a_trial_depends_only_on_seed_index_and_its_own_keys():
    trials = [trial_setup(SECTION, i, 1e-3) for i in range(40)]
    assert trials[3] == trial_setup({**SECTION, "trials": 2}, 3, 1e-3)  # count irrelevant
    entry, lr = trials[0]
    assert entry["name"] == "trial0000" and lr in SPACE["learning_rate"]
    assert len(entry["channels"]) == entry["depth"]  # default widths 16, 32, ... per block
    # every choice is drawn somewhere; draws differ between trials and seeds
    for key in ("depth", "K", "pooling", "activation"):
        assert {t[0][key] for t in trials} == set(SPACE[key])
    assert {len(t[0]["dense_units"]) for t in trials} == {1, 2, 4}
    other_seed = [trial_setup({**SECTION, "seed": 8}, i, 1e-3) for i in range(40)]
    assert other_seed != trials
    # a new key leaves every other key's draws as they were
    wider = {**SECTION, "space": {**SPACE, "l2": [0.1, 0.01]}}
    for i in range(10):
        entry, lr = trial_setup(wider, i, 1e-3)
        assert entry["l2"] in (0.1, 0.01)
        assert {k: v for k, v in entry.items() if k != "l2"} == trials[i][0] and lr == trials[i][1]


def _config(**search) -> dict:
    config = merged_config("config/config.yaml", "config/search.yaml")
    config["search"].update(search)
    validate_config(config, REPO / "workflow/schemas/config.schema.yaml")
    return config


def test_the_laptop_search_config_passes_and_bad_spaces_name_their_key():
    check_config(_config())
    config = _config()
    config["search"]["space"]["depth"] = [2, 6]
    with pytest.raises(ConfigError, match=r"search.space.depth = 6: .*pools nside 16 below 1"):
        check_config(config)
    config = _config()
    config["search"]["space"]["activation"] = ["relu", "swish"]
    with pytest.raises(ConfigError, match=r"search.space.activation = 'swish'"):
        check_config(config)
    with pytest.raises(ConfigError, match=r"search.signal_fraction = 0.07: dataset"):
        check_config(_config(signal_fraction=0.07))
    with pytest.raises(ConfigError, match=r"search.validation_dataset = 'test' is the eval"):
        check_config(_config(validation_dataset="test", signal_fraction=0.04))
    with pytest.raises(ConfigError, match=r"search.isotropy_dataset = 'validation' has maps"):
        check_config(_config(isotropy_dataset="validation"))
    config = _config()
    config["skymaps"]["datasets"]["test"]["nside"] = 8
    config["skymaps"]["datasets"]["isotropy"]["nside"] = 8
    with pytest.raises(ConfigError, match=r"evaluation.test_dataset = 'test' has nside 8"):
        check_config(config)


def _record(trial: str, p: float, val_loss: float) -> dict:
    entry, lr = trial_setup(SECTION, int(trial[5:]), 1e-3)
    model = {"dense_activation": "", "kernel_size": 3, "l2": 1e-4, **entry}
    return {
        "format": RECORD_FORMAT,
        "trial": trial,
        "model": model,
        "learning_rate": lr,
        "signal_fraction": 0.05,
        "n_signal_maps": 100,
        "n_isotropy_maps": 500,
        "median_score": 1.0,
        "n_isotropy_at_least": round(p * 500),
        "p_value": p,
        "p_bound": "<" if p == 0.002 else "",
        "val_loss": val_loss,
    }


def test_ranking_lowest_p_first_ties_by_validation_loss():
    records = [_record("trial0000", 0.1, 0.3), _record("trial0001", 0.002, 0.5)]
    records += [_record("trial0002", 0.002, 0.4), _record("trial0003", 0.5, 0.1)]
    ranked = [r["trial"] for r in rank_records(copy.deepcopy(records))]
    assert ranked == ["trial0002", "trial0001", "trial0000", "trial0003"]
    with pytest.raises(ConfigError, match="no search trials"):
        rank_records([])


def _trial_folder(root, trial, p, val_loss):
    folder = root / trial
    folder.mkdir()
    (folder / "validation.json").write_text(json.dumps(_record(trial, p, val_loss)))
    (folder / "model.keras").write_bytes(f"weights of {trial}".encode())
    (folder / "history.csv").write_text("epoch,loss,val_loss\n1,0.7,0.6\n")
    (folder / "config.json").write_text(json.dumps({"model": {"name": trial}, "nside": 16}))
    return folder


def test_selection_copies_the_trial_with_the_lowest_recorded_p_value(tmp_path):
    ps = {"trial0000": 0.3, "trial0001": 0.01, "trial0002": 0.04}
    folders = [_trial_folder(tmp_path, t, p, 0.5) for t, p in ps.items()]
    best = select_trials(folders, tmp_path / "search", tmp_path / "models" / "search_best")
    assert best["trial"] == "trial0001"
    copied = tmp_path / "models" / "search_best"
    assert (copied / "model.keras").read_bytes() == b"weights of trial0001"
    config = json.loads((copied / "config.json").read_text())
    assert config["search"] == {
        "trial": "trial0001", "p_value": 0.01, "signal_fraction": 0.05, "trials": 3,
    }  # fmt: skip
    with open(tmp_path / "search" / "search.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["trial"] for r in rows] == ["trial0001", "trial0002", "trial0000"]
    assert [r["rank"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["conv layers"] == str(_record("trial0001", 0, 0)["model"]["depth"])
    markdown = (tmp_path / "search" / "search.md").read_text()
    assert "| 1 | trial0001 | 0.01 |" in markdown
    # a record under another trial's folder is refused, naming the file
    (folders[0] / "validation.json").write_text(json.dumps(_record("trial0002", 0.3, 0.5)))
    with pytest.raises(InputFileError, match=r"trial0000/validation\.json' records trial"):
        select_trials(folders, tmp_path / "search", tmp_path / "best")
    assert trial_name(12) == "trial0012"
