"""What one training run records (issue 14): the architecture once and as trained, a log10 lr,
models that carry the final metrics under the run's name, best_val_loss only for kept weights,
diverged runs that show their blow-up and rank nowhere, a description, the UI's URL."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

import backprop_lab
from backprop_lab.experiments.reproduce.rerun import rerun
from backprop_lab.experiments.run import record
from backprop_lab.experiments.run.record import model_name
from backprop_lab.experiments.run.report import Story, describe
from backprop_lab.nn.training import History
from backprop_lab.pipeline.config import RerunCommand, TrackingConfig
from backprop_lab.plots.run_plots import learning_curve_figure

QUICK = ["tracking.log_model=false", "diag.every=0", "tracking.experiment=record"]
DESCRIPTION = "mlflow.note.content"


def train(store_uri: str, *overrides: str) -> tuple[Any, Any]:
    result = backprop_lab.run([*QUICK, f"tracking.uri={store_uri}", *overrides])
    return result, MlflowClient(store_uri).get_run(result.run_id)


def curve(store_uri: str, run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in MlflowClient(store_uri).get_metric_history(run_id, key)}


def test_params_name_the_architecture_once_as_it_trained(store_uri: str, tmp_path: Path,
                                                         capsys: Any) -> None:
    # the mlp preset says hidden [64, 64]; the depth/width shorthand trains [16, 16]
    result, run = train(store_uri, "model.depth=2", "model.width=16", "train.epochs=5",
                        "train.lr=0.01")
    params = run.data.params
    assert (params["hidden"], params["depth"], params["width"]) == ("[16, 16]", "2", "16")
    assert not {"model.hidden", "model.depth", "model.width", "model.hidden_layers"} & set(params)
    assert params["train.log10_lr"] == "-2" and params["train.lr"] == "0.01"
    assert result.network.sizes == [13, 16, 16, 1]
    path = MlflowClient(store_uri).download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    assert OmegaConf.load(path).model.hidden == [16, 16]
    capsys.readouterr()
    # a rerun reads that config.yaml back: the same network, the same config_hash, bit for bit
    cmd = RerunCommand(run_id=run.info.run_id, tracking=TrackingConfig(uri=store_uri,
                                                                       experiment=None))
    assert rerun(cmd) == {run.info.run_id: "identical"}
    client = MlflowClient(store_uri)
    [again] = client.search_runs([run.info.experiment_id],
                                 f"tags.rerun_of = '{run.info.run_id}'")
    assert again.data.tags["rerun_same_config_hash"] == "true"
    assert again.data.params["hidden"] == "[16, 16]"


def test_width_is_the_widest_layer_and_zero_without_hidden_layers(compose_config: Any) -> None:
    resolved = OmegaConf.to_container(compose_config(["model.hidden=[8,4]", "train.lr=3e-4"]),
                                      resolve=True)
    params = record.run_params(resolved, [8, 4])  # type: ignore[arg-type]
    assert (params["hidden"], params["depth"], params["width"]) == ("[8, 4]", "2", "8")
    assert float(params["train.log10_lr"]) == pytest.approx(math.log10(3e-4))
    assert record.run_params(resolved, [])["width"] == "0"  # type: ignore[arg-type]


def test_fixed_epochs_log_no_best_val_loss_and_draw_no_best_epoch(store_uri: str) -> None:
    _, fixed = train(store_uri, "train.epochs=30", "train.patience=null", "train.lr=0.01")
    assert "best_val_loss" not in fixed.data.metrics and "best_epoch" not in fixed.data.tags
    assert "val_mse" in fixed.data.metrics
    assert "train.patience=null" in fixed.data.tags[DESCRIPTION]
    _, stopped = train(store_uri, "train.epochs=500", "train.patience=3", "train.lr=0.01")
    best = int(stopped.data.tags["best_epoch"])
    val_loss = curve(store_uri, stopped.info.run_id, "val_loss")
    assert stopped.data.metrics["best_val_loss"] == val_loss[best] == min(val_loss.values())
    assert "early stopping: best epoch" in stopped.data.tags[DESCRIPTION]


def legend(histories: list[History], kept: bool) -> list[str]:
    return learning_curve_figure(histories, kept).axes[0].get_legend_handles_labels()[1]


def test_the_learning_curve_marks_the_best_epoch_only_when_its_weights_were_kept() -> None:
    history = History(train_cost=[3.0, 2.0, 1.0, 1.5], val_cost=[3.0, 1.0, 2.0, 2.5],
                      best_epoch=1, best_cost=1.0)
    assert not any("best epoch" in label for label in legend([history], kept=False))
    assert any("best epoch" in label for label in legend([history], kept=True))
    blown = History(train_cost=[3.0, math.inf], val_cost=[2.0, math.nan], best_epoch=0,
                    best_cost=2.0, diverged=True, diverged_epoch=1)
    assert "diverged (epoch 1)" in legend([blown], kept=True)
    assert record.best_kept(None, history) is False
    assert record.best_kept(5, history) is True
    assert record.best_kept(None, blown) is True  # a divergence restores the best weights


@pytest.mark.parametrize(("overrides", "epoch", "overflow"), [
    (["train=gd", "train.lr=10"], 0, False),  # finite but 1e8 times the first cost
    (["train=gd", "train.lr=0.5"], 1, False),  # one sane epoch, then the blow-up
    (["train=sgd", "train.lr=10"], 0, True),  # inf: logged as DIVERGED_COST
])
def test_a_diverged_run_shows_its_blow_up_and_logs_no_scores(store_uri: str,
                                                             overrides: list[str], epoch: int,
                                                             overflow: bool) -> None:
    result, run = train(store_uri, *overrides, "train.epochs=20")
    assert result.status == "FAILED" and run.data.tags["diverged_epoch"] == str(epoch)
    val_loss = curve(store_uri, run.info.run_id, "val_loss")
    train_loss = curve(store_uri, run.info.run_id, "train_loss")
    assert sorted(val_loss) == sorted(train_loss) == list(range(epoch + 1))
    last_finite = float(run.data.tags["last_finite_cost"])
    assert val_loss[epoch] > 100 * last_finite
    assert math.isfinite(val_loss[epoch]) and math.isfinite(train_loss[epoch])
    assert (val_loss[epoch] == record.DIVERGED_COST) == overflow
    metrics = run.data.metrics
    assert not [k for k in metrics if k.startswith(("val_", "test_", "train_"))
                and k not in ("val_loss", "train_loss")]
    assert "best_val_loss" not in metrics and metrics["epochs_run"] == epoch + 1
    text = run.data.tags[DESCRIPTION]
    assert f"diverged at epoch {epoch}" in text and "smaller `train.lr`" in text
    assert f"last finite cost {run.data.tags['last_finite_cost']}" in text
    assert result.metrics == {"epochs_run": epoch + 1}


def test_sorting_by_val_mse_puts_a_diverged_run_after_finished_ones(store_uri: str) -> None:
    train(store_uri, "train=gd", "train.lr=10", "train.epochs=5")
    finished, _ = train(store_uri, "train.epochs=5")
    cv, cv_run = train(store_uri, "train.lr=10", "train.epochs=3", "eval.cv_folds=2")
    assert cv.status == "FAILED" and "val_mse" not in cv_run.data.metrics
    assert cv_run.data.metrics["n_cells_diverged"] == 2
    assert "smaller `train.lr`" in cv_run.data.tags[DESCRIPTION]
    client = MlflowClient(store_uri)
    experiment = client.get_experiment_by_name("record").experiment_id
    for order in ("ASC", "DESC"):
        runs = client.search_runs([experiment], order_by=[f"metrics.val_mse {order}"])
        assert runs[0].info.run_id == finished.run_id
        assert [r.info.status for r in runs] == ["FINISHED", "FAILED", "FAILED"]


@pytest.mark.slow
def test_the_logged_model_carries_the_final_metrics_under_the_runs_name(store_uri: str
                                                                        ) -> None:
    result, run = train(store_uri, "train.epochs=500", "train.patience=3", "train.lr=0.01",
                        "tracking.log_model=true", "tracking.run_name=lr 0.01/patience 3")
    model = mlflow.get_logged_model(run.data.tags["model_uri"].removeprefix("models:/"))
    assert model.name == model_name(run.info.run_name) == "lr_0_01_patience_3"
    linked = {m.key: m.value for m in model.metrics}
    for key in ("val_mse", "test_r2", "test_rmse", "best_val_loss", "epochs_run"):
        assert linked[key] == run.data.metrics[key], key
    best = int(run.data.tags["best_epoch"])
    assert best < run.data.metrics["epochs_run"] - 1  # early stopping: best != last epoch
    assert linked["val_loss"] == curve(store_uri, run.info.run_id, "val_loss")[best]
    assert linked["val_loss"] == run.data.metrics["best_val_loss"]
    mlflow.set_tracking_uri(store_uri)
    served = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/{model.name}")
    assert served.metadata.model_id == model.model_id


def test_the_description_speaks_in_the_targets_units() -> None:
    metrics = {"test_rmse": 3.214, "test_r2": 0.8712, "val_rmse": 2.9, "val_r2": 0.9,
               "test_r2_ci_low": 0.85, "test_r2_ci_high": 0.89}
    text = describe(Story("FINISHED", metrics, "completed all 400 epochs", "MEDV", "$1000s",
                          network="13-16-1, tanh"))
    assert "test RMSE **3.21 ($1000s: about $3,214)** of MEDV" in text
    assert "test R² **0.871** (95% CI 0.85 – 0.89)" in text
    wild = describe(Story("FINISHED", {**metrics, "test_r2": -2.77, "test_rmse_median": 3.1,
                                       "test_r2_median": 0.88}, "completed all 400 epochs",
                          "MEDV", "$1000s", lr=1.0, unstable="1 of 15 cells blew up: r0f2 "
                          "(test R² -45)"))
    assert "**FINISHED, unstable**" in wild and "median test R² **0.880**" in wild
    assert "1 of 15 cells blew up: r0f2" in wild and "±" not in wild
    assert "Training completed all 400 epochs." in text and "13-16-1, tanh" in text
    diverged = describe(Story("FAILED", {}, "diverged at epoch 3 (last finite cost 0.5)",
                              "MEDV", diverged=True, lr=0.5, flags={"dead_units": "l0"}))
    assert "Try a smaller `train.lr` (this run: 0.5)" in diverged
    assert "diverged at epoch 3 (last finite cost 0.5)" in diverged
    assert "Gradient flow: dead units (l0)" in diverged and "RMSE" not in diverged


def test_the_run_prints_the_url_of_its_page_and_of_the_runs_table(store_uri: str,
                                                                  capsys: Any) -> None:
    result, run = train(store_uri, "train.epochs=3")
    out = capsys.readouterr().out
    experiment = run.info.experiment_id
    assert f"http://127.0.0.1:5000/#/experiments/{experiment}/runs/{result.run_id}" in out
    assert (f"http://127.0.0.1:5000/#/experiments/{experiment}/runs?"
            "workflowType=machine_learning") in out
