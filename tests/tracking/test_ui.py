"""`make ui`: the URL of the experiment's runs table in the model-training view, printed before
the UI is served; a store without runs is refused with what to do first."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from backprop_lab.tracking import ui
from tests.conftest import ROOT, run_cli


def test_the_urls_open_the_model_training_view() -> None:
    base = ui.base_url("127.0.0.1", 5001)
    assert ui.runs_url(base, "3") == \
        "http://127.0.0.1:5001/#/experiments/3/runs?workflowType=machine_learning"
    assert ui.run_link("3", "abc") == "#/experiments/3/runs/abc?workflowType=machine_learning"
    assert ui.run_url(base, "3", "abc", "artifacts/compare/report.html") == (
        "http://127.0.0.1:5001/#/experiments/3/runs/abc/artifacts/compare/report.html"
        "?workflowType=machine_learning")


def test_the_experiment_to_open_is_the_one_with_runs(store_uri: str) -> None:
    client = MlflowClient(store_uri)
    with pytest.raises(ui.NoRuns, match="no runs yet in .*make run"):
        ui.experiment_to_open(client, store_uri, None)
    other = client.create_experiment("other")
    client.create_run(other)
    with pytest.raises(ui.NoRuns, match="no experiment 'backprop-lab'.*with runs: other"):
        ui.experiment_to_open(client, store_uri, "backprop-lab")
    ours = client.create_experiment("backprop-lab")
    with pytest.raises(ui.NoRuns, match="no runs yet in experiment 'backprop-lab'"):
        ui.experiment_to_open(client, store_uri, "backprop-lab")
    client.create_run(ours)
    assert ui.experiment_to_open(client, store_uri, "backprop-lab") == ours
    assert ui.experiment_to_open(client, store_uri, None) == ours  # the latest run's


def test_ui_without_a_store_says_to_train_first(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}"
    out = run_cli("pipelines.ui", "port=5999", f"tracking.uri={uri}")
    assert out.returncode == 2
    assert out.stderr.strip() == (f"error: no runs yet: there is no store at {uri}; train one "
                                  "first: `make run` (or python -m pipelines.train)")
    assert not (tmp_path / "none").exists()  # nothing created


def test_make_ui_runs_the_command_on_the_port_given() -> None:
    # --no-print-directory: under `make test` this make is a sub-make, which would print
    # "Entering/Leaving directory" around the recipe
    out = subprocess.run(["make", "-n", "--no-print-directory", "ui", "PORT=5123"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1].endswith("-m pipelines.ui port=5123")
