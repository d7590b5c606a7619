"""Exception classes: every bad input stops with one of these and a message that names the key or
file and says what was expected."""

__all__ = ["ConfigError", "CrskyError", "InputFileError", "check_options"]


class CrskyError(Exception):
    """Base class of all crsky errors."""


class ConfigError(CrskyError, ValueError):
    """A configuration value or argument is out of range or of the wrong kind."""


class InputFileError(CrskyError, OSError):
    """An input file is missing, truncated or inconsistent with the request."""


def check_options(options: object, known: set[str], key: str) -> dict:
    """Return ``options`` if it is a mapping whose keys are all in ``known``; otherwise raise
    ConfigError naming ``key`` and the unknown and known option names."""
    if not isinstance(options, dict):
        raise ConfigError(f"{key!r} must be a mapping of options, got {options!r}")
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"{key!r}: unknown options {unknown}; known: {sorted(known)}")
    return options
