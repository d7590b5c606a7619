# crsky: backtracking -> Galactic lenses -> simulated skies -> spherical CNNs -> significance.
# Laptop:  snakemake                       (profiles/default is loaded automatically)
# Cluster: snakemake --profile profiles/condor --configfile config/production.yaml
from snakemake.utils import min_version

from crsky.config import check_config, config_errors_exit, validate_config
from crsky.provenance import config_sha256, write_provenance

min_version("9.0")


configfile: "config/config.yaml"


# schema (defaults filled in), then the checks across keys: one line naming the key, no traceback
with config_errors_exit():
    validate_config(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")
    check_config(config)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/backtrack.smk"
include: "workflow/rules/lens.smk"
include: "workflow/rules/skymaps.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/explain.smk"
include: "workflow/rules/robustness.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
        f"{RESULTS}/provenance.csv",


# crsky commit, package versions, config hash, seed, machine: one table in the report
rule provenance:
    output:
        report(
            f"{RESULTS}/provenance.csv",
            caption="workflow/report/provenance.rst",
            category="Provenance",
            labels={"item": "provenance table"},
        ),
    log:
        f"{LOGS}/provenance.log",
    localrule: True
    params:
        config_sha256=config_sha256(config),
    run:
        write_provenance(output[0], config, workflow.basedir)
