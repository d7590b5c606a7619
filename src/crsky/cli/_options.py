"""Option parsing shared by the stage subcommands: one-line errors, help with defaults, finite
numbers, output paths in existing folders, JSON."""

import argparse
import json
import math
from pathlib import Path

from crsky.errors import ConfigError

__all__ = [
    "HelpFormatter",
    "OneLineParser",
    "add_stage",
    "add_threads",
    "finite_float",
    "json_object",
    "non_negative_int",
    "output_path",
    "positive_int",
]


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions as plain-text paragraphs, filled to the terminal width, with indented lines
    (command examples) kept as written; every option with a default says it, "(default: X)",
    unless its help already names the default."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.strip("\n").split("\n\n"):
            if paragraph.startswith(" "):
                paragraphs.append("\n".join(indent + line for line in paragraph.splitlines()))
            else:
                paragraphs.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(paragraphs)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and default not in (None, False, argparse.SUPPRESS)
            and "default" not in text
        ):
            shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else default
            text += f" (default: {str(shown).replace('%', '%%')})"
        return text


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
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N", help=help)


def add_stage(
    sub: argparse._SubParsersAction, name: str, help: str, description: str
) -> argparse.ArgumentParser:
    """A stage's subparser: one-line errors, plain-text description, defaults in the help."""
    return sub.add_parser(name, help=help, description=description, formatter_class=HelpFormatter)


def output_path(text: str) -> Path:
    """An output file or folder (argparse type) whose parent folder exists: a mistyped folder is
    refused in one line instead of being created (the workflow creates its folders itself)."""
    path = Path(text)
    parent = path.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"the folder {str(parent)!r} of {text!r} does not exist (create it first)"
        )
    return path


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
