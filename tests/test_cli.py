"""The crsky command for people: help with units and defaults, a fast ``crsky --help``, stage
commands run by hand from the workflow's config files, one line for bad input, the missing
TensorFlow extra named, a local workflow start without the htcondor warning."""

import argparse
import json
import os
import subprocess
import sys

import pytest
import yaml
from helpers import BIN, workflow_copy

from crsky.cli import STAGES, build_parser

# modules `crsky --help` must not load (each takes 0.1-5 s to import)
HEAVY = ("numpy", "numba", "scipy", "healpy", "h5py", "matplotlib", "pandas", "tensorflow",
         "keras", "astropy", "yaml", "jsonschema")  # fmt: skip
RST = ("``", ":func:", ":mod:", ":class:", ":meth:")


def _run(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=False, cwd=cwd, env=env
    )


def test_help_loads_no_numerical_library():
    code = (
        "import sys\nfrom crsky.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = _run("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]", result.stdout
    for stage in STAGES:
        assert f"    {stage}" in result.stdout


def _parsers(parser: argparse.ArgumentParser, prog: str = "crsky"):
    """(prog, parser) of every command and step, recursively."""
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prog} {name}")


def test_every_option_has_plain_help_with_its_default():
    for prog, parser in _parsers(build_parser()):
        text = parser.format_help()
        assert not any(mark in text for mark in RST), (prog, text)
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._VersionAction):
                continue
            assert action.help, (prog, action.dest)
            shows_default = action.option_strings and action.default not in (None, False)
            if shows_default and not isinstance(action, argparse._SubParsersAction):
                helper = parser._get_formatter()._get_help_string(action)
                assert "default" in helper, (prog, action.dest, helper)


def test_stage_help_shows_defaults_and_units():
    text = build_parser(["backtrack"])._subparsers._group_actions[0].choices["backtrack"]
    help_text = text.format_help()
    assert "(default: 1e-07)" in help_text and "shortest step, kpc (default: 0.0001)" in help_text


TINY_TEST = {"skymaps": {"datasets": {"test": {"n_maps": 30, "chunk_size": 20}}}}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A checkout without results, with config/tiny.yaml shrinking the test dataset."""
    folder = workflow_copy(tmp_path_factory.mktemp("cli_checkout"))
    (folder / "config" / "tiny.yaml").write_text(yaml.safe_dump(TINY_TEST))
    return folder


def test_skymaps_from_the_config_files_writes_the_workflows_file(checkout, tmp_path):
    config_args = ["--config", "config/config.yaml", "config/tiny.yaml"]
    result = _run("-m", "crsky.cli", "-q", "skymaps", *config_args, "--dataset", "test",
                  "--chunk", "1", cwd=checkout)  # fmt: skip
    assert result.returncode == 0, result.stderr
    made = checkout / "results/skymaps/test/chunk0001.h5"
    # the workflow's command line (common.smk: seed and the dataset's configured keys as JSON)
    config = yaml.safe_load((checkout / "config/config.yaml").read_text())
    dataset = {**config["skymaps"]["datasets"]["test"], **TINY_TEST["skymaps"]["datasets"]["test"]}
    expected = tmp_path / "chunk0001.h5"
    result = _run("-m", "crsky.cli", "-q", "skymaps", "--seed", str(config["seed"]), "--datasets",
                  json.dumps({"test": dataset}), "--dataset", "test", "--chunk", "1",
                  "--output", str(expected))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert made.read_bytes() == expected.read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "config/config.yaml", "--dataset", "tset", "--chunk", "0"],
         "config/config.yaml has no skymaps dataset 'tset'; did you mean 'test'?; configured: "),
        (["--config", "config/config.yaml", "config/tiny.yaml", "--dataset", "test", "--chunk",
          "2"], "chunk index 2 is outside dataset 'test''s chunks 0 ... 1"),
        (["--config", "config/config.yaml", "--dataset", "test", "--chunk", "0", "--output",
          "resutls/x.h5"], "argument --output: the folder 'resutls' of 'resutls/x.h5' does not "
         "exist (create it first)"),
        (["--config", "config/absent.yaml", "--dataset", "test", "--chunk", "0"],
         "config file 'config/absent.yaml': No such file or directory"),
        (["--dataset", "test", "--chunk", "0"], "name the workflow's config files with '--config'"),
        (["--config", "config/config.yaml", "--seed", "1", "--dataset", "test", "--chunk", "0"],
         "give either '--config' or '--seed' and '--datasets', not both"),
    ],
    ids=["unknown-dataset", "chunk-beyond-dataset", "output-in-missing-folder", "missing-config",
         "no-config", "config-and-seed"],
)  # fmt: skip
def test_skymaps_bad_input_is_one_line(checkout, args, message):
    result = _run("-m", "crsky.cli", "skymaps", *args, cwd=checkout)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("crsky skymaps: error: "), result.stderr
    assert message in lines[0], lines[0]
    # nothing written (the other test of this module made chunk0001.h5)
    assert {p.name for p in checkout.glob("res*/**/*.h5")} <= {"chunk0001.h5"}


@pytest.mark.parametrize(
    "args",
    [
        ["paircounts", "--chunk", "c.h5", "--output", "nowhere/p.h5"],
        ["evaluate", "--output", "nowhere/eval", "--test", "t.h5", "--isotropy", "i.h5"],
        ["lens", "cfg", "--parts", "p.npz", "--lens-dir", "nowhere/lens"],
        ["train", "--output", "nowhere/m", "--model", "{}", "--training", "a.h5",
         "--validation", "b.h5", "--seed", "1"],
    ],
    ids=lambda a: a[0],
)  # fmt: skip
def test_output_in_a_missing_folder_is_one_line(tmp_path, args):
    result = _run("-m", "crsky.cli", *args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "the folder 'nowhere' of 'nowhere/" in lines[0], result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_missing_tensorflow_names_the_extra(tmp_path):
    code = (
        "import sys\nsys.modules['tensorflow'] = sys.modules['keras'] = None\n"
        "from crsky.cli import main\n"
        f"sys.exit(main(['train', '--output', {str(tmp_path / 'm')!r}, '--model', "
        "'{\"name\": \"m\"}', '--training', 'a.h5', '--validation', 'b.h5', '--seed', '1']))"
    )
    result = _run("-c", code)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not installed here; install crsky's 'train' extra" in lines[0]
    assert "pip install -e '.[gpu]'" in lines[0] and "Traceback" not in result.stderr


def test_local_workflow_starts_without_the_condor_config_warning(checkout):
    env = {k: v for k, v in os.environ.items() if k != "CONDOR_CONFIG"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        [str(BIN / "crsky"), "workflow", "-n", "--cores", "1"],
        cwd=checkout, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CONDOR_CONFIG" not in result.stdout + result.stderr
