"""`backprop_lab.run`: the tracked pipeline from Python, the same run the command makes."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import backprop_lab
from backprop_lab.errors import ConfigError


def test_run_returns_metrics_run_id_and_network(store_uri: str) -> None:
    result = backprop_lab.run(["train.epochs=20", "model.hidden=[8]", "tracking.log_model=false",
                               f"tracking.uri={store_uri}", "tracking.experiment=api"])
    assert result.status == "FINISHED" and 0 < result.metrics["test_r2"] < 1
    run = MlflowClient(store_uri).get_run(result.run_id)
    assert run.data.metrics["test_r2"] == result.metrics["test_r2"]
    assert run.data.params["hidden"] == "[8]" and "model.hidden" not in run.data.params
    assert isinstance(result.network, backprop_lab.Ensemble)  # the default: the mean of 5
    assert [net.sizes for net in result.network.members] == [[13, 8, 1]] * 5
    assert np.isfinite(result.network.predict(np.zeros((2, 13)))).all()


def test_run_with_one_member_returns_the_network(store_uri: str) -> None:
    result = backprop_lab.run(["train.epochs=5", "model.hidden=[8]", "model.ensemble=1",
                               "tracking.log_model=false", f"tracking.uri={store_uri}"])
    assert isinstance(result.network, backprop_lab.Network)
    assert result.network.sizes == [13, 8, 1]


def test_run_reports_divergence_and_refuses_bad_values(store_uri: str) -> None:
    result = backprop_lab.run(["train=gd", "train.lr=10", "train.epochs=20",
                               "tracking.log_model=false", f"tracking.uri={store_uri}"])
    assert result.status == "FAILED"
    with pytest.raises(ConfigError, match="train.lr"):
        backprop_lab.run(["train.lr=-1", f"tracking.uri={store_uri}"])


def test_public_names_are_all_importable() -> None:
    for name in backprop_lab.__all__:
        assert getattr(backprop_lab, name) is not None


def test_the_description_names_the_gradient_flow_flags(store_uri: str) -> None:
    result = backprop_lab.run(["experiment=tutorial_three_layer", "diag.every=1",
                               "tracking.log_model=false", f"tracking.uri={store_uri}"])
    tags = MlflowClient(store_uri).get_run(result.run_id).data.tags
    assert tags["diag.stalled"].startswith("the median layer from epoch")
    assert "Gradient flow: stalled" in tags["mlflow.note.content"]


def test_early_stopping_without_validation_rows_says_it_watched_the_training_cost(
        store_uri: str) -> None:
    result = backprop_lab.run(["data.val_fraction=0", "train.patience=3", "train.epochs=400",
                               "model.ensemble=1", "tracking.log_model=false",
                               f"tracking.uri={store_uri}"])
    tags = MlflowClient(store_uri).get_run(result.run_id).data.tags
    assert tags["early_stopping_on"] == "train_cost"
    assert "no better training cost (no validation rows" in tags["mlflow.note.content"]
    with_val = backprop_lab.run(["train.patience=3", "train.epochs=50", "model.ensemble=1",
                                 "tracking.log_model=false", f"tracking.uri={store_uri}"])
    assert MlflowClient(store_uri).get_run(with_val.run_id).data.tags[
        "early_stopping_on"] == "val_cost"
