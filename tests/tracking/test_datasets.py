"""Datasets logged as run inputs (issue 24, part 2): a run's training, validation and test rows
(or, scored on cells, the whole set once, its context naming the folds) with source, digest,
schema and context, read back from a real sqlite store; `rerun` refuses rows that changed."""

from __future__ import annotations

import json
from typing import Any

import mlflow.data
import pytest
from mlflow.tracking import MlflowClient

import backprop_lab
from backprop_lab.data import splits
from backprop_lab.data.load import fingerprint
from backprop_lab.errors import RerunRefused
from backprop_lab.experiments.reproduce.logged_runs import LoggedRun
from backprop_lab.experiments.reproduce.rerun import check_parts
from backprop_lab.pipeline import stages
from backprop_lab.pipeline.compose import compose, to_config
from backprop_lab.tracking.datasets import CONTEXT_TAG, SHA_TAG, logged_digests

QUICK = ["tracking.log_model=false", "diag.every=0", "train.epochs=2", "tracking.experiment=ds"]


def inputs_of(store_uri: str, *overrides: str) -> tuple[Any, dict[str, Any]]:
    result = backprop_lab.run([*QUICK, f"tracking.uri={store_uri}", *overrides])
    run = MlflowClient(store_uri).get_run(result.run_id)
    found = {}
    for item in run.inputs.dataset_inputs:
        tags = {t.key: t.value for t in item.tags}
        found[tags[CONTEXT_TAG]] = (item.dataset, tags)
    return run, found


def test_a_split_run_logs_its_three_parts(store_uri: str) -> None:
    run, found = inputs_of(store_uri, "seed=3")
    assert set(found) == {"training", "validation", "test"}
    config = to_config(compose([*QUICK, f"tracking.uri={store_uri}", "seed=3"]))
    ds = stages.load(config.data)
    split = splits.split(ds, config.data.val_fraction, config.data.test_fraction,
                         stages.streams(3)[0])
    rows = {"training": (split.X_train, split.y_train), "validation": (split.X_val, split.y_val),
            "test": (split.X_test, split.y_test)}
    for context, (X, y) in rows.items():
        dataset, tags = found[context]
        sha = fingerprint(X, y, ds.feature_names, ds.target_names)
        assert tags[SHA_TAG] == sha and dataset.digest == sha[:32]
        assert dataset.name == "boston" and dataset.source_type == "local"
        assert json.loads(dataset.source)["uri"].endswith("boston_house_prices.csv")
        assert mlflow.data.get_source(dataset).uri == ds.source  # MLflow reads it back
        assert json.loads(dataset.profile)["num_rows"] == len(X)
        columns = {c["name"]: c["type"] for c in json.loads(dataset.schema)["mlflow_colspec"]}
        assert columns["CHAS"] == "long" and columns["CRIM"] == "double"  # as the raw file
        assert columns["MEDV"] == "double" and len(columns) == 14
    assert sum(json.loads(found[c][0].profile)["num_rows"] for c in rows) == ds.n_samples
    assert logged_digests(run) == {c: found[c][0].digest for c in rows}


def test_a_cv_run_logs_the_set_once_naming_the_folds(store_uri: str) -> None:
    _, found = inputs_of(store_uri, "data=diabetes", "eval.cv_folds=3", "eval.repeats=2")
    [(context, (dataset, tags))] = found.items()
    assert context == "3-fold cv x 2 repeats"
    ds = stages.load(to_config(compose(["data=diabetes"])).data)
    assert tags[SHA_TAG] == ds.fingerprint and dataset.digest == ds.fingerprint[:32]
    assert dataset.source_type == "code"
    assert json.loads(dataset.source) == {"tags": {"builtin": "sklearn:diabetes"}}
    assert mlflow.data.get_source(dataset).to_dict() == {"tags": {"builtin": "sklearn:diabetes"}}
    assert json.loads(dataset.profile)["num_rows"] == ds.n_samples


def test_rerun_refuses_rows_that_split_differently(store_uri: str, tmp_path: Any) -> None:
    run, _ = inputs_of(store_uri, "seed=0")
    original = LoggedRun(MlflowClient(store_uri), run.info.run_id, tmp_path)
    same = to_config(compose([*QUICK, "seed=0"]))
    ds = stages.load(same.data)
    assert check_parts(original, same, ds, force=False) == []
    other = to_config(compose([*QUICK, "seed=1"]))  # the same data, split another way
    with pytest.raises(RerunRefused, match="differ for test .*training .*validation"):
        check_parts(original, other, ds, force=False)
    [warning] = check_parts(original, other, ds, force=True)
    assert "force=true" in warning
