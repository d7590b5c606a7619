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
        "crsky paircounts --chunk {input} --output {output} --psi {params.psi}"
        " --threads {threads} > {log} 2>&1"


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
        significance=report(
            f"{EVALUATION}/{{model}}/significance.csv",
            caption="../report/evaluation_significance.rst",
            category="Evaluation",
            subcategory="{model}",
            labels={"model": "{model}", "item": "significance table (csv)"},
        ),
        crossings=f"{EVALUATION}/{{model}}/crossings.csv",
        table=report(
            f"{EVALUATION}/{{model}}/significance.html",
            caption="../report/evaluation_significance.rst",
            category="Evaluation",
            subcategory="{model}",
            labels={"model": "{model}", "item": "significance table"},
        ),
        sigma=report(
            f"{EVALUATION}/{{model}}/sigma.png",
            caption="../report/evaluation_sigma.rst",
            category="Evaluation",
            subcategory="{model}",
            labels={"model": "{model}", "item": "sigma vs signal fraction"},
        ),
        score_distributions=report(
            f"{EVALUATION}/{{model}}/score_distributions.png",
            caption="../report/evaluation_scores.rst",
            category="Evaluation",
            subcategory="{model}",
            labels={"model": "{model}", "item": "score distributions"},
        ),
        skymaps=report(
            f"{EVALUATION}/{{model}}/skymaps.png",
            caption="../report/evaluation_skymaps.rst",
            category="Evaluation",
            subcategory="{model}",
            labels={"model": "{model}", "item": "example skymaps"},
        ),
        training=report(
            f"{EVALUATION}/{{model}}/training.png",
            caption="../report/evaluation_training.rst",
            category="Evaluation",
            subcategory="{model}",
            labels={"model": "{model}", "item": "training curves"},
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
        sigma_levels=" ".join(map(str, config["evaluation"]["sigma_levels"])),
        fractions=" ".join(map(str, config["evaluation"]["signal_fractions"])),
        batch_size=lookup(dpath="evaluation/batch_size", within=config),
        gpus=lookup(dpath="resources/evaluate/gpus", within=config),
    shell:
        "crsky evaluate --output {params.out_dir} --model {params.model_dir}"
        " --test {input.test} --isotropy {input.isotropy}"
        " --test-pair-counts {input.test_pairs}"
        " --isotropy-pair-counts {input.isotropy_pairs}"
        " --psi {params.psi} --sigma-levels {params.sigma_levels}"
        " --signal-fractions {params.fractions} --batch-size {params.batch_size}"
        " --gpus {params.gpus} --threads {threads} > {log} 2>&1"


rule evaluation_summary:
    input:
        expand(f"{EVALUATION}/{{model}}/significance.csv", model=model_names()),
    output:
        table=report(
            f"{EVALUATION}/summary/summary.csv",
            caption="../report/evaluation_summary.rst",
            category="Evaluation",
            subcategory="all models",
            labels={"model": "all", "item": "significance table (csv)"},
        ),
        sigma=report(
            f"{EVALUATION}/summary/sigma_summary.png",
            caption="../report/evaluation_summary.rst",
            category="Evaluation",
            subcategory="all models",
            labels={"model": "all", "item": "sigma vs signal fraction"},
        ),
    log:
        f"{LOGS}/evaluate/summary.log",
    conda:
        "../../envs/crsky.yaml"
    threads: rule_threads("evaluation_summary")
    resources:
        **rule_resources("evaluation_summary"),
    params:
        folders=lambda wildcards, input: " ".join(os.path.dirname(f) for f in input),
        out_dir=lambda wildcards, output: os.path.dirname(output.table),
        sigma_levels=" ".join(map(str, config["evaluation"]["sigma_levels"])),
    shell:
        "crsky summary --evaluations {params.folders} --output {params.out_dir}"
        " --sigma-levels {params.sigma_levels} > {log} 2>&1"
