"""Hydra callbacks. `SweepTracking` groups a multirun under one MLflow parent run
(`backprop_lab.experiments.sweep.parent.SweepRun`): created in `on_multirun_start`, before any job,
ended with a summary in `on_multirun_end` (or FAILED at exit when the sweep raised).

Hydra instantiates callbacks in single runs too: MLflow is imported only when a multirun starts.
"""

from __future__ import annotations

import atexit
import json
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pipelines.cli import on_failure


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


def sweep_params(config: DictConfig) -> dict[str, str]:
    """What the parent run logs as params, so that the runs table filters and groups sweeps:
    every leaf of the sweep's base config under its dotted key (as the jobs log theirs), and each
    swept key with the values it takes, as a list string (`train.lr` = `[0.001, 0.01]`; a search
    space that is no list, e.g. Optuna's `interval(...)`, as written)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from backprop_lab.tracking.store import flatten

    base = {k: v for k, v in config.items() if k != "hydra"}
    try:
        tree = OmegaConf.to_container(OmegaConf.create(base), resolve=True)
    except Exception:  # an interpolation only a job can resolve: log it as written
        tree = OmegaConf.to_container(OmegaConf.create(base), resolve=False)
    params = flatten(tree)  # type: ignore[arg-type]
    spaces = {str(k): str(v) for k, v in (OmegaConf.select(config, "hydra.sweeper.params")
                                          or {}).items()}
    task = [str(o) for o in config.hydra.overrides.task]
    spaces.update({o.split("=", 1)[0].lstrip("+~"): o.split("=", 1)[1] for o in task if "=" in o
                   and o.split("=", 1)[0].lstrip("+~") in swept_keys(config)})
    for key, space in spaces.items():
        try:
            [parsed] = OverridesParser.create().parse_overrides([f"{key}={space}"])
            values = (f"[{', '.join(parsed.sweep_string_iterator())}]"
                      if parsed.is_discrete_sweep() else space)
        except Exception:
            values = space
        params[key] = values[:6000]
    return params


def refuse(sweep_dir: Path, err: Exception) -> None:
    """The marker every job reads, saying why the sweep cannot start (`pipelines.job`)."""
    from backprop_lab.experiments.sweep.parent import SWEEP_FILE

    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / SWEEP_FILE).write_text(json.dumps(
        {"refused": str(err), "exit_status": getattr(err, "exit_status", 1)}))


def check_register(config: DictConfig) -> None:
    """`tracking.register` with a sweep whose jobs log no model: refused before the parent run
    exists (each job would refuse it too, after the sweep started)."""
    from backprop_lab.pipeline.config import check_register_fits

    def pick(key: str, default: int) -> int:
        value = OmegaConf.select(config, key)
        return default if value is None else int(value)

    cells = (pick("eval.cv_folds", 0) >= 2 or pick("eval.repeats", 1) > 1
             or pick("eval.first_repeat", 0) > 0 or pick("eval.baselines", 0) > 0)
    check_register_fits(OmegaConf.select(config, "tracking.register"),
                        bool(pick("tracking.log_model", 1)), cells)


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


def expected_jobs(config: DictConfig) -> int | None:
    """How many jobs the multirun launches: the product of its sweep values (command line and
    `hydra.sweeper.params`), Optuna's `n_trials`; None when not known ahead (racing rounds)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if OmegaConf.select(config, "hydra.sweeper.n_trials") is not None:
        return int(OmegaConf.select(config, "hydra.sweeper.n_trials"))
    if OmegaConf.select(config, "eval.race") and int(config.eval.repeats) > 1:
        return None
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    task = [str(o) for o in config.hydra.overrides.task]
    sizes: dict[str, int] = {}
    try:
        parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()]
                                                          + task)
        for o in parsed:
            if o.is_sweep_override() and o.is_discrete_sweep():
                sizes[o.get_key_element()] = len(list(o.sweep_string_iterator()))
    except Exception:  # an unusual override: the count is only for the progress line
        return None
    total = 1
    for n in sizes.values():
        total *= n
    return total


