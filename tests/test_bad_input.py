"""Bad input, stage by stage: every case stops with one line naming the key or file and what
was expected, never a traceback, and leaves no file that looks complete.

Config cases run through crsky.config (exactly what the Snakefile calls before building the
DAG); a few of them also through a real ``snakemake`` to check the wiring (exit status, one
line, no Snakemake stack frames). The two shell-injection vectors of issue 14 run for real.
"""

import copy
import os
import re
import subprocess

import pytest
import yaml
from helpers import BIN, REPO, run_snakemake, workflow_copy

from crsky.config import check_config, validate_config
from crsky.errors import ConfigError

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
BASE = yaml.safe_load((REPO / "config/config.yaml").read_text())


def _merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def check(overrides: dict) -> None:
    """The Snakefile's checks on config/config.yaml with ``overrides`` merged over it."""
    config = _merge(BASE, overrides)
    validate_config(config, SCHEMA)
    check_config(config)


def dataset(**keys) -> dict:
    return {"skymaps": {"datasets": {"train": keys}}}


# (overrides of config/config.yaml, regex the one-line message must match)
CONFIG_CASES = {
    "nan": ({"backtrack": {"tolerance": float("nan")}}, r"^backtrack\.tolerance = nan: .*finite"),
    "inf-in-list": (
        {"evaluation": {"sigma_levels": [2.0, float("inf")]}},
        r"^evaluation\.sigma_levels\[1\] = inf: .*finite",
    ),
    "-inf-in-model": (
        {"models": [{"name": "a", "l2": float("-inf")}]},
        r"^models\[0\]\.l2 = -inf",
    ),
    "unknown-top-key": ({"sead": 1}, r"^sead: unknown key; did you mean 'seed'\?"),
    "unknown-nested-key": (
        {"backtrack": {"toleranc": 1e-7}},
        r"^backtrack\.toleranc: unknown key; did you mean 'tolerance'\?",
    ),
    "unknown-dataset-key": (
        dataset(n_mapz=10),
        r"^skymaps\.datasets\.train\.n_mapz: unknown key; did you mean 'n_maps'\?",
    ),
    "unknown-model-key": (
        {"models": [{"name": "a", "dropuot": 0.1}]},
        r"^models\[0\]\.dropuot: unknown key; did you mean 'dropout'\?",
    ),
    "wrong-type": ({"train": {"epochs": 1.5}}, r"^train\.epochs = 1\.5: .*integer"),
    "below-minimum": ({"backtrack": {"shard_size": 0}}, r"^backtrack\.shard_size = 0: .*minimum"),
    "enum": ({"lens": {"nside": 3}}, r"^lens\.nside = 3: expected one of \[1, 2, 4"),
    "enum-string": (
        {"field": {"model": "jf13"}},
        r"^field\.model = 'jf13': expected one of .*did you mean 'jf12'\?",
    ),
    "missing-required": ({"models": [{"depth": 2}]}, r"^models\[0\]: 'name' is a required"),
    "results-dir-shell": ({"results_dir": "res$(touch pwned)"}, r"^results_dir = .*pattern"),
    "logs-dir-space": ({"logs_dir": "my logs"}, r"^logs_dir = 'my logs': must match"),
    "results-dir-option": ({"results_dir": "--help"}, r"^results_dir = '--help'"),
    "dataset-name": (
        {"skymaps": {"datasets": {"bad-name": {}}}},
        r"^skymaps\.datasets\.bad-name: not an allowed name",
    ),
    "element": (
        dataset(composition={"Hx": 1.0}),
        r"^skymaps\.datasets\.train\.composition\.Hx: .*did you mean 'H'\?",
    ),
    "composition-sum": (
        dataset(composition={"H": 0.5}),
        r"^skymaps\.datasets\.train\.composition: .*sum to 1",
    ),
    "energy-range": (
        dataset(energy_min_eev=400.0),
        r"^skymaps\.datasets\.train\.energy_max_eev = 316\.0 must exceed energy_min_eev",
    ),
    "energy-storable": (
        dataset(energy_min_eev=0.05),
        r"^skymaps\.datasets\.train: energies 0\.05 \.\.\. 316\.0 EeV must lie in the storable "
        r"range 10\^-1 \.\.\. 10\^126\.998 EeV",
    ),
    "power-law-index": (
        dataset(spectrum={"model": "power_law"}),
        r"^skymaps\.datasets\.train\.spectrum: .*spectral_index",
    ),
    "chunk-size-cap": (
        dataset(chunk_size=20001),
        r"^skymaps\.datasets\.train\.chunk_size = 20001: .*maximum of 20000",
    ),
    "source-positions": (
        dataset(sources={"n_sources": 2, "positions": [[0.0, 0.0]]}),
        r"^skymaps\.datasets\.train\.sources: .*positions",
    ),
    "lens-nside": (
        dataset(deflection={"mode": "lens"}, nside=32),
        r"'nside' 32 exceeds the lens nside 16",
    ),
    "field-option-unknown": (
        {"field": {"options": {"pitch_deg": 11.5}}},
        r"^field\.options\.pitch_deg: unknown option of field model 'jf12'",
    ),
    "field-option-shell": (
        {"field": {"options": {"components": "$(touch pwned)"}}},
        r"^field\.options\.components: unknown JF12 component",
    ),
    "field-option-value": (
        {"field": {"model": "uniform", "options": {"b_ugauss": [0, 1]}}},
        r"^field\.options\.b_ugauss .*3 finite numbers",
    ),
    "zero-field-options": (
        {"field": {"model": "zero", "options": {"b_ugauss": [0, 0, 1]}}},
        r"^field\.options\.b_ugauss: unknown option of field model 'zero'; its options: none",
    ),
    "uf23-variant": (
        {"field": {"model": "uf23", "options": {"variant": "expx"}}},
        r"^field\.options\.variant: unknown UF23 model 'expx'; expected one of .*'expX'",
    ),
    "pt11-disk": (
        {"field": {"model": "pt11", "options": {"disk": "axisymmetric"}}},
        r"^field\.options\.disk: unknown PT11 disk 'axisymmetric'",
    ),
    "turbulence-scales": (
        {"field": {"options": {"turbulence": {"l_min_pc": 272, "l_max_pc": 8}}}},
        r"^field\.options\.turbulence: l_min_pc \(272\) must be below l_max_pc \(8\)",
    ),
    "turbulence-rms": (
        {"field": {"options": {"turbulence": {"rms_scale": 0}}}},
        r"^field\.options\.turbulence\.rms_scale must be a positive number, got 0",
    ),
    "particles-not-multiple": (
        {"backtrack": {"particles_per_bin": 12000}},
        r"^backtrack\.particles_per_bin = 12000: must be a multiple of the 3072 pixels of nside 16",
    ),
    "particles-below-npix": (
        {"backtrack": {"particles_per_bin": 3000}},
        r"^backtrack\.particles_per_bin = 3000: .*e\.g\. 3072",
    ),
    "rigidity-order": (
        {"rigidity_bins": {"log10_rigidity_min": 20.0, "log10_rigidity_max": 19.0}},
        r"'log10_rigidity_max' \(19\.0\) must exceed",
    ),
    "evaluation-dataset": (
        {"evaluation": {"test_dataset": "tset"}},
        r"^evaluation\.test_dataset = 'tset': .*did you mean 'test'\?",
    ),
    "isotropy-too-small": (
        {
            "evaluation": {"sigma_levels": [5.0]},
            "skymaps": {"datasets": {"isotropy": {"n_maps": 200}}},
        },
        r"isotropy set 'isotropy' has 200 maps, too few for σ = 5 .* or 300 for an extrapolated",
    ),
    "reserved-model-name": ({"models": [{"name": "summary"}]}, r"^models: names \['summary'\]"),
    "duplicate-model": (
        {"models": [{"name": "x"}, {"name": "x", "family": "patches"}]},
        r"^models: names must be unique",
    ),
    "model-too-deep": (
        {"models": [{"name": "a", "depth": 5}]},
        r"^models\[0\]\.depth = 5: .*pools nside 16 below 1",
    ),
    "train-on-test": (
        {"train": {"training_datasets": ["train", "test"]}},
        r"^train\.training_datasets: 'test' is the evaluation's test",
    ),
    "train-unknown-dataset": (
        {"train": {"validation_datasets": ["validaton"]}},
        r"^train\.validation_datasets: 'validaton' .*did you mean 'validation'\?",
    ),
    "node-too-small": (
        {"resources": {"train": {"threads": 128}}},
        r"^resources\.train\.threads = 128 exceeds cluster\.max_cpus_per_node",
    ),
    "train-gpus-beyond-node": ({"train": {"gpus": 8}}, r"^train\.gpus = 8 exceeds cluster"),
    "likelihood-grid-too-coarse": (
        {"evaluation": {"likelihood": {"grid": {"nside": 8, "levels": 2}}}},
        r"^evaluation\.likelihood\.grid\.nside = 8: .*deflection scale 2\.26° .*nside ≥ 32",
    ),
    "likelihood-axes-too-coarse": (
        {"evaluation": {"likelihood": {"grid": {"n_axes": 4, "levels": 0}}}},
        r"^evaluation\.likelihood\.grid\.n_axes = 4: .*n_axes ≥ 12",
    ),
    "likelihood-two-sources": (
        {
            "skymaps": {
                "datasets": {
                    "test": {"sources": {"n_sources": 2}},
                    "isotropy": {"sources": {"n_sources": 2}},
                }
            }
        },
        r"^skymaps\.datasets\.test\.sources\.n_sources = 2: likelihood_profiled profiles one",
    ),
    "likelihood-other-background": (
        {"skymaps": {"datasets": {"isotropy": {"energy_min_eev": 39.0}}}},
        r"^skymaps\.datasets\.isotropy\.energy_min_eev = 39\.0: differs from the test set",
    ),
    "likelihood-uniform-fractions": (
        {
            "skymaps": {
                "datasets": {"test_u": {"nside": 16, "signal_fraction": {"uniform": [0, 0.1]}}}
            },
            "evaluation": {"test_dataset": "test_u"},
        },
        r"^evaluation\.signal_fractions = \[\]: test set 'test_u' draws its signal fractions",
    ),
    "model-unknown-test-set": (
        {"models": [{"name": "a", "datasets": {"test": "tets"}}]},
        r"^models\[0\]\.datasets\.test = 'tets': not a dataset .*did you mean 'test'\?",
    ),
    "model-trains-on-another-models-test-set": (
        {
            "skymaps": {
                "datasets": {"test_b": {"nside": 16, "signal_fraction": {"values": [0.1]}}}
            },
            "models": [
                {"name": "a"},
                {"name": "b", "datasets": {"test": "test_b"}},
                {"name": "c", "datasets": {"training": ["test_b"]}},
            ],
        },
        r"^models\[2\]\.datasets\.training: 'test_b' is the evaluation's test",
    ),
}


