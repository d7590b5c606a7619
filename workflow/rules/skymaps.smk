# Stage 3: simulated skies, one job per (dataset, chunk) of at most chunk_size maps.
# Datasets come from config skymaps.datasets; lens-mode datasets wait for the lens.
# Output format: DESIGN.md section 4, "Skymap chunk" (reader: crsky.store).
import os


rule skymaps:
    input:
        lens=skymap_lens_input,
    output:
        f"{SKYMAPS}/{{dataset}}/chunk{{chunk}}.h5",
    log:
        f"{LOGS}/skymaps/{{dataset}}/chunk{{chunk}}.log",
    conda:
        "../../envs/crsky.yaml"
    threads: rule_threads("skymaps")
    resources:
        **rule_resources("skymaps"),
    params:
        seed=config["seed"],
        datasets=skymap_dataset_json,
        lens=lambda wildcards, input: (
            f"--lens {os.path.dirname(input.lens[0])}" if input.lens else ""
        ),
    shell:
        "crsky skymaps --output {output} --seed {params.seed} --dataset {wildcards.dataset}"
        " --datasets '{params.datasets}' --chunk {wildcards.chunk} {params.lens} > {log} 2>&1"
