"""What a training run prints when it ends (metrics per split, a few test predictions, the URL
of the run in the MLflow UI) and its description for the UI (`describe`). The report goes to
stdout as is; status messages go through `logging`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from backprop_lab.data.metrics import METRICS
from backprop_lab.pipeline.stages import SPLITS, Result
from backprop_lab.tracking import ui

# a job of a multirun prints nothing of its own (the sweep prints one table at the end) unless
# `hydra.verbose`; per thread, since the stacked launcher runs its jobs in threads
QUIET: ContextVar[bool] = ContextVar("backprop_lab_quiet", default=False)
DESCRIPTION = "mlflow.note.content"  # the MLflow UI shows this tag as a run's description
UNITS = {("boston", "MEDV"): "$1000s"}  # data/README.md


def say(*args: Any, **kwargs: Any) -> None:
    """`print`, unless this job is quiet (`QUIET`)."""
    if not QUIET.get():
        print(*args, **kwargs)


def print_report(result: Result, n_examples: int) -> None:
    """The metrics of every split in original units, then the first `n_examples` test rows."""
    m = result.evaluation.metrics
    say("\nsplit   " + "".join(f"{k:>12}" for k in METRICS))
    for part in SPLITS:
        if f"{part}_mse" in m:
            row = "".join(f"{m.get(f'{part}_{k}', float('nan')):>12.4f}" for k in METRICS)
            say(f"{part:<8}{row}")
    if n_examples and len(result.evaluation.predictions):
        say("\npredicted vs actual (first test examples, original units):")
        say(result.evaluation.predictions.head(n_examples).to_string(index=False))


def print_cells_report(folds: int, repeats: int, metrics: dict[str, float],
                       unstable: str = "") -> None:
    """`5-fold CV x 3 repeats (15 cells): test R² mean 0.8712, median 0.8801 (95% CI 0.8431
    to 0.8902)`: the interval of the cells' centre (for R² and RMSE on the log error scale, so
    never below zero error), and the cells that blew up."""
    what = [f"{folds}-fold CV"] if folds >= 2 else []
    what += [f"{repeats} repeats"] if repeats > 1 else []
    cells = max(folds, 1) * repeats
    parts = []
    for name, label in (("test_r2", "test R²"), ("test_rmse", "test RMSE")):
        low, high = metrics.get(f"{name}_ci_low", math.nan), metrics.get(f"{name}_ci_high",
                                                                        math.nan)
        median = metrics.get(f"{name}_median", math.nan)
        parts.append(f"{label} mean {metrics[name]:.4g}, median {median:.4g} "
                     f"(95% CI {low:.4g} to {high:.4g})")
    say(f"{' x '.join(what)} ({cells} cells): " + "; ".join(parts))
    if unstable:
        say(f"UNSTABLE: {unstable}; the median describes this job better than the mean")


def print_run_line(run_id: str, status: str, experiment: str, experiment_id: str,
                   uri: str) -> None:
    """Where the run went, and the URL that opens it in the MLflow UI (`make ui` serves a local
    store at http://127.0.0.1:5000; a tracking server's runs are under its own URL)."""
    remote = uri.startswith(("http://", "https://"))
    base = uri if remote else ui.base_url()
    how = "" if remote else "make ui, then "
    say(f"MLflow run {run_id} ({status}) in experiment {experiment!r} at {uri}\n"
          f"  see it: {how}{ui.run_url(base, experiment_id, run_id)}\n"
          f"  all runs: {ui.runs_url(base, experiment_id)}")


@dataclass
class Story:
    """What a run's description tells: how it ended and what it scored."""

    status: str  # FINISHED, FAILED
    metrics: Mapping[str, float]  # as logged: no scores for a diverged run
    stopped: str  # how training stopped, in full (record.how_it_stopped)
    target: str  # the target column, e.g. MEDV
    units: str = ""  # the target's units, e.g. $1000s (`target_units`)
    diverged: bool = False
    lr: float | None = None  # train.lr, for the divergence hint
    network: str = ""  # e.g. "13-16-16-1 tanh, mean of 5 networks"
    cells: str = ""  # e.g. "5-fold CV x 3 repeats, 15 score cells"
    unstable: str = ""  # e.g. "1 of 15 cells blew up: r2f4 (test R² -45.2)"
    flags: dict[str, str] = field(default_factory=dict)  # gradient-flow flags


def target_units(dataset: str, target: str) -> str:
    """The units of a shipped dataset's target ('' when unknown, e.g. a user's csv)."""
    return UNITS.get((dataset, target), "")


def in_units(value: float, units: str) -> str:
    """3.21 in $1000s -> "3.21 ($1000s: about $3,210)"; plain "3.21" without units."""
    if units == "$1000s" and math.isfinite(value):
        return f"{value:.3g} ($1000s: about ${value * 1000:,.0f})"
    return f"{value:.3g} ({units})" if units else f"{value:.3g}"


def spread(metrics: Mapping[str, float], name: str) -> str:
    """" (95% CI 3.1 – 3.6)" when the run has several score cells, else ''. For an error the
    interval is the cells' trimmed geometric centre's (never below zero)."""
    low, high = metrics.get(f"{name}_ci_low"), metrics.get(f"{name}_ci_high")
    if low is None or high is None or not math.isfinite(high - low):
        return ""
    return f" (95% CI {low:.3g} – {high:.3g})"


def describe(story: Story) -> str:
    """The run's description (tag `mlflow.note.content`, Markdown in the MLflow UI): how it
    ended, its scores in the target's units (rounded here; the metrics keep every digit), how
    training stopped, the divergence hint, and the gradient-flow flags in a sentence."""
    m = story.metrics
    cells = f" ({story.cells})" if story.cells else ""
    if story.diverged:
        lr = f" (this run: {story.lr:g})" if story.lr is not None else ""
        lines = [f"**{story.status}: diverged**{cells}. Try a smaller `train.lr`{lr}.",
                 f"Training {story.stopped}.",
                 "No scores are logged for a diverged run (val_mse, test_rmse, ... would rank "
                 "weights that training did not produce): the learning curve shows the "
                 "blow-up."]
    elif story.unstable:
        rmse, r2 = m.get("test_rmse_median", math.nan), m.get("test_r2_median", math.nan)
        lines = [f"**{story.status}, unstable**{cells}: median test RMSE "
                 f"**{in_units(rmse, story.units)}** of {story.target}, median test R² "
                 f"**{r2:.3f}**; {story.unstable}. Their errors swamp the mean "
                 f"(test R² mean {m.get('test_r2', math.nan):.3g}), so the median describes "
                 f"the other cells; try a smaller `train.lr` (this run: {story.lr:g}).",
                 f"Training {story.stopped}."]
    else:
        rmse = m.get("test_rmse", math.nan)
        lines = [f"**{story.status}**{cells}: test RMSE **{in_units(rmse, story.units)}**"
                 f"{spread(m, 'test_rmse')} of {story.target}, test R² "
                 f"**{m.get('test_r2', math.nan):.3f}**{spread(m, 'test_r2')}"
                 + (f"; validation RMSE {m['val_rmse']:.3g}, R² {m['val_r2']:.3f}"
                    if "val_rmse" in m and "val_r2" in m else "") + ".",
                 f"Training {story.stopped}."]
    if story.network:
        lines.append(f"Network: {story.network}.")
    if story.flags:
        lines.append("Gradient flow: " + "; ".join(f"{flag.replace('_', ' ')} ({where})"
                                                  for flag, where in story.flags.items()) + ".")
    return "\n\n".join(lines)
