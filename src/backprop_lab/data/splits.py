"""Train/validation/test splits and K folds, as row indices drawn from the caller's stream."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backprop_lab.data.load import Dataset
from backprop_lab.errors import DataError


@dataclass(frozen=True, eq=False)
class Split:
    """Train/val/test arrays plus the row indices they came from, so runs can log them."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray


def split(
    ds: Dataset, val_fraction: float, test_fraction: float, rng: np.random.Generator
) -> Split:
    """rng.permutation(n): test = first round(n*test), val = next round(n*val), the rest train."""
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise DataError(f"{name} must satisfy 0 <= f < 1, got {f}")
    if val_fraction + test_fraction >= 1.0:
        raise DataError(
            f"val_fraction + test_fraction must be < 1, got {val_fraction}, {test_fraction}"
        )
    n = ds.n_samples
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    if n - n_test - n_val < 1:
        raise DataError(
            f"{ds.source}: no training rows left ({n} rows, {n_val} val, {n_test} test)"
        )
    perm = rng.permutation(n)
    a, b = n_test, n_test + n_val
    test_idx, val_idx, train_idx = perm[:a], perm[a:b], perm[b:]
    tr, va, te = ((ds.X[i], ds.y[i]) for i in (train_idx, val_idx, test_idx))
    return Split(*tr, *va, *te, train_idx, val_idx, test_idx)


def kfold(n_samples: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, test_idx) pairs from sklearn KFold(shuffle=True); each row is tested once."""
    if not 2 <= k <= n_samples:
        raise DataError(f"kfold needs 2 <= k <= n_samples, got k={k}, n_samples={n_samples}")
    from sklearn.model_selection import KFold  # here: a run without folds skips its import

    folds = KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros((n_samples, 1)))
    return [(np.asarray(tr), np.asarray(te)) for tr, te in folds]


def split_by_index(
    ds: Dataset, train_idx: np.ndarray, val_idx: np.ndarray, test_idx: np.ndarray
) -> Split:
    """The rows of `ds` at the given indices, as a Split."""
    parts = [(ds.X[i], ds.y[i]) for i in (train_idx, val_idx, test_idx)]
    return Split(*parts[0], *parts[1], *parts[2], train_idx, val_idx, test_idx)
