"""The workflow config: schema validation with one-line errors, and the checks across keys that
a JSON schema cannot express. The Snakefile calls, right after loading the config::

    with config_errors_exit():
        validate_config(config, "workflow/schemas/config.schema.yaml")
        check_config(config)

so that a bad config stops before any job with one line naming the key (``crsky config:
error: backtrack.shard_size = 0: ...``), never a traceback. Add a new cross-key check as a
small function called from :func:`check_config`; it raises ConfigError whose message starts
with the dotted key (``train.epochs``, ``skymaps.datasets.<name>.<key>``, ``models[1].depth``).
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import yaml

from crsky.cluster import check_cluster
from crsky.errors import ConfigError, CrskyError, did_you_mean

__all__ = [
    "RESERVED_MODEL_NAMES",
    "TRAIN_DATASET_KEYS",
    "check_config",
    "config_errors_exit",
    "evaluation_pairs",
    "key_path",
    "model_datasets",
    "model_spec_entry",
    "skymap_datasets",
    "tested_fractions",
    "train_settings",
    "validate_config",
]

# model names that would clash with the evaluation's own folders and the search's winner
RESERVED_MODEL_NAMES = (
    "pair_counts",
    "likelihood",
    "summary",
    "search_best",
    "robustness",
    "robustness_table",
)
TRAIN_DATASET_KEYS = ("training_datasets", "validation_datasets")
_MAX_REPR = 80  # characters of a bad value quoted in a message


# --- schema validation ---------------------------------------------------------------------------


def key_path(parts) -> str:
    """Dotted key of a config location: ("models", 1, "depth") -> "models[1].depth"."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def _reject_non_finite(value, parts: tuple = ()) -> None:
    """ConfigError naming the first NaN or infinite number anywhere in ``value``."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"{key_path(parts) or 'config'} = {value!r}: numbers must be finite (NaN and "
            "infinities are not accepted anywhere in the config)"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_non_finite(item, (*parts, key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _reject_non_finite(item, (*parts, i))


def _message(error) -> str:
    """One line for a jsonschema ValidationError: the dotted key, the value, what was expected."""
    where = key_path(error.absolute_path)
    value, schema, kind = error.instance, error.schema, error.validator
    if kind == "additionalProperties" and isinstance(value, dict):
        known = sorted(schema.get("properties", {}))
        extra = sorted(set(value) - set(known))[0]
        key = f"{where}.{extra}" if where else str(extra)
        return (
            f"{key}: unknown key{did_you_mean(extra, known)} "
            f"(keys of {where or 'the top level'}: {', '.join(known)})"
        )
    if list(error.absolute_schema_path)[-2:-1] == ["propertyNames"]:  # a bad name of a mapping
        allowed = schema.get("enum")
        hint = (
            f"expected one of {allowed}{did_you_mean(value, allowed)}"
            if allowed
            else f"names must match the pattern {schema.get('pattern')}"
        )
        return f"{where}.{value}: not an allowed name; {hint}"
    if kind == "required":
        return f"{where or 'config'}: {error.message}"
    if kind == "enum":
        allowed = error.validator_value
        hint = did_you_mean(value, allowed) if isinstance(value, str) else ""
        return f"{where} = {_short(value)}: expected one of {allowed}{hint}"
    if kind == "pattern":
        return f"{where} = {_short(value)}: must match the pattern {error.validator_value}"
    return f"{where or 'config'} = {_short(value)}: {error.message}"


def _default_filling_validator(schema: dict):
    """A Draft 2020-12 validator that also fills in every default of the schema (what Snakemake's
    ``validate`` does)."""
    from jsonschema import Draft202012Validator, validators

    properties = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, props, instance, subschema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if "default" in sub:
                    instance.setdefault(name, sub["default"])
        yield from properties(validator, props, instance, subschema)

    return validators.extend(Draft202012Validator, {"properties": set_defaults})(schema)


def validate_config(config: dict, schema_path: str | Path) -> None:
    """Fill in the schema's defaults and check ``config`` against it; ConfigError with one line
    naming the key and the nearest valid key for a misspelt one. NaN and infinities are rejected
    for every number."""
    from jsonschema.exceptions import best_match

    _reject_non_finite(config)
    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    error = best_match(_default_filling_validator(schema).iter_errors(config))
    if error is not None:
        raise ConfigError(_message(error))


# --- checks across keys --------------------------------------------------------------------------


def skymap_datasets(config: dict) -> dict:
    """{name: crsky.sky.dataset.DatasetConfig} of config skymaps.datasets (errors name
    ``skymaps.datasets.<name>.<key>``)."""
    from crsky.sky.dataset import DatasetConfig

    return {
        name: DatasetConfig.from_dict(name, spec)
        for name, spec in config["skymaps"]["datasets"].items()
    }


def train_settings(config: dict) -> dict:
    """config train without the dataset lists: the keys of crsky.train.TrainSettings."""
    return {k: v for k, v in config["train"].items() if k not in TRAIN_DATASET_KEYS}


def model_datasets(config: dict) -> dict[str, dict]:
    """{model name: {"training": [...], "validation": [...], "test": name, "isotropy": name}}:
    each model's skymap datasets, models[i].datasets where given, else the train and
    evaluation sections'."""
    train, evaluation = config["train"], config["evaluation"]
    out = {}
    for entry in config["models"]:
        given = entry.get("datasets") or {}
        out[entry["name"]] = {
            "training": list(given.get("training", train["training_datasets"])),
            "validation": list(given.get("validation", train["validation_datasets"])),
            "test": given.get("test", evaluation["test_dataset"]),
            "isotropy": given.get("isotropy", evaluation["isotropy_dataset"]),
        }
    if config.get("search", {}).get("trials"):  # the search's winner, trained like its trials
        out["search_best"] = {
            "training": list(train["training_datasets"]),
            "validation": list(train["validation_datasets"]),
            "test": evaluation["test_dataset"],
            "isotropy": evaluation["isotropy_dataset"],
        }
    return out


