"""Sweeps: one MLflow parent run per multirun, its jobs as children in one experiment, with either
launcher; divergence does not stop a sweep; presets compose; cross-validated metrics."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from backprop_lab.experiments.run.job import run_name
from backprop_lab.pipeline.compose import to_config
from pipelines.callbacks import swept_keys
from pipelines.job import train_job
from tests.conftest import ROOT, run_cli

# 2 learning rates x 2 depths, 5 epochs of plain SGD, no pyfunc model: a few seconds per job
TINY = ["model.depth=1,2", "model.width=16", "train.optimizer=sgd", "train.epochs=5",
        "tracking.log_model=false"]
DIVERGING = ["train.lr=0.01,10", *TINY]  # SGD at lr 10 overflows in its first epoch
STABLE = ["train.lr=0.001,0.01", *TINY]


def run_sweep(tmp: Path, template_db: Path, *args: str) -> dict[str, Any]:
    """Run `python -m pipelines.train -m <args>` on a fresh store; returns what the tests need."""
    db = tmp / "store" / "mlflow.db"
    db.parent.mkdir(parents=True)
    shutil.copy(template_db, db)
    uri, sweep_dir = f"sqlite:///{db}", tmp / "sweep"
    out = run_cli("pipelines.train", "-m", *args, f"tracking.uri={uri}",
                  f"hydra.sweep.dir={sweep_dir}", cwd=tmp)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return {"uri": uri, "sweep_dir": sweep_dir, "stdout": out.stdout, "stderr": out.stderr}


@pytest.fixture(scope="module")
def joblib_sweep(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_sweep(tmp_path_factory.mktemp("joblib"), template_db, *STABLE,
                     "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")


@pytest.fixture(scope="module")
def diverging_sweep(request: pytest.FixtureRequest, template_db: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The basic launcher (one process) on a grid with a diverging learning rate; run once per
    session, shared with tests/test_compare.py."""
    cached = getattr(request.session, "_backprop_diverging_sweep", None)
    if cached is None:
        cached = run_sweep(tmp_path_factory.mktemp("basic"), template_db, *DIVERGING)
        request.session._backprop_diverging_sweep = cached  # type: ignore[attr-defined]
    return cached


def sweep_runs(uri: str) -> tuple[MlflowClient, Any, list[Any]]:
    """(client, the parent run, the children) after checking the grouping every sweep needs:
    exactly one parent and four children, all in one experiment, none in Default."""
    client = MlflowClient(uri)
    experiments = {e.name: e.experiment_id for e in client.search_experiments()}
    assert not client.search_runs([experiments["Default"]])
    runs = client.search_runs([experiments["backprop-lab"]])
    parents = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    assert len(parents) == 1 and len(runs) == 5
    parent = parents[0]
    sweep_id = parent.data.tags["sweep_id"]
    children = [r for r in runs if r is not parent]
    for child in children:
        tags, params, metrics = child.data.tags, child.data.params, child.data.metrics
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["sweep_id"] == sweep_id
        assert {"train.lr", "train.log10_lr", "depth", "width", "hidden"} <= set(params)
        name_lr, name_depth = child.info.run_name.removeprefix("lr=").split(",depth=")
        assert float(name_lr) == float(params["train.lr"])
        depth = params["depth"]
        assert name_depth == depth
        assert params["hidden"] == str([16] * int(depth))
        if child.info.status == "FINISHED":  # a diverged job logs no scores (rank nowhere)
            assert {"val_mse", "val_r2", "test_r2", "best_val_loss", "epochs_run"} <= set(metrics)
        else:
            assert "val_mse" not in metrics and "epochs_run" in metrics
        assert {"seconds_training", "seconds_mlflow"} <= set(tags)
    grid = {(r.data.params["train.lr"], r.data.params["depth"]) for r in children}
    assert len(grid) == 4
    assert parent.info.status == "FINISHED" and parent.info.end_time is not None
    assert set(parent.data.tags["swept"].split(",")) == {"train.lr", "model.depth"}
    return client, parent, children


