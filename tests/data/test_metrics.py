"""Our numpy metrics agree with scikit-learn's, and say NaN where R² is undefined."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from backprop_lab.data.metrics import regression_metrics


@pytest.mark.parametrize("outputs", [1, 3])
def test_metrics_match_scikit_learn(outputs: int) -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=(50, outputs)) * [10.0, 1.0, 0.1][:outputs]
    y_pred = y + rng.normal(size=y.shape)
    m = regression_metrics(y, y_pred)
    assert m["mse"] == pytest.approx(mean_squared_error(y, y_pred), rel=1e-12)
    assert m["rmse"] == pytest.approx(math.sqrt(mean_squared_error(y, y_pred)), rel=1e-12)
    assert m["mae"] == pytest.approx(mean_absolute_error(y, y_pred), rel=1e-12)
    assert m["r2"] == pytest.approx(r2_score(y, y_pred), rel=1e-12)
    assert m["cost"] == pytest.approx(0.5 * np.sum((y_pred - y) ** 2) / len(y), rel=1e-12)


def test_r2_is_nan_for_a_constant_target_and_absent_below_two_rows() -> None:
    assert math.isnan(regression_metrics(np.full(5, 3.0), np.arange(5.0))["r2"])
    assert "r2" not in regression_metrics(np.array([1.0]), np.array([2.0]))
    assert regression_metrics(np.empty(0), np.empty(0)) == {}
