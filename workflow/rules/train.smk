# Stage 4: one training job per entry of the config's model list (parallel jobs, each on
# train.gpus GPUs with MirroredStrategy). Output: the model folder (DESIGN.md section 4,
# "Model"); checkpoints/ in it is not an output, so a killed job's rerun resumes from it.
import os


rule train:
    input:
        training=model_chunks("training"),
        validation=model_chunks("validation"),
    output:
        model=f"{MODELS}/{{model}}/model.keras",
        history=f"{MODELS}/{{model}}/history.csv",
        config=f"{MODELS}/{{model}}/config.json",
    log:
        f"{LOGS}/train/{{model}}.log",
    wildcard_constraints:
        model="|".join(model_names()) or "(?!)",
    conda:
        "../../envs/train.yaml"
    threads: rule_threads("train")
    resources:
        **rule_resources("train", gpus=config["train"]["gpus"]),
    params:
        folder=lambda wildcards, output: os.path.dirname(output.model),
        model=model_spec_json,
        settings=train_settings_json(),
        seed=config["seed"],
    shell:
        "crsky train --output {params.folder:q} --model {params.model:q}"
        " --train-settings {params.settings:q} --training {input.training:q}"
        " --validation {input.validation:q} --seed {params.seed:q} --threads {threads:q}"
        " > {log:q} 2>&1"
