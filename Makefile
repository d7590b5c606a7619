# Two commands on a fresh machine (Python 3.11 and internet access to the package index):
#   make run    installs crsky into .venv and runs the embedded default workflow
#   make test   installs crsky into .venv and runs the linters and the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

.PHONY: run test lint dry-run-production slurm-packages browser-packages

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[workflow,test,train]'
	touch $@

# crsky workflow = snakemake after one-line checks of the config files, without the htcondor
# bindings' CONDOR_CONFIG warning where no pool is configured
run: $(VENV)/.installed
	$(BIN)/crsky workflow --cores all

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/snakefmt --check Snakefile workflow

# A prebuilt CRPropa beside the clone (CI: shared/ next to it) makes the engine: crpropa tests
# run; without it, or where its activate script cannot provide CRPropa's libraries, they skip.
CRPROPA_ACTIVATE ?= ../shared/crpropa/activate.sh

# tests/test_slurm.py starts a single-node Slurm cluster from Debian's packages: installed here
# when running as root with apt-get; without them the test skips (and says why).
SLURM_PACKAGES := slurmctld slurmd slurmdbd slurm-client munge mariadb-server

slurm-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v slurmdbd >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $(SLURM_PACKAGES) >/dev/null) \
	  || echo "could not install $(SLURM_PACKAGES): tests/test_slurm.py skips"; fi

# The suite in parallel, one worker per core (at most 4): a test module (and its module-scoped
# fixtures, e.g. the Slurm cluster) stays on one worker.
PYTEST_PARALLEL = --numprocesses=auto --maxprocesses=4 --dist=loadscope

# headless Chromium for the report's browser test (tests/browser.py; it skips without one)
browser-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v chromium-headless-shell >/dev/null \
	  && ! command -v chromium >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends chromium-headless-shell >/dev/null) \
	  || echo "could not install chromium-headless-shell: the report's browser test skips"; fi

test: lint slurm-packages browser-packages
	bash -c 'if [ -f "$(CRPROPA_ACTIVATE)" ]; then source "$(CRPROPA_ACTIVATE)" || echo "CRPropa not usable here: its tests skip"; fi; exec "$(BIN)/pytest" $(PYTEST_PARALLEL) --durations=20'

dry-run-production: $(VENV)/.installed
	$(BIN)/snakemake -n --profile profiles/condor --configfile config/production.yaml
