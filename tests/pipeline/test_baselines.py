"""Baselines on a run's own cells: the same rows as the network, the same units."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

from backprop_lab.pipeline import baselines, crossval
from backprop_lab.pipeline.compose import to_config


def test_each_cell_is_scored_by_each_baseline_on_its_own_rows(compose_config) -> None:
    config = to_config(compose_config(["data=diabetes", "eval.cv_folds=3", "train.epochs=2",
                                       "eval.baselines=true"]))
    from backprop_lab.pipeline import stages

    cells = crossval.run_cells(config, stages.load(config.data))
    found = baselines.score(cells, config.seed)
    assert list(found["baseline"].unique()) == list(baselines.BASELINES)
    assert len(found) == 3 * len(baselines.BASELINES)
    linear = found[found["baseline"] == "linear"].set_index("fold")
    split = cells[1].result.prepared.split  # fold 1, by hand
    X = np.concatenate([split.X_train, split.X_val])
    y = np.concatenate([split.y_train, split.y_val])[:, 0]
    scaler = StandardScaler().fit(X)
    model = LinearRegression().fit(scaler.transform(X), y)
    expected = r2_score(split.y_test[:, 0], model.predict(scaler.transform(split.X_test)))
    assert abs(linear.loc[1, "test_r2"] - expected) < 1e-12
    assert (linear["n_test"] + linear["n_train"] == 442).all()
    assert 0.35 < found.groupby("baseline")["test_r2"].mean()["ridge"] < 0.6  # diabetes