def model_spec_entry(entry: dict) -> dict:
    """A models[i] entry without its ``datasets``: the keys of crsky.models.ModelSpec."""
    return {k: v for k, v in entry.items() if k != "datasets"}


def evaluation_pairs(config: dict) -> list[tuple[str, str]]:
    """Distinct (test, isotropy) dataset pairs the models are evaluated on (the evaluation
    section's pair when there are no models), in order of first use."""
    pairs = [(d["test"], d["isotropy"]) for d in model_datasets(config).values()]
    if not pairs:
        evaluation = config["evaluation"]
        pairs = [(evaluation["test_dataset"], evaluation["isotropy_dataset"])]
    return list(dict.fromkeys(pairs))


def tested_fractions(config: dict, datasets: dict, test: str) -> list[float]:
    """The signal fractions reported for test set ``test``: evaluation.signal_fractions, or
    the set's own fixed fractions ('value' or 'values')."""
    given = config["evaluation"]["signal_fractions"]
    if given:
        return sorted(float(f) for f in given)
    fraction = datasets[test].signal_fraction
    if fraction.kind == "uniform":
        raise ConfigError(
            f"evaluation.signal_fractions = []: test set {test!r} draws its signal fractions "
            "uniformly; give it fixed 'values' or list the fractions to report"
        )
    return sorted(set(fraction.parameters))


def _check_fields(config: dict) -> dict:
    """The lenses of the workflow (crsky.ensemble.lens_fields: field or fields, options the
    models declare, unique safe names)."""
    from crsky.ensemble import lens_fields

    return lens_fields(config)


def _check_backtrack(config: dict) -> None:
    """Rigidity bins and shards in range; every lens row gets the same number of backtracked
    particles (particles_per_bin a multiple of 12 lens.nside²)."""
    from crsky.backtrack.sampling import check_particles_per_bin
    from crsky.binning import RigidityBins, Sharding

    n = config["backtrack"]["particles_per_bin"]
    check_particles_per_bin(n, config["lens"]["nside"], "backtrack.particles_per_bin")
    RigidityBins(**config["rigidity_bins"])
    Sharding(n, config["backtrack"]["shard_size"])


