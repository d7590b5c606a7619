# Stage 5: evaluation. Two-point pair counts per skymap chunk of the test and isotropy sets (CPU,
# shared by every model), then one evaluation per model (GPU if resources.evaluate.gpus > 0):
# per-map scores, significance.csv / crossings.csv and plots, all in the report.
# Output format: DESIGN.md section 4, "Evaluation folder".
import os


rule paircounts:
    input:
        f"{SKYMAPS}/{{dataset}}/chunk{{chunk}}.h5",
    output:
        f"{EVALUATION}/pair_counts/{{dataset}}/chunk{{chunk}}.h5",
    log:
        f"{LOGS}/evaluate/pair_counts/{{dataset}}/chunk{{chunk}}.log",
    conda:
        "../../envs/crsky.yaml"
    threads: rule_threads("paircounts")
    resources:
        **rule_resources("paircounts"),
    params:
        psi=psi_arguments(),
    shell:
        "crsky paircounts --chunk {input:q} --output {output:q} --psi {params.psi:q}"
        " --threads {threads:q} > {log:q} 2>&1"


rule evaluate:
    input:
        model=model_files,
        test=skymap_chunks(EVAL_TEST),
        isotropy=skymap_chunks(EVAL_ISOTROPY),
        test_pairs=pair_count_files(EVAL_TEST),
        isotropy_pairs=pair_count_files(EVAL_ISOTROPY),
    output:
        **evaluation_lens_output(),
        scores=f"{EVALUATION}/{{model}}/scores.h5",
        significance=evaluation_report(
            f"{EVALUATION}/{{model}}/significance.csv",
            "evaluation_significance",
            "significance table (csv)",
        ),
        crossings=f"{EVALUATION}/{{model}}/crossings.csv",
        table=evaluation_report(
            f"{EVALUATION}/{{model}}/significance.html",
            "evaluation_significance",
            "significance table",
        ),
        sigma=evaluation_report(
            f"{EVALUATION}/{{model}}/sigma.png",
            "evaluation_sigma",
            "sigma vs signal fraction",
        ),
        score_distributions=evaluation_report(
            f"{EVALUATION}/{{model}}/score_distributions.png",
            "evaluation_scores",
            "score distributions",
        ),
        skymaps=evaluation_report(
            f"{EVALUATION}/{{model}}/skymaps.png",
            "evaluation_skymaps",
            "example skymaps",
        ),
        training=evaluation_report(
            f"{EVALUATION}/{{model}}/training.png",
            "evaluation_training",
            "training curves",
        ),
    log:
        f"{LOGS}/evaluate/{{model}}.log",
    wildcard_constraints:
        model="|".join(model_names()) or "(?!)",
    conda:
        "../../envs/train.yaml"
    threads: rule_threads("evaluate")
    resources:
        **rule_resources("evaluate"),
    params:
        model_dir=lambda wildcards, input: os.path.dirname(input.model[0]),
        out_dir=lambda wildcards, output: os.path.dirname(output.scores),
        psi=psi_arguments(),
        sigma_levels=config["evaluation"]["sigma_levels"],
        fractions=config["evaluation"]["signal_fractions"],
        batch_size=lookup(dpath="evaluation/batch_size", within=config),
        gpus=lookup(dpath="resources/evaluate/gpus", within=config),
    shell:
        "crsky evaluate --output {params.out_dir:q} --model {params.model_dir:q}"
        " --test {input.test:q} --isotropy {input.isotropy:q}"
        " --test-pair-counts {input.test_pairs:q}"
        " --isotropy-pair-counts {input.isotropy_pairs:q}"
        " --psi {params.psi:q} --sigma-levels {params.sigma_levels:q}"
        " --signal-fractions {params.fractions:q} --batch-size {params.batch_size:q}"
        " --gpus {params.gpus:q} --threads {threads:q} > {log:q} 2>&1"


rule evaluation_summary:
    input:
        expand(f"{EVALUATION}/{{model}}/significance.csv", model=model_names()),
    output:
        table=evaluation_report(
            f"{EVALUATION}/summary/summary.csv",
            "evaluation_summary",
            "significance table (csv)",
            model="all",
            subcategory="all models",
        ),
        sigma=evaluation_report(
            f"{EVALUATION}/summary/sigma_summary.png",
            "evaluation_summary",
            "sigma vs signal fraction",
            model="all",
            subcategory="all models",
        ),
    log:
        f"{LOGS}/evaluate/summary.log",
    conda:
        "../../envs/crsky.yaml"
    threads: rule_threads("evaluation_summary")
    resources:
        **rule_resources("evaluation_summary"),
    params:
        folders=lambda wildcards, input: [os.path.dirname(f) for f in input],
        out_dir=lambda wildcards, output: os.path.dirname(output.table),
        sigma_levels=config["evaluation"]["sigma_levels"],
    shell:
        "crsky summary --evaluations {params.folders:q} --output {params.out_dir:q}"
        " --sigma-levels {params.sigma_levels:q} > {log:q} 2>&1"
