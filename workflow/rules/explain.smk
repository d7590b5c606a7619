# Relevance maps (crsky explain, LRP): for every configured model, the share of its
# score's relevance on the true signal CRs per signal fraction of its test set, and example
# skies with the CRs coloured by relevance (in the report next to the evaluation).
import os


rule explain:
    input:
        model=model_files,
        test=model_chunks("test"),
    output:
        table=f"{EXPLAIN}/{{model}}/relevance.csv",
        figure=evaluation_report(
            f"{EXPLAIN}/{{model}}/relevance.png",
            "evaluation_relevance",
            "LRP relevance of the CRs",
        ),
    log:
        f"{LOGS}/evaluate/{{model}}_explain.log",
    wildcard_constraints:
        model="|".join(model_names()) or "(?!)",
    conda:
        "../../envs/train.yaml"
    threads: rule_threads("evaluate")
    resources:
        **rule_resources("evaluate"),
    params:
        model_dir=lambda wildcards, input: os.path.dirname(input.model[0]),
        out_dir=lambda wildcards, output: os.path.dirname(output.table),
    shell:
        "crsky explain --model {params.model_dir:q} --test {input.test:q}"
        " --output {params.out_dir:q} --threads {threads:q} > {log:q} 2>&1"