def _check_lens_datasets(config: dict, datasets: dict, lenses: dict) -> None:
    """A lens-mode dataset names lenses the workflow builds (or there is exactly one), and
    each fits them: nside, rigidity coverage of log10(E / Z) for every charge, one nside and
    one set of bins across a mix, and a node holds a mix's memory (mem_mb per lens)."""
    from crsky.binning import RigidityBins
    from crsky.ensemble import resolve_dataset_lenses
    from crsky.sky.simulate import check_lens_mix

    edges = RigidityBins(**config["rigidity_bins"]).edges
    for dataset in datasets.values():
        if dataset.deflection_mode != "lens":
            continue
        names = resolve_dataset_lenses(dataset.key, dataset.config["deflection"]["lens"], lenses)
        configured = SimpleNamespace(nside=config["lens"]["nside"], log10_rigidity_edges=edges)
        check_lens_mix(dataset, [configured] * len(names), names)
        mem_mb, limit = config["resources"]["skymaps"]["mem_mb"], config["cluster"]
        if mem_mb * len(names) > limit["max_mem_mb_per_node"]:
            raise ConfigError(
                f"skymaps.datasets.{dataset.name}: a job of this mix of {len(names)} lenses "
                f"requests {len(names)} x resources.skymaps.mem_mb = {mem_mb * len(names)} MB "
                f"(the parts of every lens are held), more than cluster.max_mem_mb_per_node = "
                f"{limit['max_mem_mb_per_node']}"
            )


def _model_names(config: dict) -> list[str]:
    return [entry["name"] for entry in config["models"]]


def _check_dataset_name(name: str, key: str, datasets: dict) -> None:
    if name not in datasets:
        raise ConfigError(
            f"{key} = {name!r}: not a dataset of skymaps.datasets "
            f"({sorted(datasets)}){did_you_mean(name, datasets)}"
        )


def _check_evaluation(config: dict, datasets: dict) -> None:
    """The evaluation's datasets (and every model's) exist, the model names do not clash with
    its folders, each isotropy set can calibrate the largest σ level (N ≥ 1 / p(σ), or enough
    maps for a tail fit), and the likelihood analyses can model each test set."""
    from crsky.stats.significance import check_isotropy_size

    evaluation = config["evaluation"]
    for key in ("test_dataset", "isotropy_dataset"):
        _check_dataset_name(evaluation[key], f"evaluation.{key}", datasets)
    for i, entry in enumerate(config["models"]):
        for key in ("test", "isotropy"):
            if key in (entry.get("datasets") or {}):
                _check_dataset_name(entry["datasets"][key], f"models[{i}].datasets.{key}", datasets)
    clashes = sorted(set(_model_names(config)) & set(RESERVED_MODEL_NAMES))
    if clashes:
        raise ConfigError(
            f"models: names {clashes} are reserved for evaluation folders; rename the models"
        )
    for _, isotropy in evaluation_pairs(config):
        check_isotropy_size(datasets[isotropy].n_maps, evaluation["sigma_levels"], isotropy)
    _check_likelihood(config, datasets)
    _check_robustness_datasets(config, datasets)


def _check_robustness_datasets(config: dict, datasets: dict) -> None:
    """Each robustness test set exists, has the nside and CRs per map of every isotropy set it
    is compared with (each model's), fixed signal fractions ('value' or 'values'), and the
    reported ones (evaluation.signal_fractions)."""
    from crsky.stats.significance import FRACTION_ATOL

    evaluation = config["evaluation"]
    isotropy_sets = list(dict.fromkeys(iso for _, iso in evaluation_pairs(config)))
    for name in evaluation["robustness_datasets"]:
        where = f"evaluation.robustness_datasets: {name!r}"
        if name not in datasets:
            raise ConfigError(
                f"{where} is not a dataset of skymaps.datasets ({sorted(datasets)})"
                f"{did_you_mean(name, datasets)}"
            )
        dataset = datasets[name]
        for isotropy in (datasets[iso] for iso in isotropy_sets):
            if (dataset.nside, dataset.n_cr) != (isotropy.nside, isotropy.n_cr):
                raise ConfigError(
                    f"{where} has nside {dataset.nside} and {dataset.n_cr} CRs per map, the "
                    f"isotropy set {isotropy.name!r} nside {isotropy.nside} and {isotropy.n_cr}; "
                    "use the same"
                )
        fraction = dataset.signal_fraction
        if fraction.kind == "uniform":
            raise ConfigError(
                f"{where} draws its signal fraction from 'uniform'; a test set needs fixed "
                "fractions ('value' or 'values')"
            )
        for value in evaluation["signal_fractions"]:
            if not any(abs(value - f) <= FRACTION_ATOL for f in fraction.parameters):
                raise ConfigError(
                    f"{where} has no maps at signal fraction {value:g} of "
                    f"evaluation.signal_fractions (it has {list(fraction.parameters)})"
                )


