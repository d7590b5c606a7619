"""Option parsing shared by the stage subcommands: one-line errors, finite numbers, JSON."""

import argparse
import json
import math

from crsky.errors import ConfigError

__all__ = [
    "OneLineParser",
    "add_threads",
    "finite_float",
    "json_object",
    "non_negative_int",
    "positive_int",
]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit status 2), naming the
    option, instead of the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def finite_float(text: str) -> float:
    """A finite number (argparse type): NaN and infinities are refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _integer(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


# argparse types of integers written as integers ('4.5' and '4.0' are refused)
positive_int = _integer(1)
non_negative_int = _integer(0)


def add_threads(parser: argparse.ArgumentParser, help: str) -> None:
    """The ``--threads N`` option (N ≥ 1; default None = all cores)."""
    parser.add_argument("--threads", type=positive_int, default=None, help=help)


def json_object(text: str, option: str) -> dict:
    """Parse the value of ``option`` as a JSON object, or raise ConfigError naming the option.
    NaN and infinities are refused."""

    def refuse(constant: str):
        raise ValueError(f"{constant} is not a finite number")

    try:
        value = json.loads(text, parse_constant=refuse)
    except (json.JSONDecodeError, ValueError) as err:
        raise ConfigError(f"{option!r} is not a JSON object: {err}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{option!r} must be a JSON object, got {text!r}")
    return value
