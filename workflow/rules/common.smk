# Everything that is not a rule: config-derived job grids, paths, resources.
import json

from crsky.binning import RigidityBins, Sharding

RESULTS = config["results_dir"]
LOGS = config["logs_dir"]
FIELD = config["field"]["model"]
BINS = RigidityBins(**config["rigidity_bins"])
SHARDING = Sharding(
    config["backtrack"]["particles_per_bin"], config["backtrack"]["shard_size"]
)


wildcard_constraints:
    bin=r"\d{3}",
    shard=r"\d{4}",


def bin_ids():
    """Rigidity bin wildcards: 000 ... n_bins - 1."""
    return [f"{i:03d}" for i in range(BINS.n_bins)]


def shard_ids():
    """Shard wildcards within one bin: 0000 ... n_shards - 1."""
    return [f"{i:04d}" for i in range(SHARDING.n_shards)]


def backtrack_shards():
    """Every backtracking shard of the configured field model."""
    return expand(
        f"{RESULTS}/backtrack/{FIELD}/bin{{bin}}/shard{{shard}}.h5",
        bin=bin_ids(),
        shard=shard_ids(),
    )


def rule_threads(name):
    """Threads of rule ``name`` (config resources.<name>.threads; HTCondor request_cpus)."""
    return config["resources"][name]["threads"]


def rule_resources(name):
    """Resources of rule ``name`` from config resources.<name>, in the forms the local
    scheduler (mem_mb, disk_mb, runtime) and the HTCondor plugin (htcondor_request_mem_mb,
    htcondor_request_disk_mb, request_gpus, requirements) read."""
    spec = config["resources"][name]
    resources = {
        "mem_mb": spec["mem_mb"],
        "disk_mb": spec["disk_mb"],
        "runtime": spec["runtime_min"],
        "htcondor_request_mem_mb": spec["mem_mb"],
        "htcondor_request_disk_mb": spec["disk_mb"],
    }
    if spec.get("gpus", 0) > 0:
        resources["request_gpus"] = spec["gpus"]
    if spec.get("requirements"):
        resources["requirements"] = spec["requirements"]
    return resources


def final_outputs():
    """Targets of the default rule: the last stage that exists so far."""
    return backtrack_shards()
