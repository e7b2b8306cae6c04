"""K-fold cross-validation of one configuration, and its per-fold metrics summarised.

Each fold is once the test set; a fraction of the other rows, drawn with the fold's own stream,
is its validation set. The folds come from `data.splits.kfold` seeded by `seed`, so every job
of a sweep with the same seed scores on the same folds.
"""

from __future__ import annotations

import numpy as np

from backprop_lab.data import splits
from backprop_lab.data.load import Dataset
from backprop_lab.pipeline.config import Config
from backprop_lab.pipeline.stages import Result, train_and_evaluate


def run_folds(cfg: Config, ds: Dataset) -> list[Result]:
    """K-fold cross-validation: each fold is once the test set; a fraction of the other rows,
    drawn with the fold's own stream, is its validation set: `eval.cv_val_fraction`, or
    `data.val_fraction` when that is null. With 0 a fold trains on all the other rows, which
    suits a fixed epoch budget: the held-out fold is then the only validation."""
    results = []
    val_fraction = cfg.eval.cv_val_fraction
    val_fraction = cfg.data.val_fraction if val_fraction is None else val_fraction
    for fold, (train_val, test_idx) in enumerate(splits.kfold(len(ds.X), cfg.eval.cv_folds,
                                                                 cfg.seed)):
        split_rng, init_rng, train_rng = np.random.default_rng([cfg.seed, fold]).spawn(3)
        shuffled = split_rng.permutation(train_val)
        n_val = round(len(ds.X) * val_fraction)
        split = splits.split_by_index(ds, shuffled[n_val:], shuffled[:n_val], test_idx)
        results.append(train_and_evaluate(cfg, ds, split, init_rng, train_rng))
    return results


def cv_metrics(per_fold: list[dict[str, float]]) -> dict[str, float]:
    """`fold{k}.{name}` for every fold's metric, `cv_mean.{name}` and `cv_std.{name}` (population
    std) across folds, and `{name}` = the mean, so a CV run ranks by the same names as a single
    split."""
    metrics: dict[str, float] = {}
    for k, fold_metrics in enumerate(per_fold):
        metrics.update({f"fold{k}.{name}": v for name, v in fold_metrics.items()})
    for name in per_fold[0]:
        values = np.array([m[name] for m in per_fold])
        metrics[f"cv_mean.{name}"], metrics[f"cv_std.{name}"] = values.mean(), values.std()
        metrics[name] = values.mean()
    return metrics
