# The robustness table (issue 12): every model is also evaluated on the skymap datasets of
# config evaluation.robustness_datasets (skies made with other field models, lens mixes), then
# crsky robustness puts σ at each signal fraction side by side, trained-on x tested-on. On the
# model's own test set its evaluation folder is reused.
use rule evaluate as evaluate_robustness with:
    input:
        model=model_files,
        test=lambda wildcards: skymap_chunks(wildcards.test),
        isotropy=model_chunks("isotropy"),
        test_pairs=lambda wildcards: pair_count_files(wildcards.test),
        isotropy_pairs=model_pair_counts("isotropy"),
    output:
        scores=f"{ROBUSTNESS}/{{model}}/{{test}}/scores.h5",
        significance=f"{ROBUSTNESS}/{{model}}/{{test}}/significance.csv",
    log:
        f"{LOGS}/evaluate/robustness/{{model}}/{{test}}.log",
    wildcard_constraints:
        model="|".join(model_names()) or "(?!)",
        test="|".join(ROBUSTNESS_SETS) or "(?!)",
    params:
        extra=["--no-plots"],


rule robustness:
    input:
        [f"{folder}/significance.csv" for folder in robustness_folders()],
    output:
        table=evaluation_report(
            f"{ROBUSTNESS_TABLE}/robustness.csv",
            "evaluation_robustness",
            "robustness table (csv)",
            model="all",
            subcategory="robustness",
        ),
        figure=evaluation_report(
            f"{ROBUSTNESS_TABLE}/robustness.png",
            "evaluation_robustness",
            "robustness: trained on x tested on",
            model="all",
            subcategory="robustness",
        ),
    log:
        f"{LOGS}/evaluate/robustness.log",
    conda:
        "../../envs/crsky.yaml"
    threads: rule_threads("evaluation_summary")
    resources:
        **rule_resources("evaluation_summary"),
    params:
        folders=lambda wildcards, input: [os.path.dirname(f) for f in input],
        out_dir=lambda wildcards, output: os.path.dirname(output.table),
        fractions=config["evaluation"]["signal_fractions"],
    shell:
        "crsky robustness --evaluations {params.folders:q} --output {params.out_dir:q}"
        " --signal-fractions {params.fractions:q} > {log:q} 2>&1"
