"""The Model Registry (issue 24, part 3): `tracking.register=NAME` registers a run's logged
model; a sweep registers its best job's and moves alias `champion` only when the new best is
better; bad input is one `error:` line (exit 2 before training, 1 after, the run kept). A real
sqlite store; the registry that fails after training is the same database opened read-only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import backprop_lab
from backprop_lab.errors import ConfigError
from backprop_lab.paths import BOSTON_CSV
from tests.commands.test_errors import assert_one_error_line
from tests.conftest import run_cli

QUICK = ["diag.every=0", "train.epochs=3", "tracking.experiment=reg"]


def sweep(store_uri: str, tmp_path: Path, lrs: str, *extra: str) -> Any:
    folder = tmp_path / lrs.replace(",", "_")  # a ',' in an override would sweep over it
    return run_cli("pipelines.train", "-m", *QUICK, f"train.lr={lrs}", "tracking.register=net",
                   f"tracking.uri={store_uri}", f"hydra.sweep.dir={folder}", *extra, cwd=tmp_path)


def test_a_run_registers_its_logged_model(store_uri: str) -> None:
    result = backprop_lab.run([*QUICK, f"tracking.uri={store_uri}", "tracking.register=net"])
    client = MlflowClient(store_uri)
    [version] = client.search_model_versions("name = 'net'")
    assert version.run_id == result.run_id and str(version.version) == "1"
    assert version.source == client.get_run(result.run_id).data.tags["model_uri"]
    assert f"run {result.run_id}" in version.description and "test_rmse" in version.description
    mlflow.set_tracking_uri(store_uri)
    frame = pd.read_csv(BOSTON_CSV, skiprows=1).drop(columns="MEDV").head(3)
    assert len(mlflow.pyfunc.load_model("models:/net/1").predict(frame)) == 3


def test_register_needs_a_logged_model_and_a_name_mlflow_takes(store_uri: str) -> None:
    for bad in (["tracking.register=a/b"], ["tracking.register=a:b"],
                ["tracking.register=net", "tracking.log_model=false"],
                ["tracking.register=net", "eval.cv_folds=3"]):
        with pytest.raises(ConfigError, match="tracking.register"):
            backprop_lab.run([*QUICK, f"tracking.uri={store_uri}", *bad])
    assert MlflowClient(store_uri).search_runs(["0"]) == []


@pytest.mark.slow
def test_bad_registry_input_is_one_error_line(store_uri: str, tmp_path: Path) -> None:
    out = run_cli("pipelines.train", *QUICK, "tracking.register=a/b", f"tracking.uri={store_uri}",
                  cwd=tmp_path)
    assert_one_error_line(out, 2, "tracking.register", "a/b")
    os.environ["MLFLOW_REGISTRY_URI"] = "nosuch://registry"  # a store without a registry
    try:
        out = run_cli("pipelines.train", *QUICK, "tracking.register=net",
                      f"tracking.uri={store_uri}", cwd=tmp_path)
        assert_one_error_line(out, 2, "tracking.register=net", "no usable model registry")
        out = sweep(store_uri, tmp_path, "0.01,0.1")  # refused before any job trains
        assert_one_error_line(out, 2, "tracking.register=net", "no usable model registry")
        assert MlflowClient(store_uri).get_experiment_by_name("reg") is not None
        assert MlflowClient(store_uri).search_runs(
            [MlflowClient(store_uri).get_experiment_by_name("reg").experiment_id]) == []
        # a registry that fails only when written to (read-only): after training, exit 1
        db = store_uri.removeprefix("sqlite:///")
        os.environ["MLFLOW_REGISTRY_URI"] = f"sqlite:///file:{db}?mode=ro&uri=true"
        out = run_cli("pipelines.train", *QUICK, "tracking.register=net",
                      f"tracking.uri={store_uri}", cwd=tmp_path)
        assert_one_error_line(out, 1, "tracking.register=net", "the run is kept")
    finally:
        del os.environ["MLFLOW_REGISTRY_URI"]
    client = MlflowClient(store_uri)
    [run] = client.search_runs([client.get_experiment_by_name("reg").experiment_id])
    assert run.info.status == "FINISHED" and client.search_registered_models() == []


@pytest.mark.slow
def test_a_sweep_registers_its_best_job_and_moves_champion_only_when_better(
        store_uri: str, tmp_path: Path) -> None:
    client = MlflowClient(store_uri)
    out = sweep(store_uri, tmp_path, "0.0001,0.0003")  # 3 epochs: barely trained
    assert out.returncode == 0, out.stderr[-3000:]
    first = client.get_model_version_by_alias("net", "champion")
    experiment = client.get_run(first.run_id).info.experiment_id
    [parent] = [r for r in client.search_runs([experiment])
                if r.data.tags.get("sweep_role") == "parent"]
    assert parent.data.tags["best_run_id"] == first.run_id
    sweep_id = parent.data.tags["sweep_id"]
    assert f"sweep {sweep_id}" in first.description and "tier " in first.description
    assert first.tags["sweep_id"] == sweep_id and first.tags["metric"] == "val_mse"
    assert parent.data.tags["champion_version"] == str(first.version) == "1"
    old = client.get_run(first.run_id).data.metrics["val_mse"]
    out = sweep(store_uri, tmp_path, "0.01,0.03")  # better: the alias moves
    assert out.returncode == 0, out.stderr[-3000:]
    second = client.get_model_version_by_alias("net", "champion")
    assert str(second.version) == "2"
    assert client.get_run(second.run_id).data.metrics["val_mse"] < old
    assert "champion -> version 2" in out.stdout
    out = sweep(store_uri, tmp_path, "0.00001,0.00002")  # worse: registered, the alias stays
    assert out.returncode == 0, out.stderr[-3000:]
    assert str(client.get_model_version_by_alias("net", "champion").version) == "2"
    assert len(client.search_model_versions("name = 'net'")) == 3
    assert "champion stays on version 2" in out.stdout
