"""The field ensemble (issue 12, phase B): several lenses in one workflow, lens names, skymap
datasets that name a lens or mix several, and the bad input around them."""

import copy
import json
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import h5py
import healpy as hp
import numpy as np
import pytest
import yaml
from helpers import (
    BIN,
    REPO,
    TINY_DATASETS,
    TINY_SEED,
    job_counts,
    merged_config,
    save_tiny_model,
    snakemake,
    workflow_copy,
)

from crsky.backtrack import Accuracy
from crsky.backtrack.shard import SHARD_DATASETS, ShardJob, read_shard, run_shard
from crsky.binning import RigidityBins, Sharding
from crsky.config import check_config, validate_config
from crsky.ensemble import derived_lens_name, lens_fields
from crsky.errors import ConfigError
from crsky.lens import Lens, build_part, finalize_lens, write_part
from crsky.sky.dataset import DatasetConfig
from crsky.sky.simulate import check_lens_mix, run_chunk
from crsky.store import open_chunk

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
BASE = yaml.safe_load((REPO / "config/config.yaml").read_text())


# --- lens names ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "options", "name"),
    [
        ("jf12", {}, "jf12"),
        ("uf23", {}, "uf23"),
        ("uf23", {"variant": "base"}, "uf23"),
        ("uf23", {"variant": "expX"}, "uf23-expX"),
        ("kst24", {}, "kst24"),
        ("pt11", {"disk": "bss"}, "pt11-bss"),
        ("pt11", {"halo": False}, "pt11-nohalo"),
        ("jf12", {"components": ["x_field", "disk"]}, "jf12-disk+x_field"),
        ("jf12", {"turbulence": True}, "jf12-turbulence"),
        ("jf12", {"turbulence": {"seed": 3}}, "jf12-turbulence-seed3"),
        ("jf12", {"striated": {"seed": 2}}, "jf12-striated"),  # seed 2 is the default
        ("uniform", {"b_ugauss": [0, 0, 2]}, "uniform-b_ugauss0+0+2"),
    ],
)
def test_lens_name_is_the_model_and_its_non_default_options(model, options, name):
    assert derived_lens_name(model, options) == name


def test_field_is_shorthand_for_a_one_entry_fields_list():
    one = lens_fields({"field": {"model": "uf23", "options": {"variant": "expX"}}})
    assert list(one) == ["uf23-expX"] and one["uf23-expX"].key == "field"
    both = lens_fields(
        {
            "field": {"model": "kst24"},  # not used: fields is given
            "fields": [{"model": "jf12"}, {"model": "uf23", "name": "uf23_base"}],
        }
    )
    assert list(both) == ["jf12", "uf23_base"]
    assert (both["uf23_base"].model, both["uf23_base"].key) == ("uf23", "fields[1]")


def _merged(overrides: dict) -> dict:
    def merge(a, b):
        out = copy.deepcopy(a)
        for key, value in b.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
        return out

    return merge(BASE, overrides)


def check(overrides: dict) -> None:
    """The Snakefile's checks on config/config.yaml with ``overrides`` merged over it."""
    config = _merged(overrides)
    validate_config(config, SCHEMA)
    check_config(config)


FIELDS = [{"model": "jf12"}, {"model": "uf23", "options": {"variant": "expX"}}]


def lens_dataset(lens=None, **keys) -> dict:
    deflection = {"mode": "lens"} if lens is None else {"mode": "lens", "lens": lens}
    spec = {"n_maps": 10, "chunk_size": 10, "nside": 16, "deflection": deflection, **keys}
    return {"skymaps": {"datasets": {"lensed": spec}}}


