# Stage 5: evaluation. Two-point pair counts and likelihood scores per skymap chunk of the test
# and isotropy sets (CPU, shared by every model), then one evaluation per model (GPU if
# resources.evaluate.gpus > 0): per-map scores, significance.csv / crossings.csv and plots, all
# in the report.
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


rule likelihood:
    input:
        chunk=f"{SKYMAPS}/{{dataset}}/chunk{{chunk}}.h5",
        signal_chunk=likelihood_signal_chunk,
        lens=likelihood_lens_input,
    output:
        f"{EVALUATION}/likelihood/{{signal}}/{{dataset}}/chunk{{chunk}}.h5",
    log:
        f"{LOGS}/evaluate/likelihood/{{signal}}/{{dataset}}/chunk{{chunk}}.log",
    wildcard_constraints:
        signal="|".join(SIGNAL_SETS) or "(?!)",
    conda:
        "../../envs/crsky.yaml"
    threads: rule_threads("likelihood")
    resources:
        **rule_resources("likelihood"),
    params:
        role=likelihood_role,
        fractions=likelihood_fractions,
        methods=LIKELIHOOD_METHODS,
        grid=[
            lookup(dpath=f"evaluation/likelihood/grid/{key}", within=config)
            for key in ("nside", "n_axes", "levels", "candidates")
        ],
    shell:
        "crsky likelihood --chunk {input.chunk:q} --signal-chunk {input.signal_chunk:q}"
        " --role {params.role:q} --fractions {params.fractions:q}"
        " --methods {params.methods:q} --grid {params.grid:q}"
        " --output {output:q} --threads {threads:q} > {log:q} 2>&1"


rule evaluate:
    input:
        model=model_files,
        test=model_chunks("test"),
        isotropy=model_chunks("isotropy"),
        test_pairs=model_pair_counts("test"),
        isotropy_pairs=model_pair_counts("isotropy"),
        test_likelihood=model_likelihood_files("test"),
        isotropy_likelihood=model_likelihood_files("isotropy"),
    output:
        **evaluation_files(lens=False),
    log:
        f"{LOGS}/evaluate/{{model}}.log",
    wildcard_constraints:
        model=model_constraint(lens=False),
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
        extra=likelihood_arguments,  # evaluate_robustness (robustness.smk): --no-plots
    shell:
        "crsky evaluate --output {params.out_dir:q} --model {params.model_dir:q}"
        " --test {input.test:q} --isotropy {input.isotropy:q}"
        " --test-pair-counts {input.test_pairs:q}"
        " --isotropy-pair-counts {input.isotropy_pairs:q}"
        " --psi {params.psi:q} --sigma-levels {params.sigma_levels:q}"
        " --signal-fractions {params.fractions:q} --batch-size {params.batch_size:q}"
        " --gpus {params.gpus:q} --threads {threads:q} {params.extra:q} > {log:q} 2>&1"


# models evaluated on lens-mode test maps also plot the lens deflection
use rule evaluate as evaluate_lens with:
    output:
        **evaluation_files(lens=True),
    wildcard_constraints:
        model=model_constraint(lens=True),


rule evaluation_summary:
    input:
        tables=expand(f"{EVALUATION}/{{model}}/significance.csv", model=model_names()),
        scores=expand(f"{EVALUATION}/{{model}}/scores.h5", model=model_names()),
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
        folders=lambda wildcards, input: [os.path.dirname(f) for f in input.tables],
        out_dir=lambda wildcards, output: os.path.dirname(output.table),
        sigma_levels=config["evaluation"]["sigma_levels"],
    shell:
        "crsky summary --evaluations {params.folders:q} --output {params.out_dir:q}"
        " --sigma-levels {params.sigma_levels:q} > {log:q} 2>&1"
