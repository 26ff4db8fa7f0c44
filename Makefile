# interlearn — set-up and commands. `make run` and `make test` work on a fresh machine.
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

BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.peers-installed

.PHONY: run test bench setup clean format

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/interlearn tour --out runs/tour

LINTED := src tests benchmarks examples

# lint (ruff), format check (ruff format), types (mypy strict on src/interlearn), then the tests
test: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy
	$(BIN)/python -m pytest

# rewrite the code to the house format and fix what ruff can fix safely
format: $(STAMP)
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

# Peer tools measured side by side but not dependencies of interlearn: pfl-research lives in
# its own venv (its pins conflict with ours); Flower and Ray come with interlearn[federated].
$(BENCH_STAMP):
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet "$(TORCH_SPEC)"
	$(BENCH_VENV)/bin/pip install --quiet $(CONSTRAINTS) "pfl[pytorch]==0.6.*"
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)
	INTERLEARN_DATA=$(DATA) bash benchmarks/run_all.sh

clean:
	rm -rf $(VENV) $(BENCH_VENV) runs .pytest_cache
