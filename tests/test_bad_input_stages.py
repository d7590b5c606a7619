"""Bad input to every stage's command (``crsky STAGE ...``, what the workflow's jobs run): each
case exits with status 2 and one line naming the option, key or file, never a traceback, and
leaves no file under the output's name (nor a temporary next to it). The config's bad values
are in test_bad_input.py; killed jobs and full disks in test_faults.py.

The inputs are real and tiny (the ``tiny_inputs`` fixture, helpers.build_tiny_inputs):
backtracking shards of the zero field at nside 1, the lens built from them, toy skymap chunks at
nside 4 and their pair counts.
"""

import contextlib
import io
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import TINY_DATASETS, flip_bytes, flip_dataset_bytes

from crsky.cli import main
from crsky.errors import InputFileError
from crsky.lens import Lens
from crsky.lens.formats import CfgEntry, write_cfg, write_npz


def crsky(*args) -> tuple[int, str]:
    """(exit status, stderr) of ``crsky -q ARGS`` run in this process."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(["-q", *map(str, args)])
        except SystemExit as stop:  # argparse errors
            code = stop.code
    return code, err.getvalue()


def _copy(path: Path, folder: Path, name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(path, folder / (name or path.name)))


def _rewrite_shard(path: Path, name: str, change) -> Path:
    """A shard whose HDF5 structure is intact but whose dataset ``name`` holds change(values)."""
    with h5py.File(path, "r+") as f:
        values = change(f[name][()])
        del f[name]
        f.create_dataset(name, data=values)
    return path


def _backtrack_args(out: Path, **overrides) -> list:
    options = {
        "--output": out,
        "--seed": 1,
        "--field": "zero",
        "--bins": [19, 20, 2],
        "--bin": 0,
        "--particles-per-bin": 24,
        "--shard-size": 12,
        "--shard": 0,
        "--nside": 1,
    }
    options.update(overrides)
    args = ["backtrack"]
    for key, value in options.items():
        args += [key, *(value if isinstance(value, list) else [value])]
    return args


def _bad_shard(inputs, tmp, name, change) -> list:
    """lens part of bin 0 with shard 0 replaced by an altered copy."""
    shard = _rewrite_shard(_copy(inputs["shards"][0][0], tmp / "bad"), name, change)
    return [shard, inputs["shards"][0][1]]


def _lens_part(shards, out: Path, **extra) -> list:
    args = ["lens", "part", "--shards", *shards, "--field", "zero", "--nside", 1, "--bin", 0]
    for key, value in {"--output": out, **extra}.items():
        args += [key, value]
    return args


def _skymaps(inputs, out: Path, dataset: str = "test", chunk: int = 0, **datasets) -> list:
    spec = json.dumps({dataset: {**TINY_DATASETS.get(dataset, {}), **datasets}})
    return [
        "skymaps",
        "--output",
        out,
        "--seed",
        1,
        "--dataset",
        dataset,
        "--datasets",
        spec,
        "--chunk",
        chunk,
    ]


def _evaluate(inputs, out: Path, *extra, test=None, isotropy=None, pairs=True) -> list:
    """``crsky evaluate`` of the test set against the isotropy set at 1σ, with their pair-count
    files (``pairs``: True, a (test, isotropy) pair of lists, or False to count in the job)."""
    c, p = inputs["chunks"], inputs["pairs"]
    test, isotropy = test or c["test"], isotropy or c["isotropy"]
    args = ["evaluate", "--output", out, "--test", *test, "--isotropy", *isotropy]
    if pairs:
        test_pairs, iso_pairs = (p["test"], p["isotropy"]) if pairs is True else pairs
        args += ["--test-pair-counts", *test_pairs, "--isotropy-pair-counts", *iso_pairs]
    return [*args, "--sigma-levels", "1", *extra]


def _blocked(folder: Path) -> Path:
    """An output path below a plain file: its folder cannot be created."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "file").write_text("")
    return folder / "file" / "sub" / "s.h5"


def _column_sum_above_one(inputs, tmp) -> Path:
    """A lens folder whose single part has a column summing to 1.5."""
    folder = tmp / "lens_gt1"
    matrix = np.zeros((12, 12))
    matrix[0, 0], matrix[1, 0] = 1.0, 0.5
    write_npz(matrix, folder / "bin000.npz")
    write_cfg(folder / "lens.cfg", 1, {}, [CfgEntry("bin000.npz", 17.0, 21.0, 1e-7, 1.5)])
    return folder


def _summary_without_table(inputs, tmp) -> list:
    (tmp / "m1").mkdir(parents=True)
    return ["summary", "--evaluations", tmp / "m1", "--output", tmp / "sum"]


