# crsky: backtracking -> Galactic lenses -> simulated skies -> spherical CNNs -> significance.
# Laptop:  snakemake                       (profiles/default is loaded automatically)
# Cluster: snakemake --profile profiles/condor --configfile config/production.yaml
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/backtrack.smk"
include: "workflow/rules/lens.smk"
include: "workflow/rules/skymaps.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