@pytest.mark.parametrize(("overrides", "match"), CONFIG_CASES.values(), ids=CONFIG_CASES.keys())
def test_bad_config_names_the_key(overrides, match):
    with pytest.raises(ConfigError) as info:
        check(overrides)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(match, message), message


def test_the_shipped_configs_pass():
    check({})
    check(yaml.safe_load((REPO / "config/production.yaml").read_text()))


# --- through snakemake: one line, exit status 1, nothing run --------------------------------------


def _assert_one_clean_line(output: str, message: str) -> None:
    errors = [line for line in output.splitlines() if line.startswith("crsky config: error:")]
    assert len(errors) == 1 and message in errors[0], output
    assert "Traceback" not in output and 'File "' not in output, output


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"field": {"options": {"components": "$(touch pwned)"}}}, "field.options.components"),
        ({"results_dir": "res$(touch pwned)"}, "results_dir = 'res$(touch pwned)'"),
        ({"logs_dir": "logs`touch pwned`"}, "logs_dir"),
    ],
    ids=["field-options", "results-dir", "logs-dir"],
)
def test_shell_injection_is_refused_for_real(tmp_path, overrides, message):
    """A real run (not a dry-run) of the two injection vectors: the config check stops it
    before any job, and no command in the values ever runs."""
    workdir = workflow_copy(tmp_path, overrides)
    code, output = run_snakemake(
        "--configfile", "config/test.yaml", "--cores", "1", cwd=workdir, check=False
    )
    assert code == 1
    _assert_one_clean_line(output, message)
    assert not list(tmp_path.rglob("pwned"))
    assert not (workdir / "results").exists()