_BACKGROUND_KEYS = ("nside", "n_cr", "exposure", "energy_min_eev", "energy_max_eev", "spectrum")


def _check_likelihood(config: dict, datasets: dict) -> None:
    """Every test set can be modelled (crsky.likelihood.check_likelihood_dataset), has fixed
    signal fractions, and shares its isotropy set's background (the likelihood's b)."""
    from crsky.likelihood import ProfileGrid, check_likelihood_dataset

    settings = config["evaluation"]["likelihood"]
    if not settings["methods"]:
        return
    grid = ProfileGrid(**settings["grid"])
    for test, isotropy in evaluation_pairs(config):
        check_likelihood_dataset(datasets[test], settings["methods"], grid)
        tested_fractions(config, datasets, test)
        if datasets[test].is_lens_mix:
            raise ConfigError(
                f"evaluation.likelihood.methods = {settings['methods']}: test set {test!r} mixes "
                f"the lenses {list(datasets[test].lens_names)}; the likelihood models one lens "
                "(methods: [] or a single-lens test set)"
            )
        for key in _BACKGROUND_KEYS:
            a, b = datasets[test].config[key], datasets[isotropy].config[key]
            if a != b:
                raise ConfigError(
                    f"skymaps.datasets.{isotropy}.{key} = {b!r}: differs from the test set "
                    f"{test!r} ({a!r}); the likelihood scores isotropic maps against the test "
                    "set's background"
                )


def _check_train(config: dict, datasets: dict) -> None:
    """Train settings and model entries in range (errors name train.<key> or models[i].<key>),
    unique model names, and per model training and validation sets that exist, have one nside
    it can pool, and are not a test or isotropy set of any model."""
    from crsky.models import ModelSpec
    from crsky.train import TrainSettings

    TrainSettings.from_config(train_settings(config))
    held_out = {name for pair in evaluation_pairs(config) for name in pair}
    held_out |= set(config["evaluation"]["robustness_datasets"])
    names = _model_names(config)
    if len(set(names)) != len(names):
        raise ConfigError(f"models: names must be unique, got {names}")
    per_model = model_datasets(config)
    for i, entry in enumerate(config["models"]):
        given = entry.get("datasets") or {}
        nsides = set()
        for key, role in zip(TRAIN_DATASET_KEYS, ("training", "validation"), strict=True):
            where = f"models[{i}].datasets.{role}" if role in given else f"train.{key}"
            for name in per_model[entry["name"]][role]:
                if name not in datasets:
                    raise ConfigError(
                        f"{where}: {name!r} is not a dataset of skymaps.datasets "
                        f"({sorted(datasets)}){did_you_mean(name, datasets)}"
                    )
                if name in held_out:
                    raise ConfigError(
                        f"{where}: {name!r} is the evaluation's test or isotropy set (or a "
                        "robustness test set); train on separate maps"
                    )
                nsides.add(datasets[name].nside)
        if len(nsides) != 1:
            raise ConfigError(
                f"models[{i}]: its training and validation datasets have nsides "
                f"{sorted(nsides)}; one model reads one nside"
            )
        spec = ModelSpec.from_config(model_spec_entry(entry), f"models[{i}]")
        try:
            spec.check_nside(nsides.pop())
        except ConfigError as err:
            raise ConfigError(f"models[{i}].depth = {spec.depth}: {err}") from None


