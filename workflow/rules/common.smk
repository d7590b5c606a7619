# Everything that is not a rule: config-derived job grids, paths, resources. The config is
# already checked (crsky.config, called from the Snakefile).
import json
import os
import re

from crsky.binning import RigidityBins, Sharding
from crsky.config import (
    config_errors_exit,
    evaluation_pairs,
    model_datasets,
    model_spec_entry,
    skymap_datasets,
    tested_fractions,
    train_settings,
)
from crsky.ensemble import lens_fields, resolve_dataset_lenses

RESULTS = config["results_dir"]
LOGS = config["logs_dir"]
# the workflow's lenses, {name: crsky.ensemble.LensField}: config fields, or the one field
LENSES = lens_fields(config)
BINS = RigidityBins(**config["rigidity_bins"])
SHARDING = Sharding(
    config["backtrack"]["particles_per_bin"], config["backtrack"]["shard_size"]
)


wildcard_constraints:
    bin=r"\d{3}",
    shard=r"\d{4}",
    lens="|".join(re.escape(name) for name in LENSES),


def bin_ids():
    """Rigidity bin wildcards: 000 ... n_bins - 1."""
    return [f"{i:03d}" for i in range(BINS.n_bins)]


def shard_ids():
    """Shard wildcards within one bin: 0000 ... n_shards - 1."""
    return [f"{i:04d}" for i in range(SHARDING.n_shards)]


def bin_shards(wildcards):
    """Every backtracking shard of lens ``wildcards.lens``, rigidity bin ``wildcards.bin``
    (input of lens_part)."""
    return expand(
        f"{RESULTS}/backtrack/{wildcards.lens}/bin{wildcards.bin}/shard{{shard}}.h5",
        shard=shard_ids(),
    )


# per lens (the {lens} wildcard): backtracking shards, row-normalised per-bin parts, the lens
# folder (lens.cfg written last); DESIGN.md section 4
LENS = f"{RESULTS}/lens/{{lens}}"
LENS_PARTS = f"{RESULTS}/lens_parts/{{lens}}"


def lens_field(wildcards):
    """The crsky.ensemble.LensField of lens ``wildcards.lens``."""
    return LENSES[wildcards.lens]


def lens_cfg(name):
    """The index of lens ``name``; it exists only once the whole lens is written."""
    return f"{RESULTS}/lens/{name}/lens.cfg"


def lens_part_files():
    """Per-bin matrix files of a lens, with the {lens} wildcard (.npz, and .mldat +
    lens_crpropa.cfg if enabled)."""
    files = expand(f"{LENS}/bin{{bin}}.npz", bin=bin_ids(), allow_missing=True)
    if config["lens"]["write_mldat"]:
        files += expand(f"{LENS}/bin{{bin}}.mldat", bin=bin_ids(), allow_missing=True)
        files.append(f"{LENS}/lens_crpropa.cfg")
    return files


def lens_outputs():
    """Every lens's index, diagnostics table and plots, and the deflections of all lenses
    side by side when there are several."""
    files = expand(
        f"{RESULTS}/lens/{{lens}}/{{name}}",
        lens=list(LENSES),
        name=[
            "lens.cfg",
            "diagnostics.csv",
            "deflection.png",
            "transparency.png",
            "deflection_maps.png",
        ],
    )
    if len(LENSES) > 1:
        files.append(LENS_COMPARISON)
    return files


LENS_COMPARISON = f"{RESULTS}/lens_comparison/deflection.png"


SKYMAPS = f"{RESULTS}/skymaps"
SKYMAP_DATASETS = skymap_datasets(config)


wildcard_constraints:
    dataset="|".join(SKYMAP_DATASETS) or "(?!)",
    chunk=r"\d{4}",


def skymap_chunks(dataset=None):
    """Chunk files of one dataset (or of every configured dataset)."""
    names = SKYMAP_DATASETS if dataset is None else [dataset]
    return [
        f"{SKYMAPS}/{name}/chunk{k:04d}.h5"
        for name in names
        for k in range(SKYMAP_DATASETS[name].n_chunks)
    ]


def dataset_report(name, item):
    """Figure ``name`` of a dataset's folder in the report's category "Simulated skies"."""
    return report(
        f"{SKYMAPS}/{{dataset}}/{name}",
        caption=f"../report/dataset_{name.removesuffix('.png')}.rst",
        category="Simulated skies",
        subcategory="{dataset}",
        labels={"dataset": "{dataset}", "item": item},
    )


def dataset_plot_files():
    """Figures and mean counts map of every dataset the models use (rule dataset_plots)."""
    names = ["spectrum.png", "charges.png", "exposure.png", "mean_counts.fits"]
    return expand(
        f"{SKYMAPS}/{{dataset}}/{{name}}", dataset=used_datasets(), name=names
    )


