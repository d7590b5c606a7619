# Random search (config search, crsky.search): one train job per trial (the train rule's job,
# with the trial's model and learning rate), one validation job per trial (p-value of the median
# signal score at search.signal_fraction), one selection job: results/search/search.csv and
# search.md, and the winner's model folder results/models/search_best, evaluated like any
# configured model (evaluate.smk). Trial i depends only on (search.seed, i): more trials
# retrain nothing.
import json
import os


# the winner's folder is the selection's output; search_best is in MODEL_DATASETS (evaluated
# like a configured model) but never trained by the train rule
ruleorder: search_select > train


use rule train as search_train with:
    input:
        training=search_chunks("training"),
        validation=search_chunks("validation"),
    output:
        model=f"{SEARCH_DIR}/trials/{{trial}}/model.keras",
        history=f"{SEARCH_DIR}/trials/{{trial}}/history.csv",
        config=f"{SEARCH_DIR}/trials/{{trial}}/config.json",
    log:
        f"{LOGS}/search/{{trial}}/train.log",
    params:
        folder=lambda wildcards, output: os.path.dirname(output.model),
        model=lambda wildcards: json.dumps(search_trial(wildcards)[0], sort_keys=True),
        settings=lambda wildcards: json.dumps(
            {**train_settings(config), "learning_rate": search_trial(wildcards)[1]},
            sort_keys=True,
        ),
        seed=config["seed"],


rule search_validate:
    input:
        model=lambda wildcards: search_trial_files(wildcards.trial),
        signal=skymap_chunks(SEARCH["validation_dataset"]) if SEARCH_TRIALS else [],
        isotropy=skymap_chunks(SEARCH["isotropy_dataset"]) if SEARCH_TRIALS else [],
    output:
        f"{SEARCH_DIR}/trials/{{trial}}/validation.json",
    log:
        f"{LOGS}/search/{{trial}}/validate.log",
    conda:
        "../../envs/train.yaml"
    threads: rule_threads("evaluate")
    resources:
        **rule_resources("evaluate"),
    params:
        folder=lambda wildcards, input: os.path.dirname(input.model[0]),
        fraction=SEARCH["signal_fraction"],
        batch_size=lookup(dpath="evaluation/batch_size", within=config),
    shell:
        "crsky search-validate --trial {params.folder:q} --signal {input.signal:q}"
        " --isotropy {input.isotropy:q} --signal-fraction {params.fraction:q}"
        " --output {output:q} --batch-size {params.batch_size:q} --threads {threads:q}"
        " > {log:q} 2>&1"


rule search_select:
    input:
        records=expand(
            f"{SEARCH_DIR}/trials/{{trial}}/validation.json", trial=SEARCH_TRIALS
        ),
        models=[path for trial in SEARCH_TRIALS for path in search_trial_files(trial)],
    output:
        table=report(
            f"{SEARCH_DIR}/search.csv",
            caption="../report/search.rst",
            category="Random search",
            labels={"item": "trials ranked by validation p-value"},
        ),
        markdown=f"{SEARCH_DIR}/search.md",
        best=[f"{MODELS}/{BEST_MODEL}/{name}" for name in MODEL_FILES],
    log:
        f"{LOGS}/search/select.log",
    conda:
        "../../envs/crsky.yaml"
    threads: rule_threads("evaluation_summary")
    resources:
        **rule_resources("evaluation_summary"),
    params:
        folders=lambda wildcards, input: [os.path.dirname(f) for f in input.records],
        out_dir=lambda wildcards, output: os.path.dirname(output.table),
        best=lambda wildcards, output: os.path.dirname(output.best[0]),
    shell:
        "crsky search-select --trials {params.folders:q} --output {params.out_dir:q}"
        " --best {params.best:q} > {log:q} 2>&1"
