# backprop-lab: `make run` trains the default network, `make test` runs lint, types and tests.
# Both bootstrap .venv on a fresh machine (Python 3.11+ and make are all they need).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ARGS   ?=
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench ui server clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## train the default network on Boston housing and log it to mlruns/
	MLFLOW_DISABLE_TELEMETRY=true $(PY) -m pipelines.train $(ARGS)

lint: $(STAMP)  ## ruff and mypy
	$(VENV)/bin/ruff check src pipelines tests bench server
	$(VENV)/bin/mypy

test: lint  ## lint, type-check, then the whole test suite
	MLFLOW_DISABLE_TELEMETRY=true $(PY) -m pytest $(ARGS)

bench: $(STAMP)  ## peer benchmarks (numbers, not pass/fail); see bench/README.md
	$(PY) bench/peers.py

ui: $(STAMP)  ## browse the runs: http://127.0.0.1:5000
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --port 5000 \
		--backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db

server: $(STAMP)  ## shared MLflow server, PostgreSQL + logins: MLFLOW_AUTH_ADMIN_PASSWORD=... make server
	MLFLOW_DISABLE_TELEMETRY=true $(PY) server/mlflow_server.py $(ARGS)

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache .mypy_cache .ruff_cache
