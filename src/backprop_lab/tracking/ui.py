"""The MLflow UI on our store: the URL that opens an experiment's runs table, and the command
that serves it.

MLflow 3.17 opens an experiment in its GenAI view (traces, "no data"); the runs table is the
"Model training" view, which `?workflowType=machine_learning` selects directly (the UI then
remembers the choice). A run's page takes the same parameter (opened
directly it too would fall back to the GenAI view). Links inside a run's description
(Markdown) are relative to the UI: `#/experiments/<id>/runs/<run_id>?workflowType=...`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from backprop_lab.errors import NotFound

RUNS_VIEW = "workflowType=machine_learning"


class NoRuns(NotFound):
    """The store, or the experiment asked for, holds no runs yet."""


def base_url(host: str = "127.0.0.1", port: int = 5000) -> str:
    return f"http://{host}:{port}"


def run_link(experiment_id: str, run_id: str, page: str = "") -> str:
    """A run's page (`page`: e.g. "artifacts/compare/report.html"), relative to the UI (what a
    Markdown description links to), in the model-training view."""
    tail = f"/{page.strip('/')}" if page else ""
    return f"#/experiments/{experiment_id}/runs/{run_id}{tail}?{RUNS_VIEW}"


def runs_url(base: str, experiment_id: str) -> str:
    """The experiment's runs table in the model-training view."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{RUNS_VIEW}"


def run_url(base: str, experiment_id: str, run_id: str, page: str = "") -> str:
    return f"{base.rstrip('/')}/{run_link(experiment_id, run_id, page)}"


def experiment_to_open(client: Any, uri: str, name: str | None) -> str:
    """The id of experiment `name` when it holds runs; with no name, of the experiment that
    holds the latest run. Raises `NoRuns` naming the store and what to do first."""
    first = "train one first: `make run` (or python -m pipelines.train)"
    experiments = client.search_experiments()
    if name:
        found = next((e for e in experiments if e.name == name), None)
        if found is None:
            others = [e.name for e in experiments if client.search_runs([e.experiment_id],
                                                                       max_results=1)]
            hint = f"; experiments with runs: {', '.join(others)}" if others else f"; {first}"
            raise NoRuns(f"no experiment {name!r} in {uri} yet{hint}")
        if not client.search_runs([found.experiment_id], max_results=1):
            raise NoRuns(f"no runs yet in experiment {name!r} of {uri}: {first}")
        return str(found.experiment_id)
    ids = [e.experiment_id for e in experiments]
    latest = client.search_runs(ids, max_results=1, order_by=["attributes.start_time DESC"]
                                ) if ids else []
    if not latest:
        raise NoRuns(f"no runs yet in {uri}: {first}")
    return str(latest[0].info.experiment_id)


def server_command(uri: str, host: str = "127.0.0.1", port: int = 5000,
                   workers: int = 1) -> list[str]:
    """`mlflow ui` on the store `uri`, with the interpreter running this code."""
    return [sys.executable, "-m", "mlflow", "ui", "--host", host, "--port", str(port),
            "--workers", str(workers), "--backend-store-uri", uri]


def store_exists(uri: str) -> bool:
    """False only for a sqlite file that is not there (opening it would create it)."""
    return not uri.startswith("sqlite:///") or Path(uri[len("sqlite:///"):]).is_file()