def test_config_error_from_snakemake_is_one_line(checkout, tmp_path):
    extra = tmp_path / "bad.yaml"
    extra.write_text("skymaps: {datasets: {train: {chunk_size: 30000}}}\n")
    code, output = run_snakemake("-n", "--configfile", str(extra), cwd=checkout, check=False)
    assert code == 1
    _assert_one_clean_line(output, "skymaps.datasets.train.chunk_size = 30000")


_SHELL = re.compile(r"^    shell:\n((?:        .*\n)+)", re.M)
_FIELD = re.compile(r"(?<!\{)\{([^{}]+)\}(?!\})")


def test_every_shell_value_is_quoted():
    """Every {placeholder} in every shell command of the workflow is shell-quoted ({x:q})."""
    commands = [
        m.group(1)
        for path in (REPO / "workflow/rules").glob("*.smk")
        for m in _SHELL.finditer(path.read_text())
    ]
    assert len(commands) >= 9  # one per rule
    fields = [f for command in commands for f in _FIELD.findall(command)]
    assert fields and all(f.endswith(":q") for f in fields), [
        f for f in fields if not f.endswith(":q")
    ]


# --- config files Snakemake reads before the workflow: crsky workflow checks them -------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "config file 'config/absent.yaml': No such file or directory"),
        ("lens:\n  nside: [16\nseed: 1\n", "config/absent.yaml:3:5: not valid YAML"),
        ("- 1\n- 2\n", "config/absent.yaml: a config file must be a mapping of keys"),
    ],
    ids=["missing", "yaml-syntax", "not-a-mapping"],
)
def test_config_file_errors_are_one_line(checkout, content, message):
    """Snakemake 9 prints a traceback for a missing --configfile and no file name for a YAML
    error; ``crsky workflow`` (snakemake with the same arguments) names file, line and column."""
    path = checkout / "config" / "absent.yaml"
    path.unlink(missing_ok=True)
    if content is not None:
        path.write_text(content)
    result = subprocess.run(
        [str(BIN / "crsky"), "workflow", "-n", "--configfile", "config/absent.yaml"],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
    )
    path.unlink(missing_ok=True)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2
    assert len(lines) == 1 and lines[0].startswith(f"crsky workflow: error: {message}"), lines


def test_crsky_workflow_runs_snakemake_with_the_same_arguments(checkout):
    result = subprocess.run(
        [str(BIN / "crsky"), "workflow", "-n", "--configfile=config/config.yaml", "--cores", "1"],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Job stats:" in result.stdout + result.stderr
