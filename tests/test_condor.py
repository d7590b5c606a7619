"""HTCondor submission, checked offline: no pool and no daemons exist here.

The production DAG is walked by the real HTCondor executor plugin with only the schedd replaced
(tests/condor_offline.py); every submit description it would send is expanded into job ClassAds
with the htcondor bindings (``htcondor.Submit(...).jobs()`` needs no schedd) and checked against
the config's resources.
"""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from helpers import REPO, job_counts, snakemake, workflow_copy

htcondor = pytest.importorskip("htcondor")
classad = pytest.importorskip("classad")


def production_config() -> dict:
    """config/production.yaml on top of config/config.yaml, then schema defaults per rule."""
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for key, value in yaml.safe_load((REPO / "config/production.yaml").read_text()).items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


@pytest.fixture(scope="module")
def submitted(tmp_path_factory) -> list[dict]:
    """Submit descriptions of the whole production DAG, as the plugin builds them (no pool)."""
    workdir = workflow_copy(tmp_path_factory.mktemp("condor"))
    record = workdir / "submits.jsonl"
    env = dict(os.environ, CRSKY_CONDOR_RECORD=str(record), CONDOR_CONFIG="/dev/null")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests/condor_offline.py"),
            "--profile",
            "profiles/condor",
            "--configfile",
            "config/production.yaml",
            "--latency-wait",
            "0",
            "--retries",
            "0",
            "--seconds-between-status-checks",
            "0",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [json.loads(line) for line in record.read_text().splitlines()]


def rule_of(description: dict) -> str:
    return description["batch_name"].rsplit("-", 1)[0]


def test_every_production_job_is_submitted_no_pool(checkout, submitted):
    dry_run = job_counts(
        snakemake(
            "-n",
            "--profile",
            "profiles/condor",
            "--configfile",
            "config/production.yaml",
            cwd=checkout,
        )
    )
    dry_run.pop("all")
    assert Counter(rule_of(d) for d in submitted) == dry_run


def test_submit_descriptions_expand_to_valid_job_ads_no_pool(submitted):
    config = production_config()
    seen = set()
    for description in submitted:
        name = rule_of(description)
        if name in seen:
            continue
        seen.add(name)
        spec = config["resources"][name]
        (ad,) = htcondor.Submit(description).jobs()
        assert ad["RequestCpus"] == spec["threads"], name
        assert ad["RequestMemory"] == spec["mem_mb"], name  # integer MB
        assert ad["RequestDisk"] == spec["disk_mb"] * 1024, name  # integer KiB
        # train asks for train.gpus (global batch = per-replica batch x replicas)
        gpus = config["train"]["gpus"] if name == "train" else spec.get("gpus", 0)
        assert ad.get("RequestGPUs", 0) == gpus, name
        requirements = ad["Requirements"]
        assert isinstance(requirements, classad.ExprTree)
        classad.ExprTree(str(requirements))  # parses back
        if gpus:
            assert "CUDADeviceName" in str(requirements), name
        assert description["getenv"] == "True"
    assert {"backtrack", "lens_part", "lens", "skymaps", "train", "evaluate"} <= seen


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"threads": 128}, "resources.backtrack.threads = 128 exceeds cluster.max_cpus_per_node"),
        ({"gpus": 8}, "resources.backtrack.gpus = 8 exceeds cluster.max_gpus_per_node"),
    ],
)
def test_requests_beyond_the_largest_node_stop_before_submission(tmp_path, resources, message):
    workdir = workflow_copy(tmp_path, {"resources": {"backtrack": resources}})
    output = snakemake(
        "-n",
        "--profile",
        "profiles/condor",
        "--configfile",
        "config/production.yaml",
        "config/test.yaml",
        cwd=workdir,
        check=False,
    )
    assert message in output


def test_non_integer_memory_is_rejected(tmp_path):
    workdir = workflow_copy(tmp_path, {"resources": {"backtrack": {"mem_mb": 1500.5}}})
    output = snakemake("-n", "--configfile", "config/test.yaml", cwd=workdir, check=False)
    assert "mem_mb" in output and "is not of type 'integer'" in output
