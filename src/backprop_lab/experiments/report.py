"""What a training run prints when it ends: metrics per split, a few test predictions, where
the run was logged. The report goes to stdout as is; status messages go through `logging`."""

from __future__ import annotations

import math

from backprop_lab.data.metrics import METRICS
from backprop_lab.pipeline.stages import SPLITS, Result


def print_report(result: Result, n_examples: int) -> None:
    """The metrics of every split in original units, then the first `n_examples` test rows."""
    m = result.evaluation.metrics
    print("\nsplit   " + "".join(f"{k:>12}" for k in METRICS))
    for part in SPLITS:
        if f"{part}_mse" in m:
            row = "".join(f"{m.get(f'{part}_{k}', float('nan')):>12.4f}" for k in METRICS)
            print(f"{part:<8}{row}")
    if n_examples and len(result.evaluation.predictions):
        print("\npredicted vs actual (first test examples, original units):")
        print(result.evaluation.predictions.head(n_examples).to_string(index=False))


def print_cells_report(folds: int, repeats: int, metrics: dict[str, float]) -> None:
    """`5-fold CV x 3 repeats (15 cells): test R² 0.8712 ± 0.0203 (95% CI ...)`."""
    what = [f"{folds}-fold CV"] if folds >= 2 else []
    what += [f"{repeats} repeats"] if repeats > 1 else []
    cells = max(folds, 1) * repeats
    parts = []
    for name, label in (("test_r2", "test R²"), ("test_rmse", "test RMSE")):
        low, high = metrics.get(f"{name}_ci_low", math.nan), metrics.get(f"{name}_ci_high",
                                                                        math.nan)
        parts.append(f"{label} {metrics[name]:.4f} ± {(high - low) / 2:.4f} "
                     f"(95% CI {low:.4f} to {high:.4f})")
    print(f"{' x '.join(what)} ({cells} cells): " + "; ".join(parts))


def print_run_line(run_id: str, status: str, experiment: str, uri: str) -> None:
    print(f"MLflow run {run_id} ({status}) in experiment {experiment!r} at {uri}\n"
          f"  see it with: mlflow ui --backend-store-uri {uri}")


def describe(status: str, metrics: dict[str, float], stop_reason: str,
             flags: dict[str, str], target: str, cells: str = "") -> str:
    """The run's description (tag `mlflow.note.content`, Markdown in the MLflow UI): how it
    ended, its test scores in the target's units, how training stopped, and the gradient-flow
    flags in a sentence."""
    lines = [f"**{status}**{f' ({cells})' if cells else ''}: test RMSE "
             f"{metrics.get('test_rmse', math.nan):.4g} ({target}, original units), test R² "
             f"{metrics.get('test_r2', math.nan):.4f}; training {stop_reason}."]
    if status == "FAILED" and stop_reason.startswith("diverged"):
        lines.append("The cost exploded: try a smaller `train.lr`.")
    if flags:
        lines.append("Gradient flow: " + "; ".join(f"{flag.replace('_', ' ')} ({where})"
                                                  for flag, where in flags.items()) + ".")
    return "\n\n".join(lines)