def test_joblib_sweep_is_one_parent_with_four_children(joblib_sweep: dict[str, Any]) -> None:
    _, parent, children = sweep_runs(joblib_sweep["uri"])
    assert parent.data.tags["launcher"] == "JoblibLauncher"
    assert all(c.info.status == "FINISHED" for c in children)
    assert parent.data.tags["summary"].endswith("4 jobs: 4 finished")
    assert {float(c.data.params["train.lr"]) for c in children} == {0.001, 0.01}


def test_basic_sweep_with_a_diverging_lr_finishes(diverging_sweep: dict[str, Any]) -> None:
    _, parent, children = sweep_runs(diverging_sweep["uri"])
    assert parent.data.tags["launcher"] == "BasicLauncher"
    by_lr = {lr: [c for c in children if float(c.data.params["train.lr"]) == lr]
             for lr in (0.01, 10)}
    assert all(c.info.status == "FINISHED" for c in by_lr[0.01])
    for child in by_lr[10]:
        assert child.info.status == "FAILED" and child.data.tags["diverged"] == "true"
    tags = parent.data.tags
    assert tags["n_finished"] == "2" and tags["n_diverged"] == "2" and tags["n_failed"] == "0"
    assert set(tags["diverged_runs"].split("; ")) == {"lr=10,depth=1", "lr=10,depth=2"}
    assert tags["best_run_name"].startswith("lr=0.01,")
    progress = [ln for ln in diverging_sweep["stderr"].splitlines() if ln.startswith("progress:")]
    assert progress[-1].startswith("progress: jobs 4/4 (0 running)")  # as the sweep went
    assert "2 finished, 2 diverged, 0 failed" in progress[-1]
    out = diverging_sweep["stdout"]  # one table at the end, the diverged jobs in it
    assert "\nMLflow run " not in out  # no job prints its own report in a sweep
    assert "4 jobs: 2 diverged, 2 finished" in out
    assert sum(line.split()[1].startswith("lr=10,depth=") and line.split()[2] == "diverged"
               for line in out.splitlines() if line[:1].isdigit()) == 2
    assert out.count("parent run: http://") == 1 and out.count("best run (") == 1


def test_sweep_json_tells_jobs_their_parent(diverging_sweep: dict[str, Any]) -> None:
    import json

    marker = json.loads((diverging_sweep["sweep_dir"] / "sweep.json").read_text())
    client, parent, _ = sweep_runs(diverging_sweep["uri"])
    assert marker["parent_run_id"] == parent.info.run_id
    assert marker["experiment_id"] == parent.info.experiment_id
    assert marker["sweep_id"] == parent.data.tags["sweep_id"]
    logged = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep.json", "multirun.yaml"} <= logged


def test_swept_keys_come_from_command_line_sweeps_and_preset_params() -> None:
    cfg = OmegaConf.create({"hydra": {
        "overrides": {"task": ["train.lr=0.1,1", "model.width=16", "+seed=range(3)",
                               "sweep=lr_depth"]},
        "sweeper": {"params": {"model.depth": "0,1,2,3"}}}})
    assert swept_keys(cfg) == ["model.depth", "train.lr", "seed"]


def test_run_names_show_only_the_swept_values(compose_config) -> None:
    config = to_config(compose_config(["model.depth=2", "model.width=16"]))
    overrides = ["train.lr=0.01", "model.depth=2", "model.width=16", "tracking.uri=sqlite:///x.db",
                 "sweep=lr_depth"]
    assert run_name(config, overrides, ["train.lr", "model.depth"]) == "lr=0.01,depth=2"
    assert run_name(config, overrides[:3]) == "lr=0.01,depth=2,width=16"
    searched = ["train.lr=0.0056279320474151686", "model.depth=3"]  # a search's trial
    assert run_name(config, searched, ["train.lr", "model.depth"]) == "lr=0.005628,depth=3"


