"""Continuing a search that died: which of its trials were killed, and trying them again.

A search killed outright (SIGKILL, a lost machine, Ctrl-C on the sweep) leaves its trials in
flight RUNNING in the study, and their MLflow runs RUNNING or KILLED. When the same command runs
again (`experiments.sweep.study`), such a trial is dead when no live process can still be
running it:
- with a sqlite study, the first sweep holds a lock on its study (a file beside the database,
  which the OS releases when the process dies): a sweep that gets the lock knows every RUNNING
  trial is dead, at once;
- a second sweep started on the same study while the first runs cooperates with it (so do
  sweeps on a study on a server, PostgreSQL, where no lock spans the machines): for it a RUNNING
  trial is dead when its MLflow run has ended or its heartbeat is older than
  `tracking.stale_after` (tracking.liveness), or, lacking a run, when it started longer ago
  than that; other trials are the other sweep's, in flight.
Sweeps that cooperate take turns to ask (`Claim.turn`: a second lock file, held while one
counts the study's trials and asks its batch), so together they run `n_trials`, not one each.
A dead trial becomes FAIL in the study (tagged `killed`, so it does not count toward
`n_trials`), its MLflow run KILLED (tags `killed=true`, `killed_reason`), and the same
parameters are asked again first (`enqueue_trial`, user attr `retry_of`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from typing import Any

import optuna
from filelock import FileLock, Timeout
from optuna.trial import FrozenTrial, TrialState

from backprop_lab.tracking.liveness import last_sign_of_life
from backprop_lab.tracking.store import sqlite_file

log = logging.getLogger(__name__)
RUN_ATTR = "mlflow_run_id"  # a trial's user attr: its job's MLflow run (set by the job)
KILLED_ATTR, RETRY_ATTR, PRUNED_ATTR = "killed", "retry_of", "pruned_epoch"


class Claim:
    """A sweep's hold on its study: `exclusive` when no other live sweep runs it (sqlite only,
    see the module docstring); `turn()` is held while the sweep counts trials and asks."""

    def __init__(self, url: str, name: str):
        db = sqlite_file(url)
        base = f"{db}.{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}" if db is not None else None
        self.lock = FileLock(f"{base}.lock") if base else None
        self.asking = FileLock(f"{base}.ask.lock") if base else None
        self.exclusive = False
        if self.lock is not None:
            try:
                self.lock.acquire(timeout=0)
                self.exclusive = True
            except Timeout:
                log.warning("study %r is being run by another sweep (it holds %s): this one "
                            "joins it; the two ask trials in turn and stop at n_trials in all",
                            name, self.lock.lock_file)

    def turn(self) -> contextlib.AbstractContextManager[Any]:
        """Held while counting the study's trials and asking a batch: two sweeps never ask for
        the same remaining trials (a study on a server has no such lock: each may ask up to
        a batch more than n_trials)."""
        return self.asking if self.asking is not None else contextlib.nullcontext()

    def release(self) -> None:
        if self.lock is not None and self.exclusive:
            self.lock.release()  # the study is free for the next sweep


def claim(url: str, name: str) -> Claim:
    """This sweep's `Claim` on study `name` at `url`."""
    return Claim(url, name)


def in_flight(trial: FrozenTrial) -> bool:
    """A trial another sweep (or this one) is training now."""
    return trial.state == TrialState.RUNNING


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
