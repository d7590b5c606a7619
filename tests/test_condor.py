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


# rules that request another rule's resources entry (workflow/rules/*.smk: rule_resources)
RESOURCES_OF = {
    name: "evaluate"
    for name in ("evaluate_lens", "evaluate_robustness", "explain", "search_validate")
}


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
    dry_run.pop("provenance")  # a local rule: runs in the controller, never submitted
    assert Counter(rule_of(d) for d in submitted) == dry_run


def test_submit_descriptions_expand_to_valid_job_ads_no_pool(submitted):
    config = production_config()
    cluster = config["cluster"]
    seen = set()
    for description in submitted:
        name = rule_of(description)
        if name in seen:
            continue
        seen.add(name)
        spec = config["resources"][RESOURCES_OF.get(name, name)]
        (ad,) = htcondor.Submit(description).jobs()
        assert ad["RequestCpus"] == spec["threads"], name
        assert ad["RequestMemory"] == spec["mem_mb"], name  # integer MB
        assert ad["RequestDisk"] == spec["disk_mb"] * 1024, name  # integer KiB
        # the wall time: held beyond it, and announced in the pool's runtime attribute
        assert ad["AllowedJobDuration"] == spec["runtime_min"] * 60, name
        assert ad[cluster["runtime_classad"]] == spec["runtime_min"] * 60, name
        # train asks for train.gpus (global batch = per-replica batch x replicas)
        gpus = config["train"]["gpus"] if name == "train" else spec.get("gpus", 0)
        assert ad.get("RequestGPUs", 0) == gpus, name
        requirements = ad["Requirements"]
        assert isinstance(requirements, classad.ExprTree)
        classad.ExprTree(str(requirements))  # parses back
        if gpus:  # every GPU of the slot matched on its nested ad (capability, memory), driver
            assert ad["GPUsMinCapability"] == cluster["gpus_minimum_capability"], name
            assert description["gpus_minimum_capability"] == "6.0"
            assert ad["GPUsMinMemory"] == cluster["gpus_minimum_memory_mb"], name
            assert ad["CUDAVersion"] == 1000 * int(cluster["cuda_version"].split(".")[0]), name
            assert "countMatches(MY.RequireGPUs,TARGET.AvailableGPUs) >= RequestGPUs" in str(
                requirements
            )
            assert "CUDAVersion <= TARGET.CUDAMaxSupportedVersion" in str(requirements)
        else:
            assert "RequireGPUs" not in ad and "CUDA" not in str(requirements), name
        assert description["getenv"] == "True"
    assert {"backtrack", "lens_part", "lens", "skymaps", "train", "evaluate"} <= seen


def execute_point(gpus: list[tuple[float, int]], cuda_max_supported: int) -> "classad.ClassAd":
    """A partitionable slot's machine ad with nested GPU ads, as HTCondor's GPU discovery
    advertises them (AvailableGPUs = { GPUs_GPU_<id>, ... }; GPUs_GPU_<id> = [ Capability;
    GlobalMemoryMb; ... ]): (compute capability, memory MB) per GPU."""
    names = [f"GPUs_GPU_{i:08x}" for i in range(len(gpus))]
    nested = "; ".join(
        f'{n} = [ Id = "GPU-{n[-8:]}"; Capability = {c}; GlobalMemoryMb = {mb} ]'
        for n, (c, mb) in zip(names, gpus, strict=True)
    )
    return classad.parseOne(
        f'[ Arch = "X86_64"; OpSys = "LINUX"; Cpus = 64; Memory = 256000; Disk = 10000000000; '
        'HasFileTransfer = true; CondorVersion = "$CondorVersion: 24.0.1 2024-10-31 $"; '
        f"CUDAMaxSupportedVersion = {cuda_max_supported}; "
        f"GPUs = {len(gpus)}; AvailableGPUs = {{ {', '.join(names)} }}; {nested} ]"
    )


@pytest.mark.parametrize(
    ("node", "matches"),
    [
        # GTX 1080 (Pascal, 6.1, 8 GB), driver for CUDA 12.4: TensorFlow's CUDA 12 build runs
        (execute_point([(6.1, 8119), (6.1, 8119)], 12040), True),
        (execute_point([(7.5, 11011), (7.5, 11011), (7.5, 11011)], 12080), True),
        # GTX 980 (Maxwell, 5.2): the legacy CUDADeviceName regex matched it; TensorFlow fails
        (execute_point([(5.2, 4043), (5.2, 4043)], 12040), False),
        (execute_point([(6.1, 8119), (5.2, 4043)], 12040), False),  # one GPU too old
        (execute_point([(6.1, 6078), (6.1, 6078)], 12040), False),  # GTX 1060: 6 GB
        (execute_point([(6.1, 8119), (6.1, 8119)], 11080), False),  # driver for CUDA 11.8
        (execute_point([(7.5, 11011)], 12040), False),  # one GPU, the job asks for two
    ],
)
def test_gpu_jobs_match_only_nodes_tensorflow_can_use_no_pool(submitted, node, matches):
    """The production train job's ad against execute points written from HTCondor's GPU ad
    attributes: its Requirements are evaluated by the ClassAd library, not by crsky."""
    (train,) = [d for d in submitted if rule_of(d) == "train"][:1]
    (ad,) = htcondor.Submit(train).jobs()
    assert node.matches(ad) is matches