def dataset_lenses(name):
    """Names of the lenses dataset ``name`` uses (lens mode; several for a mix), else []."""
    dataset = SKYMAP_DATASETS[name]
    if dataset.deflection_mode != "lens":
        return []
    return resolve_dataset_lenses(
        dataset.key, dataset.config["deflection"]["lens"], LENSES
    )


def skymap_resources():
    """rule_resources("skymaps") with the memory per lens: a job of a mix of k lenses holds
    the lens parts of each, so it requests k x resources.skymaps.mem_mb."""
    base = rule_resources("skymaps")

    def per_lens(key):
        return lambda wildcards: base[key] * max(
            1, len(dataset_lenses(wildcards.dataset))
        )

    return {
        **base,
        **{key: per_lens(key) for key in ("mem_mb", "htcondor_request_mem_mb")},
    }


def skymap_lens_input(wildcards):
    """The lens index of every lens the dataset uses, in its deflection.lens order."""
    return [lens_cfg(name) for name in dataset_lenses(wildcards.dataset)]


def skymap_dataset_json(wildcards):
    """The configured keys of one dataset as {name: {...}} JSON for ``crsky skymaps``, with
    deflection.lens resolved to the lens name(s) (recorded in the chunk's config)."""
    name = wildcards.dataset
    spec = config["skymaps"]["datasets"][name]
    lenses = dataset_lenses(name)
    if lenses:
        lens = lenses[0] if len(lenses) == 1 else lenses
        spec = {**spec, "deflection": {**spec.get("deflection", {}), "lens": lens}}
    return json.dumps({name: spec}, sort_keys=True)


EVALUATION = f"{RESULTS}/evaluate"
EXPLAIN = f"{RESULTS}/explain"  # crsky explain, one folder per model (explain.smk)
# one folder per model (train rule): model.keras, history.csv, config.json
MODELS = f"{RESULTS}/models"
# each model's training, validation, test and isotropy datasets (models[i].datasets or the
# train and evaluation sections)
MODEL_DATASETS = model_datasets(config)
LIKELIHOOD_METHODS = config["evaluation"]["likelihood"]["methods"]


def model_names(lens=None):
    """Names of the configured models (config models[].name), each trained and evaluated;
    ``lens`` True / False: only those whose test set is / is not in lens mode."""
    return [
        name
        for name, sets in MODEL_DATASETS.items()
        if lens is None
        or (SKYMAP_DATASETS[sets["test"]].deflection_mode == "lens") == lens
    ]


def model_constraint(lens):
    """Wildcard constraint matching the models of :func:`model_names` (or nothing)."""
    return "|".join(model_names(lens)) or "(?!)"


def model_chunks(role):
    """Input function: skymap chunks of the model's datasets of ``role`` (training,
    validation, test, isotropy)."""

    def chunks(wildcards):
        names = MODEL_DATASETS[wildcards.model][role]
        names = [names] if isinstance(names, str) else names
        return [path for name in names for path in skymap_chunks(name)]

    return chunks


def model_files(wildcards):
    """The model folder's files that evaluation reads (written by the train rule)."""
    folder = f"{MODELS}/{wildcards.model}"
    return [f"{folder}/model.keras", f"{folder}/history.csv", f"{folder}/config.json"]


def check_deployment():
    """Export this checkout's absolute path for the environments' post-deploy scripts
    (envs/*.post-deploy.sh install crsky from it), then stop before any job
    - under --shared-fs-usage none: jobs read and write the working directory in place
      (the lens folder behind lens.cfg, checkpoints/), which transferring the declared
      inputs and outputs would not carry (docs/cluster.md);
    - under --sdm conda, if an environment file cannot give crsky what pyproject.toml
      requires (crsky.envs)."""
    from snakemake_interface_executor_plugins.settings import DeploymentMethod

    from crsky.envs import ENV_FILES, check_env_file, pyproject_requirements
    from crsky.errors import ConfigError

    os.environ.update(CRSKY_SOURCE=workflow.basedir)  # set, not read (no envvars entry)
    if not workflow.storage_settings.shared_fs_usage:
        raise ConfigError(
            "--shared-fs-usage none: crsky needs a filesystem shared by the submit host "
            "and the execute nodes (file transfer only is not supported, docs/cluster.md)"
        )
    if DeploymentMethod.CONDA not in workflow.deployment_settings.deployment_method:
        return
    pyproject = os.path.join(workflow.basedir, "pyproject.toml")
    for name, extras in ENV_FILES.items():
        path = os.path.join(workflow.basedir, name)
        check_env_file(path, pyproject_requirements(pyproject, extras))


with config_errors_exit():
    check_deployment()


