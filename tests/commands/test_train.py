"""End to end: the CLI trains, logs a complete MLflow run, and tells the truth when it fails."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from backprop_lab.pipeline import stages
from backprop_lab.pipeline.compose import to_config
from pipelines.job import train_job
from tests.conftest import ROOT, run_cli

BOSTON = ROOT / "data" / "boston_house_prices.csv"
ARTIFACTS = {"config.yaml", ".hydra", "model.npz", "scaler.npz", "learning_curve.png",
             "predicted_vs_actual.png", "predictions_test.csv", "environment.json",
             "scores.csv", "gradient_flow.png"}


def only_run(uri: str, experiment: str = "backprop-lab"):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return client, runs[0]


@pytest.mark.slow
def test_tutorial_one_layer_logs_a_complete_run(store_uri: str, tmp_path: Path) -> None:
    out = run_cli("pipelines.train", "experiment=tutorial_one_layer",
                  f"tracking.uri={store_uri}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "predicted vs actual" in out.stdout and "MLflow run" in out.stdout
    client, run = only_run(store_uri)
    assert run.info.status == "FINISHED"
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["train.lr"] == "8e-07" and params["hidden"] == "[]"
    assert params["model.init"] == "uniform" and params["normalize.features"] == "none"
    assert params["depth"] == "0"
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert [m.step for m in history] == list(range(200))
    for split in ("train", "test"):
        for name in ("cost", "mse", "rmse", "mae", "r2"):
            assert np.isfinite(metrics[f"{split}_{name}"])
    assert metrics["test_rmse"] == pytest.approx(np.sqrt(metrics["test_mse"]))
    # gradient flow every diag.every=10 epochs, per layer
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "diag.grad_norm.l0")]
    assert steps == list(range(0, 200, 10)) and "diag.update_ratio.l0" in metrics
    assert tags["mlflow.note.content"].startswith("**FINISHED**: test RMSE")
    assert tags["seed"] == "0" and tags["hydra_overrides"].startswith("experiment=")
    assert len(tags["data_fingerprint"]) == 64 and tags["git_commit"]
    assert {"git_dirty", "blas", "platform", "version.numpy"} <= set(tags)
    logged = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert logged >= ARTIFACTS
    # Nothing of the store lands where the command ran (Hydra's output folder is all there is).
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_default_run_reaches_r2_and_its_pyfunc_model_matches(
    store_uri: str, tmp_path: Path, compose_config, monkeypatch
) -> None:
    out = run_cli("pipelines.train", f"tracking.uri={store_uri}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    client, run = only_run(store_uri)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test_r2"] >= 0.75
    assert int(run.data.metrics["epochs_run"]) < 1000  # early stopping ended it
    # The same config in-process gives the same network, and the logged model agrees with it.
    result = stages.run(to_config(compose_config()))
    raw = pd.read_csv(BOSTON, skiprows=1)  # a user's frame: CHAS, RAD, TAX read as int64
    features = raw.drop(columns=["MEDV"])
    monkeypatch.chdir(tmp_path)  # the model loads from any directory
    mlflow.set_tracking_uri(store_uri)
    model = mlflow.pyfunc.load_model(run.data.tags["model_uri"])  # models:/<model_id>
    served = model.predict(features)
    x, y = result.prepared.x_scaler, result.prepared.y_scaler
    local = y.inverse_transform(result.network.predict(x.transform(features.to_numpy(float))))
    np.testing.assert_allclose(served["MEDV"].to_numpy(), local[:, 0], rtol=1e-12)
    assert result.evaluation.metrics["test_r2"] == run.data.metrics["test_r2"]


@pytest.mark.slow
def test_diverging_run_is_failed_and_tagged(store_uri: str, tmp_path: Path) -> None:
    out = run_cli("pipelines.train", "train=gd", "train.lr=10", "train.epochs=50",
                  f"tracking.uri={store_uri}", cwd=tmp_path)
    assert out.returncode == 1
    assert "diverged" in out.stdout.lower() + out.stderr.lower()
    assert "Traceback" not in out.stderr
    _, run = only_run(store_uri)
    assert run.info.status == "FAILED"
    assert run.data.tags["diverged"] == "true"
    assert int(run.data.tags["diverged_epoch"]) < 50
    assert np.isfinite(float(run.data.tags["last_finite_cost"]))
    assert "smaller `train.lr`" in run.data.tags["mlflow.note.content"]


@pytest.mark.slow
def test_bad_config_value_exits_before_any_run(store_uri: str, tmp_path: Path) -> None:
    out = run_cli("pipelines.train", "train.lr=-1", f"tracking.uri={store_uri}", cwd=tmp_path)
    assert out.returncode == 2
    assert "train.lr" in out.stderr and "> 0" in out.stderr
    client = MlflowClient(store_uri)
    assert client.get_experiment_by_name("backprop-lab") is None or not client.search_runs(
        [client.get_experiment_by_name("backprop-lab").experiment_id])


def test_interrupted_run_is_killed(store_uri: str, compose_config, monkeypatch) -> None:
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stages, "complete", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train_job(compose_config([f"tracking.uri={store_uri}", "tracking.log_model=false"]))
    _, run = only_run(store_uri)
    assert run.info.status == "KILLED" and run.data.tags["interrupted"] == "true"


@pytest.mark.parametrize("overrides", [["model.ensemble=3"],
                                       ["model.ensemble=2", "eval.cv_folds=3"]])
def test_a_run_on_two_cores_records_what_one_core_records(overrides: list[str],
                                                          tmp_path: Path) -> None:
    """train.n_jobs=2 cuts the job's stack in two forked workers: every metric, every curve
    point and every weight the same as with train.n_jobs=1 (and null, every core here)."""
    import backprop_lab

    results = {}
    for n_jobs in ("1", "2", "null"):
        uri = f"sqlite:///{tmp_path / f'{n_jobs}.db'}"
        results[n_jobs] = backprop_lab.run([*overrides, "train.epochs=40", "train.patience=5",
                                            f"train.n_jobs={n_jobs}", "tracking.log_model=false",
                                            f"tracking.uri={uri}"])
    one = results["1"]
    client = MlflowClient(f"sqlite:///{tmp_path / '1.db'}")
    curve = [(m.step, m.value) for m in client.get_metric_history(one.run_id, "train_loss")]
    for n_jobs in ("2", "null"):
        other = results[n_jobs]
        assert other.metrics == one.metrics
        for a, b in zip(getattr(other.network, "members", []),  # CV: the cells' networks
                        getattr(one.network, "members", [])):  # are not returned
            for p, q in zip(a.parameters, b.parameters):
                np.testing.assert_array_equal(p, q)
        theirs = MlflowClient(f"sqlite:///{tmp_path / f'{n_jobs}.db'}")
        assert [(m.step, m.value) for m in theirs.get_metric_history(
            other.run_id, "train_loss")] == curve
        assert theirs.get_run(other.run_id).data.params["train.n_jobs"] == n_jobs.replace(
            "null", "None")