def test_restart_constraint_selects_exactly_this_workflows_jobs_no_pool(
    submitted, tmp_path, monkeypatch
):
    """docs/cluster.md section 7: `condor_rm -constraint 'UserLog == "$PWD/logs/condor/..."'` in
    the checkout removes the dead controller's jobs, and no other checkout's."""
    checkout, other = tmp_path / "crsky", tmp_path / "crsky-other"
    constraint = classad.ExprTree(f'UserLog == "{checkout}/logs/condor/snakemake-rules.log"')
    sample = submitted[:: max(1, len(submitted) // 50)]
    for folder, selected in ((checkout, True), (other, False)):
        folder.mkdir()
        monkeypatch.chdir(folder)  # each controller submits from its own checkout
        for description in sample:
            (ad,) = htcondor.Submit(description).jobs()
            assert bool(constraint.eval(ad)) is selected, ad["UserLog"]


def test_documented_controller_job_is_a_valid_local_universe_job_no_pool(tmp_path, monkeypatch):
    """docs/cluster.md section 6: the controller's submit description, as condor_submit would
    read it in the checkout."""
    text = (REPO / "docs/cluster.md").read_text()
    block = text.split("  universe     = local")[1].split("```")[0]
    description = "universe = local\n" + "\n".join(line.strip() for line in block.splitlines())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))
    (ad,) = htcondor.Submit(description).jobs()
    assert ad["JobUniverse"] == 12  # local: runs on the access point, under the schedd
    assert ad["Iwd"] == str(tmp_path) and ad["Cmd"] == "/usr/bin/env"
    assert ad["Arguments"].split()[:3] == ["snakemake", "--profile", "profiles/condor"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"resources": {"backtrack": {"threads": 128}}},
            "resources.backtrack.threads = 128 exceeds cluster.max_cpus_per_node",
        ),
        (
            {"resources": {"backtrack": {"gpus": 8}}},
            "resources.backtrack.gpus = 8 exceeds cluster.max_gpus_per_node",
        ),
        ({"train": {"gpus": 8}}, "train.gpus = 8 exceeds cluster.max_gpus_per_node = 2"),
        (
            {"cluster": {"gpus_minimum_capability": 5.2}},
            "cluster.gpus_minimum_capability = 5.2: TensorFlow's GPU build",
        ),
        ({"cluster": {"cuda_version": "11.8"}}, "cluster.cuda_version = '11.8': TensorFlow's"),
        ({"cluster": {"cuda_version": "12"}}, "cluster.cuda_version = '12': must match"),
        (
            {"resources": {"train": {"runtime_min": 0}}},
            "resources.train.runtime_min = 0: 0 is less than the minimum of 1",
        ),
        (
            {"resources": {"evaluate": {"runtime_min": 2.5}}},
            "resources.evaluate.runtime_min = 2.5: 2.5 is not of type 'integer'",
        ),
        ({"cluster": {"runtime_classad": "+MaxRuntime"}}, "cluster.runtime_classad"),
    ],
)
def test_requests_no_node_or_tensorflow_build_can_serve_stop_before_submission(
    tmp_path, override, message
):
    workdir = workflow_copy(tmp_path, override)
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
    assert f"crsky config: error: {message}" in output
    assert "Job stats" not in output


def test_fractional_capability_reaches_the_submit_description(tmp_path):
    """Snakemake rounds float resources to integers; 7.5 must not become 8 (no GTX 16xx/RTX 20xx
    would match) nor 6.1 become 6."""
    override = {"cluster": {"gpus_minimum_capability": 7.5}, "train": {"gpus": 1}}
    output = snakemake("-n", "-p", "--configfile", "config/test.yaml",
                       cwd=workflow_copy(tmp_path, override))  # fmt: skip
    assert "gpus_minimum_capability=7.5," in output and "gpus_minimum_capability=8" not in output


def test_file_transfer_only_pools_are_refused_before_submission(checkout):
    output = snakemake(
        "-n", "--profile", "profiles/condor", "--shared-fs-usage", "none", cwd=checkout, check=False
    )
    assert "crsky config: error: --shared-fs-usage none: crsky needs a filesystem shared" in output


def test_non_integer_memory_is_rejected(tmp_path):
    workdir = workflow_copy(tmp_path, {"resources": {"backtrack": {"mem_mb": 1500.5}}})
    output = snakemake("-n", "--configfile", "config/test.yaml", cwd=workdir, check=False)
    assert "mem_mb" in output and "is not of type 'integer'" in output
