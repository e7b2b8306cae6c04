# backprop-lab: `make run` trains the default network, `make test` runs lint, types and tests.
# Both bootstrap .venv on a fresh machine (Python 3.11+ and make are all they need): `run`
# installs only what a training run needs, `test` adds the dev extra (linters, notebook runner,
# Ray, SLURM launcher, PostgreSQL driver).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ARGS   ?=
PORT   ?= 5000
DATA   ?=
RUNTIME := $(VENV)/.installed-runtime
DEV     := $(VENV)/.installed-dev

.PHONY: run test lint bench ui server clean

# uv (from PyPI, into the venv) installs the same versions pip resolves, about 10x faster:
# a fresh `make run` took 103 s with pip, ~25 s with uv (bench/README.md, "Set-up").
INSTALL := $(PY) -m uv pip install --quiet --python $(PY)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv

# hydra-optuna-sweeper (dropped for our own Optuna 5 sweeper) registers hydra/sweeper=optuna
# too and breaks sweep=optuna where an older venv still holds it: uninstall it on upgrade
UNINSTALL_OLD := $(PY) -m uv pip uninstall --quiet --python $(PY) hydra-optuna-sweeper 2>/dev/null || true

$(RUNTIME): pyproject.toml | $(VENV)/bin/python
	$(UNINSTALL_OLD)
	$(INSTALL) -e .
	touch $(RUNTIME)

$(DEV): pyproject.toml | $(VENV)/bin/python
	$(UNINSTALL_OLD)
	$(INSTALL) -e '.[dev]'
	touch $(RUNTIME) $(DEV)

run: $(RUNTIME)  ## train the default network on Boston housing and log it to mlruns/
	MLFLOW_DISABLE_TELEMETRY=true $(PY) -m pipelines.train $(ARGS)

lint: $(DEV)  ## ruff and mypy (the layering rule is a test: tests/test_layers.py)
	$(VENV)/bin/ruff check src pipelines tests bench server
	$(VENV)/bin/mypy

test: lint  ## lint, type-check, then the whole test suite
	MLFLOW_DISABLE_TELEMETRY=true $(PY) -m pytest $(ARGS)

bench: $(RUNTIME)  ## peer benchmarks (numbers, not pass/fail); see bench/README.md
	$(PY) bench/peers.py

# the runs table of the default experiment, in the model-training view: it prints
# http://127.0.0.1:$(PORT)/#/experiments/<id>/runs?workflowType=machine_learning
ui: $(RUNTIME)  ## browse the runs: make ui [PORT=5000] [ARGS="tracking.experiment=..."]
	MLFLOW_DISABLE_TELEMETRY=true $(PY) -m pipelines.ui port=$(PORT) $(ARGS)

# without DATA a throwaway PostgreSQL (the runs vanish at stop); DATA=dir keeps runs and artifacts
server: $(DEV)  ## shared MLflow server, PostgreSQL + logins: MLFLOW_AUTH_ADMIN_PASSWORD=... make server [DATA=dir]
	MLFLOW_DISABLE_TELEMETRY=true $(PY) server/mlflow_server.py $(if $(DATA),--data '$(DATA)') $(ARGS)

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache .mypy_cache .ruff_cache
