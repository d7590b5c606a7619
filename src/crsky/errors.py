"""Exception classes: every bad input stops with one of these and a message that names the key or
file and says what was expected."""

import difflib

__all__ = ["ConfigError", "CrskyError", "InputFileError", "check_options", "did_you_mean"]


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
        raise ConfigError(
            f"{key}.{unknown[0]}: unknown key{did_you_mean(unknown[0], known)} "
            f"(keys of {key}: {', '.join(sorted(known))})"
        )
    return options


def did_you_mean(name: object, candidates) -> str:
    """``"; did you mean 'x'?"`` for the candidate closest to ``name``, or ``""``."""
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
