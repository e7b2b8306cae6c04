"""A run's score cells summarised: the centre, spread and 95% interval of a metric over its
(repeat, fold) cells, on the scale the metric lives on.

An error (MSE, RMSE, MAE, a cost) is positive and multiplicative: one network at the edge of
stability makes a cell 10x or 1000x worse, not 10 units worse. So an error metric is summarised
on log(error): the centre is the 20%-trimmed mean of log(e) (a trimmed geometric mean, which one
wild cell cannot move), and the interval exp(centre ± t·SE) never goes below zero. R² is read
through its error, 1 − R² = SSE/SST (SST is the test rows' own, shared by every job scored on
them), so R² = 1 − exp(...) is bounded above by 1. Any other metric keeps the arithmetic mean
and a t-interval.

Cross-validation cells share training rows, so the variance of a mean over J cells is inflated
by n_test/n_train (Nadeau & Bengio 2003): var(mean) = (1/J + n_test/n_train) · s². The
trimmed mean's standard error is Tukey & McLaughlin's (winsorised variance; Wilcox 2012, 3.6),
from statsmodels' `TrimmedMean`, with the same inflation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TRIM = 0.2  # the fraction trimmed from each end: Wilcox's default for Yuen's test
WILD = 10.0  # a cell more than WILD x its job's median error is wild
ERRORS = ("mse", "rmse", "mae", "cost", "loss")  # metric name endings that are errors


@dataclass
class Interval:
    """A metric over a job's cells, on the metric's own scale."""

    mean: float  # the arithmetic mean (what the run logs under the plain name)
    std: float
    low: float  # the 95% interval of the centre
    high: float
    n: int
    median: float = math.nan
    centre: float = math.nan  # the trimmed geometric centre (error metrics), else the mean
    scale: str = "linear"  # "log": the interval and centre come from log(error)


def is_error(metric: str) -> bool:
    """MSE, RMSE, MAE and costs: positive, lower is better, compared as ratios."""
    return metric.endswith(ERRORS)


def log_errors(metric: str, values: np.ndarray) -> np.ndarray | None:
    """log(error) of each cell (R² through 1 − R²); None when the metric is not an error or a
    value is not positive (a perfect fit, or an R² above 1), where ratios mean nothing."""
    x = np.asarray(values, dtype=np.float64)
    if metric.endswith("r2"):
        x = 1.0 - x
    elif not is_error(metric):
        return None
    if len(x) == 0 or not np.all(np.isfinite(x)) or np.any(x <= 0):
        return None
    return np.log(x)


def from_log_error(metric: str, value: float) -> float:
    """The inverse of `log_errors` for one value: exp, then 1 − e for R²."""
    return 1.0 - math.exp(value) if metric.endswith("r2") else math.exp(value)


def trimmed(x: np.ndarray, ratio: float = 0.0) -> tuple[float, float, int]:
    """The 20%-trimmed mean of `x`, its standard error inflated for shared training rows, and
    the degrees of freedom (the cells kept after trimming, minus one)."""
    from statsmodels.stats.robust_compare import TrimmedMean

    n = len(x)
    if n < 2:
        return (float(x[0]) if n else math.nan), math.nan, 0
    tm = TrimmedMean(x, TRIM)
    se = float(tm.std_mean_trimmed) * math.sqrt(1.0 + n * ratio)
    return float(tm.mean_trimmed), se, int(tm.nobs_reduced) - 1


def summarise(values: np.ndarray, ratio: float = 0.0, metric: str = "",
              level: float = 0.95) -> Interval:
    """Mean, std, median and the `level` interval of `values` (one job's J cells); on the log
    scale for an error metric (see the module docstring), else a t-interval of the mean."""
    x = np.asarray(values, dtype=np.float64)
    logs = log_errors(metric, x)
    if logs is None:
        return mean_ci(x, ratio, level)
    n = len(x)
    centre, se, df = trimmed(logs, ratio)
    out = Interval(float(x.mean()), float(x.std(ddof=1)) if n > 1 else math.nan, math.nan,
                   math.nan, n, float(np.median(x)), from_log_error(metric, centre), "log")
    if n >= 2:
        from scipy import stats  # only for runs with cells: a single run never loads it

        half = float(stats.t.ppf(0.5 + level / 2, df)) * se
        ends = (from_log_error(metric, centre - half), from_log_error(metric, centre + half))
        out.low, out.high = min(ends), max(ends)
    return out


def cell_metrics(name: str, values: np.ndarray, ratio: float = 0.0) -> dict[str, float]:
    """What a run logs of metric `name` over its cells: `{name}` and `{name}_mean` (the mean,
    so a run with cells ranks by the same names as a single split), `_std`, `_median` and the
    95% interval `_ci_low`, `_ci_high` (`summarise`); NaN values left out."""
    ci = summarise(values, ratio, name)
    found = {name: ci.mean, f"{name}_mean": ci.mean, f"{name}_std": ci.std,
             f"{name}_median": ci.median, f"{name}_ci_low": ci.low, f"{name}_ci_high": ci.high}
    return {k: v for k, v in found.items() if not math.isnan(v)}


def mean_ci(values: np.ndarray, ratio: float = 0.0, level: float = 0.95) -> Interval:
    """Mean and `level` t-interval of `values` (J cells); `ratio` = n_test/n_train corrects the
    variance for cells that share training rows (0: independent cells)."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    median = float(np.median(x)) if n else math.nan
    if n < 2:
        return Interval(mean, math.nan, math.nan, math.nan, n, median, mean)
    from scipy import stats

    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * math.sqrt((1 / n + ratio) * std**2)
    return Interval(mean, std, mean - half, mean + half, n, median, mean)


def wild_cells(metric: str, values: np.ndarray, r2: np.ndarray | None = None) -> list[int]:
    """The cells (indices) where a job blew up while its other cells are fine: an error more
    than `WILD` x the job's median error, or a negative R² while the median R² is positive."""
    x = np.asarray(values, dtype=np.float64)
    wild: set[int] = set()
    logs = log_errors(metric, x)
    if logs is not None and len(x) >= 3:
        errors = np.exp(logs)
        wild |= set(np.flatnonzero(errors > WILD * np.median(errors)).tolist())
    if r2 is not None and len(r2) >= 3 and np.median(r2) > 0:
        wild |= set(np.flatnonzero(np.asarray(r2) < 0).tolist())
    return sorted(wild)