# name: (builder(inputs, tmp) -> (args, output that must not appear), what the message names)
CASES = {
    "backtrack-bins-not-integer": (
        lambda i, t: (_backtrack_args(t / "s.h5", **{"--bins": [19, 20, 2.5]}), t / "s.h5"),
        "'--bins' LOG10_RMIN LOG10_RMAX N_BINS: expected an integer >= 1, got '2.5'",
    ),
    "backtrack-tolerance-nan": (
        lambda i, t: (_backtrack_args(t / "s.h5", **{"--tolerance": "nan"}), t / "s.h5"),
        "argument --tolerance: expected a finite number, got 'nan'",
    ),
    "backtrack-negative-seed": (
        lambda i, t: (_backtrack_args(t / "s.h5", **{"--seed": -1}), t / "s.h5"),
        "argument --seed: expected an integer >= 0",
    ),
    "backtrack-threads-zero": (
        lambda i, t: (_backtrack_args(t / "s.h5", **{"--threads": 0}), t / "s.h5"),
        "argument --threads: expected an integer >= 1",
    ),
    "backtrack-field-options-json": (
        lambda i, t: (_backtrack_args(t / "s.h5", **{"--field-options": "{x"}), t / "s.h5"),
        "'--field-options' is not a JSON object",
    ),
    "backtrack-field-option-unknown": (
        lambda i, t: (
            _backtrack_args(t / "s.h5", **{"--field": "jf12", "--field-options": '{"pitch": 1}'}),
            t / "s.h5",
        ),
        "field.options.pitch: unknown option of field model 'jf12'",
    ),
    "backtrack-field-option-nan": (
        lambda i, t: (
            _backtrack_args(
                t / "s.h5", **{"--field": "uniform", "--field-options": '{"b_ugauss": [0, 0, NaN]}'}
            ),
            t / "s.h5",
        ),
        "NaN is not a finite number",
    ),
    "backtrack-particles-not-multiple": (
        lambda i, t: (_backtrack_args(t / "s.h5", **{"--particles-per-bin": 25}), t / "s.h5"),
        "particles_per_bin = 25: must be a multiple of the 12 pixels",
    ),
    "backtrack-bin-outside": (
        lambda i, t: (_backtrack_args(t / "s.h5", **{"--bin": 2}), t / "s.h5"),
        "rigidity bin index 2 is outside the configured 0 ... 1",
    ),
    "backtrack-output-not-writable": (
        lambda i, t: (_backtrack_args(_blocked(t)), t / "file" / "sub" / "s.h5"),
        "/file/sub' of",
    ),
    "lens-part-missing-shard-file": (
        lambda i, t: (_lens_part([i["shards"][0][0], t / "gone.h5"], t / "p.npz"), t / "p.npz"),
        "gone.h5",
    ),
    "lens-part-shard-missing-index": (
        lambda i, t: (_lens_part(i["shards"][0][:1], t / "p.npz"), t / "p.npz"),
        "shards [1] are missing",
    ),
    "lens-part-nan-directions": (
        lambda i, t: (
            _lens_part(_bad_shard(i, t, "edge_direction", lambda v: v * np.nan), t / "p.npz"),
            t / "p.npz",
        ),
        "'edge_direction' of particle 0 has length nan, not a unit vector",
    ),
    "lens-part-non-unit-directions": (
        lambda i, t: (
            _lens_part(_bad_shard(i, t, "observed_direction", lambda v: 2 * v), t / "p.npz"),
            t / "p.npz",
        ),
        "not a unit vector",
    ),
    "lens-part-impossible-rigidity": (
        lambda i, t: (
            _lens_part(_bad_shard(i, t, "log10_rigidity", lambda v: v + 3), t / "p.npz"),
            t / "p.npz",
        ),
        "lies outside its bin 19.0 ... 19.5",
    ),
    "lens-part-negative-path": (
        lambda i, t: (
            _lens_part(_bad_shard(i, t, "path_length_kpc", lambda v: -v), t / "p.npz"),
            t / "p.npz",
        ),
        "path_length_kpc has negative or non-finite values",
    ),
    "lens-part-flipped-bytes": (
        lambda i, t: (
            _lens_part(
                [
                    flip_dataset_bytes(_copy(i["shards"][0][0], t / "bad"), "edge_direction"),
                    i["shards"][0][1],
                ],
                t / "p.npz",
            ),
            t / "p.npz",
        ),
        "bad/shard0000.h5",
    ),
    "lens-part-other-field": (
        lambda i, t: (
            [
                "lens",
                "part",
                "--shards",
                *i["shards"][0],
                "--field",
                "jf12",
                "--nside",
                1,
                "--output",
                t / "p.npz",
            ],
            t / "p.npz",
        ),
        "was traced in field model 'zero', expected 'jf12'",
    ),
    "lens-part-other-bin": (
        lambda i, t: (_lens_part(i["shards"][1], t / "p.npz"), t / "p.npz"),
        "belongs to rigidity bin 1, expected bin 0",
    ),
    "lens-cfg-missing-stats": (
        lambda i, t: (
            [
                "lens",
                "cfg",
                "--parts",
                _copy(i["parts"][0], t / "parts"),
                i["parts"][1],
                "--lens-dir",
                t / "lens",
            ],
            t / "lens" / "lens.cfg",
        ),
        "parts/bin000.json",
    ),
    "lens-cfg-corrupt-part": (
        lambda i, t: (
            [
                "lens",
                "cfg",
                "--parts",
                _copy_part(i["parts"][0], t / "parts", corrupt=True),
                i["parts"][1],
                "--lens-dir",
                t / "lens",
            ],
            t / "lens" / "lens.cfg",
        ),
        "parts/bin000.npz",
    ),
    "lens-plots-no-lens": (
        lambda i, t: (
            [
                "lens",
                "plots",
                "--lens-dir",
                t,
                "--deflection-png",
                t / "d.png",
                "--transparency-png",
                t / "t.png",
                "--deflection-maps-png",
                t / "m.png",
            ],
            t / "d.png",
        ),
        "diagnostics.csv",
    ),
    "skymaps-unknown-dataset": (
        lambda i, t: (
            [*_skymaps(i, t / "c.h5")[:6], "tset", *_skymaps(i, t / "c.h5")[7:]],
            t / "c.h5",
        ),
        "unknown skymaps dataset 'tset'",
    ),
    "skymaps-chunk-size-cap": (
        lambda i, t: (_skymaps(i, t / "c.h5", chunk_size=20001), t / "c.h5"),
        "skymaps.datasets.test.chunk_size must be an integer in 1 ... 20000, got 20001",
    ),
    "skymaps-nan-in-datasets": (
        lambda i, t: (
            [
                "skymaps",
                "--output",
                t / "c.h5",
                "--seed",
                1,
                "--dataset",
                "test",
                "--datasets",
                '{"test": {"energy_min_eev": NaN}}',
                "--chunk",
                0,
            ],
            t / "c.h5",
        ),
        "'--datasets' is not a JSON object: NaN is not a finite number",
    ),
    "skymaps-chunk-outside": (
        lambda i, t: (_skymaps(i, t / "c.h5", chunk=2), t / "c.h5"),
        "chunk index 2 is outside dataset 'test'",
    ),
    "skymaps-lens-mode-without-lens": (
        lambda i, t: (_skymaps(i, t / "c.h5", dataset="lensed"), t / "c.h5"),
        "pass '--lens'",
    ),
    "skymaps-incomplete-lens": (
        lambda i, t: ([*_skymaps(i, t / "c.h5", dataset="lensed"), "--lens", t], t / "c.h5"),
        "lens.cfg",
    ),
    "skymaps-lens-column-sum-above-one": (
        lambda i, t: (
            [*_skymaps(i, t / "c.h5", dataset="lensed"), "--lens", _column_sum_above_one(i, t)],
            t / "c.h5",
        ),
        "lens_gt1/bin000.npz': column 0 sums to 1.5 > 1",
    ),
    "paircounts-flipped-chunk": (
        lambda i, t: (
            [
                "paircounts",
                "--chunk",
                flip_dataset_bytes(_copy(i["chunks"]["test"][0], t / "bad"), "pixel_step_low"),
                "--output",
                t / "p.h5",
            ],
            t / "p.h5",
        ),
        "bad/chunk0000.h5",
    ),
    "paircounts-truncated-chunk": (
        lambda i, t: (
            [
                "paircounts",
                "--chunk",
                _truncated(i["chunks"]["test"][0], t / "bad"),
                "--output",
                t / "p.h5",
            ],
            t / "p.h5",
        ),
        "bad/chunk0000.h5",
    ),
    "paircounts-shard-as-chunk": (
        lambda i, t: (
            ["paircounts", "--chunk", i["shards"][0][0], "--output", t / "p.h5"],
            t / "p.h5",
        ),
        "is not a crsky-skymaps file",
    ),
    "paircounts-psi-inf": (
        lambda i, t: (
            [
                "paircounts",
                "--chunk",
                i["chunks"]["test"][0],
                "--output",
                t / "p.h5",
                "--psi",
                1,
                "inf",
                1,
            ],
            t / "p.h5",
        ),
        "argument --psi: expected a finite number, got 'inf'",
    ),
    "evaluate-pair-counts-of-other-chunk": (
        lambda i, t: (
            _evaluate(i, t / "e", pairs=(i["pairs"]["test"][::-1], i["pairs"]["isotropy"])),
            t / "e",
        ),
        "was computed from another chunk than",
    ),
    "evaluate-isotropy-with-signal": (
        lambda i, t: (_evaluate(i, t / "e", isotropy=i["chunks"]["test"], pairs=False), t / "e"),
        "it must be simulated with signal fraction 0",
    ),
    "evaluate-sigma-inf": (
        lambda i, t: (_evaluate(i, t / "e", "--sigma-levels", "inf"), t / "e"),
        "argument --sigma-levels: expected a finite number, got 'inf'",
    ),
    "evaluate-batch-size-zero": (
        lambda i, t: (_evaluate(i, t / "e", "--batch-size", 0), t / "e"),
        "argument --batch-size: expected an integer >= 1",
    ),
    "evaluate-sigma-unresolvable": (
        lambda i, t: (_evaluate(i, t / "e", "--sigma-levels", "3"), t / "e"),
        "has 20 maps, too few for σ = 3",
    ),
    "evaluate-other-nside": (
        lambda i, t: (_evaluate(i, t / "e", isotropy=i["chunks"]["coarse"], pairs=False), t / "e"),
        "has nside 4, isotropy set 'coarse'",
    ),
    "evaluate-flipped-isotropy-chunk": (
        lambda i, t: (
            _evaluate(
                i,
                t / "e",
                isotropy=[
                    flip_dataset_bytes(
                        _copy(i["chunks"]["isotropy"][0], t / "bad"), "pixel_step_low"
                    )
                ],
                pairs=False,
            ),
            t / "e",
        ),
        "bad/chunk0000.h5",
    ),
    "evaluate-folder-of-other-files": (
        lambda i, t: (_evaluate(i, _with_file(t / "e")), t / "e" / "scores.h5"),
        "holds files this job does not write (['notes.txt'])",
    ),
    "summary-without-significance": (
        lambda i, t: (_summary_without_table(i, t), t / "sum"),
        "m1/significance.csv",
    ),
    "summary-duplicate-names": (
        lambda i, t: (
            ["summary", "--evaluations", t / "a" / "m", t / "b" / "m", "--output", t / "sum"],
            t / "sum",
        ),
        "'--evaluations' folder names must be distinct",
    ),
    "train-unknown-model-key": (
        lambda i, t: (
            [
                "train",
                "--output",
                t / "m",
                "--model",
                '{"name": "a", "dropuot": 0.1}',
                "--training",
                *i["chunks"]["test"],
                "--validation",
                *i["chunks"]["isotropy"],
                "--seed",
                1,
            ],
            t / "m",
        ),
        "model.dropuot: unknown key; did you mean 'dropout'?",
    ),
    "train-nan-learning-rate": (
        lambda i, t: (
            [
                "train",
                "--output",
                t / "m",
                "--model",
                '{"name": "a"}',
                "--train-settings",
                '{"learning_rate": NaN}',
                "--training",
                *i["chunks"]["test"],
                "--validation",
                *i["chunks"]["isotropy"],
                "--seed",
                1,
            ],
            t / "m",
        ),
        "'--train-settings' is not a JSON object: NaN is not a finite number",
    ),
}


