"""A run scored on several cells: K-fold cross-validation, `eval.repeats` seeds, or both.

Every cell's networks train as one stack (`crossval.run_cells`); the run logs each metric's mean,
std and 95% CI over the cells, scores.csv and curves.csv (one row per cell, and per cell and
epoch), and its description. A diverged cell makes the run FAILED with no scores.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import pandas as pd

from backprop_lab.data.load import Dataset
from backprop_lab.experiments.run import identity, record
from backprop_lab.experiments.run.cells import cell_metrics, wild_cells
from backprop_lab.experiments.run.record import JobOutcome
from backprop_lab.experiments.run.report import (
    DESCRIPTION,
    Story,
    describe,
    print_cells_report,
    print_run_line,
    say,
    target_units,
)
from backprop_lab.pipeline import baselines, crossval
from backprop_lab.pipeline.checkpoints import Report
from backprop_lab.pipeline.config import Config, hidden_layers
from backprop_lab.tracking.store import Run

BASELINES_CSV = "baselines.csv"  # one row per (baseline, repeat, fold), as scores.csv


def baseline_metrics(found: pd.DataFrame, ratio: float) -> dict[str, float]:
    """`baseline.<name>.<metric>` and its summary over the cells, as a run logs its own."""
    out: dict[str, float] = {}
    for name, rows in found.groupby("baseline", sort=False):
        for metric in ("test_mse", "test_rmse", "test_mae", "test_r2"):
            if metric in rows:
                out.update({f"baseline.{name}.{k}": v for k, v in
                            cell_metrics(metric, rows[metric].to_numpy(), ratio).items()})
    return out


def unstable_text(scores: pd.DataFrame) -> str:
    """"1 of 15 cells blew up: r2f4 (test R² -45.2)" for the cells more than 10x the run's
    median test MSE or with a negative test R² while the rest are fine; '' when none."""
    if "test_mse" not in scores or len(scores) < 3:
        return ""
    wild = wild_cells("test_mse", scores["test_mse"].to_numpy(),
                      scores["test_r2"].to_numpy() if "test_r2" in scores else None)
    if not wild:
        return ""
    named = ", ".join(f"r{int(scores['repeat'][i])}f{int(scores['fold'][i])} (test R² "
                      f"{scores['test_r2'][i]:.3g})" if "test_r2" in scores else
                      f"r{int(scores['repeat'][i])}f{int(scores['fold'][i])}" for i in wild[:5])
    more = f" and {len(wild) - 5} more" if len(wild) > 5 else ""
    return f"{len(wild)} of {len(scores)} cells blew up: {named}{more}"


def score_cells(config: Config, ds: Dataset, run: Run,
                report: Report | None = None) -> JobOutcome:
    """Every (repeat, fold) cell of the same configuration: scores.csv, each metric's mean, std
    and 95% CI across the cells (`{name}_mean`, ...; `{name}` is the mean, so a job ranks by the
    same names as a single split) and, for cross-validation, the per-fold and cv_* metrics.
    `report` gets the cells' mean score every `train.report_every` epochs."""
    started = time.perf_counter()
    cells = crossval.run_cells(config, ds, report)
    train_seconds = time.perf_counter() - started
    scores = crossval.scores_table(cells)
    ratio = float((scores["n_test"] / scores["n_train"]).mean())  # for test_* and the rest
    metrics: dict[str, float] = {}
    if config.eval.repeats == 1:
        metrics.update(crossval.cv_metrics([c.result.evaluation.metrics for c in cells]))
    elif config.eval.cv_folds >= 2:
        cv = crossval.cv_metrics([c.result.evaluation.metrics for c in cells])
        metrics.update({k: v for k, v in cv.items() if not k.startswith("fold")})
    for name in cells[0].result.evaluation.metrics:
        metrics.update(cell_metrics(name, scores[name].to_numpy(), ratio))
    diverged = [f"r{c.repeat}f{c.fold}" for c in cells if c.result.history.diverged]
    # a diverged cell's scores are those of weights training did not produce: no scores then
    logged = ({"n_cells_diverged": float(len(diverged))} if diverged else
              {k: v for k, v in metrics.items() if not math.isnan(v)})
    run.log_metrics(logged)
    found = baselines.score(cells, config.seed) if config.eval.baselines else None
    if found is not None:
        run.log_metrics(baseline_metrics(found, ratio))
    with tempfile.TemporaryDirectory(prefix="backprop-lab-") as tmp:
        scores.to_csv(Path(tmp) / "scores.csv", index=False)
        if found is not None:
            found.to_csv(Path(tmp) / BASELINES_CSV, index=False)
        crossval.curves_table(cells).to_csv(Path(tmp) / "curves.csv", index=False)
        run.log_artifacts(Path(tmp))
    status = "FAILED" if diverged else "FINISHED"
    run.set_tags({"seconds_training": f"{train_seconds:.3f}", "n_cells": str(len(cells)),
                  "seconds_mlflow": f"{run.seconds_in_mlflow:.3f}"})
    if diverged:
        run.set_tags({"diverged": "true", "diverged_cells": ", ".join(diverged)})
        if config.eval.repeats == 1:
            run.set_tags({"diverged_folds": str([c.fold for c in cells
                                                 if c.result.history.diverged])})
    what = [f"{config.eval.cv_folds}-fold CV"] if config.eval.cv_folds >= 2 else []
    what += [f"{config.eval.repeats} repeats"] if config.eval.repeats > 1 else []
    cells_text = f"{' x '.join(what)}, {len(cells)} score cells"
    if diverged:
        first = next(c.result.history for c in cells if c.result.history.diverged)
        stopped = (f"diverged in cells {', '.join(diverged)} (the first: "
                   f"{record.how_it_stopped(config.train.patience, first)})")
    else:
        stopped = "completed in every cell"
    unstable = "" if diverged else unstable_text(scores)
    if unstable:
        run.set_tags({"unstable": unstable.split(" blew up")[0]})
    story = Story(status, logged, stopped, ds.target_names[0],
                  target_units(config.data.name, ds.target_names[0]), bool(diverged),
                  config.train.lr, record.network_text(config, ds, hidden_layers(config.model)),
                  cells_text, unstable)
    run.set_tags({DESCRIPTION: describe(story)})
    print_cells_report(config.eval.cv_folds, config.eval.repeats, metrics, unstable)
    if found is not None:
        for baseline, rows in found.groupby("baseline", sort=False):
            say(f"baseline {baseline}: test R² mean {rows['test_r2'].mean():.4g}, test RMSE mean "
                f"{rows['test_rmse'].mean():.4g}")
    if diverged:
        say(f"DIVERGED in cells {', '.join(diverged)}: the run is recorded as FAILED with tag "
              "diverged=true and no scores; try a smaller train.lr.")
    print_run_line(run.run_id, status, run.store.experiment, run.store.experiment_id,
                   run.store.uri)
    run.end(status)
    return JobOutcome(run.run_id, status, logged, identity.objective(logged, status))
