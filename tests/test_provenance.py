"""The provenance table of a run (crsky.provenance)."""

import csv
import re

from helpers import REPO

from crsky.provenance import PACKAGES, config_sha256, git_commit, write_provenance


def test_config_hash_ignores_key_order_and_sees_every_value():
    a = {"seed": 1, "lens": {"nside": 16, "transparency_maps": 4}}
    b = {"lens": {"transparency_maps": 4, "nside": 16}, "seed": 1}
    assert config_sha256(a) == config_sha256(b)
    assert config_sha256(a) != config_sha256({**a, "seed": 2})
    assert re.fullmatch(r"[0-9a-f]{64}", config_sha256(a))


def test_table_names_the_commit_seed_and_packages(tmp_path):
    path = write_provenance(tmp_path / "p.csv", {"seed": 7, "field": {"model": "jf12"}}, tmp_path)
    with open(path, newline="") as f:
        rows = dict(csv.reader(f))
    assert rows.pop("item") == "value"
    assert rows["crsky git commit"] == "not a git checkout"  # tmp_path is none
    assert rows["master seed"] == "7" and rows["field models"] == "jf12"
    assert rows["numpy version"][0].isdigit() and rows["tensorflow version"][0].isdigit()
    assert all(f"{p} version" in rows for p in PACKAGES)
    if (REPO / ".git").exists():  # a clone: its commit, 40 hex digits
        assert re.match(r"[0-9a-f]{40}", git_commit(REPO))