BAD_ENSEMBLES = {
    "duplicate-name": (
        {"fields": [{"model": "uf23"}, {"model": "uf23", "options": {"variant": "base"}}]},
        r"^fields\[1\]\.name: lens name 'uf23' is also the name of fields\[0\]; lens names must "
        r"be unique",
    ),
    "duplicate-explicit-name": (
        {"fields": [{"model": "jf12"}, {"model": "kst24", "name": "jf12"}]},
        r"^fields\[1\]\.name: lens name 'jf12' is also the name of fields\[0\]",
    ),
    "unsafe-name": (
        {"fields": [{"model": "jf12", "name": "../jf12"}]},
        r"^fields\[0\]\.name = '\.\./jf12': must match the pattern",
    ),
    "derived-name-unsafe": (
        {"fields": [{"model": "jf12", "options": {"turbulence": {"rms_scale": 0.5}}}]},
        None,  # allowed: jf12-turbulence-rms_scale0.5
    ),
    "unknown-variant-in-list": (
        {"fields": [{"model": "jf12"}, {"model": "uf23", "options": {"variant": "expx"}}]},
        r"^fields\[1\]\.options\.variant: unknown UF23 model 'expx'",
    ),
    "unknown-option-in-list": (
        {"fields": [{"model": "pt11", "options": {"variant": "bss"}}]},
        r"^fields\[0\]\.options\.variant: unknown option of field model 'pt11'",
    ),
    "empty-fields": ({"fields": []}, r"^fields = \[\]: .*(non-empty|short)"),
    "unknown-lens": (
        {"fields": FIELDS, **lens_dataset("uf23-expx")},
        r"^skymaps\.datasets\.lensed\.deflection\.lens: 'uf23-expx' is not a lens this workflow "
        r"builds \(\['jf12', 'uf23-expX'\]\); did you mean 'uf23-expX'\?",
    ),
    "unknown-lens-in-mix": (
        {"fields": FIELDS, **lens_dataset(["jf12", "kst24"])},
        r"^skymaps\.datasets\.lensed\.deflection\.lens: 'kst24' is not a lens this workflow",
    ),
    "single-lens-named-wrong": (
        lens_dataset("uf23"),
        r"^skymaps\.datasets\.lensed\.deflection\.lens: 'uf23' is not a lens this workflow "
        r"builds \(\['jf12'\]\)",
    ),
    "unnamed-lens-of-several": (
        {"fields": FIELDS, **lens_dataset()},
        r"^skymaps\.datasets\.lensed\.deflection\.lens: the workflow builds 2 lenses "
        r"\['jf12', 'uf23-expX'\]; name the one this dataset uses",
    ),
    "lens-listed-twice": (
        {"fields": FIELDS, **lens_dataset(["jf12", "jf12"])},
        r"^skymaps\.datasets\.lensed\.deflection\.lens = \['jf12', 'jf12'\]: .* non-unique",
    ),
    "lens-named-in-toy-mode": (
        {"skymaps": {"datasets": {"train": {"deflection": {"lens": "jf12"}}}}},
        r"^skymaps\.datasets\.train\.deflection\.lens = 'jf12': names a lens, but "
        r"deflection\.mode is 'toy'",
    ),
    "robustness-unknown-dataset": (
        {"evaluation": {"robustness_datasets": ["test_uf32"]}},
        r"^evaluation\.robustness_datasets: 'test_uf32' is not a dataset of skymaps\.datasets",
    ),
    "robustness-other-nside": (
        {
            "fields": FIELDS,
            **lens_dataset("jf12", nside=8),
            "evaluation": {"robustness_datasets": ["lensed"]},
        },
        r"^evaluation\.robustness_datasets: 'lensed' has nside 8 .* the isotropy set 'isotropy' "
        r"nside 16",
    ),
    "robustness-uniform-fraction": (
        {"evaluation": {"robustness_datasets": ["validation"]}},
        r"^evaluation\.robustness_datasets: 'validation' draws its signal fraction from 'uniform'",
    ),
    "robustness-fraction-missing": (
        {
            "fields": FIELDS,
            **lens_dataset("jf12", signal_fraction={"values": [0.0, 0.1]}),
            "evaluation": {"robustness_datasets": ["lensed"], "signal_fractions": [0.0, 0.05]},
        },
        r"^evaluation\.robustness_datasets: 'lensed' has no maps at signal fraction 0\.05",
    ),
    "model-training-set-unknown": (
        {"models": [{**BASE["models"][0], "datasets": {"training": ["train_mix"]}}]},
        r"^models\[0\]\.datasets\.training: 'train_mix' is not a dataset of skymaps\.datasets",
    ),
    "model-training-set-held-out": (
        {"models": [{**BASE["models"][0], "datasets": {"validation": ["isotropy"]}}]},
        r"^models\[0\]\.datasets\.validation: 'isotropy' is the evaluation's test or isotropy",
    ),
    "robustness-set-used-for-training": (
        {"evaluation": {"robustness_datasets": ["train_isotropy"]}},
        r"^train\.training_datasets: 'train_isotropy' is the evaluation's test or isotropy set "
        r"\(or a robustness test set\)",
    ),
    "mix-too-large-for-a-node": (
        {
            "fields": FIELDS,
            **lens_dataset(["jf12", "uf23-expX"]),
            "resources": {"skymaps": {"mem_mb": 130000}},
        },
        r"^skymaps\.datasets\.lensed: a job of this mix of 2 lenses requests 2 x "
        r"resources\.skymaps\.mem_mb = 260000 MB .* cluster\.max_mem_mb_per_node = 256000",
    ),
    "mix-not-covering-charges": (
        {"fields": FIELDS, **lens_dataset(["jf12", "uf23-expX"], composition={"Fe": 1.0})},
        r"^skymaps\.datasets\.lensed: the energy threshold .* for Z = 26, below the lens "
        r"coverage",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ENSEMBLES))
