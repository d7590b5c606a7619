# Everything that is not a rule: config-derived job grids, paths, resources.
import json
from types import SimpleNamespace

from snakemake.exceptions import WorkflowError

from crsky.binning import RigidityBins, Sharding
from crsky.sky.dataset import DatasetConfig
from crsky.sky.simulate import check_lens_compatible

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
SKYMAP_DATASETS = {
    name: DatasetConfig.from_dict(name, spec)
    for name, spec in config["skymaps"]["datasets"].items()
}


def check_skymap_lens_datasets():
    """Stop before any job if a lens-mode dataset does not fit the configured lens (nside,
    rigidity coverage of log10(E / Z) for every charge)."""
    configured = SimpleNamespace(
        nside=config["lens"]["nside"], log10_rigidity_edges=BINS.edges
    )
    for dataset in SKYMAP_DATASETS.values():
        if dataset.deflection_mode == "lens":
            check_lens_compatible(dataset, configured)


check_skymap_lens_datasets()


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


def check_evaluation_config():
    """Stop before any job if the evaluation's datasets are not configured, or if the isotropy
    set cannot resolve the largest requested σ level (N ≥ 1 / p(σ) isotropic maps)."""
    from crsky.errors import ConfigError
    from crsky.stats.significance import check_isotropy_size

    for key in ("test_dataset", "isotropy_dataset"):
        name = config["evaluation"][key]
        if name not in SKYMAP_DATASETS:
            raise ConfigError(
                f"config evaluation.{key} = {name!r} is not a dataset of skymaps.datasets "
                f"({sorted(SKYMAP_DATASETS)})"
            )
    clashes = sorted(set(model_names()) & {"pair_counts", "summary"})
    if clashes:
        raise ConfigError(
            f"model names {clashes} are reserved for evaluation folders; rename the models"
        )
    check_isotropy_size(
        SKYMAP_DATASETS[EVAL_ISOTROPY].n_maps,
        config["evaluation"]["sigma_levels"],
        EVAL_ISOTROPY,
    )


check_evaluation_config()


def model_files(wildcards):
    """The model folder's files that evaluation reads (written by the train rule)."""
    folder = f"{MODELS}/{wildcards.model}"
    return [f"{folder}/model.keras", f"{folder}/history.csv", f"{folder}/config.json"]


TRAIN_DATASET_KEYS = ("training_datasets", "validation_datasets")


def train_settings():
    """config train without the dataset lists: the keys of crsky.train.TrainSettings."""
    train = config["train"]
    return {k: v for k, v in train.items() if k not in TRAIN_DATASET_KEYS}


def check_train_config():
    """Stop before any job if the train settings or a model entry are out of range (the error
    names train.<key> or models[i].<key>), two models share a name, or the training and
    validation datasets are not configured skymap datasets of one nside that every model can
    pool, or overlap the evaluation's test and isotropy sets."""
    from crsky.errors import ConfigError
    from crsky.models import ModelSpec
    from crsky.train import TrainSettings

    train = config["train"]
    TrainSettings.from_config(train_settings())
    nsides = set()
    for key in TRAIN_DATASET_KEYS:
        for name in train[key]:
            if name not in SKYMAP_DATASETS:
                raise ConfigError(
                    f"config train.{key} names {name!r}, not a dataset of skymaps.datasets "
                    f"({sorted(SKYMAP_DATASETS)})"
                )
            if name in (EVAL_TEST, EVAL_ISOTROPY):
                raise ConfigError(
                    f"config train.{key} names {name!r}, which evaluation uses as its test or "
                    "isotropy set; train on separate maps"
                )
            nsides.add(SKYMAP_DATASETS[name].nside)
    if len(nsides) != 1:
        raise ConfigError(
            f"config train: the training and validation datasets have nsides {sorted(nsides)}; "
            "one model reads one nside"
        )
    nside = nsides.pop()
    names = model_names()
    if len(set(names)) != len(names):
        raise ConfigError(f"config models: names must be unique, got {names}")
    for i, entry in enumerate(config["models"]):
        ModelSpec.from_config(entry, f"models[{i}]").check_nside(nside)


check_train_config()


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
    return json.dumps(train_settings(), sort_keys=True)


def psi_arguments():
    """``--psi MIN MAX STEP`` values of the two-point counts (config evaluation.psi_*_deg)."""
    e = config["evaluation"]
    return f"{e['psi_min_deg']} {e['psi_max_deg']} {e['psi_step_deg']}"


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
        "lens": report(
            f"{EVALUATION}/{{model}}/lens_deflection.png",
            caption="../report/evaluation_lens.rst",
            category="Evaluation",
            subcategory="{model}",
            labels={"model": "{model}", "item": "lens deflection"},
        )
    }


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
    """Resources of rule ``name`` from config resources.<name>, in the forms the local
    scheduler (mem_mb, disk_mb, runtime) and the HTCondor plugin (htcondor_request_mem_mb,
    htcondor_request_disk_mb, request_gpus, requirements) read. ``gpus`` replaces
    resources.<name>.gpus (the train rule requests config train.gpus)."""
    spec = config["resources"][name]
    if gpus is not None:
        spec = {**spec, "gpus": gpus}
    check_fits_a_node(name, spec)
    resources = {
        "mem_mb": spec["mem_mb"],
        "disk_mb": spec["disk_mb"],
        "runtime": spec["runtime_min"],
        "htcondor_request_mem_mb": spec["mem_mb"],
        "htcondor_request_disk_mb": spec["disk_mb"],
    }
    requirements = [spec["requirements"]] if spec["requirements"] else []
    if spec["gpus"] > 0:
        resources["request_gpus"] = spec["gpus"]
        if config["cluster"]["gpu_requirements"]:
            requirements.append(config["cluster"]["gpu_requirements"])
    if requirements:
        resources["requirements"] = " && ".join(f"({r})" for r in requirements)
    return resources


def check_fits_a_node(name, spec):
    """Stop before any submission if rule ``name`` asks for more than the largest node has."""
    limits = config["cluster"]
    for key, limit_key in (
        ("threads", "max_cpus_per_node"),
        ("mem_mb", "max_mem_mb_per_node"),
        ("gpus", "max_gpus_per_node"),
    ):
        if spec[key] > limits[limit_key]:
            raise WorkflowError(
                f"config resources.{name}.{key} = {spec[key]} exceeds "
                f"cluster.{limit_key} = {limits[limit_key]}: no node could run the job"
            )


def final_outputs():
    """Targets of the default rule: the last stage that exists so far."""
    return lens_outputs() + skymap_chunks() + evaluation_outputs()
