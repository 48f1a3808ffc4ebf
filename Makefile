# tgkit: two commands on a fresh machine.
#   make figures   set up .venv, then batch-reproduce the figures (PROFILE=smoke|quick|fast|full, DATASET=...)
#   make test      set up .venv, then lint and run the tests (make test-fast: the unit tests only)
#   make lab       set up .venv and JupyterLab, then open the notebooks
PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
SHARED_DATA ?= ../shared/data
# empty: the profile's own dataset (digits for smoke, cifar10 for quick and full)
DATASET     ?=
# full on a machine with a CUDA GPU, quick otherwise (evaluated when used, after .venv exists)
PROFILE     ?= $(shell $(PY) -c "import torch; print('full' if torch.cuda.is_available() else 'quick')" 2>/dev/null || echo quick)

.PHONY: figures test test-fast lint format data lab bench wheelhouse gpu-bundle gpu-dry-run clean-runs

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# Extract the archives of $(SHARED_DATA) into data/ once (the data README tells how to get the official ones).
data:
	@if [ -f $(SHARED_DATA)/cifar10-jpeg.tar.gz ] && [ ! -d data/cifar10 ]; then \
		echo "extracting $(SHARED_DATA)/cifar10-jpeg.tar.gz into data/"; tar xzf $(SHARED_DATA)/cifar10-jpeg.tar.gz -C data; fi
	@if [ -f $(SHARED_DATA)/tiny-imagenet-200-32px.tar.gz ] && [ ! -d data/tiny-imagenet-200 ]; then \
		echo "extracting $(SHARED_DATA)/tiny-imagenet-200-32px.tar.gz into data/"; tar xzf $(SHARED_DATA)/tiny-imagenet-200-32px.tar.gz -C data; fi

# Every notebook, headless, in name order: figures, tables, manifests and executed copies in
# figures/<profile>/<dataset>/ (see tgkit/study/batch.py).
figures: $(VENV)/.installed data
	$(PY) -m tgkit batch --profile $(PROFILE) $(if $(DATASET),--dataset $(DATASET))

# JupyterLab (pinned in requirements.txt) on notebooks/. It first makes git strip the outputs of
# notebooks (nbstripout as a git filter, .gitattributes): run cells freely, git sees them clean. As root
# (containers, cloud GPU nodes) JupyterLab needs --allow-root.
lab: $(VENV)/.installed
	bash scripts/strip_notebook_outputs.sh $(PY)
	$(PY) -m jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

test: $(VENV)/.installed data lint
	$(PY) -m pytest

# The unit tests only (no training runs, no notebooks): under two minutes, for the edit-test loop.
test-fast: $(VENV)/.installed lint
	$(PY) -m pytest -m "not slow" tests

# ruff (configured in pyproject.toml): lint, and check the formatting, of tgkit/, tests/ and the notebooks' code cells.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check tgkit tests notebooks
	$(VENV)/bin/ruff format --check tgkit tests notebooks

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix tgkit tests notebooks
	$(VENV)/bin/ruff format tgkit tests notebooks

# Training, retraining and scoring throughput on this machine's device (BENCH_ARGS: see --help).
bench: $(VENV)/.installed
	$(PY) -m tgkit.bench $(BENCH_ARGS)

# Wheels for an air-gapped GPU node: requirements.txt less EXCLUDE (torch torchvision), for the node's
# PYTHON_VERSION and PLATFORM; defaults and the other settings (TARGET_PYTHON) in scripts/wheelhouse.sh.
wheelhouse:
	bash scripts/wheelhouse.sh

# What scripts/gpu_run.sh needs on a GPU node without network: the notebook batch's wheels for the
# nodes' CPython 3.12 (less what the node has) and the data archives, in gpu-bundle/ (see the script).
gpu-bundle:
	bash scripts/gpu_bundle.sh

# scripts/gpu_run.sh end to end on this CPU, with a bundle for the node's Python and a node-like environment
# (the oldest numpy, pandas and matplotlib the kit supports), then once more to show it resumes; the node's
# versions: NODE_PYTHON=/path/to/python3.12 NODE_TORCH=2.11.0 NODE_TORCHVISION=0.26.0 make gpu-dry-run
gpu-dry-run:
	PROFILE=$(or $(filter preflight,$(PROFILE)),smoke) bash scripts/gpu_dry_run.sh

clean-runs:
	rm -rf data/runs
