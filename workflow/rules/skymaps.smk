# Stage 3: simulated skies, one job per (dataset, chunk) of at most chunk_size maps.
# Datasets come from config skymaps.datasets; lens-mode datasets wait for their lens (or every
# lens of a mix).
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
        **skymap_resources(),
    params:
        seed=config["seed"],
        datasets=skymap_dataset_json,
        lens=lambda wildcards, input: (
            ["--lens", *(os.path.dirname(cfg) for cfg in input.lens)]
            if input.lens
            else []
        ),
    shell:
        "crsky skymaps --output {output:q} --seed {params.seed:q}"
        " --dataset {wildcards.dataset:q} --datasets {params.datasets:q}"
        " --chunk {wildcards.chunk:q} {params.lens:q} > {log:q} 2>&1"


rule dataset_plots:
    input:
        lambda wildcards: skymap_chunks(wildcards.dataset),
    output:
        spectrum=dataset_report("spectrum.png", "energy spectrum"),
        charges=dataset_report("charges.png", "charge fractions"),
        exposure=dataset_report("exposure.png", "exposure and mean counts"),
        mean_counts=f"{SKYMAPS}/{{dataset}}/mean_counts.fits",
    log:
        f"{LOGS}/skymaps/{{dataset}}/plots.log",
    conda:
        "../../envs/crsky.yaml"
    threads: rule_threads("dataset_plots")
    resources:
        **rule_resources("dataset_plots"),
    shell:
        "crsky dataset-plots --chunks {input:q} --spectrum-png {output.spectrum:q}"
        " --charges-png {output.charges:q} --exposure-png {output.exposure:q}"
        " --mean-counts-fits {output.mean_counts:q} > {log:q} 2>&1"
