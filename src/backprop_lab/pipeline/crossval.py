"""Score cells of one configuration: K-fold cross-validation, repeated under several seeds.

Each fold is once the test set; a fraction of the other rows, drawn with the fold's own stream,
is its validation set. With `eval.repeats=R` the whole is done R times, repeat r under
`repeat_seed(seed, r)` (repeat 0 under `seed` itself): its own folds (or train/val/test split
without CV), initial weights and batch orders. The seeds depend on `seed` and r only, so every
job of a sweep scores on the same cells, which makes their scores paired.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from backprop_lab.data import splits
from backprop_lab.data.load import Dataset
from backprop_lab.pipeline import stages
from backprop_lab.pipeline.checkpoints import Report
from backprop_lab.pipeline.config import Config
from backprop_lab.pipeline.stages import Result


@dataclass
class Cell:
    """One score: repeat r, fold k (0 without CV), the result and its split's sizes."""

    repeat: int
    fold: int
    result: Result

    @property
    def n_train(self) -> int:
        return len(self.result.prepared.split.train_idx)

    @property
    def n_val(self) -> int:
        return len(self.result.prepared.split.val_idx)

    @property
    def n_test(self) -> int:
        return len(self.result.prepared.split.test_idx)


def repeat_seed(seed: int, repeat: int) -> int:
    """The seed of repeat `repeat`: `seed` itself for repeat 0 (a run with one repeat is the
    plain run), else a 32-bit seed drawn from SeedSequence([seed, repeat])."""
    if repeat == 0:
        return seed
    return int(np.random.SeedSequence([seed, repeat]).generate_state(1)[0])


def run_cells(cfg: Config, ds: Dataset, report: Report | None = None) -> list[Cell]:
    """Every (repeat, fold) cell: `eval.repeats` x `eval.cv_folds` (x 1 without CV), all of
    their networks trained as one stack; the repeats numbered from `eval.first_repeat` (a
    racing sweep trains one repeat per round, each the same cells a full run trains).
    `report`: the cells' mean score every `train.report_every` epochs (pipeline.checkpoints)."""
    keys, setups = [], []
    first = cfg.eval.first_repeat
    for r in range(first, first + cfg.eval.repeats):
        seeded = replace(cfg, seed=repeat_seed(cfg.seed, r))
        cell_setups = (fold_setups(seeded, ds) if cfg.eval.cv_folds >= 2
                       else [stages.set_up(seeded, ds)])
        keys += [(r, k) for k in range(len(cell_setups))]
        setups += cell_setups
    results = stages.complete_many(cfg, setups, report=report)
    return [Cell(r, k, result) for (r, k), result in zip(keys, results)]


def scores_table(cells: list[Cell]) -> pd.DataFrame:
    """scores.csv: one row per cell, its split sizes and every final metric."""
    rows = [{"repeat": c.repeat, "fold": c.fold, "n_train": c.n_train, "n_val": c.n_val,
             "n_test": c.n_test,
             "diverged": c.result.history.diverged, **c.result.evaluation.metrics}
            for c in cells]
    return pd.DataFrame(rows)


def curves_table(cells: list[Cell]) -> pd.DataFrame:
    """curves.csv: the per-epoch costs of every cell (member 0's for an ensemble, as a single
    run logs them), one row per (repeat, fold, epoch); `val_loss` is empty without a
    validation split. `compare` draws a job's band over its cells from it."""
    frames = []
    for c in cells:
        h = c.result.histories[0]
        val = h.val_cost if h.val_cost else [np.nan] * len(h.train_cost)
        frames.append(pd.DataFrame({"repeat": c.repeat, "fold": c.fold,
                                    "epoch": np.arange(len(h.train_cost)),
                                    "train_loss": h.train_cost, "val_loss": val}))
    return pd.concat(frames, ignore_index=True)


def run_folds(cfg: Config, ds: Dataset) -> list[Result]:
    """K-fold cross-validation (see `fold_setups`), the folds' networks trained as one stack."""
    return stages.complete_many(cfg, fold_setups(cfg, ds))


def fold_setups(cfg: Config, ds: Dataset) -> list[stages.Setup]:
    """Each fold is once the test set; a fraction of the other rows, drawn with the fold's own
    stream, is its validation set: `eval.cv_val_fraction`, or `data.val_fraction` when that is
    null. With 0 a fold trains on all the other rows, which suits a fixed epoch budget: the
    held-out fold is then the only validation."""
    setups = []
    val_fraction = cfg.eval.cv_val_fraction
    val_fraction = cfg.data.val_fraction if val_fraction is None else val_fraction
    for fold, (train_val, test_idx) in enumerate(splits.kfold(len(ds.X), cfg.eval.cv_folds,
                                                                 cfg.seed)):
        split_rng, init_rng, train_rng = np.random.default_rng([cfg.seed, fold]).spawn(3)
        shuffled = split_rng.permutation(train_val)
        n_val = round(len(ds.X) * val_fraction)
        split = splits.split_by_index(ds, shuffled[n_val:], shuffled[:n_val], test_idx)
        setups.append(stages.prepare(cfg, ds, split, init_rng, train_rng))
    return setups


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