def test_bad_ensemble_config_is_one_line_naming_the_key(case):
    overrides, pattern = BAD_ENSEMBLES[case]
    if pattern is None:
        check(overrides)
        return
    with pytest.raises(ConfigError) as info:
        check(overrides)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(pattern, message), message


def test_mix_of_lenses_with_different_grids_is_refused():
    dataset = DatasetConfig.from_dict(
        "mixed", {"nside": 4, "energy_min_eev": 40.0, "deflection": {"mode": "lens"}}
    )
    edges = np.linspace(18.0, 21.0, 7)
    a = SimpleNamespace(nside=16, log10_rigidity_edges=edges)
    check_lens_mix(dataset, [a, a], ["jf12", "uf23"])  # same grid: fine
    finer = SimpleNamespace(nside=32, log10_rigidity_edges=edges)
    with pytest.raises(ConfigError, match=r"different nside \(jf12: 16, uf23: 32\)"):
        check_lens_mix(dataset, [a, finer], ["jf12", "uf23"])
    shifted = SimpleNamespace(nside=16, log10_rigidity_edges=np.linspace(18.0, 21.0, 13))
    with pytest.raises(ConfigError, match=r"different rigidity bins \(jf12: 6 bins .*uf23: 12"):
        check_lens_mix(dataset, [a, shifted], ["jf12", "uf23"])


# --- a real mix of two lenses ------------------------------------------------------------------
def _antipodal_lens(tiny: dict, root: Path) -> Path:
    """A lens from the tiny zero-field shards with every edge direction replaced by its
    antipode: a CR from extragalactic pixel j is observed in the pixel opposite j."""
    parts = []
    for b, paths in tiny["shards"].items():
        flipped = []
        for path in paths:
            data, attrs = read_shard(path)
            data["edge_direction"] = -data["edge_direction"]
            out = root / "antipode_shards" / f"bin{b:03d}" / path.name
            out.parent.mkdir(parents=True, exist_ok=True)
            with h5py.File(out, "w", track_order=True) as f:
                for name, (dtype, _) in SHARD_DATASETS.items():
                    f.create_dataset(name, data=np.asarray(data[name]).astype(dtype))
                for key, value in attrs.items():
                    f.attrs[key] = value
            flipped.append(out)
        parts.append(write_part(build_part(flipped, "zero", 1, b), root / "ap" / f"bin{b:03d}.npz"))
    finalize_lens(parts, root / "antipode")
    return root / "antipode"


