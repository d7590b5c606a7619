"""The cluster-executor path on a real scheduler: Slurm on localhost (tests/slurm_cluster.py).

The embedded default workflow (every rule of the default target, config/config.yaml with fewer
jobs: two rigidity bins of one shard, one chunk per skymap dataset; 19 jobs instead of 34) runs
once locally (the reference) and once through snakemake-executor-plugin-slurm with
profiles/slurm on a single-node Slurm cluster with accounting (slurmdbd). While it runs, the
deepsphere training job is killed with ``scancel`` after its first checkpointed epoch. The test
asserts that every job of the plan ran as a Slurm
job (``sacct``), that the cancelled job was resubmitted, resumed from its checkpoint and the
workflow finished, and that every result file is byte-identical to the local run.

Needs root and Debian's slurmctld, slurmd, slurmdbd, munge and mariadb-server (``make test``
installs them when it runs as root); skipped cleanly otherwise.
"""

import os
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers import BIN, job_counts, snakemake, workflow_copy
from slurm_cluster import SlurmCluster, missing_requirements

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

KILLED_RULE, KILLED_MODEL = "train", "deepsphere"
RUN_TIMEOUT_S = 1200
# Each Slurm job starts Snakemake twice (the batch job, then the step under srun), ~15 s of CPU
# per job on this 2-core machine: fewer, larger jobs keep the test at a few minutes.
FEWER_JOBS = {
    "rigidity_bins": {"log10_rigidity_min": 18.5, "log10_rigidity_max": 20.5, "n_bins": 2},
    "backtrack": {"particles_per_bin": 6144, "shard_size": 6144},
    "skymaps": {"datasets": {name: {"chunk_size": 2000} for name in (
        "train", "validation", "train_isotropy", "validation_isotropy", "test", "isotropy")}},
}  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    with SlurmCluster(tmp_path_factory.mktemp("slurm"), cpus=max(2, os.cpu_count() or 1),
                      mem_mb=16000) as slurm:  # fmt: skip
        yield slurm


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    """The default workflow (FEWER_JOBS) run locally: the reference outputs."""
    workdir = workflow_copy(tmp_path_factory.mktemp("local"), FEWER_JOBS)
    snakemake("--cores", "2", "--configfile", "config/test.yaml", cwd=workdir)
    return workdir


def results(workdir: Path) -> dict[str, bytes]:
    """Every file under results/ by its relative path, with its bytes, except the two things a
    model folder keeps that depend on the run rather than the config: wall times (timings.csv)
    and the checkpoints of the run's state (README, "Training")."""
    root = workdir / "results"
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name != "timings.csv" and "checkpoints" not in p.parts
    }


class Canceller(threading.Thread):
    """Waits until the training job of KILLED_MODEL runs on Slurm and has checkpointed its first
    epoch, then cancels it with scancel; remembers the Slurm job id."""

    def __init__(self, slurm: SlurmCluster, workdir: Path):
        super().__init__(daemon=True)
        self.slurm, self.workdir = slurm, workdir
        self.job_id: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        comment = f"rule_{KILLED_RULE}_wildcards_{KILLED_MODEL}"
        checkpoints = self.workdir / "results/models" / KILLED_MODEL / "checkpoints"
        while not self.done.is_set():
            for line in self.slurm.run("squeue", "-h", "-o", "%i|%T|%k", check=False).split():
                job_id, state, job_comment = line.split("|", 2)
                if job_comment == comment and state == "RUNNING":
                    if any(checkpoints.glob("epoch-*.keras")):
                        self.slurm.run("scancel", job_id)
                        self.job_id = job_id
                        return
            time.sleep(0.5)


def test_default_workflow_on_slurm_survives_scancel_and_matches_local_run(cluster, local_run,
                                                                          tmp_path):  # fmt: skip
    workdir = workflow_copy(tmp_path, FEWER_JOBS)
    configs = ("--configfile", "config/test.yaml")
    plan = job_counts(snakemake("-n", "--profile", "profiles/slurm", *configs, cwd=workdir))
    plan.pop("all")  # a local rule without action
    plan.pop("provenance")  # a local rule: runs in the controller, never a Slurm job
    env = cluster.env()
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    canceller = Canceller(cluster, workdir)
    canceller.start()
    started = time.monotonic()
    run = subprocess.run(
        [
            str(BIN / "snakemake"),
            "--profile",
            "profiles/slurm",
            *configs,
            "--latency-wait",
            "5",
            "--slurm-init-seconds-before-status-checks",
            "1",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=RUN_TIMEOUT_S,
    )
    canceller.done.set()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    print(f"Slurm run of the default workflow: {time.monotonic() - started:.0f} s")

    # every planned job ran as a Slurm job, once, except the cancelled one, which ran twice
    assert canceller.job_id is not None, "the training job was never seen running"
    rows = [
        line.split("|", 3)
        for line in cluster.run(
            "sacct", "-X", "-P", "-n", "--format=JobIdRaw,State,Comment,JobName"
        ).splitlines()
    ]
    states = {job_id: state for job_id, state, _, _ in rows}
    assert states[canceller.job_id].startswith("CANCELLED")  # sacct: "CANCELLED by <uid>"
    completed = [comment for _, state, comment, _ in rows if state == "COMPLETED"]
    assert len(rows) == sum(plan.values()) + 1  # one resubmission, no duplicate
    assert Counter(c.split("_wildcards_")[0].removeprefix("rule_") for c in completed) == plan
    assert len(completed) == len(set(completed)) == len(rows) - 1
    killed = f"rule_{KILLED_RULE}_wildcards_{KILLED_MODEL}"
    assert killed in completed and len({name for *_, name in rows}) == 1  # one workflow run

    # the resubmitted job resumed after the checkpointed epoch(s) instead of starting over
    log = (workdir / "logs" / KILLED_RULE / f"{KILLED_MODEL}.log").read_text()
    first_epoch = int(log.split(", epochs ")[1].split("-")[0])
    assert first_epoch >= 2, log[-2000:]

    # the same bytes as the local run, file by file
    local, slurm = results(local_run), results(workdir)
    assert sorted(slurm) == sorted(local)
    assert [name for name in local if slurm[name] != local[name]] == []
