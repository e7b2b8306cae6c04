"""Regression metrics in original units (after undoing any target scaling)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

METRICS = ("cost", "mse", "rmse", "mae", "r2")


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """cost = ½·MSE (the tutorial's C, averaged over examples and summed over outputs), MSE,
    RMSE, MAE and R² (averaged uniformly over outputs)."""
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_true), -1)
    if len(y_true) == 0:
        return {}
    mse = float(mean_squared_error(y_true, y_pred))
    err = y_pred - y_true
    metrics = {
        "cost": 0.5 * float(np.vdot(err, err)) / len(y_true),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
    }
    if len(y_true) >= 2:
        metrics["r2"] = float(r2_score(y_true, y_pred))
    return metrics
