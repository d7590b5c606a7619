"""Training settings: the config's ``train`` section, checked before anything is built (no
TensorFlow import)."""

from dataclasses import asdict, dataclass, fields

from crsky.errors import ConfigError, check_options

__all__ = ["LR_SCHEDULES", "TrainSettings"]

LR_SCHEDULES = ("constant", "exponential", "cosine")


@dataclass(frozen=True)
class TrainSettings:
    """How one model is trained (DESIGN.md section 5; seed 002 used Adam at 1e-4).

    The global batch is ``batch_size_per_replica`` × replicas (``gpus``, or 1 on the CPU). The
    learning rate starts at ``learning_rate`` and follows ``lr_schedule``: constant, exponential
    (× ``lr_decay_rate`` per epoch, smoothly per step) or cosine (to 0 at ``epochs``). Training
    stops early when the validation loss has not improved for ``early_stopping_patience`` epochs;
    the final model has the weights of the best epoch. ``shuffle_buffer`` maps are shuffled
    in a buffer fed by ``interleave_chunks`` chunks read side by side.
    """

    epochs: int = 10
    batch_size_per_replica: int = 64
    learning_rate: float = 1.0e-3
    lr_schedule: str = "constant"
    lr_decay_rate: float = 0.9
    early_stopping_patience: int = 5
    gpus: int = 0
    shuffle_buffer: int = 10000
    interleave_chunks: int = 2
    tensorboard: bool = False

    @classmethod
    def from_config(cls, section: dict, key: str = "train") -> "TrainSettings":
        """Build from the config's ``train`` section; ConfigError names ``key.option``."""
        check_options(section, {f.name for f in fields(cls)}, key)
        settings = cls(**section)
        settings.validate(key)
        return settings

    def validate(self, key: str = "train") -> None:
        for name, minimum in (
            ("epochs", 1),
            ("batch_size_per_replica", 1),
            ("early_stopping_patience", 1),
            ("gpus", 0),
            ("shuffle_buffer", 1),
            ("interleave_chunks", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{key}.{name} must be an integer >= {minimum}, got {value!r}")
        if not (isinstance(self.learning_rate, int | float) and 0 < self.learning_rate <= 1):
            raise ConfigError(f"{key}.learning_rate must be in (0, 1], got {self.learning_rate!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"{key}.lr_schedule must be one of {list(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        if not (isinstance(self.lr_decay_rate, int | float) and 0 < self.lr_decay_rate <= 1):
            raise ConfigError(f"{key}.lr_decay_rate must be in (0, 1], got {self.lr_decay_rate!r}")
        if not isinstance(self.tensorboard, bool):
            raise ConfigError(f"{key}.tensorboard must be true or false, got {self.tensorboard!r}")

    def to_config(self) -> dict:
        return asdict(self)
