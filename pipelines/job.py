"""The training task as Hydra runs it: read the job's Hydra context, then `run_job`.

Kept out of `__main__` so that parallel launchers (joblib, Ray) import it in their workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from backprop_lab.errors import ConfigError, Diverged, InputError, RunFailed
from backprop_lab.experiments.run.job import run_job
from backprop_lab.experiments.run.record import JobOutcome
from backprop_lab.experiments.run.report import QUIET
from backprop_lab.plots import worker as plot_worker

# launchers whose jobs run in the command's own process and end one after another
IN_THIS_PROCESS = ("BasicLauncher", "StackedLauncher")


def hydra_context() -> tuple[list[str], Path | None, bool]:
    """The job's overrides, its Hydra output folder (holding .hydra/), and whether in a multirun."""
    if not HydraConfig.initialized():
        return [], None, False
    hc = HydraConfig.get()
    return list(hc.overrides.task), Path(hc.runtime.output_dir), hc.mode == RunMode.MULTIRUN


def sweep_parent(multirun: bool) -> dict[str, Any]:
    """The sweep's parent run and id, written by `pipelines.callbacks.SweepTracking`."""
    if not multirun:
        return {}
    from backprop_lab.experiments.sweep.parent import read_marker  # scipy, statsmodels: sweeps

    hc = HydraConfig.get()  # a relative sweep dir is the launching process's: Ray cluster
    return read_marker(Path(hc.runtime.cwd) / hc.sweep.dir)  # workers start elsewhere


def trial_monitor(cfg: DictConfig, multirun: bool) -> Any:
    """The Optuna trial this job is (`tracking.trial`, set by hydra/sweeper=optuna), reached
    through the study's storage that <sweep dir>/study.json names; None outside a search."""
    trial = cfg.tracking.get("trial")
    if trial is None:
        return None
    if not multirun:
        raise ConfigError("tracking.trial: set by hydra/sweeper=optuna only, in a multirun")
    from backprop_lab.experiments.sweep.trial import TrialMonitor  # optuna: searches only

    hc = HydraConfig.get()
    return TrialMonitor(Path(hc.runtime.cwd) / hc.sweep.dir, int(trial))


def train_job(cfg: DictConfig) -> JobOutcome:
    """One tracked run; raises `Diverged` outside a multirun. In a multirun, a job that a
    finished run already did (same config_hash) is reused, unless rerun.force."""
    overrides, hydra_dir, multirun = hydra_context()
    if multirun:
        launcher = str(HydraConfig.get().launcher.get("_target_", ""))
        if launcher.endswith(IN_THIS_PROCESS):  # jobs here, ending one at a time: one worker
            plot_worker.start()  # draws each job's plots while the job writes the rest
        else:  # in a launcher's worker processes, side by side: the jobs draw inline
            plot_worker.stop()
    if multirun and cfg.eval.race:
        sweeper = str(HydraConfig.get().sweeper.get("_target_", ""))
        if not sweeper.endswith("RacingSweeper"):
            raise ConfigError("eval.race=true: racing needs hydra/sweeper=racing (the "
                              f"sweep=lr_depth preset sets it); this sweep uses {sweeper}")
    sweep = sweep_parent(multirun)
    if "refused" in sweep:  # the sweep could not start (SweepTracking): no job trains
        kind = InputError if sweep.get("exit_status") == 2 else RunFailed
        raise kind(str(sweep["refused"]))
    quiet = QUIET.set(multirun and not HydraConfig.get().verbose)  # the sweep prints a table
    try:
        outcome = run_job(cfg, overrides, hydra_dir, sweep, reuse=multirun,
                          monitor=trial_monitor(cfg, multirun))
    finally:
        QUIET.reset(quiet)
    if outcome.status == "FAILED" and not multirun:
        raise Diverged(f"run {outcome.run_id} diverged; see its tags in MLflow")
    return outcome
