"""Hydra callbacks. `SweepTracking` groups a multirun under one MLflow parent run
(`backprop_lab.experiments.sweep.parent.SweepRun`): created in `on_multirun_start`, before any job,
ended with a summary in `on_multirun_end` (or FAILED at exit when the sweep raised).

Hydra instantiates callbacks in single runs too: MLflow is imported only when a multirun starts.
"""

from __future__ import annotations

import atexit
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf


def swept_keys(config: DictConfig) -> list[str]:
    """The config keys a multirun varies: sweep overrides on the command line (`a=1,2`) and the
    keys of `hydra.sweeper.params` (presets in conf/sweep/, Optuna search spaces)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    task = [str(o) for o in config.hydra.overrides.task]
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    keys = [str(k) for k in params]
    for override in OverridesParser.create().parse_overrides(task):
        key = override.get_key_element().lstrip("+~")
        if override.is_sweep_override() and key not in keys:
            keys.append(key)
    return keys


def hydra_tags(config: DictConfig) -> dict[str, str]:
    """What the parent run records of how Hydra ran the sweep."""
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    return {
        "sweeper": str(OmegaConf.select(config, "hydra.sweeper._target_")).rsplit(".", 1)[-1],
        "launcher": str(OmegaConf.select(config, "hydra.launcher._target_")).rsplit(".", 1)[-1],
        "hydra_overrides": " ".join(str(o) for o in config.hydra.overrides.task),
        **{f"sweep_param.{k}": str(v) for k, v in params.items()},
    }


def end_leftover_fluent_run() -> None:
    """Jobs of the basic launcher share one process: never let a job inherit an active
    fluent-API run (or its stack) from the previous one."""
    if "mlflow" not in sys.modules:
        return
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run("FAILED")


class SweepTracking(Callback):
    """One MLflow parent run per multirun; see the module docstring."""

    def __init__(self, print_summary: bool = True) -> None:
        self.print_summary = print_summary
        self._sweep: Any = None  # experiments.sweep.parent.SweepRun, only in the launching process
        self._ended = False

    def __getstate__(self) -> dict[str, Any]:
        # the joblib launcher pickles the callbacks to its workers: send the settings only
        return {"print_summary": self.print_summary, "_sweep": None, "_ended": True}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from backprop_lab.experiments.sweep.parent import SweepRun

        choices = OmegaConf.select(config, "hydra.runtime.choices") or {}
        self._sweep = SweepRun.start(
            config.tracking.uri, str(config.tracking.experiment),
            Path(str(config.hydra.sweep.dir)).resolve(), choices.get("sweep") or "cli",
            swept_keys(config), hydra_tags(config), float(config.tracking.stale_after))
        self._ended = False
        atexit.register(self._end_if_running)  # a sweep that raises never calls on_multirun_end

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        end_leftover_fluent_run()

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        end_leftover_fluent_run()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._finish("FINISHED")

    def _end_if_running(self) -> None:
        if self._sweep is not None and not self._ended:
            self._finish("FAILED")

    def _finish(self, status: str) -> None:
        sweep, self._ended = self._sweep, True
        if sweep is None:
            return
        summary = sweep.finish(status)
        if self.print_summary:
            print(f"\n{summary.text()}\nparent run {sweep.parent.run_id} ({status}); compare the "
                  f"jobs with: python -m pipelines.compare sweep_id={summary.sweep_id} "
                  f"tracking.uri={sweep.parent.store.uri}", flush=True)
