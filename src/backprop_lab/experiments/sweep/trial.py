"""A job's side of a search: the trial it is, reached through the study's storage.

Hydra gives a job no channel back to its sweeper, so the sweeper leaves `<sweep dir>/study.json`
(storage URL, study name, pruner) and the job's trial number (`tracking.trial`), and the job
opens the storage itself, wherever it runs (another process of the joblib launcher, another
machine). `TrialMonitor` is the `experiments.run.monitor.Monitor` a search hands `run_job`: it
records the trial's MLflow run, reports the job's score every `train.report_every` epochs
(`trial.report`) and asks the study's pruner whether to stop (`trial.should_prune`); a pruned
job says so in the trial's user attrs, which the sweeper reads to tell the study PRUNED.
"""

from __future__ import annotations

import math
from pathlib import Path

import optuna

from backprop_lab.experiments.sweep import study as studies
from backprop_lab.experiments.sweep.resume import PRUNED_ATTR, RUN_ATTR


class TrialMonitor:
    """Trial `number` of the study `sweep_dir`/study.json names."""

    def __init__(self, sweep_dir: Path, number: int) -> None:
        pointer = studies.read_pointer(sweep_dir)
        storage = studies.open_storage(str(pointer["storage"]))
        pruner = studies.make_pruner(str(pointer["pruner"]), int(pointer["epochs"]),
                                     int(pointer["report_every"]))
        study = optuna.load_study(study_name=str(pointer["study_name"]), storage=storage,
                                  pruner=pruner)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
        self.storage, self.trial_id = storage, trial_id
        self.trial = optuna.trial.Trial(study, trial_id)

    def started(self, run_id: str) -> None:
        self.storage.set_trial_user_attr(self.trial_id, RUN_ATTR, run_id)

    def report(self, epoch: int, value: float) -> bool:
        if not math.isfinite(value):
            return False  # a diverging job ends FAILED on its own
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.storage.set_trial_user_attr(self.trial_id, PRUNED_ATTR, epoch)
            return True
        return False
