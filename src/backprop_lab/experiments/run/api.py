"""`backprop_lab.run`: the Hydra-composed, MLflow-tracked pipeline from Python.

The same run `python -m pipelines.train <overrides>` makes (the same config, params, tags,
artifacts and model), returned as values instead of printed: the metrics, the run id and the
trained network. A run that diverges is returned with status FAILED; an input error raises
the project's `InputError` (nothing logged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backprop_lab.experiments.run.job import run_job
from backprop_lab.nn.ensemble import Model
from backprop_lab.pipeline.compose import compose


@dataclass
class RunResult:
    run_id: str
    status: str  # FINISHED, or FAILED when training diverged
    metrics: dict[str, float]  # final metrics in original units, e.g. test_r2, test_rmse
    network: Model | None  # the trained network (None for cross-validation)


def run(overrides: Sequence[str] = ()) -> RunResult:
    """Train and evaluate one configuration as an MLflow run.

    `overrides` are the command line's `key=value` strings, e.g.
    `run(["model.hidden=[32,16]", "train.epochs=200", "tracking.uri=sqlite:////tmp/m.db"])`.
    """
    from backprop_lab.tracking.store import quiet_mlflow_environment

    quiet_mlflow_environment()
    cfg = compose(overrides)
    outcome = run_job(cfg, list(overrides), None)
    return RunResult(outcome.run_id, outcome.status, outcome.metrics, outcome.network)