def _check_resources(config: dict) -> None:
    """No rule asks for more than the largest node has (the train rule's GPUs are train.gpus)."""
    limits = config["cluster"]
    for rule, spec in config["resources"].items():
        if rule == "train":
            spec = {**spec, "gpus": config["train"]["gpus"]}
        for key, limit_key in (
            ("threads", "max_cpus_per_node"),
            ("mem_mb", "max_mem_mb_per_node"),
            ("gpus", "max_gpus_per_node"),
        ):
            if spec[key] > limits[limit_key]:
                where = (
                    "train.gpus" if (rule, key) == ("train", "gpus") else f"resources.{rule}.{key}"
                )
                raise ConfigError(
                    f"{where} = {spec[key]} exceeds cluster.{limit_key} = {limits[limit_key]}: "
                    "no node could run the job"
                )


def _check_search(config: dict, datasets: dict) -> None:
    """The search's validation sets exist, are neither the evaluation's test/isotropy sets nor
    of another nside than the training maps, the signal set holds maps at
    search.signal_fraction and the isotropy set none with signal; every choice of the space
    builds a network (crsky.search.check_search)."""
    from crsky.search import check_search

    search = config["search"]
    if search["trials"] == 0:
        return
    held_out = {name for pair in evaluation_pairs(config) for name in pair}
    train = config["train"]
    for key in TRAIN_DATASET_KEYS:
        for name in train[key]:
            _check_dataset_name(name, f"train.{key}", datasets)
            if name in held_out:
                raise ConfigError(
                    f"train.{key}: {name!r} is the evaluation's test or isotropy set; the "
                    "search trains on separate maps"
                )
    nside = datasets[train["training_datasets"][0]].nside
    for key in ("test_dataset", "isotropy_dataset"):  # where the winner is evaluated
        name = config["evaluation"][key]
        if datasets[name].nside != nside:
            raise ConfigError(
                f"evaluation.{key} = {name!r} has nside {datasets[name].nside}, the search's "
                f"training maps {nside}; the winner is evaluated on it"
            )
    for key in ("validation_dataset", "isotropy_dataset"):
        name = search[key]
        _check_dataset_name(name, f"search.{key}", datasets)
        if name in held_out:
            raise ConfigError(
                f"search.{key} = {name!r} is the evaluation's test or isotropy set; select on "
                "separate maps"
            )
        if datasets[name].nside != nside:
            raise ConfigError(
                f"search.{key} = {name!r} has nside {datasets[name].nside}, the training maps "
                f"{nside}"
            )
    fractions = datasets[search["validation_dataset"]].signal_fraction
    wanted = search["signal_fraction"]
    if fractions.kind == "uniform" or not any(
        math.isclose(f, wanted, abs_tol=1e-6) for f in fractions.parameters
    ):
        raise ConfigError(
            f"search.signal_fraction = {wanted}: dataset {search['validation_dataset']!r} has "
            f"no maps at that fraction (its signal_fraction: {fractions.kind} "
            f"{list(fractions.parameters)}; give it {{value: {wanted}}})"
        )
    if datasets[search["isotropy_dataset"]].signal_fraction.maximum > 0:
        raise ConfigError(
            f"search.isotropy_dataset = {search['isotropy_dataset']!r} has maps with signal; it "
            "must be simulated with signal_fraction {value: 0.0}"
        )
    check_search(search, nside, config["train"]["learning_rate"])


def check_config(config: dict) -> None:
    """Every check across keys, on a config that passed :func:`validate_config` (defaults
    filled in). ConfigError naming the key on the first failure."""
    lenses = _check_fields(config)
    _check_backtrack(config)
    datasets = skymap_datasets(config)
    _check_lens_datasets(config, datasets, lenses)
    _check_evaluation(config, datasets)
    _check_train(config, datasets)
    _check_search(config, datasets)
    _check_resources(config)
    check_cluster(config["cluster"])


@contextmanager
def config_errors_exit() -> Iterator[None]:
    """Turn a crsky error into ``SystemExit("crsky config: error: ...")``: Snakemake prints the
    one line and exits with status 1, without a traceback or its own stack frames."""
    try:
        yield
    except CrskyError as err:
        raise SystemExit(f"crsky config: error: {err}") from None
