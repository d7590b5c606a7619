"""Exception classes: every bad input stops with one of these and a message that names the key or
file and says what was expected."""

__all__ = ["ConfigError", "CrskyError", "InputFileError"]


class CrskyError(Exception):
    """Base class of all crsky errors."""


class ConfigError(CrskyError, ValueError):
    """A configuration value or argument is out of range or of the wrong kind."""


class InputFileError(CrskyError, OSError):
    """An input file is missing, truncated or inconsistent with the request."""
