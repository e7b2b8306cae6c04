"""A run's score cells summarised: the mean and its confidence interval over (repeat, fold) cells.

Cross-validation cells share training rows, so the variance of their mean is inflated by
n_test/n_train (Nadeau & Bengio 2003): var(mean) = (1/J + n_test/n_train) · s².
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class Interval:
    mean: float
    std: float
    low: float
    high: float
    n: int


def mean_ci(values: np.ndarray, ratio: float = 0.0, level: float = 0.95) -> Interval:
    """Mean and `level` t-interval of `values` (J cells); `ratio` = n_test/n_train corrects the
    variance for cells that share training rows (0: independent cells)."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return Interval(mean, math.nan, math.nan, math.nan, n)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * math.sqrt((1 / n + ratio) * std**2)
    return Interval(mean, std, mean - half, mean + half, n)

