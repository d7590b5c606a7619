"""Option parsing shared by the stage subcommands."""

import json

from crsky.errors import ConfigError

__all__ = ["json_object"]


def json_object(text: str, option: str) -> dict:
    """Parse the value of ``option`` as a JSON object, or raise ConfigError naming the option."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{option!r} is not a JSON object: {err}") from err
    if not isinstance(value, dict):
        raise ConfigError(f"{option!r} must be a JSON object, got {text!r}")
    return value
