"""Devices and the distribution strategy: MirroredStrategy over the GPUs a job was given (shared
by training and evaluation).

TensorFlow fixes its devices when its runtime starts, so ``make_strategy`` must run before any
TensorFlow op. Without GPUs, ``cpu_replicas`` > 1 splits the CPU into that many logical devices so
that MirroredStrategy really runs several replicas (tests and laptops; DESIGN.md section 7).
"""

import logging
import os

import tensorflow as tf

from crsky.errors import ConfigError

__all__ = ["describe_devices", "make_strategy"]

log = logging.getLogger(__name__)

# how batch systems and container runtimes tell a job which GPUs it was given
_GPU_ASSIGNMENT = (
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "_CONDOR_AssignedGPUs",
    "SLURM_JOB_GPUS",
    "SLURM_STEP_GPUS",
)


def _build() -> str:
    """TensorFlow's version and build: CUDA (version, compiled GPU architectures) or CPU-only."""
    info = tf.sysconfig.get_build_info()
    if not info.get("is_cuda_build"):
        return f"TensorFlow {tf.__version__}, CPU-only build"
    kernels = ", ".join(info.get("cuda_compute_capabilities", []))
    return f"TensorFlow {tf.__version__}, CUDA {info.get('cuda_version')} build ({kernels})"


def describe_devices() -> str:
    """One line for the job log: TensorFlow's build, every GPU this process sees (name and
    compute capability) and the batch system's GPU assignment variables."""
    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        capability = details.get("compute_capability")
        name = details.get("device_name", "?")
        cc = f", compute capability {capability[0]}.{capability[1]}" if capability else ""
        gpus.append(f"{device.name} ({name}{cc})")
    assigned = [f"{k}={os.environ[k]}" for k in _GPU_ASSIGNMENT if k in os.environ]
    return (
        f"{_build()}; GPUs visible: {'; '.join(gpus) or 'none'}; "
        f"GPU assignment: {' '.join(assigned) or 'none'}"
    )


def make_strategy(
    gpus: int, cpu_replicas: int = 1, key: str = "train.gpus"
) -> tf.distribute.Strategy:
    """MirroredStrategy over the first ``gpus`` GPUs (``gpus`` ≥ 1), over ``cpu_replicas`` logical
    CPUs (``gpus`` = 0, ``cpu_replicas`` ≥ 2), else the default single-device strategy.

    ConfigError (naming ``key``, the setting that asked for the GPUs) if fewer GPUs are visible
    than requested, or if TensorFlow was already started with a different device layout.
    """
    if gpus < 0 or cpu_replicas < 1:
        raise ConfigError(f"need gpus >= 0 and cpu_replicas >= 1, got {gpus}, {cpu_replicas}")
    log.info("devices: %s", describe_devices())
    physical = tf.config.list_physical_devices("GPU")
    if gpus > len(physical):
        raise ConfigError(
            f"'{key}' is {gpus} but this job sees {len(physical)} GPU(s) "
            f"({[d.name for d in physical]}; {_build()}); request fewer or run on a GPU node "
            "with the gpu extra (tensorflow[and-cuda]) installed"
        )
    try:
        tf.config.set_visible_devices(physical[:gpus], "GPU")
        if gpus == 0 and cpu_replicas > 1:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas
            )
    except RuntimeError as err:  # the runtime is already up with another layout
        cpus = tf.config.list_logical_devices("CPU")
        if gpus == 0 and len(cpus) < cpu_replicas:
            raise ConfigError(
                f"cannot split the CPU into {cpu_replicas} devices after TensorFlow started "
                f"({len(cpus)} logical CPU(s)): {err}"
            ) from err
    if gpus >= 1:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")][:gpus]
    elif cpu_replicas > 1:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")][:cpu_replicas]
    else:
        log.info("training on the CPU, one replica")
        return tf.distribute.get_strategy()
    log.info("MirroredStrategy over %s", devices)
    return tf.distribute.MirroredStrategy(devices)
