# Everything that is not a rule: config-derived job grids, paths, resources. The config is
# already checked (crsky.config, called from the Snakefile).
import json
import os

from crsky.binning import RigidityBins, Sharding
from crsky.config import config_errors_exit, skymap_datasets, train_settings

RESULTS = config["results_dir"]
LOGS = config["logs_dir"]
FIELD = config["field"]["model"]
BINS = RigidityBins(**config["rigidity_bins"])
SHARDING = Sharding(
    config["backtrack"]["particles_per_bin"], config["backtrack"]["shard_size"]
)


wildcard_constraints:
    bin=r"\d{3}",
    shard=r"\d{4}",


def bin_ids():
    """Rigidity bin wildcards: 000 ... n_bins - 1."""
    return [f"{i:03d}" for i in range(BINS.n_bins)]


def shard_ids():
    """Shard wildcards within one bin: 0000 ... n_shards - 1."""
    return [f"{i:04d}" for i in range(SHARDING.n_shards)]


def backtrack_shards():
    """Every backtracking shard of the configured field model."""
    return expand(
        f"{RESULTS}/backtrack/{FIELD}/bin{{bin}}/shard{{shard}}.h5",
        bin=bin_ids(),
        shard=shard_ids(),
    )


def bin_shards(wildcards):
    """Every backtracking shard of rigidity bin ``wildcards.bin`` (input of lens_part)."""
    return expand(
        f"{RESULTS}/backtrack/{FIELD}/bin{wildcards.bin}/shard{{shard}}.h5",
        shard=shard_ids(),
    )


LENS = f"{RESULTS}/lens/{FIELD}"  # the lens folder (lens.cfg written last)
LENS_PARTS = f"{RESULTS}/lens_parts/{FIELD}"  # row-normalised per-bin parts


def lens_folder():
    """The lens folder of the configured field model (DESIGN.md section 4, "Lens")."""
    return LENS


def lens_cfg():
    """The lens index; it exists only once the whole lens is written."""
    return f"{LENS}/lens.cfg"


def lens_part_files():
    """Per-bin matrix files of the final lens (.npz, and .mldat + lens_crpropa.cfg if enabled)."""
    files = expand(f"{LENS}/bin{{bin}}.npz", bin=bin_ids())
    if config["lens"]["write_mldat"]:
        files += expand(f"{LENS}/bin{{bin}}.mldat", bin=bin_ids())
        files.append(f"{LENS}/lens_crpropa.cfg")
    return files


def lens_outputs():
    """The lens index, its diagnostics table and plots."""
    return [
        lens_cfg(),
        f"{LENS}/diagnostics.csv",
        f"{LENS}/deflection.png",
        f"{LENS}/transparency.png",
    ]


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


def skymap_lens_input(wildcards):
    """The lens index for datasets in deflection mode 'lens', nothing otherwise."""
    if SKYMAP_DATASETS[wildcards.dataset].deflection_mode == "lens":
        return [lens_cfg()]
    return []


def skymap_dataset_json(wildcards):
    """The configured keys of one dataset as {name: {...}} JSON for ``crsky skymaps``."""
    name = wildcards.dataset
    return json.dumps({name: config["skymaps"]["datasets"][name]}, sort_keys=True)


EVALUATION = f"{RESULTS}/evaluate"
EVAL_TEST = config["evaluation"]["test_dataset"]
EVAL_ISOTROPY = config["evaluation"]["isotropy_dataset"]
# one folder per model (train rule): model.keras, history.csv, config.json
MODELS = f"{RESULTS}/models"


def model_names():
    """Names of the configured models (config models[].name), each trained and evaluated."""
    return [entry["name"] for entry in config.get("models", [])]


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


def train_chunks(role):
    """Skymap chunks of the datasets in config train.<role>_datasets (training, validation)."""
    datasets = config["train"][f"{role}_datasets"]
    return [path for name in datasets for path in skymap_chunks(name)]


def model_spec_json(wildcards):
    """The config entry of model ``wildcards.model`` as JSON, for ``crsky train --model``."""
    entry = next(e for e in config["models"] if e["name"] == wildcards.model)
    return json.dumps(entry, sort_keys=True)


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


def evaluation_lens_output():
    """The lens deflection plot, an output of evaluate only when the test maps used a lens."""
    if SKYMAP_DATASETS[EVAL_TEST].deflection_mode != "lens":
        return {}
    return {
        "lens": evaluation_report(
            f"{EVALUATION}/{{model}}/lens_deflection.png",
            "evaluation_lens",
            "lens deflection",
        )
    }


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


def final_outputs():
    """Targets of the default rule: the last stage that exists so far."""
    return lens_outputs() + skymap_chunks() + evaluation_outputs()
