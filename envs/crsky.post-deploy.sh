#!/usr/bin/env bash
# Run by Snakemake (--sdm conda) once, inside the environment it has just created from the
# .yaml file of the same name: installs crsky itself, editable, from the checkout that runs the
# workflow. The Snakefile exports that checkout's absolute path as CRSKY_SOURCE, so the install
# does not depend on where Snakemake keeps the environment (.snakemake/conda/) and the env's
# `crsky` runs the checkout's current code. Dependencies come from the .yaml file (--no-deps).
set -euo pipefail
python -m pip install --no-deps --editable "${CRSKY_SOURCE:?is set by the crsky Snakefile}"
