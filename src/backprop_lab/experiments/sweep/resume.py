"""Continuing a search that died: which of its trials were killed, and trying them again.

A search killed outright (SIGKILL, a lost machine, Ctrl-C on the sweep) leaves its trials in
flight RUNNING in the study, and their MLflow runs RUNNING or KILLED. When the same command runs
again (`experiments.sweep.study`), such a trial is dead when no live process can still be
running it:
- with a sqlite study, every sweep holds a lock on its study (a file beside the database, which
  the OS releases when the process dies): the sweep that gets the lock knows every RUNNING
  trial is dead, at once; a second sweep on the same study while the first runs is refused;
- with a study on a server (PostgreSQL) no lock spans the machines: a RUNNING trial is dead
  when its MLflow run has ended or its heartbeat is older than `tracking.stale_after`
  (tracking.liveness), or, lacking a run, when it started longer ago than that.
A dead trial becomes FAIL in the study (tagged `killed`, so it does not count toward
`n_trials`), its MLflow run KILLED (tags `killed=true`, `killed_reason`), and the same
parameters are asked again first (`enqueue_trial`, user attr `retry_of`).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import optuna
from filelock import FileLock, Timeout
from optuna.trial import FrozenTrial, TrialState

from backprop_lab.errors import InputError
from backprop_lab.tracking.liveness import last_sign_of_life
from backprop_lab.tracking.store import sqlite_file

log = logging.getLogger(__name__)
RUN_ATTR = "mlflow_run_id"  # a trial's user attr: its job's MLflow run (set by the job)
KILLED_ATTR, RETRY_ATTR, PRUNED_ATTR = "killed", "retry_of", "pruned_epoch"


def claim(url: str, name: str) -> FileLock | None:
    """Hold the study's lock for this process's lifetime (sqlite storages only; None for
    others); an `InputError` when another live sweep holds it."""
    db = sqlite_file(url)
    if db is None:
        return None
    path = f"{db}.{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.lock"
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout as err:
        raise InputError(f"hydra.sweeper.study_name: study {name!r} is being run by another "
                         f"sweep (it holds {path}); wait for it to end or choose another "
                         "study name") from err
    return lock


def counted(trial: FrozenTrial) -> bool:
    """Whether a trial counts toward `n_trials`: it ended, and was not killed (retried)."""
    if trial.state == TrialState.FAIL:
        return not trial.user_attrs.get(KILLED_ATTR)
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED)


def dead(trial: FrozenTrial, client: Any, exclusive: bool, stale_after: float) -> bool:
    """Whether a RUNNING trial has no live process (see the module docstring)."""
    if exclusive:
        return True
    run_id = trial.user_attrs.get(RUN_ATTR)
    if run_id is None:
        started = trial.datetime_start.timestamp() if trial.datetime_start else time.time()
        return time.time() - started > stale_after
    run = client.get_run(run_id)
    return run.info.status != "RUNNING" or time.time() - last_sign_of_life(run) > stale_after


def revive(study: optuna.Study, client: Any, exclusive: bool, stale_after: float) -> list[int]:
    """Fail the study's dead RUNNING trials and mark their runs KILLED; ask the parameters of
    every killed trial not yet retried again (also those an interrupted sweep failed itself);
    returns the numbers of the trials retried."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not dead(trial, client, exclusive, stale_after):
            continue
        reason = (f"its search died: trial {trial.number} of study {study.study_name!r} was "
                  "left RUNNING; marked FAIL in the study and tried again")
        kill(study, trial._trial_id, reason)
        run_id = trial.user_attrs.get(RUN_ATTR)
        if run_id is not None:
            mark_killed(client, run_id, reason)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(RETRY_ATTR) for t in trials}
    found = []
    for trial in trials:
        if trial.state == TrialState.FAIL and trial.user_attrs.get(KILLED_ATTR) and \
                trial.number not in retried:
            study.enqueue_trial(trial.params, user_attrs={RETRY_ATTR: trial.number})
            found.append(trial.number)
    if found:
        log.warning("study %s: trials %s of a search that died marked FAIL (their runs "
                    "KILLED) and asked again", study.study_name, found)
    return found


def kill(study: optuna.Study, trial_id: int, reason: str) -> None:
    """Mark one RUNNING trial FAIL, tagged `killed` (it will be retried, not counted)."""
    storage = study._storage
    storage.set_trial_user_attr(trial_id, KILLED_ATTR, reason)
    storage.set_trial_state_values(trial_id, TrialState.FAIL)


def mark_killed(client: Any, run_id: str, reason: str) -> None:
    """End the trial's MLflow run KILLED (from RUNNING, or FAILED by the stale-run check)."""
    run = client.get_run(run_id)
    if run.info.status == "FINISHED":
        return
    client.set_tag(run_id, "killed", "true")
    client.set_tag(run_id, "killed_reason", reason)
    end = run.info.end_time or int(last_sign_of_life(run) * 1000)
    client.set_terminated(run_id, "KILLED", end_time=end)
