"""Hydra callbacks. `SweepTracking` groups a multirun under one MLflow parent run.

`on_multirun_start` (once, in the launching process, before any job): create the store and the
experiment, create the parent run tagged `sweep_id`, and write `<hydra.sweep.dir>/sweep.json`,
which every job reads (`pipelines.job.sweep_parent`) to become a child of the parent in the same
experiment; no job ever creates the database or the experiment, so parallel workers cannot race.
`on_multirun_end` ends the parent FINISHED with a summary of its children.

Hydra instantiates callbacks in single runs too: MLflow is imported only when a multirun starts.
"""

from __future__ import annotations

import atexit
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

SWEEP_FILE = "sweep.json"
SWEEP_RECORDS = (SWEEP_FILE, "multirun.yaml", "optimization_results.yaml")


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
        self._parent: Any = None  # tracking.Run, only in the launching process
        self._ended = False
        self._sweep_id = ""
        self._sweep_dir: Path | None = None

    def __getstate__(self) -> dict[str, Any]:
        # the joblib launcher pickles the callbacks to its workers: send the settings only
        return {"print_summary": self.print_summary, "_parent": None, "_ended": True,
                "_sweep_id": self._sweep_id, "_sweep_dir": None}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from backprop_lab import tracking

        uri = config.tracking.uri or tracking.default_uri()
        store = tracking.Store(uri, str(config.tracking.experiment))  # migrations happen here, once
        sweep_id = uuid.uuid4().hex
        sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        choices = OmegaConf.select(config, "hydra.runtime.choices") or {}
        preset = choices.get("sweep") or "cli"
        swept = swept_keys(config)
        tags = {
            "sweep_id": sweep_id,
            "sweep_role": "parent",
            "sweep_preset": preset,
            "sweep_dir": str(sweep_dir),
            "swept": ",".join(swept),
            "sweeper": str(OmegaConf.select(config, "hydra.sweeper._target_")).rsplit(".", 1)[-1],
            "launcher": str(OmegaConf.select(config, "hydra.launcher._target_")).rsplit(".", 1)[-1],
            "hydra_overrides": " ".join(str(o) for o in config.hydra.overrides.task),
        }
        params = OmegaConf.select(config, "hydra.sweeper.params") or {}
        tags.update({f"sweep_param.{k}": str(v) for k, v in params.items()})
        name = f"sweep-{preset}-{sweep_id[:8]}"
        self._parent = tracking.Run.start(store, name, tags)
        self._sweep_id, self._sweep_dir, self._ended = sweep_id, sweep_dir, False
        sweep_dir.mkdir(parents=True, exist_ok=True)
        marker = {"parent_run_id": self._parent.run_id, "sweep_id": sweep_id,
                  "experiment_id": store.experiment_id, "swept": swept}
        (sweep_dir / SWEEP_FILE).write_text(json.dumps(marker, indent=2))
        print(f"sweep {sweep_id}: parent MLflow run {self._parent.run_id} in experiment "
              f"{store.experiment!r} ({store.experiment_id}) at {uri}", flush=True)
        atexit.register(self._end_if_running)  # a sweep that raises never calls on_multirun_end

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        end_leftover_fluent_run()

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        end_leftover_fluent_run()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._finish("FINISHED")

    def _end_if_running(self) -> None:
        if self._parent is not None and not self._ended:
            self._finish("FAILED")

    def _finish(self, status: str) -> None:
        from backprop_lab import sweeps

        parent, self._ended = self._parent, True
        if parent is None:
            return
        try:
            children = sweeps.children(parent.client, parent.run_id)
            summary = sweeps.summarize(children, self._sweep_id, parent_run_id=parent.run_id)
            parent.set_tags(summary.tags())
            if summary.best_value is not None:
                parent.log_metrics({f"sweep_best.{summary.metric}": summary.best_value})
            records = [self._sweep_dir / n for n in SWEEP_RECORDS] if self._sweep_dir else []
            for path in records:  # the marker, Hydra's sweep config, Optuna's best trial
                if path.is_file():
                    parent.client.log_artifact(parent.run_id, str(path))
        finally:
            parent.end(status)
        if self.print_summary:
            print(f"\n{summary.text()}\nparent run {parent.run_id} ({status}); compare the jobs "
                  f"with: python -m pipelines.compare sweep_id={summary.sweep_id} "
                  f"tracking.uri={parent.store.uri}", flush=True)