def _copy_part(part: Path, folder: Path, corrupt: bool) -> Path:
    copy = _copy(part, folder)
    _copy(part.with_suffix(".json"), folder)
    if corrupt:  # inside the indptr member's values (the middle is a zip header's extra field)
        flip_bytes(copy, 0.2, 16)
    return copy


def _truncated(path: Path, folder: Path) -> Path:
    copy = _copy(path, folder)
    copy.write_bytes(copy.read_bytes()[: copy.stat().st_size // 2])
    return copy


def _with_file(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    return folder


@pytest.mark.parametrize(("build", "names"), CASES.values(), ids=CASES.keys())
def test_bad_input_stops_with_one_line(tiny_inputs, tmp_path, build, names):
    args, output = build(tiny_inputs, tmp_path)
    code, err = crsky(*args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("crsky"), err
    assert names in lines[0], err
    assert "Traceback" not in err
    assert not output.exists()
    assert not list(output.parent.glob(f".{output.name}.*")) if output.parent.exists() else True


def test_lens_with_column_sums_above_one_is_refused_by_lens(tiny_inputs, tmp_path):
    lens = Lens.load(_column_sum_above_one(tiny_inputs, tmp_path))
    with pytest.raises(InputFileError, match=r"bin000\.npz': column 0 sums to 1\.5 > 1"):
        lens.sample_observed(np.array([0]), 19.0, np.random.default_rng(1))