def model_spec_json(wildcards):
    """The config entry of model ``wildcards.model`` (without its datasets) as JSON, for
    ``crsky train --model``."""
    entry = next(e for e in config["models"] if e["name"] == wildcards.model)
    return json.dumps(model_spec_entry(entry), sort_keys=True)


def train_settings_json():
    """train_settings() as JSON, for ``crsky train --train-settings``."""
    return json.dumps(train_settings(config), sort_keys=True)


def psi_arguments():
    """``--psi MIN MAX STEP`` values of the two-point counts (config evaluation.psi_*_deg)."""
    e = config["evaluation"]
    return [e["psi_min_deg"], e["psi_max_deg"], e["psi_step_deg"]]


def pair_count_files(dataset):
    """Two-point pair-count files of every chunk of ``dataset``."""
    n_chunks = SKYMAP_DATASETS[dataset].n_chunks
    return [
        f"{EVALUATION}/pair_counts/{dataset}/chunk{k:04d}.h5" for k in range(n_chunks)
    ]


def model_pair_counts(role):
    """Input function: pair-count files of the model's test or isotropy set."""
    return lambda wildcards: pair_count_files(MODEL_DATASETS[wildcards.model][role])


def likelihood_files(signal, dataset):
    """Likelihood score files of every chunk of ``dataset`` against the signal model of test
    set ``signal`` (crsky likelihood)."""
    n_chunks = SKYMAP_DATASETS[dataset].n_chunks
    return [
        f"{EVALUATION}/likelihood/{signal}/{dataset}/chunk{k:04d}.h5"
        for k in range(n_chunks)
    ]


def model_likelihood_files(role):
    """Input function: likelihood files of the model's test or isotropy set (none when
    evaluation.likelihood.methods is empty)."""

    def files(wildcards):
        if not LIKELIHOOD_METHODS:
            return []
        sets = MODEL_DATASETS[wildcards.model]
        return likelihood_files(sets["test"], sets[role])

    return files


def likelihood_arguments(wildcards, input):
    """``--test-likelihood ... --isotropy-likelihood ...`` of crsky evaluate, or nothing."""
    if not input.test_likelihood:
        return []
    return [
        "--test-likelihood",
        *input.test_likelihood,
        "--isotropy-likelihood",
        *input.isotropy_likelihood,
    ]


SIGNAL_SETS = list(dict.fromkeys(test for test, _ in evaluation_pairs(config)))


def likelihood_signal_chunk(wildcards):
    """The first chunk of the test set whose signal model scores the chunk."""
    return skymap_chunks(wildcards.signal)[0]


def likelihood_lens_input(wildcards):
    """The lens index of every lens of the signal model (lens mode; several for a mix)."""
    return [lens_cfg(name) for name in dataset_lenses(wildcards.signal)]


def likelihood_role(wildcards):
    """test: the test set's own chunks (stored sources); isotropy: any other set."""
    return "test" if wildcards.dataset == wildcards.signal else "isotropy"


def likelihood_fractions(wildcards):
    """The signal fractions reported for the test set (the oracle scores each)."""
    return tested_fractions(config, SKYMAP_DATASETS, wildcards.signal)


def evaluation_files(lens):
    """Outputs of one model's evaluation (with the lens deflection plot for lens-mode test
    sets), in the report's Evaluation category."""
    out = {
        "scores": f"{EVALUATION}/{{model}}/scores.h5",
        "significance": evaluation_report(
            f"{EVALUATION}/{{model}}/significance.csv",
            "evaluation_significance",
            "significance table (csv)",
        ),
        "crossings": f"{EVALUATION}/{{model}}/crossings.csv",
        "tail_validation": f"{EVALUATION}/{{model}}/tail_validation.csv",
        "table": evaluation_report(
            f"{EVALUATION}/{{model}}/significance.html",
            "evaluation_significance",
            "significance table",
        ),
        "sigma": evaluation_report(
            f"{EVALUATION}/{{model}}/sigma.png",
            "evaluation_sigma",
            "sigma vs signal fraction",
        ),
        "score_distributions": evaluation_report(
            f"{EVALUATION}/{{model}}/score_distributions.png",
            "evaluation_scores",
            "score distributions",
        ),
        "skymaps": evaluation_report(
            f"{EVALUATION}/{{model}}/skymaps.png",
            "evaluation_skymaps",
            "example skymaps",
        ),
        "training": evaluation_report(
            f"{EVALUATION}/{{model}}/training.png",
            "evaluation_training",
            "training curves",
        ),
    }
    if lens:
        out["lens"] = evaluation_report(
            f"{EVALUATION}/{{model}}/lens_deflection.png",
            "evaluation_lens",
            "lens deflection",
        )
    return out


