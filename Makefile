# interlearn — set-up and commands. `make run` and `make test` work on a fresh machine.
#
# Every package is pinned by the lock, constraints.txt, which `make lock` regenerates with uv from
# pyproject's extras (all, dev). To upgrade: `make lock` (or edit a bound in pyproject first), then
# `make test`, and commit both files. `make test-latest` runs the same checks against the newest
# releases in a separate venv, so that drift shows up on purpose (docs/development.md).
#
# GPU users: `make run TORCH_SPEC="torch" CONSTRAINTS=` installs your platform's torch instead of
# the pinned CPU build (or install torch yourself into .venv before `make`).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
CONSTRAINTS ?= -c constraints.txt
EXTRAS ?= all,dev
BIN := $(VENV)/bin
STAMP := $(VENV)/.interlearn-installed
DATA ?= $(or $(INTERLEARN_DATA),../shared/data)
export OMP_NUM_THREADS ?= 1
export MPLBACKEND ?= Agg
export NO_MKDOCS_2_WARNING ?= 1

BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.peers-installed
LATEST_VENV ?= .venv-latest

# the resolver's target: the Python and platform that CI and `make run` use
LOCK_PYTHON ?= 3.11
LOCK_PLATFORM ?= x86_64-manylinux_2_28
# uv reads the CPU torch wheel from this folder (pip finds it through its own config); the lock
# pins that CPU build, so that no CUDA package enters it
WHEELS ?= /opt/wheels
LOCK_TORCH ?= torch==2.13.0+cpu

.PHONY: run test test-cluster test-latest lock docs docs-serve bench setup clean format

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/interlearn tour --out runs/tour

LINTED := src tests benchmarks examples docs

# lint (ruff), format check (ruff format), types (mypy strict on src/interlearn), the docs site
# (mkdocs --strict: a broken link or reference fails), then the tests
test: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy
	$(BIN)/mkdocs build --strict --quiet --site-dir build/site
	$(BIN)/python -m pytest

# the Ray engine on a real two-node cluster: `ray start --head` plus a second `ray start --address`
# on this machine (loopback, a fresh auth token), stopped by process group at the end; about a
# minute, so not part of `make test` (docs/federated/ray.md)
test-cluster: $(STAMP)
	INTERLEARN_TEST_CLUSTER=1 $(BIN)/python -m pytest tests/federated/test_ray_cluster.py

# the documentation site, built into build/site (`make docs-serve` previews it)
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir build/site

docs-serve: $(STAMP)
	$(BIN)/mkdocs serve

# the same checks against the newest releases of every dependency (no lock), in their own venv
test-latest:
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/pip install --quiet "$(TORCH_SPEC)"
	$(LATEST_VENV)/bin/pip install --quiet --upgrade -e ".[$(EXTRAS)]"
	mkdir -p build
	$(LATEST_VENV)/bin/pip freeze --exclude-editable > build/latest-freeze.txt || true
	$(LATEST_VENV)/bin/mkdocs build --strict --quiet --site-dir build/site-latest
	INTERLEARN_UNLOCKED=1 $(LATEST_VENV)/bin/python -m pytest

# regenerate the locks from pyproject (interlearn[all,dev]) and the peers' venv (pfl-research)
lock: $(STAMP)
	printf '%s\n' "$(LOCK_TORCH)" > build-torch-pin.txt
	$(BIN)/uv pip compile pyproject.toml --extra all --extra dev --quiet \
		--python-version $(LOCK_PYTHON) --python-platform $(LOCK_PLATFORM) \
		-c build-torch-pin.txt --find-links $(WHEELS) --no-emit-find-links \
		--custom-compile-command "make lock" -o constraints.txt
	$(BIN)/uv pip compile benchmarks/peers.in --quiet \
		--python-version $(LOCK_PYTHON) --python-platform $(LOCK_PLATFORM) \
		-c build-torch-pin.txt --find-links $(WHEELS) --no-emit-find-links \
		--custom-compile-command "make lock" -o benchmarks/peers.lock
	rm -f build-torch-pin.txt

# rewrite the code to the house format and fix what ruff can fix safely
format: $(STAMP)
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

# Peer tools measured side by side but not dependencies of interlearn: pfl-research lives in
# its own venv (its pins conflict with ours) with its own lock; Flower and Ray come with
# interlearn[federated].
$(BENCH_STAMP): benchmarks/peers.lock
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet "$(TORCH_SPEC)"
	$(BENCH_VENV)/bin/pip install --quiet -c benchmarks/peers.lock -r benchmarks/peers.in
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)
	INTERLEARN_DATA=$(DATA) bash benchmarks/run_all.sh

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(LATEST_VENV) runs build .pytest_cache
