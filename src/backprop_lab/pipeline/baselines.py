"""Baselines on a run's own cells: does the network earn its keep?

With `eval.baselines=true`, every (repeat, fold) cell a run scores the network on is also scored
by three scikit-learn models, fitted on the same training rows (the cell's training and
validation rows: the baselines choose their own regularisation) and tested on the same rows, in
the same original units:

- `linear`: ordinary least squares (`LinearRegression`);
- `ridge`: ridge regression with its alpha chosen by efficient leave-one-out CV over
  10^-3 .. 10^3 (`RidgeCV`);
- `sklearn_mlp`: scikit-learn's `MLPRegressor` with its defaults (one hidden layer of 100 relu
  units, Adam), `max_iter=1000` so that it converges, seeded by the cell's repeat.

Features are standardised on the training rows (a `StandardScaler` in a `Pipeline`), as the
network's are by default. Being scored on the very cells of the jobs, the baselines are compared
with them like any other job (`experiments.sweep.assess`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from backprop_lab.data.metrics import regression_metrics

BASELINES = ("linear", "ridge", "sklearn_mlp")


def make(name: str, seed: int):  # noqa: ANN201  (a scikit-learn Pipeline)
    """A fresh, unfitted baseline `name` with standardised inputs."""
    from sklearn.linear_model import LinearRegression, RidgeCV
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    models = {"linear": lambda: LinearRegression(),
              "ridge": lambda: RidgeCV(alphas=np.logspace(-3, 3, 13)),
              "sklearn_mlp": lambda: MLPRegressor(max_iter=1000, random_state=seed)}
    return make_pipeline(StandardScaler(), models[name]())


def score(cells: list, seed: int) -> pd.DataFrame:  # list[crossval.Cell]
    """One row per (baseline, repeat, fold): the cell's sizes and the baseline's test metrics
    (`test_mse`, `test_r2`, ...) in original units."""
    rows = []
    for cell in cells:
        split = cell.result.prepared.split
        X_fit = np.concatenate([split.X_train, split.X_val])  # (n_fit, n_features)
        y_fit = np.concatenate([split.y_train, split.y_val])  # (n_fit, n_outputs)
        for name in BASELINES:
            model = make(name, seed + cell.repeat)
            with warnings.catch_warnings():  # a baseline's own convergence notes are its own
                warnings.simplefilter("ignore")
                model.fit(X_fit, y_fit[:, 0] if y_fit.shape[1] == 1 else y_fit)
            predicted = np.asarray(model.predict(split.X_test)).reshape(len(split.X_test), -1)
            metrics = regression_metrics(split.y_test, predicted)
            rows.append({"baseline": name, "repeat": cell.repeat, "fold": cell.fold,
                         "n_train": len(X_fit), "n_test": len(split.X_test),
                         **{f"test_{k}": v for k, v in metrics.items()}})
    return pd.DataFrame(rows)
