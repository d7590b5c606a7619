#!/usr/bin/env bash
# Side environment with astrotools 1.5 (the anchor of benchmarks/skymaps.py and
# benchmarks/evaluate.py): astrotools 1.5 uses numpy aliases removed in numpy 1.24 (np.float,
# np.int), so it cannot share crsky's environment (numpy >= 2). Creates
# benchmarks/anchors/.venv-astrotools (ignored by git); the benchmarks find it there, or take
# another interpreter from --astrotools-python. Usage:
#   bash benchmarks/anchors/install-astrotools.sh [PYTHON]     (default: python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-astrotools"
python="${1:-python3}"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "astrotools==1.5.0" "numpy<1.24" "scipy<1.12" "healpy<1.17" \
  "matplotlib<3.8"
"$venv/bin/python" -c 'import astrotools, numpy; print("astrotools", astrotools.__version__, "numpy", numpy.__version__)'
