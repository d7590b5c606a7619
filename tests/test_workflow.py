"""The Snakemake workflow: lint, formatting, dry-runs of every config x profile, a tiny real run.

No HTCondor pool exists here: dry-runs with profiles/condor build the DAG and the plugin's
settings but submit nothing ("no pool" in the test names).
"""

import csv
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from browser import check_report
from helpers import BIN, REPO, job_counts, merged_config, snakemake, workflow_copy

from crsky.backtrack.shard import read_shard


def test_lint_is_clean(checkout):
    output = snakemake("--lint", cwd=checkout)
    assert "Congratulations, your workflow is in a good condition!" in output


def test_snakefmt_is_clean():
    result = subprocess.run(
        [str(BIN / "snakefmt"), "--check", "Snakefile", "workflow"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_config_dry_run(checkout):
    counts = job_counts(snakemake("-n", cwd=checkout))
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    n_shards = -(-config["backtrack"]["particles_per_bin"] // config["backtrack"]["shard_size"])
    assert counts["backtrack"] == config["rigidity_bins"]["n_bins"] * n_shards


@pytest.mark.parametrize("profile", ["profiles/default", "profiles/condor"])
def test_production_dry_run_no_pool(checkout, profile):
    # 175 bins x 10 shards of 491,520 particles = 100 per nside-64 pixel (seed 000: 5 M)
    output = snakemake(
        "-n", "--profile", profile, "--configfile", "config/production.yaml", cwd=checkout
    )
    counts = job_counts(output)
    assert counts["backtrack"] == 175 * 10
    assert (counts["lens_part"], counts["lens"], counts["lens_plots"]) == (175, 1, 1)
    config = merged_config("config/config.yaml", "config/production.yaml")
    datasets = config["skymaps"]["datasets"]
    assert datasets["train"]["n_maps"] == 500_000  # 25 chunks of 20,000 (issue 5)
    # the default rule builds the datasets the models use (not the lens-mode sets that only
    # config/seed000.yaml's model uses)
    used = {n for n in datasets if not n.endswith("_lens")}
    assert counts["skymaps"] == sum(
        -(-datasets[n]["n_maps"] // datasets[n]["chunk_size"]) for n in used
    )
    assert counts["train"] == counts["evaluate"] == len(config["models"])


def test_bad_config_is_rejected_before_any_job(tmp_path):
    workdir = workflow_copy(tmp_path, {"backtrack": {"shard_size": 0}})
    output = snakemake("-n", "--configfile", "config/test.yaml", cwd=workdir, check=False)
    assert "shard_size" in output and "minimum" in output


TINY = {
    "rigidity_bins": {"log10_rigidity_min": 19.5, "log10_rigidity_max": 20.5, "n_bins": 2},
    "lens": {"nside": 2},
    "backtrack": {"particles_per_bin": 96, "shard_size": 48},
    "evaluation": {"sigma_levels": [1.0]},  # 1 sigma needs only 7 isotropic maps
    # one chunk each: 40 test maps per signal fraction, 600 isotropic maps (likelihood: ~20 s)
    "skymaps": {"datasets": {"test": {"n_maps": 240}, "isotropy": {"n_maps": 600}}},
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny workflow run to its end, with its report (report.html), once per module."""
    workdir = workflow_copy(tmp_path_factory.mktemp("tiny_run"), TINY)
    snakemake("--configfile", "config/test.yaml", "--cores", "2", cwd=workdir)
    snakemake("--configfile", "config/test.yaml", "--report", "report.html", cwd=workdir)
    return workdir


@pytest.mark.slow
def test_tiny_real_run_and_single_target_rerun(tiny_run):
    workdir = tiny_run
    shards = sorted((workdir / "results/backtrack/jf12").glob("bin*/shard*.h5"))
    assert len(shards) == 4
    data, attrs = read_shard(shards[-1])
    assert attrs["field_model"] == "jf12" and len(data["escaped"]) == 48
    assert data["escaped"].all()  # 10^20 V protons all leave the Galaxy
    # nothing left to do; a deleted shard (an intermediate of the lens) rebuilt as a target reruns
    # exactly that job, with the same bytes
    assert "Nothing to be done" in snakemake("-n", "--configfile", "config/test.yaml", cwd=workdir)
    before = shards[1].read_bytes()
    shards[1].unlink()
    target = str(shards[1].relative_to(workdir))
    output = snakemake("-n", target, "--configfile", "config/test.yaml", cwd=workdir)
    assert job_counts(output) == {"backtrack": 1}
    snakemake(
        "--configfile",
        "config/test.yaml",
        "--cores",
        "1",
        str(shards[1].relative_to(workdir)),
        cwd=workdir,
    )
    assert shards[1].read_bytes() == before
    # same bytes: nothing downstream is out of date; forcing one bin's lens part reruns only
    # that part, the lens.cfg job and the plots
    assert "Nothing to be done" in snakemake("-n", "--configfile", "config/test.yaml", cwd=workdir)
    part = "results/lens_parts/jf12/bin001.npz"
    output = snakemake("-n", "--forcerun", part, "--configfile", "config/test.yaml", cwd=workdir)
    assert job_counts(output) == {"lens_part": 1, "lens": 1, "lens_plots": 1, "all": 1}
    # the single-target reruns the README documents, each exactly its own downstream jobs
    reruns = {
        "results/backtrack/jf12/bin000/shard0001.h5": {
            "backtrack": 1, "lens_part": 1, "lens": 1, "lens_plots": 1,
        },
        "results/skymaps/test/chunk0000.h5": {
            "skymaps": 1, "dataset_plots": 1, "paircounts": 1, "likelihood": 2, "evaluate": 2,
            "explain": 2, "evaluation_summary": 1,
        },
        "results/models/patches/model.keras": {
            "train": 1, "evaluate": 1, "explain": 1, "evaluation_summary": 1,
        },
        "evaluate": {"evaluate": 2, "evaluation_summary": 1},
    }  # fmt: skip
    for target, expected in reruns.items():
        output = snakemake(
            "-n", "--forcerun", target, "--configfile", "config/test.yaml", cwd=workdir
        )
        assert job_counts(output) == {**expected, "all": 1}, target
    # the likelihood methods and the ratio to the oracle are in the summary
    with open(workdir / "results/evaluate/summary/summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    methods = {(r["model"], r["method"]) for r in rows}
    assert {("-", "likelihood_oracle"), ("-", "likelihood_profiled"), ("-", "two_point")} <= methods
    oracle = [r for r in rows if r["method"] == "likelihood_oracle"]
    assert all(r["oracle_ratio_1sigma"] in ("1.0", "") for r in oracle)


@pytest.mark.slow
def test_report_in_a_headless_browser(tiny_run):
    """The report opened from disk in Chromium: no script error, the menu with every category,
    every result loads (images decode to real pixels), every result has its caption, no link
    leaves the file. The screenshot stays next to the report (report.png)."""
    found = check_report(tiny_run / "report.html", tiny_run / "report.png")
    assert found["errors"] == []
    for category in ("Lens", "Simulated skies", "Evaluation"):
        assert category in found["app_text"]
    results = found["results"]
    names = {Path(path).name for path in results}
    for name in ("deflection.png", "transparency.png", "sigma_summary.png", "diagnostics.csv"):
        assert name in names, sorted(names)
    for path, result in results.items():
        assert result["bytes"] > 0 and "error" not in result, (path, result)
        assert result["caption"] > 100, path  # a sentence or more, rendered from its .rst
        if result["mime"] == "image/png":
            assert min(result["size"]) > 100, (path, result)
    for link in found["links"]:
        assert link == "#" or link.startswith(("data:", "https://")), link
    assert (tiny_run / "report.png").stat().st_size > 10_000


def test_isotropy_set_too_small_for_sigma_stops_before_any_job(tmp_path):
    # 200 isotropic maps resolve p >= 5e-3 (2.6 sigma) and are too few for a tail fit (300)
    overrides = {
        "evaluation": {"sigma_levels": [3.0, 5.0]},
        "skymaps": {"datasets": {"isotropy": {"n_maps": 200}}},
    }
    workdir = workflow_copy(tmp_path, overrides)
    output = snakemake("-n", "--configfile", "config/test.yaml", cwd=workdir, check=False)
    assert "has 200 maps, too few for σ = 5" in output and "or 300 for an extrapolated" in output


@pytest.mark.parametrize(
    ("configs", "profile"),
    [(["config/config.yaml"], "profiles/default"),
     (["config/config.yaml", "config/production.yaml"], "profiles/condor")],
)  # fmt: skip
def test_evaluation_jobs_dry_run_no_pool(checkout, configs, profile):
    # one paircounts job per chunk of the test and isotropy sets, one evaluate job per model,
    # one summary
    config = merged_config(*configs)
    datasets = config["skymaps"]["datasets"]
    chunks = sum(
        -(
            -datasets[config["evaluation"][key]]["n_maps"]
            // datasets[config["evaluation"][key]]["chunk_size"]
        )
        for key in ("test_dataset", "isotropy_dataset")
    )
    extra = [a for c in configs[1:] for a in ("--configfile", c)]
    counts = job_counts(snakemake("-n", "--profile", profile, *extra, cwd=checkout))
    assert counts["paircounts"] == chunks
    assert counts["likelihood"] == chunks  # against the test set's signal model
    assert counts["evaluate"] == len(config["models"])
    assert counts["evaluation_summary"] == 1
    if len(configs) > 1:
        assert chunks == 5 + 175  # production: 100,000 test and 3,500,000 isotropic maps


@pytest.mark.slow
def test_tests_pass_in_a_checkout_where_make_run_finished(tmp_path):
    """The two commands compose: in a checkout whose results/ and logs/ hold every output of
    the default workflow (as after ``make run``; made here with ``snakemake --touch``), the
    dry-run tests of the default config (the ones that failed there before they ran Snakemake
    in copies without results) still pass."""
    checkout = workflow_copy(tmp_path / "checkout")
    shutil.copytree(
        REPO / "tests", checkout / "tests", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "pyproject.toml", checkout)
    summary = snakemake("--summary", cwd=checkout)  # every output file of the default DAG
    outputs = [line.split("\t")[0] for line in summary.splitlines()[1:] if "\t" in line]
    assert len(outputs) > 30
    for output in outputs:
        (checkout / output).parent.mkdir(parents=True, exist_ok=True)
        (checkout / output).touch()
    (checkout / "logs").mkdir()
    snakemake("--touch", "--cores", "1", cwd=checkout)
    assert "Nothing to be done" in snakemake("-n", cwd=checkout)
    result = subprocess.run(
        [str(BIN / "pytest"), "-q", "-p", "no:cacheprovider", "-k",
         "default_config_dry_run or configs0 or one_train_job", "tests/test_workflow.py",
         "tests/train/test_train_workflow.py"],
        cwd=checkout, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize(
    ("configs", "expected"),
    [
        # seed 002: DeepSphere twice (all He, mixed test set); likelihood per chunk of
        # (test, isotropy) and (test_mixed, isotropy): 6 + 10 + 6 + 10
        (["config/seed002.yaml"], {"train": 2, "evaluate": 2, "likelihood": 32}),
        # seed 000: the 12-patch CNN on the nside-64 JF12 lens; 5 test + 10 isotropy chunks
        (["config/production.yaml", "config/seed000.yaml"],
         {"train": 1, "evaluate_lens": 1, "likelihood": 15, "lens_part": 175}),
        # the reduced science: a toy and a lens case, one network each
        (["config/science.yaml"],
         {"train": 2, "evaluate": 1, "evaluate_lens": 1, "likelihood": 10, "backtrack": 36}),
    ],
)  # fmt: skip
def test_seed_and_science_configs_dry_run_no_pool(checkout, configs, expected):
    args = ["--configfile", *configs]
    counts = job_counts(snakemake("-n", "--profile", "profiles/condor", *args, cwd=checkout))
    assert {k: counts.get(k, 0) for k in expected} == expected
    assert counts["evaluation_summary"] == 1
