"""The training stage: spherical CNNs on skymap chunks, on one device or MirroredStrategy over
several (DESIGN.md section 5).

``crsky.train.settings`` needs no TensorFlow; ``crsky.train.loop.train`` imports it.
"""

from crsky.train.settings import LR_SCHEDULES, TrainSettings

__all__ = ["LR_SCHEDULES", "TrainSettings"]
