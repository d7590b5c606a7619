"""Faults: every stage killed with SIGKILL while writing, a full disk, stray temporaries, an
unwritable output, a killed Snakemake controller. After each, nothing under a final name looks
finished, and the rerun gives the bytes of an uninterrupted run.

Kills are exact (tests/kill_during_write.py): the job dies at its k-th output rename with that
output's temporary cut to half its length, the state a kill leaves on disk mid-write. The
training stage's kills (after and inside an epoch) are in tests/train/test_train_run.py.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO, limit_file_size, run_snakemake, workflow_copy

from crsky.cli import main

KILLER = REPO / "tests" / "kill_during_write.py"


def _run(*args, preexec_fn=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        preexec_fn=preexec_fn,
    )


def crsky_killed_at(n: int, args: list) -> subprocess.CompletedProcess:
    """``crsky ARGS`` killed at its n-th output rename (n = 0: run to the end, count renames)."""
    return _run(KILLER, n, "-q", *args)


@pytest.fixture(scope="module")
def evaluations(tiny_inputs, tmp_path_factory) -> list[Path]:
    """Two baseline evaluation folders of the tiny sets (inputs of ``crsky summary``)."""
    root = tmp_path_factory.mktemp("evaluations")
    c, p = tiny_inputs["chunks"], tiny_inputs["pairs"]
    folders = []
    for name in ("a", "b"):
        args = ["evaluate", "--output", root / name, "--test", *c["test"], "--isotropy",
                *c["isotropy"], "--test-pair-counts", *p["test"], "--isotropy-pair-counts",
                *p["isotropy"], "--sigma-levels", "1"]  # fmt: skip
        assert main(["-q", *map(str, args)]) == 0
        folders.append(root / name)
    return folders


def commands(i: dict, evaluations: list[Path], d: Path) -> dict[str, tuple[list, Path, Path]]:
    """stage: (crsky arguments writing into ``d``, what to compare, the file or folder whose
    presence means the job finished). ``d`` is created, as Snakemake creates output folders."""
    d.mkdir(parents=True, exist_ok=True)
    c, p = i["chunks"], i["pairs"]
    test_spec = '{"test": {"n_cr": 20, "nside": 4, "n_maps": 20, "chunk_size": 10}}'
    return {
        "backtrack": (
            ["backtrack", "--output", d / "shard.h5", "--seed", 5, "--field", "uniform",
             "--field-options", '{"b_ugauss": [0, 0, 1]}', "--bins", 19, 20, 2, "--bin", 1,
             "--particles-per-bin", 96, "--shard-size", 96, "--shard", 0, "--nside", 2,
             "--threads", 1],
            d,
            d / "shard.h5",
        ),
        "lens-part": (
            ["lens", "part", "--shards", *i["shards"][0], "--field", "zero", "--nside", 1,
             "--bin", 0, "--output", d / "bin000.npz"],
            d,
            d / "bin000.json",  # written after the part
        ),
        "lens-cfg": (
            ["lens", "cfg", "--parts", *i["parts"], "--lens-dir", d / "lens"],
            d,
            d / "lens" / "lens.cfg",  # written last
        ),
        "lens-plots": (
            ["lens", "plots", "--lens-dir", i["root"] / "lens", "--deflection-png",
             d / "deflection.png", "--transparency-png", d / "transparency.png",
             "--deflection-maps-png", d / "deflection_maps.png"],
            d,
            d / "deflection_maps.png",  # written last
        ),
        "skymaps": (
            ["skymaps", "--output", d / "chunk0001.h5", "--seed", 5, "--dataset", "test",
             "--datasets", test_spec, "--chunk", 1],
            d,
            d / "chunk0001.h5",
        ),
        "paircounts": (
            ["paircounts", "--chunk", c["test"][0], "--output", d / "pairs.h5", "--threads", 1],
            d,
            d / "pairs.h5",
        ),
        "evaluate": (
            ["evaluate", "--output", d / "eval", "--test", *c["test"], "--isotropy",
             *c["isotropy"], "--test-pair-counts", *p["test"], "--isotropy-pair-counts",
             *p["isotropy"], "--sigma-levels", "1", "--threads", 1],
            d,
            d / "eval",  # written as a whole
        ),
        "summary": (
            ["summary", "--evaluations", *evaluations, "--output", d / "summary",
             "--sigma-levels", 1],
            d,
            d / "summary",
        ),
    }  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (relative path -> bytes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".tmp" in p.name]


@pytest.mark.slow
@pytest.mark.parametrize(
    "stage",
    ["backtrack", "lens-part", "lens-cfg", "lens-plots", "skymaps", "paircounts", "evaluate",
     "summary"],
)  # fmt: skip
def test_killed_while_writing_then_rerun_gives_the_same_bytes(
    tiny_inputs, evaluations, tmp_path, stage
):
    ref_args, ref_folder, _ = commands(tiny_inputs, evaluations, tmp_path / "ref")[stage]
    counted = crsky_killed_at(0, ref_args)
    assert counted.returncode == 0, counted.stderr
    renames = int(re.search(r"renames: (\d+)", counted.stdout)[1])
    reference = snapshot(ref_folder)
    assert reference and not temporaries(ref_folder)
    for n in sorted({1, renames}):  # the first output, and the last (the one that finishes)
        run = tmp_path / f"killed{n}"
        args, folder, finished = commands(tiny_inputs, evaluations, run)[stage]
        killed = crsky_killed_at(n, args)
        assert killed.returncode == -signal.SIGKILL, (n, killed.stderr)
        assert not finished.exists(), f"{stage} killed at write {n} looks finished"
        rerun = crsky_killed_at(0, args)
        assert rerun.returncode == 0, rerun.stderr
        assert snapshot(folder) == reference, f"{stage}: rerun after a kill at write {n}"
        assert not temporaries(folder)


# --- a full disk, an unwritable output, stray temporaries ----------------------------------------


def _skymaps_args(output: Path) -> list:
    spec = '{"big": {"n_cr": 1000, "nside": 16, "n_maps": 400, "chunk_size": 400}}'
    return ["skymaps", "--output", output, "--seed", 1, "--dataset", "big", "--datasets", spec,
            "--chunk", 0]  # fmt: skip


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 256 KiB tmpfs (a real full disk); skipped where mounting is not permitted."""
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def _assert_clean_write_failure(result, output: Path, reason: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("crsky skymaps: error: cannot write output") and reason in last, last
    assert str(output) in last
    assert "Traceback" not in result.stderr
    assert not output.exists() and not temporaries(output.parent)


def test_full_disk_is_one_line_not_a_segfault(small_tmpfs):
    """ENOSPC on a real (tmpfs) file system: before, h5py's OSError, then a segfault at exit."""
    output = small_tmpfs / "chunk0000.h5"
    result = _run("-m", "crsky.cli", "-q", *_skymaps_args(output))
    _assert_clean_write_failure(result, output, "No space left on device")


def test_file_size_limit_is_one_line(tmp_path):
    """The same write failure without mounting anything: RLIMIT_FSIZE (EFBIG)."""
    output = tmp_path / "chunk0000.h5"
    result = _run(
        "-m", "crsky.cli", "-q", *_skymaps_args(output), preexec_fn=limit_file_size(100_000)
    )
    _assert_clean_write_failure(result, output, "File too large")


def test_unwritable_output_stops_before_the_work(tmp_path):
    (tmp_path / "file").write_text("")
    output = tmp_path / "file" / "chunk0000.h5"
    result = _run("-m", "crsky.cli", *_skymaps_args(output))  # not quiet: progress would show
    assert result.returncode == 2
    assert f"the folder {str(output.parent)!r} of {str(output)!r} does not exist" in result.stderr
    assert "maps/s" not in result.stderr  # stopped before simulating


def test_stray_temporaries_of_a_killed_run_are_removed_on_rerun(tiny_inputs, tmp_path):
    output = tmp_path / "pairs.h5"
    strays = [tmp_path / ".pairs.h5.x1y2z3.tmp", tmp_path / ".pairs.h5.a1b2c3.tmp.keras"]
    for stray in strays:
        stray.write_bytes(b"half")
    other = tmp_path / ".other.h5.a1b2c3.tmp"  # another job's temporary stays
    other.write_bytes(b"x")
    args = ["paircounts", "--chunk", tiny_inputs["chunks"]["test"][0], "--output", output]
    assert main(["-q", *map(str, args)]) == 0
    assert output.exists() and not any(s.exists() for s in strays) and other.exists()


# --- a killed Snakemake controller --------------------------------------------------------------

TINY_LENS = {  # 2 backtracking jobs, 1 lens part, the lens: 4 jobs
    "rigidity_bins": {"log10_rigidity_min": 19.5, "log10_rigidity_max": 20.5, "n_bins": 1},
    "lens": {"nside": 1, "write_mldat": False},
    "backtrack": {"particles_per_bin": 24, "shard_size": 12},
    "resources": {"backtrack": {"threads": 1}},
}


@pytest.mark.slow
def test_killed_controller_needs_unlock_then_reruns_to_the_same_bytes(tmp_path):
    """SIGKILL to ``snakemake`` while its jobs run: the rerun refuses the locked folder until
    ``snakemake --unlock`` (README), then finishes with the bytes of an uninterrupted run."""
    target = "results/lens/jf12/lens.cfg"
    reference = workflow_copy(tmp_path / "reference", TINY_LENS)
    run_snakemake(target, "--configfile", "config/test.yaml", "--cores", "2", cwd=reference)
    killed = workflow_copy(tmp_path / "killed", TINY_LENS)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    controller = subprocess.Popen(
        [str(Path(sys.executable).parent / "snakemake"), target, "--configfile",
         "config/test.yaml", "--cores", "1"],
        cwd=killed, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    shards = killed / "results/backtrack/jf12"
    while controller.poll() is None and not list(shards.rglob("shard*.h5")):
        time.sleep(0.01)
    os.killpg(controller.pid, signal.SIGKILL)  # the controller and its running job
    controller.wait()
    assert not (killed / "results/lens/jf12/lens.cfg").exists()
    code, output = run_snakemake(
        target, "--configfile", "config/test.yaml", "--cores", "1", cwd=killed, check=False
    )
    assert code != 0 and "--unlock" in output
    run_snakemake("--unlock", "--configfile", "config/test.yaml", cwd=killed)
    run_snakemake(target, "--configfile", "config/test.yaml", "--cores", "1", cwd=killed)
    for folder in ("backtrack", "lens_parts", "lens"):
        assert snapshot(killed / "results" / folder) == snapshot(reference / "results" / folder)