@pytest.mark.parametrize("preset", sorted(p.stem for p in (ROOT / "conf" / "sweep").glob("*.yaml")))
def test_sweep_presets_compose(compose_config, preset: str) -> None:
    from hydra import compose

    cfg = compose(config_name="config", overrides=[f"sweep={preset}"], return_hydra_config=True)
    assert to_config(compose_config([f"sweep={preset}", "model.depth=1"]))  # a job's config
    params = cfg.hydra.sweeper.params
    assert params, "a sweep preset names what it sweeps in hydra.sweeper.params"
    if preset in ("lr_depth", "optuna"):
        assert set(params) == {"train.lr", "model.depth"} and cfg.model.width == 16
        assert cfg.tracking.log_model is False
    if preset == "lr_depth":
        assert params["train.lr"] == "1e-4,1e-3,1e-2,1e-1,1" and params["model.depth"] == "0,1,2,3"
        assert cfg.hydra.sweeper._target_.endswith("RacingSweeper")  # eval.race=true works
    elif preset == "optuna":
        assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
        assert cfg.hydra.sweeper.storage is None and cfg.hydra.sweeper.direction == "minimize"
        assert params["train.lr"].startswith("tag(log")
    assert cfg.hydra.callbacks.sweep_tracking._target_ == "pipelines.callbacks.SweepTracking"


def test_callbacks_module_does_not_import_mlflow() -> None:
    code = "import sys, pipelines.callbacks; assert 'mlflow' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_cross_validation_logs_folds_and_their_mean(store_uri: str, compose_config) -> None:
    cfg = compose_config(["eval.cv_folds=3", "train.epochs=5", "model.hidden=[8]",
                          f"tracking.uri={store_uri}", "tracking.log_model=false"])
    outcome = train_job(cfg)
    run = MlflowClient(store_uri).get_run(outcome.run_id)
    metrics = run.data.metrics
    assert run.info.status == "FINISHED"
    for name in ("test_r2", "test_mse", "val_mse", "train_rmse"):
        folds = [metrics[f"fold{k}.{name}"] for k in range(3)]
        assert f"fold3.{name}" not in metrics
        assert metrics[f"cv_mean.{name}"] == pytest.approx(np.mean(folds))
        assert metrics[f"cv_std.{name}"] == pytest.approx(np.std(folds))
        assert metrics[name] == pytest.approx(np.mean(folds))
    assert len({metrics[f"fold{k}.test_r2"] for k in range(3)}) == 3  # three different splits


@pytest.mark.slow
def test_optuna_preset_runs_trials_as_children_trained_like_lr_depth(
    template_db: Path, tmp_path: Path
) -> None:
    sweep = run_sweep(tmp_path, template_db, "sweep=optuna", "hydra.sweeper.n_trials=2",
                      "hydra.sweeper.n_jobs=1", "train.epochs=5", "model.ensemble=2")
    client = MlflowClient(sweep["uri"])
    runs = client.search_runs([client.get_experiment_by_name("backprop-lab").experiment_id])
    parent = next(r for r in runs if r.data.tags.get("sweep_role") == "parent")
    children = [r for r in runs if r is not parent]
    assert len(children) == 2 and parent.data.tags["launcher"] == "BasicLauncher"
    for child in children:
        params = child.data.params
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert 1e-4 <= float(params["train.lr"]) <= 1 and params["depth"] in "0123"
        assert (params["model.activation"], params["model.ensemble"]) == ("tanh", "2")
        history = client.get_metric_history(child.info.run_id, "train_loss")
        assert [m.step for m in history] == [0, 1, 2, 3, 4]  # member 0's curve
        assert "learning_curve.png" in {a.path for a in client.list_artifacts(child.info.run_id)}
