"""Devices and the distribution strategy: MirroredStrategy over the GPUs a job was given (shared
by training and evaluation).

TensorFlow fixes its devices when its runtime starts, so ``make_strategy`` must run before any
TensorFlow op. Without GPUs, ``cpu_replicas`` > 1 splits the CPU into that many logical devices so
that MirroredStrategy really runs several replicas (tests and laptops; DESIGN.md section 7).
"""

import logging

import tensorflow as tf

from crsky.errors import ConfigError

__all__ = ["make_strategy"]

log = logging.getLogger(__name__)


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
    physical = tf.config.list_physical_devices("GPU")
    if gpus > len(physical):
        raise ConfigError(
            f"'{key}' is {gpus} but this job sees {len(physical)} GPU(s) "
            f"({[d.name for d in physical]}); request fewer or run on a GPU node"
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
