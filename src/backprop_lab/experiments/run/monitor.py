"""A job that something watches while it trains: a search's trial, which its pruner may stop.

A job knows nothing of sweeps (experiments.run sits below experiments.sweep); a search gives
`run_job` a `Monitor` instead. The job tells it its MLflow run once the run exists, and hands
it its score every `train.report_every` epochs (pipeline.checkpoints); when the monitor answers
that the job should stop, training ends by `Pruned` and the run is recorded as pruned:
FAILED with tags `pruned=true` and `pruned_epoch`, its scores so far logged as the metric
`trial_value` (one point per report) and no final scores, so that it never ranks among the
jobs that finished (like a diverged job; `experiments.sweep.readback.job_status` says PRUNED).
"""

from __future__ import annotations

import time
from typing import Protocol

from mlflow.entities import Metric

from backprop_lab.experiments.run.record import JobOutcome
from backprop_lab.experiments.run.report import DESCRIPTION, say
from backprop_lab.tracking.store import Run

TRIAL_VALUE = "trial_value"  # the metric holding a watched job's reported scores


class Monitor(Protocol):
    """What watches a job: a search's trial (experiments.sweep.trial)."""

    def started(self, run_id: str) -> None:
        """The job's MLflow run exists (a search keeps its id beside the trial)."""

    def report(self, epoch: int, value: float) -> bool:
        """The job's score after `epoch`; True: stop it now (pruned)."""
        ...


class Pruned(Exception):
    """Raised inside training when the monitor says stop; not an error of the job."""

    def __init__(self, epoch: int, value: float) -> None:
        super().__init__(f"pruned at epoch {epoch} (score then {value:.4g})")
        self.epoch, self.value = epoch, value


class Watched:
    """The pipeline's report callback for a monitored job: keeps every score, asks the
    monitor, raises `Pruned` when it says stop."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.values: list[tuple[int, float]] = []

    def __call__(self, epoch: int, value: float) -> None:
        self.values.append((epoch, value))
        if self.monitor.report(epoch, value):
            raise Pruned(epoch, value)

    def log(self, run: Run) -> None:
        """The scores reported, as the metric `trial_value` (step = epoch), in one batch."""
        now = int(time.time() * 1000)
        points = [Metric(TRIAL_VALUE, float(v), now, e) for e, v in self.values]
        if points:
            run.log_metric_objects(points)


def end_pruned(run: Run, err: Pruned, watched: Watched) -> JobOutcome:
    """Record a pruned job (see the module docstring) and end its run."""
    watched.log(run)
    reason = f"pruned by the search at epoch {err.epoch}"
    run.set_tags({"pruned": "true", "pruned_epoch": str(err.epoch), "stop_reason": reason,
                  DESCRIPTION: f"**Pruned** by the search's pruner after epoch {err.epoch}: "
                               f"its score then (the MSE it is ranked by) was {err.value:.4g}, "
                               "worse than the pruner allows at that epoch. Its scores so far "
                               f"are the metric `{TRIAL_VALUE}`; it has no final scores and is not "
                               "ranked."})
    run.end("FAILED")
    say(f"PRUNED at epoch {err.epoch} (score {err.value:.4g})")
    return JobOutcome(run.run_id, "PRUNED", {}, err.value)
