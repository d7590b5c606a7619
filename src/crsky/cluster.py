"""What a rule asks of a batch system: the resource keys the Snakemake executor plugins read.

One rule's ``resources.<rule>`` entry of the config (threads, mem_mb, disk_mb, runtime_min,
gpus, requirements) and the config's ``cluster`` section become the job resources of
:func:`job_resources`, which serve every executor at once:

========================  ==================================  =====================================
config                    HTCondor (executor-plugin-htcondor)  Slurm (executor-plugin-slurm)
========================  ==================================  =====================================
threads                   request_cpus                        --cpus-per-task
mem_mb                    request_memory (MB)                 --mem (MB)
disk_mb                   request_disk (KiB = MB × 1024)      (not requested)
runtime_min               allowed_job_duration (s), and the   -t (minutes)
                          site attribute +<runtime_classad>
gpus                      request_gpus                        --gpus
cluster.gpus_minimum_*,   gpus_minimum_capability,            (GPU type: slurm_extra / partition)
cluster.cuda_version      gpus_minimum_memory, cuda_version
requirements              requirements                        (not used)
========================  ==================================  =====================================

``runtime_min`` is the job's wall-time limit: Slurm ends a job that runs longer, HTCondor puts it
on hold (``allowed_job_duration``, seconds of continuous running). Many pools enforce a default
wall time of their own unless the job states its need in a site-specific ClassAd attribute
(CERN and FZU: ``MaxRuntime``, DESY: ``RequestRuntime``, both in seconds);
``cluster.runtime_classad`` names that attribute.

GPU selection uses HTCondor's own submit commands, which match the execute points' nested GPU
ads (``AvailableGPUs``; ``Capability``, ``GlobalMemoryMb``) and the driver's
``CUDAMaxSupportedVersion``; the legacy flat ``CUDACapability``/``CUDADeviceName`` attributes are
not needed (``cluster.gpu_requirements`` remains for anything else).

No TensorFlow import: the limits of the TensorFlow build are constants checked by the tests.
"""

from crsky.errors import ConfigError

__all__ = [
    "TF_CUDA_MAJOR",
    "TF_MIN_COMPUTE_CAPABILITY",
    "check_cluster",
    "job_resources",
]

# The GPU build of TensorFlow 2.21 (the `gpu` extra, tensorflow[and-cuda]) holds kernels for
# sm_60, sm_70, sm_80, sm_89 and PTX for compute_90 (tf.sysconfig.get_build_info() of the
# tensorflow-2.21.0 wheel): compute capability 6.0 (Pascal, GTX 10xx) and newer. Older GPUs
# (Maxwell GTX 9xx: 5.2, Kepler: 3.x) would be matched and then fail.
TF_MIN_COMPUTE_CAPABILITY = 6.0
# That build uses CUDA 12 (12.5.1) from the nvidia-*-cu12 wheels: the node's driver must
# support CUDA 12.0 or newer (CUDA minor-version compatibility within major version 12).
TF_CUDA_MAJOR = 12


def check_cluster(cluster: dict) -> None:
    """ConfigError naming the ``cluster.<key>`` whose GPU selection no TensorFlow build here can
    use: a minimum compute capability below what the TensorFlow GPU wheels support, or a CUDA
    version older than their CUDA 12."""
    capability = cluster.get("gpus_minimum_capability")
    if capability is not None and capability < TF_MIN_COMPUTE_CAPABILITY:
        raise ConfigError(
            f"cluster.gpus_minimum_capability = {capability}: TensorFlow's GPU build "
            f"(tensorflow[and-cuda] 2.21) runs on compute capability >= "
            f"{TF_MIN_COMPUTE_CAPABILITY} only (sm_60 ... compute_90); older GPUs would match and "
            f"then fail. Use {TF_MIN_COMPUTE_CAPABILITY} or more"
        )
    cuda = cluster.get("cuda_version", "")
    if cuda and _major(cuda) < TF_CUDA_MAJOR:
        raise ConfigError(
            f"cluster.cuda_version = {cuda!r}: TensorFlow's GPU build uses CUDA "
            f"{TF_CUDA_MAJOR}, so the node's driver must support CUDA {TF_CUDA_MAJOR}.0 or newer"
        )


def _major(version: str) -> int:
    """Major number of a "MAJOR.MINOR" CUDA version (the schema checks the pattern)."""
    return int(str(version).split(".")[0])


def job_resources(spec: dict, cluster: dict) -> dict:
    """Snakemake resources of one job from its ``resources.<rule>`` entry (``gpus`` already
    replaced where the rule takes its GPUs from elsewhere) and the ``cluster`` section."""
    runtime_s = spec["runtime_min"] * 60
    resources = {
        "mem_mb": spec["mem_mb"],
        "disk_mb": spec["disk_mb"],
        "runtime": spec["runtime_min"],  # minutes: Slurm -t, local scheduler
        "htcondor_request_mem_mb": spec["mem_mb"],
        "htcondor_request_disk_mb": spec["disk_mb"],
        "allowed_job_duration": runtime_s,
    }
    if cluster.get("runtime_classad"):
        resources[f"classad_{cluster['runtime_classad']}"] = runtime_s
    requirements = [spec["requirements"]] if spec.get("requirements") else []
    if spec["gpus"] > 0:
        resources.update(_gpu_resources(spec["gpus"], cluster))
        if cluster.get("gpu_requirements"):
            requirements.append(cluster["gpu_requirements"])
    if requirements:
        resources["requirements"] = " && ".join(f"({r})" for r in requirements)
    return resources


def _gpu_resources(gpus: int, cluster: dict) -> dict:
    """GPU count for both executors and HTCondor's GPU property matching."""
    resources = {"request_gpus": gpus, "gpu": gpus}
    if cluster.get("gpus_minimum_capability") is not None:
        # a string: Snakemake rounds float resources to integers (7.5 would become 8)
        resources["gpus_minimum_capability"] = repr(float(cluster["gpus_minimum_capability"]))
    if cluster.get("gpus_minimum_memory_mb"):
        resources["gpus_minimum_memory"] = cluster["gpus_minimum_memory_mb"]
    if cluster.get("cuda_version"):
        resources["cuda_version"] = cluster["cuda_version"]
    return resources
