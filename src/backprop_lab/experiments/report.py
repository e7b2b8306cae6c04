"""What a training run prints when it ends: metrics per split, a few test predictions, where
the run was logged. The report goes to stdout as is; status messages go through `logging`."""

from __future__ import annotations

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


def print_cv_report(folds: int, metrics: dict[str, float]) -> None:
    print(f"{folds}-fold CV: test R² {metrics['cv_mean.test_r2']:.4f} "
          f"± {metrics['cv_std.test_r2']:.4f}; test RMSE {metrics['cv_mean.test_rmse']:.4f}")


def print_run_line(run_id: str, status: str, experiment: str, uri: str) -> None:
    print(f"MLflow run {run_id} ({status}) in experiment {experiment!r} at {uri}\n"
          f"  see it with: mlflow ui --backend-store-uri {uri}")