def evaluation_report(path, caption, item, model="{model}", subcategory="{model}"):
    """Output ``path`` in the report's Evaluation category, with the caption
    workflow/report/<caption>.rst and the labels model (a wildcard pattern, or "all") and
    item."""
    return report(
        path,
        caption=f"../report/{caption}.rst",
        category="Evaluation",
        subcategory=subcategory,
        labels={"model": model, "item": item},
    )


def evaluation_outputs():
    """Significance tables and plots of every configured model, and all models side by side."""
    if not model_names():
        return []
    names = ["significance.csv", "crossings.csv", "sigma.png", "training.png"]
    per_model = expand(
        f"{EVALUATION}/{{model}}/{{name}}", model=model_names(), name=names
    )
    return per_model + [f"{EVALUATION}/summary/sigma_summary.png"]


# the robustness table (workflow/rules/robustness.smk)
ROBUSTNESS = f"{EVALUATION}/robustness"
ROBUSTNESS_TABLE = f"{EVALUATION}/robustness_table"
ROBUSTNESS_SETS = config["evaluation"]["robustness_datasets"]


def robustness_tests(model):
    """Test sets of ``model`` in the robustness table: its own, then the robustness sets."""
    own = MODEL_DATASETS[model]["test"]
    return [own] + [name for name in ROBUSTNESS_SETS if name != own]


def robustness_folders():
    """Every (model, test set) evaluation folder of the table (on its own test set, the
    model's evaluation folder)."""
    return [
        (
            f"{EVALUATION}/{model}"
            if test == MODEL_DATASETS[model]["test"]
            else f"{ROBUSTNESS}/{model}/{test}"
        )
        for model in model_names()
        for test in robustness_tests(model)
    ]


def robustness_outputs():
    """The table and its figure, when robustness datasets and models are configured."""
    if not (ROBUSTNESS_SETS and model_names()):
        return []
    return [f"{ROBUSTNESS_TABLE}/robustness.csv", f"{ROBUSTNESS_TABLE}/robustness.png"]


def rule_threads(name):
    """Threads of rule ``name`` (config resources.<name>.threads; HTCondor request_cpus)."""
    return config["resources"][name]["threads"]


def rule_resources(name, gpus=None):
    """Resources of rule ``name`` from config resources.<name> and cluster, in the forms the
    local scheduler and the HTCondor and Slurm executor plugins read (crsky.cluster). ``gpus``
    replaces resources.<name>.gpus (the train rule requests config train.gpus)."""
    from crsky.cluster import job_resources

    spec = config["resources"][name]
    if gpus is not None:
        spec = {**spec, "gpus": gpus}
    return job_resources(spec, config["cluster"])


def used_datasets():
    """Skymap datasets a model trains on or is evaluated on (every configured dataset when no
    model is configured): the default rule builds only these."""
    if not model_names():
        return list(SKYMAP_DATASETS)
    names = [
        name
        for sets in MODEL_DATASETS.values()
        for name in (
            *sets["training"],
            *sets["validation"],
            sets["test"],
            sets["isotropy"],
        )
    ]
    return list(dict.fromkeys(names))


def final_outputs():
    """Targets of the default rule: the lens, the skymaps the models use (with their figures),
    every evaluation, the relevance maps, the robustness table."""
    chunks = [path for name in used_datasets() for path in skymap_chunks(name)]
    return (
        lens_outputs()
        + chunks
        + dataset_plot_files()
        + evaluation_outputs()
        + explain_outputs()
        + robustness_outputs()
    )


# --- random search (search.smk, crsky.search) and relevance maps (explain.smk) ---------------
from crsky.search import BEST_MODEL, MODEL_FILES, trial_name, trial_setup

SEARCH = config["search"]
SEARCH_DIR = f"{RESULTS}/search"
SEARCH_TRIALS = [trial_name(i) for i in range(SEARCH["trials"])]


wildcard_constraints:
    trial=r"trial\d{4}",


def search_trial(wildcards):
    """(model entry, learning rate) of trial ``wildcards.trial``."""
    index = int(wildcards.trial.removeprefix("trial"))
    return trial_setup(SEARCH, index, config["train"]["learning_rate"])


def search_chunks(role):
    """Chunks of the datasets in config train.<role>_datasets (training, validation): every
    trial trains on them."""
    return [
        path
        for name in config["train"][f"{role}_datasets"]
        for path in skymap_chunks(name)
    ]


def search_trial_files(trial):
    """The model folder files of one trial (written by search_train)."""
    return [f"{SEARCH_DIR}/trials/{trial}/{name}" for name in MODEL_FILES]


def explain_outputs():
    """relevance.csv and relevance.png of every configured model (crsky explain)."""
    return expand(
        f"{EXPLAIN}/{{model}}/{{name}}",
        model=model_names(),
        name=["relevance.csv", "relevance.png"],
    )
