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
from helpers import BIN, REPO, TINY_DATASETS, TINY_SEED, job_counts, snakemake, workflow_copy

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
        }
    },
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
    assert len(mixed) == 2 and all(
        line.endswith("--lens results/lens/jf12 results/lens/uf23-expX > "
                      f"logs/skymaps/mixed/chunk000{k}.log 2>&1")
        for k, line in enumerate(mixed)
    )  # fmt: skip
    assert '"lens": ["jf12", "uf23-expX"]' in mixed[0]
    assert "--lens results/lens/pt11-bss >" in output


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