@pytest.fixture(scope="module")
def mixed_chunk(tiny_inputs, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("mix")
    identity = tiny_inputs["root"] / "lens"  # the zero field: observed = extragalactic
    antipode = _antipodal_lens(tiny_inputs, root)
    spec = {
        **TINY_DATASETS["lensed"],
        "n_maps": 200,
        "chunk_size": 200,
        "signal_fraction": {"value": 0.5},
        "deflection": {"mode": "lens", "lens": ["zero", "antipode"]},
    }
    dataset = DatasetConfig.from_dict("mixed", spec)
    lenses = [Lens.load(identity), Lens.load(antipode)]
    path = run_chunk(dataset, 0, TINY_SEED, root / "mixed.h5", lenses, [identity, antipode])
    return {"path": path, "dataset": dataset, "lenses": lenses, "folders": [identity, antipode]}


def test_each_map_of_a_mix_is_deflected_by_the_lens_its_label_names(mixed_chunk):
    with open_chunk(mixed_chunk["path"]) as chunk:
        assert chunk.lens_names == ("zero", "antipode") and chunk.is_lens_mix
        assert chunk.lens_folders == tuple(str(f) for f in mixed_chunk["folders"])
        labels, crs = chunk.labels(), chunk.cosmic_rays()
        config = chunk.config
    assert config["deflection"]["lens"] == ["zero", "antipode"]
    index = labels["lens_index"]
    assert index.dtype == np.uint8 and set(np.unique(index)) == {0, 1}
    assert 0.35 < index.mean() < 0.65  # uniform draw: 200 maps, 0.5 ± 0.035
    source = labels["source_direction"][:, 0, :].astype(np.float64)
    source_pixel = hp.vec2pix(1, *source.T)
    opposite_pixel = hp.vec2pix(1, *(-source).T)
    for m in range(len(index)):
        signal = crs.pixel[m][crs.is_signal[m]]
        assert signal.size == labels["n_signal"][m] == 10
        expected = source_pixel[m] if index[m] == 0 else opposite_pixel[m]
        assert np.all(signal == expected), (m, index[m])


def test_mix_is_reproducible_and_one_lens_lists_no_index(mixed_chunk, tmp_path):
    again = run_chunk(
        mixed_chunk["dataset"],
        0,
        TINY_SEED,
        tmp_path / "again.h5",
        mixed_chunk["lenses"],
        mixed_chunk["folders"],
    )
    assert again.read_bytes() == mixed_chunk["path"].read_bytes()
    spec = {**mixed_chunk["dataset"].config, "deflection": {"mode": "lens", "lens": ["zero"]}}
    single = DatasetConfig.from_dict("mixed", spec)
    path = run_chunk(
        single,
        0,
        TINY_SEED,
        tmp_path / "one.h5",
        mixed_chunk["lenses"][0],
        mixed_chunk["folders"][0],
    )
    with open_chunk(path) as chunk:
        assert chunk.lens_names == ("zero",) and not chunk.is_lens_mix
        assert "lens_index" not in chunk.labels()
        assert chunk.attrs["lens_cfg"] == (mixed_chunk["folders"][0] / "lens.cfg").read_text()


def _skymaps_cli(tmp_path, dataset: dict, lens_dirs: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(BIN / "crsky"),
            "skymaps",
            "--output",
            str(tmp_path / "out.h5"),
            "--seed",
            "1",
            "--dataset",
            "mixed",
            "--datasets",
            json.dumps({"mixed": dataset}),
            "--chunk",
            "0",
            "--lens",
            *map(str, lens_dirs),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_skymaps_cli_refuses_a_mix_of_lenses_with_different_bins(tiny_inputs, tmp_path):
    # the zero field again, in one rigidity bin 19 ... 20 instead of two
    bins, sharding = RigidityBins(19.0, 20.0, 1), Sharding(24, 24)
    job = ShardJob(TINY_SEED, "zero", {}, bins, 0, sharding, 0, 1, Accuracy())
    shard = run_shard(job, tmp_path / "shard.h5", threads=1)
    one_bin = tmp_path / "half"
    finalize_lens([write_part(build_part([shard], "zero", 1, 0), tmp_path / "bin000.npz")], one_bin)
    spec = {**TINY_DATASETS["lensed"], "deflection": {"mode": "lens", "lens": ["zero", "half"]}}
    result = _skymaps_cli(tmp_path, spec, [tiny_inputs["root"] / "lens", one_bin])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "different rigidity bins (zero: 2 bins 19 ... 20, half: 1 bins 19 ... 20)" in lines[0]
    assert not (tmp_path / "out.h5").exists()
    wrong_count = _skymaps_cli(tmp_path, spec, [tiny_inputs["root"] / "lens"])
    assert wrong_count.returncode == 2
    assert "pass '--lens' with one folder per lens" in wrong_count.stderr


# --- the workflow -------------------------------------------------------------------------------
ENSEMBLE = {
    "fields": [
        {"model": "jf12"},
        {"model": "uf23", "options": {"variant": "expX"}},
        {"model": "pt11", "options": {"disk": "bss"}},
    ],
    "skymaps": {
        "datasets": {
            "mixed": {
                "n_maps": 100,
                "chunk_size": 50,
                "nside": 16,
                "deflection": {"mode": "lens", "lens": ["jf12", "uf23-expX"]},
            },
            "bss": {"n_maps": 10, "nside": 16, "deflection": {"mode": "lens", "lens": "pt11-bss"}},
            "test_uf23": {
                "n_maps": 600,
                "chunk_size": 300,
                "nside": 16,
                "signal_fraction": {"values": [0.0, 0.05, 0.1]},
                "deflection": {"mode": "lens", "lens": "uf23-expX"},
            },
        }
    },
    "evaluation": {"robustness_datasets": ["test", "test_uf23"]},
    # the first model trains on the mix instead of train.training_datasets
    "models": [
        {**BASE["models"][0], "datasets": {"training": ["mixed", "train_isotropy"]}},
        *BASE["models"][1:],
    ],
}


def test_fields_list_dry_run_builds_one_lens_folder_per_model(tmp_path):
    workdir = workflow_copy(tmp_path, ENSEMBLE)
    output = snakemake("-n", "--configfile", "config/test.yaml", "-p", cwd=workdir)
    counts = job_counts(output)
    n_bins = BASE["rigidity_bins"]["n_bins"]
    n_shards = -(-BASE["backtrack"]["particles_per_bin"] // BASE["backtrack"]["shard_size"])
    assert counts["backtrack"] == 3 * n_bins * n_shards
    assert (counts["lens_part"], counts["lens"], counts["lens_plots"]) == (3 * n_bins, 3, 3)
    assert counts["lens_comparison"] == 1
    for name, model in (("jf12", "jf12"), ("uf23-expX", "uf23"), ("pt11-bss", "pt11")):
        assert f"results/lens/{name}/lens.cfg" in output
        assert f"results/backtrack/{name}/bin000/shard0000.h5" in output
        assert f"--field {model} " in output
    assert '--field-options \'{"variant": "expX"}\'' in output
    # the mix reads both lenses in its order; the chunk's config names them
    mixed = [line for line in output.splitlines() if "--dataset mixed" in line]
    assert sorted(line.rsplit("--lens ", 1)[1] for line in mixed) == [
        f"results/lens/jf12 results/lens/uf23-expX > logs/skymaps/mixed/chunk000{k}.log 2>&1"
        for k in range(2)
    ]
    assert '"lens": ["jf12", "uf23-expX"]' in mixed[0]
    assert "--dataset bss " not in output  # defined, but no model uses it: not built
    # a model's own training sets; its spec (crsky train --model) without them
    first, second = BASE["models"][0]["name"], BASE["models"][1]["name"]
    (train_first,) = [
        line for line in output.splitlines() if f"--output results/models/{first} " in line
    ]
    (train_second,) = [
        line for line in output.splitlines() if f"--output results/models/{second} " in line
    ]
    assert (
        "--training results/skymaps/mixed/chunk0000.h5 results/skymaps/mixed/chunk0001.h5 "
        in train_first
    )
    assert "results/skymaps/train/" not in train_first and '"datasets"' not in train_first
    assert "--training results/skymaps/train/chunk0000.h5" in train_second
    # the robustness table: each model also on test_uf23 (tables only); on test its own folder
    models = [entry["name"] for entry in BASE["models"]]
    assert (counts["evaluate_robustness"], counts["robustness"]) == (len(models), 1)
    datasets = {**BASE["skymaps"]["datasets"], **ENSEMBLE["skymaps"]["datasets"]}
    assert counts["paircounts"] == sum(
        -(-datasets[name]["n_maps"] // datasets[name]["chunk_size"])
        for name in ("test", "isotropy", "test_uf23")
    )
    for model in models:
        folder = f"results/evaluate/robustness/{model}/test_uf23"
        assert f"--output {folder} --model results/models/{model}" in output
    (table,) = [line for line in output.splitlines() if "crsky robustness" in line]
    expected = " ".join(
        f"results/evaluate/{m} results/evaluate/robustness/{m}/test_uf23" for m in models
    )
    assert f"--evaluations {expected} --output results/evaluate/robustness_table" in table


def test_dataset_naming_a_lens_the_workflow_does_not_build_stops_before_any_job(tmp_path):
    overrides = {"fields": ENSEMBLE["fields"], **lens_dataset(["jf12", "uf23-spur"])}
    workdir = workflow_copy(tmp_path, overrides)
    output = snakemake("-n", "--configfile", "config/test.yaml", cwd=workdir, check=False)
    lines = [line for line in output.splitlines() if line.startswith("crsky config: error:")]
    assert lines == [
        "crsky config: error: skymaps.datasets.lensed.deflection.lens: 'uf23-spur' is not a "
        "lens this workflow builds (['jf12', 'uf23-expX', 'pt11-bss']); did you mean "
        "'uf23-expX'?"
    ]
    assert "Traceback" not in output and "Job stats" not in output


# --- the robustness table -----------------------------------------------------------------------
ROBUST_FRACTIONS = [0.0, 0.3]


@pytest.fixture(scope="module")
def robustness_runs(mixed_chunk, tmp_path_factory) -> dict:
    """Two networks evaluated on two test sets, both named 'test' and drawn from the same random
    stream, one through the zero-field lens and one through its antipodal image; an isotropy
    set; the robustness table of the four evaluations."""
    from crsky.evaluate.robustness import robustness
    from crsky.evaluate.run import EvaluateJob, evaluate

    root = tmp_path_factory.mktemp("robustness")
    zero, antipode = mixed_chunk["folders"]
    base = {**TINY_DATASETS["lensed"], "n_maps": 100, "chunk_size": 100}
    tests = {}
    for name, folder, lens in (("zero", zero, mixed_chunk["lenses"][0]),
                               ("antipode", antipode, mixed_chunk["lenses"][1])):  # fmt: skip
        spec = {
            **base,
            "signal_fraction": {"values": ROBUST_FRACTIONS},
            "deflection": {"mode": "lens", "lens": name},
        }
        dataset = DatasetConfig.from_dict("test", spec)
        tests[name] = run_chunk(dataset, 0, TINY_SEED, root / name / "chunk0000.h5", lens, folder)
    isotropic = {**base, "n_maps": 300, "chunk_size": 300, "signal_fraction": {"value": 0.0},
                 "deflection": {"mode": "none"}}  # fmt: skip
    isotropy = run_chunk(
        DatasetConfig.from_dict("isotropy", isotropic), 0, TINY_SEED, root / "iso" / "c.h5"
    )
    models = {
        "mixnet": save_tiny_model(root / "mixnet", 1, training=[str(mixed_chunk["path"])]),
        "zeronet": save_tiny_model(
            root / "zeronet", 1, training=[str(tests["zero"]), str(isotropy)]
        ),
    }
    folders = []
    for model, path in models.items():
        for name, chunk in tests.items():
            job = EvaluateJob((chunk,), (isotropy,), path, sigma_levels=(1.0,), plots=False)
            folders.append(evaluate(job, root / f"{model}_on_{name}"))
    table = robustness(folders, root / "table")
    return {"folders": folders, "table": table, "root": root}


def _csv_rows(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_robustness_table_is_trained_on_by_tested_on(robustness_runs):
    from crsky.stats.significance import read_significance_csv

    rows = _csv_rows(robustness_runs["table"] / "robustness.csv")
    networks = [r for r in rows if r["method"] == "network"]
    baseline = [r for r in rows if r["method"] == "two_point"]
    assert len(networks) == 2 * 2 * 2 and len(baseline) == 2 * 2  # baseline once per test set
    trained = {r["model"]: r["trained_on"] for r in networks}
    # the mix's lens names; the isotropic training set carries no deflection
    assert trained == {"mixnet": "zero+antipode", "zeronet": "zero"}
    assert {r["tested_on"] for r in rows} == {"zero", "antipode"}
    assert {(r["model"], r["trained_on"]) for r in baseline} == {("-", "-")}
    # every network cell is its evaluation's number
    for folder in robustness_runs["folders"]:
        model, _, tested = folder.name.partition("_on_")
        for row in read_significance_csv(folder / "significance.csv"):
            if row.method != "network":
                continue
            (cell,) = [
                r for r in networks
                if (r["model"], r["tested_on"]) == (model, tested)
                and float(r["signal_fraction"]) == row.signal_fraction
            ]  # fmt: skip
            assert float(cell["sigma"]) == row.sigma and cell["sigma_bound"] == row.sigma_bound
    # the isotropic background is not deflected and both sets come from one random stream:
    # their maps without signal are the same, so is every σ at signal fraction 0
    by_set = {(r["model"], r["tested_on"], float(r["signal_fraction"])): r for r in rows}
    for model in ("-", "mixnet", "zeronet"):
        assert by_set[(model, "zero", 0.0)]["sigma"] == by_set[(model, "antipode", 0.0)]["sigma"]
    by_set = {(r["tested_on"], float(r["signal_fraction"])): r for r in baseline}
    for tested in ("zero", "antipode"):  # 6 of 20 CRs in one pixel of 12: the baseline sees it
        assert float(by_set[(tested, 0.3)]["sigma"]) > float(by_set[(tested, 0.0)]["sigma"]) + 1.0
    assert (robustness_runs["table"] / "robustness.png").stat().st_size > 10_000


def test_robustness_cli_and_its_bad_input(robustness_runs, tmp_path, capsys):
    from crsky.cli import main

    folders = [str(f) for f in robustness_runs["folders"]]
    out = tmp_path / "table"
    assert main(["-q", "robustness", "--evaluations", *folders, "--output", str(out),
                 "--signal-fractions", "0.3"]) == 0  # fmt: skip
    assert (out / "robustness.csv").read_bytes() == (
        robustness_runs["table"] / "robustness.csv"
    ).read_bytes()
    capsys.readouterr()
    cases = [
        (
            folders,
            ["--signal-fractions", "0.2"],
            r"signal_fractions: 0\.2 is not a signal fraction",
        ),
        ([*folders, folders[0]], [], r"a \(model, test set\) pair is given twice"),
        ([str(tmp_path)], [], r"significance\.csv"),  # not an evaluation folder
    ]
    for given, extra, pattern in cases:
        args = ["robustness", "--evaluations", *given, "--output", str(tmp_path / "bad"), *extra]
        assert main(args) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and re.search(pattern, lines[0]), lines
        assert not (tmp_path / "bad").exists()


# --- the production ensemble (config/ensemble.yaml) ---------------------------------------------
FEWER_BINS = {"rigidity_bins": {"n_bins": 7}}  # 0.5 dex: the ensemble's wiring with fewer jobs


def test_production_ensemble_dry_run(tmp_path):
    # config/production.yaml + config/ensemble.yaml, with 7 rigidity bins instead of 175 (the
    # backtracking jobs scale with the bins; everything else is the production ensemble)
    workdir = workflow_copy(tmp_path, FEWER_BINS)
    output = snakemake(
        "-n", "--profile", "profiles/condor", "--configfile", "config/production.yaml",
        "config/ensemble.yaml", "config/test.yaml", cwd=workdir,
    )  # fmt: skip
    counts = job_counts(output)
    config = merged_config("config/config.yaml", "config/production.yaml", "config/ensemble.yaml")
    n_lenses, n_models = len(config["fields"]), len(config["models"])
    n_tests = len(config["evaluation"]["robustness_datasets"])
    datasets = config["skymaps"]["datasets"]
    chunks = {name: -(-d["n_maps"] // d["chunk_size"]) for name, d in datasets.items()}
    assert (n_lenses, n_models, n_tests) == (11, 4, 10)
    assert counts["backtrack"] == n_lenses * 7 * 10
    assert (counts["lens_part"], counts["lens"], counts["lens_plots"]) == (77, 11, 11)
    assert counts["lens_comparison"] == 1
    used = {"train_lens", "validation_lens", "train_mix", "validation_mix", "train_isotropy",
            "validation_isotropy", "test_lens", "isotropy",
            *config["evaluation"]["robustness_datasets"]}  # fmt: skip
    assert counts["skymaps"] == sum(chunks[name] for name in used)  # not production's toy sets
    assert counts["train"] == counts["evaluate_lens"] == n_models  # lens-mode test sets
    assert (counts["evaluate_robustness"], counts["robustness"]) == (n_models * n_tests, 1)
    assert counts["paircounts"] == chunks["test_lens"] + chunks["isotropy"] + sum(
        chunks[name] for name in config["evaluation"]["robustness_datasets"]
    )
    # the mix reads all eleven lenses, each model its own training sets
    mix = [line for line in output.splitlines() if "--dataset train_mix " in line]
    assert len(mix) == chunks["train_mix"]
    assert mix[0].count("results/lens/") == 11
    # a mix job holds the parts of each lens: 11 x resources.skymaps.mem_mb
    block = output.split("output: results/skymaps/train_mix/chunk0000.h5")[1].split("rule ")[0]
    mem_mb = config["resources"]["skymaps"]["mem_mb"]
    assert f"mem_mb={11 * mem_mb}," in block and f"htcondor_request_mem_mb={11 * mem_mb}," in block
    (line,) = [
        line for line in output.splitlines() if "--output results/models/patches_mix " in line
    ]
    assert "results/skymaps/train_mix/chunk0024.h5 results/skymaps/train_isotropy/" in line
    assert "results/skymaps/train_lens/" not in line


def test_lens_compare_overlays_the_lenses_of_a_workflow(mixed_chunk, tmp_path, capsys):
    from crsky.cli import main
    from crsky.lens.formats import read_diagnostics

    zero, antipode = mixed_chunk["folders"]
    # the zero field deflects by 0°, its antipodal image by 180° (pixel centres, per bin)
    assert np.all(read_diagnostics(zero)["deflection_mean_deg"] == 0.0)
    assert np.allclose(read_diagnostics(antipode)["deflection_mean_deg"], 180.0)
    both, one = tmp_path / "both.png", tmp_path / "one.png"
    args = ["-q", "lens", "compare", "--deflection-png"]
    assert main([*args, str(both), "--lens-dirs", str(zero), str(antipode)]) == 0
    assert main([*args, str(one), "--lens-dirs", str(zero)]) == 0
    assert both.stat().st_size > 10_000 and both.read_bytes() != one.read_bytes()
    capsys.readouterr()
    assert main([*args, str(tmp_path / "bad.png"), "--lens-dirs", str(zero), str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path) in lines[0], lines
    assert not (tmp_path / "bad.png").exists()
