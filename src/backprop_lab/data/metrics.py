"""Regression metrics in original units (after undoing any target scaling).

Written with numpy rather than taken from sklearn.metrics: five one-line formulas, and a run
then need not import scikit-learn (about a second of start-up). The tests check them against
scikit-learn's.
"""

from __future__ import annotations

import numpy as np

from backprop_lab.nn.network import cost_from_error

METRICS = ("cost", "mse", "rmse", "mae", "r2")


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """For y of shape (n,) or (n, n_outputs): cost = ½·MSE summed over outputs (the tutorial's
    C), MSE, RMSE and MAE averaged over outputs, and R² = 1 − SS_res/SS_tot per output, averaged
    uniformly. R² is left out below 2 rows and is NaN for a constant target (SS_tot = 0), where
    it is undefined."""
    if len(y_true) == 0:
        return {}
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_true), -1)
    err = y_pred - y_true
    mse = float(np.mean(err**2))
    metrics = {
        "cost": cost_from_error(err, len(y_true)),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(np.abs(err))),
    }
    if len(y_true) >= 2:
        ss_res = np.sum(err**2, axis=0)
        ss_tot = np.sum((y_true - y_true.mean(axis=0)) ** 2, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.nan)
        metrics["r2"] = float(np.mean(r2))
    return metrics