def print_end(sweep: Any, summary: Any, status: str) -> None:
    """One table at the end: the jobs ranked with their verdicts, then each link once."""
    from backprop_lab.experiments.sweep import console
    from backprop_lab.tracking import ui

    parent = sweep.parent
    uri = parent.store.uri
    base = uri if uri.startswith(("http://", "https://")) else ui.base_url()
    eid = parent.store.experiment_id
    links = {"parent run": ui.run_url(base, eid, parent.run_id)}
    if summary.best_run_id:
        links = {f"best run ({summary.best_name})": ui.run_url(base, eid, summary.best_run_id),
                 **links}
    table = sweep.table if sweep.table is not None else None
    counts = summary.text().splitlines()[0]
    print(f"\n{counts} ({status.lower()})")
    if table is not None and not table.empty:
        shown = table.drop(columns=[c for c in ("reused",) if c in table])
        print(console.end_text(shown, summary.metric, links, summary.notes))
    else:
        print("\n".join([*summary.notes, *(f"{k}: {v}" for k, v in links.items())]))
    print(f"all columns, plots and the report: python -m pipelines.compare "
          f"sweep_id={summary.sweep_id[:8]} tracking.uri={uri}", flush=True)


class SweepTracking(Callback):
    """One MLflow parent run per multirun; see the module docstring."""

    def __init__(self, print_summary: bool = True) -> None:
        self.print_summary = print_summary
        self._sweep: Any = None  # experiments.sweep.parent.SweepRun, only in the launching process
        self._progress: Any = None  # experiments.sweep.progress.SweepProgress, the same
        self._ended = False

    def __getstate__(self) -> dict[str, Any]:
        # the joblib launcher pickles the callbacks to its workers: send the settings only
        return {"print_summary": self.print_summary, "_sweep": None, "_progress": None,
                "_ended": True}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from backprop_lab.errors import BackpropLabError
        from backprop_lab.experiments.sweep.parent import SweepRun

        choices = OmegaConf.select(config, "hydra.runtime.choices") or {}
        sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        try:
            check_register(config)
            self._sweep = SweepRun.start(
                config.tracking.uri, str(config.tracking.experiment), sweep_dir,
                choices.get("sweep") or "cli", swept_keys(config), hydra_tags(config),
                float(config.tracking.stale_after), OmegaConf.select(config, "tracking.register"),
                sweep_params(config), float(config.tracking.spool_wait))
        except BackpropLabError as err:  # Hydra only warns and launches the jobs: they refuse
            refuse(sweep_dir, err)
            raise
        self._ended = False
        # a sweep that raises never calls on_multirun_end: the command's failure ends it, else
        # (a library caller) the exit
        on_failure(self._end_if_running)
        atexit.register(self._end_if_running)
        from backprop_lab.experiments.sweep.progress import SweepProgress

        parent = self._sweep.parent
        self._progress = SweepProgress(parent.client, parent.store.experiment_id, parent.run_id,
                                       expected_jobs(config)).start()

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        end_leftover_fluent_run()

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        end_leftover_fluent_run()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._finish("FINISHED")

    def _end_if_running(self, status: str = "FAILED") -> None:
        if self._sweep is None or self._ended:
            return
        try:
            self._finish(status)
        except Exception as err:  # never a traceback on the way out: say what is left undone
            self._ended = True
            print(f"error: the sweep's parent run {self._sweep.parent.run_id} was not ended "
                  f"{status}: {type(err).__name__}: {' '.join(str(err).split())[:300]}",
                  file=sys.stderr, flush=True)

    def _finish(self, status: str) -> None:
        sweep, self._ended = self._sweep, True
        if sweep is None:
            return
        if self._progress is not None:
            self._progress.stop()
        summary = sweep.finish(status)
        if self.print_summary:
            print_end(sweep, summary, status)
        if sweep.register and status == "FINISHED":  # RegistrationFailed: exit 1, sweep kept
            print(sweep.register_best().text, flush=True)
