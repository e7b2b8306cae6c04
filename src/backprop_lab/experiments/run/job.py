"""One tracked training job: the five stages as one MLflow run, whatever launched it.

`run_job` takes a composed config and what the launcher knows (the overrides, Hydra's output
folder, the sweep it belongs to) as plain values, so the Hydra command (`pipelines.train`),
reruns and `backprop_lab.run` share it. Every input error (config, data, weights file) is raised
before the run is created, so a refused job logs nothing; once the run exists, its status tells
how it ended: FINISHED, FAILED (diverged, tag `diverged`; or an error, tag `error`), KILLED.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from backprop_lab.data.load import Dataset
from backprop_lab.errors import BackpropLabError, Interrupted, TrackingLost
from backprop_lab.experiments.run import identity, inputs, record
from backprop_lab.experiments.run.artifacts import write_artifacts, write_model, write_provenance
from backprop_lab.experiments.run.monitor import Monitor, Pruned, Watched, end_pruned
from backprop_lab.experiments.run.record import JobOutcome
from backprop_lab.experiments.run.report import (
    DESCRIPTION,
    Story,
    describe,
    print_report,
    print_run_line,
    say,
    target_units,
)
from backprop_lab.experiments.run.scoring import score_cells
from backprop_lab.nn import diagnostics
from backprop_lab.pipeline import crossval, stacking, stages
from backprop_lab.pipeline.compose import to_config
from backprop_lab.pipeline.config import Config, hidden_layers, scored_on_cells
from backprop_lab.tracking import provenance, registry
from backprop_lab.tracking.liveness import Heartbeat, mark_stale
from backprop_lab.tracking.spool import unreachable
from backprop_lab.tracking.store import MetricBuffer, Run, Store, resolve_uri

log = logging.getLogger(__name__)


def run_name(config: Config, overrides: list[str], swept: list[str] | None = None) -> str:
    """`lr=0.01,depth=2`: the last part of each override's key, and its value; in a sweep only
    the swept keys (`swept`, from sweep.json). A long number (a search's
    `train.lr=0.0056279320474151686`) is named by 4 significant digits (`lr=0.005628`); the
    params keep it whole."""
    if config.tracking.run_name:
        return config.tracking.run_name
    short = []
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if key.startswith(("tracking.", "hydra")) or (swept and key not in swept):
            continue
        short.append(f"{key.split('.')[-1]}={short_number(value)}")
    widths = "x".join(str(w) for w in hidden_layers(config.model)) or "no-hidden"
    return ",".join(short)[:200] or f"{config.data.name}-{widths}"


def short_number(value: str) -> str:
    """`value`, or 4 significant digits of it when it is a number of more than 8 characters."""
    try:
        return f"{float(value):.4g}" if len(value) > 8 else value
    except ValueError:
        return value


def start_tags(config: Config, overrides: list[str], git: dict[str, str]) -> dict[str, str]:
    return {
        "seed": str(config.seed),
        "hydra_overrides": " ".join(overrides),
        "git_commit": git["commit"],
        "git_dirty": git["dirty"],
        **provenance.environment(),
        "blas_threads_training": str(stacking.BLAS_THREADS),  # `blas` says the library's own
    }


def run_job(cfg: DictConfig, overrides: list[str], hydra_dir: Path | None,
            sweep: dict[str, Any] | None = None, extra_tags: dict[str, str] | None = None,
            name: str | None = None, reuse: bool = False,
            monitor: Monitor | None = None) -> JobOutcome:
    """Check the inputs, then train and evaluate as one MLflow run. In a sweep (`sweep`, from
    sweep.json), the run is a child of the sweep's parent; with `reuse`, a job that a finished
    run already did (same config_hash) is not trained again, unless `rerun.force`. A `monitor`
    (a search's trial) gets the job's score every `train.report_every` epochs and may stop it
    (experiments.run.monitor: the run then ends pruned)."""
    config = to_config(cfg)
    cfg = record.with_hidden(cfg, hidden_layers(config.model))  # what config.yaml says
    ds = stages.load(config.data)
    stages.check_fits(config, ds)
    sweep = sweep or {}
    wait = config.tracking.spool_wait
    store = Store(resolve_uri(config.tracking.uri), str(config.tracking.experiment),
                  sweep.get("experiment_id", ""), wait=wait if sweep else 0.0, spool_wait=wait)
    mark_stale(store.client, [store.experiment_id], config.tracking.stale_after)
    register = None if sweep else config.tracking.register  # a sweep registers its best job's
    if register:
        registry.check(store.client, store.uri, register)
    git = provenance.git_state()
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(resolved, dict)
    chash = identity.config_hash(resolved, ds.fingerprint, git["commit"], git["diff"])
    if reuse and git["commit"] != "unknown" and not config.rerun.force:
        found = identity.find_reusable(store.client, store.experiment_id, chash)
        if found is not None:
            return reused(store, found, sweep, overrides)
    tags = {**start_tags(config, overrides, git), **(extra_tags or {}), "config_hash": chash}
    if sweep:
        tags["sweep_id"] = sweep["sweep_id"]
    name = name or run_name(config, overrides, sweep.get("swept"))
    run = Run.start(store, name, tags, sweep.get("parent_run_id"), output_dir=hydra_dir)
    watched = Watched(monitor) if monitor is not None else None
    cores = stacking.cores(stacking.workers(config.train.n_jobs, in_sweep=bool(sweep)))
    try:
        with Heartbeat(run), sigterm_as_interrupt(), cores:
            if monitor is not None:
                monitor.started(run.run_id)
            outcome = tracked_pipeline(cfg, config, run, hydra_dir, ds, git["diff"], name,
                                       watched)
        if watched is not None:
            watched.log(run)
    except Pruned as err:
        assert watched is not None
        return end_pruned(run, err, watched)
    except KeyboardInterrupt as err:
        how = err.signal_name if isinstance(err, Interrupted) else "SIGINT"
        end_run(run, "KILLED", {"interrupted": "true", "stop_reason": f"interrupted by {how}"})
        raise
    except TrackingLost:
        raise  # the run ended; the server did not take it all (the spool is named)
    except Exception as err:
        end_run(run, "FAILED", {"error": f"{type(err).__name__}: {err}"})
        if run.unrecorded and not isinstance(err, BackpropLabError):
            raise run.lost(err) from err  # the store went away: say what it never got
        raise
    if register and outcome.model_uri:  # after the run ended: a failure here keeps it
        version = registry.register(store.client, register, outcome.model_uri, run.run_id,
                                    f"run {run.run_id} ({name}): {record.scores_text(outcome)}")
        say(f"registered model {register!r} version {version} (models:/{register}/{version})")
    return outcome


def end_run(run: Run, status: str, tags: dict[str, str]) -> None:
    """End a run that failed, as well as the store allows: when the store itself is what failed
    (a server gone), the error that stopped the run is the one to report, and the run is left
    for `tracking.liveness.mark_stale` to end."""
    try:
        run.set_tags(tags)
        run.end(status)
    except Exception as err:
        log.warning("run %s could not be marked %s: %s", run.run_id, status, err)


def reused(store: Store, run: Any, sweep: dict[str, Any], overrides: list[str]) -> JobOutcome:
    """Report a finished run of the same config, code and data instead of training again; the
    sweep parent gets a tag `reused.<run_id>` = the job's overrides."""
    run_id, status, metrics = run.info.run_id, run.info.status, dict(run.data.metrics)
    log.info("reused run %s (%s): same config, code and data (config_hash %s); "
             "rerun.force=true trains it again", run_id, status, run.data.tags["config_hash"][:12])
    if sweep.get("parent_run_id"):
        Run(store, sweep["parent_run_id"]).set_tags(
            {f"{identity.REUSE_TAG}{run_id}": " ".join(overrides) or "-"})
    return JobOutcome(run_id, status, metrics, identity.objective(metrics, status))


def tracked_pipeline(cfg: DictConfig, config: Config, run: Run, hydra_dir: Path | None,
                     ds: Dataset, git_diff: str, name: str = "",
                     report: Watched | None = None) -> JobOutcome:
    """The stages inside an open run: params, data tags, training with per-epoch metrics in
    batches, final metrics, artifacts, the served model (after the final metrics, so that it
    links them), the description and the run's end status. `report` gets the job's score every
    `train.report_every` epochs (a search's trial; it raises `Pruned` to stop)."""
    hidden = hidden_layers(config.model)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    run.log_params(record.run_params(resolved, hidden))  # type: ignore[arg-type]
    run.set_tags({"data_fingerprint": ds.fingerprint, "data_source": ds.source,
                  "data_shape": f"{ds.X.shape[0]}x{ds.X.shape[1]}"})
    if scored_on_cells(config):
        inputs.log_inputs(run, config, ds, None)
        with tempfile.TemporaryDirectory(prefix="backprop-lab-") as tmp:
            write_provenance(Path(tmp), cfg, git_diff, hydra_dir)
            run.log_artifacts(Path(tmp))
        return score_cells(config, ds, run, report)
    buffer = MetricBuffer(run)
    setup = stages.set_up(config, ds)
    inputs.log_inputs(run, config, ds, setup.prepared.split)
    started = time.perf_counter()
    try:
        result = stages.complete(config, setup, [buffer], report)
    except (KeyboardInterrupt, Pruned):
        save_interrupted(run, buffer, cfg, setup, git_diff, hydra_dir)
        raise
    train_seconds = time.perf_counter() - started
    buffer.flush()
    patience, history, first = config.train.patience, result.history, result.histories[0]
    blown_up = record.diverged_point(first)  # member 0's curve is the one logged
    if blown_up:
        run.log_metrics(blown_up, step=first.diverged_epoch or 0)
    metrics = record.final_metrics(result.evaluation.metrics, patience, history)
    step = record.final_step(patience, first)
    run.log_metrics(metrics, step=step)
    model_uri: str | None = None
    with tempfile.TemporaryDirectory(prefix="backprop-lab-") as tmp:
        folder = Path(tmp)
        model_npz = write_artifacts(folder, cfg, result, git_diff, hydra_dir,
                                    record.best_kept(patience, first))
        crossval.scores_table([crossval.Cell(0, 0, result)]).to_csv(folder / "scores.csv",
                                                                    index=False)
        run.log_artifacts(folder)
        if config.tracking.log_model and not history.diverged:
            from backprop_lab.tracking.served_model import log_pyfunc_model  # mlflow.pyfunc: ~1 s

            try:
                if run.spooling:  # MLflow's model API cannot be spooled: do not wait for it
                    raise ConnectionError("the tracking server is away")
                model_uri = log_pyfunc_model(run, model_npz, ds,
                                             result.prepared.split.X_test[:5],
                                             record.model_name(name), step)
                run.set_tags({"model_uri": model_uri})
            except Exception as err:
                if not (run.store.remote and unreachable(err)):
                    raise
                log.warning("model not logged as an MLflow model: the server is away (the "
                            "weights are in the spooled artifacts, model.npz)")
                run.set_tags({"model_not_logged": "the tracking server was away"})
    diag_flags = diagnostics.flags(first.diag)
    if diag_flags:
        run.set_tags({f"diag.{flag}": where for flag, where in diag_flags.items()})
        log.warning("gradient flow: %s", "; ".join(f"{f} ({w})" for f, w in diag_flags.items()))
    status = "FAILED" if history.diverged else "FINISHED"
    stopped = record.how_it_stopped(patience, history)
    if config.model.ensemble > 1 and history.diverged:
        stopped += f" (ensemble member {result.diverged_member})"
    story = Story(status, metrics, stopped, ds.target_names[0],
                  target_units(config.data.name, ds.target_names[0]), history.diverged,
                  config.train.lr, record.network_text(config, ds, hidden), flags=diag_flags)
    tags = {DESCRIPTION: describe(story), "stop_reason": history.stop_reason,
            "seconds_training": f"{train_seconds:.3f}",
            "seconds_mlflow": f"{run.seconds_in_mlflow:.3f}"}
    if record.best_kept(patience, history):
        tags["best_epoch"] = str(history.best_epoch)
    if patience is not None:  # what early stopping watched
        tags["early_stopping_on"] = "val_cost" if history.val_cost else "train_cost"
    run.set_tags(tags)
    if history.diverged:
        run.set_tags({"diverged": "true", "diverged_epoch": str(history.diverged_epoch),
                      "last_finite_cost": str(history.last_finite_cost)})
        if config.model.ensemble > 1:  # the first diverged member (the others trained on)
            run.set_tags({"diverged_member": str(result.diverged_member)})
        say(f"\nDIVERGED: {history.stop_reason}. The run is recorded as FAILED with tag "
              "diverged=true; try a smaller train.lr.")
    if patience is not None and not history.val_cost and not history.diverged:
        say(f"\nnote: {stopped}")  # early stopping on the training cost: say so
    print_report(result, config.eval.n_examples)
    say(f"\ntraining {train_seconds:.2f} s, MLflow calls {run.seconds_in_mlflow:.2f} s")
    print_run_line(run.run_id, status, run.store.experiment, run.store.experiment_id,
                   run.store.uri)
    run.end(status)
    return JobOutcome(run.run_id, status, metrics, identity.objective(metrics, status),
                      result.network, model_uri)


def save_interrupted(run: Run, buffer: MetricBuffer, cfg: DictConfig, setup: stages.Setup,
                     git_diff: str, hydra_dir: Path | None) -> None:
    """An interrupted run keeps what inspection and a rerun need: the per-epoch metrics so far,
    config.yaml and provenance, and model.npz with the weights as they were when it stopped."""
    with contextlib.suppress(Exception), tempfile.TemporaryDirectory(prefix="backprop-") as tmp:
        buffer.flush()
        write_provenance(Path(tmp), cfg, git_diff, hydra_dir)
        write_model(Path(tmp), setup.dataset, setup.prepared, setup.network)
        run.log_artifacts(Path(tmp))


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside: SIGTERM (`timeout`, `docker stop`, SLURM's time limit) raises `Interrupted`,
    as Ctrl-C raises KeyboardInterrupt, so the run ends KILLED with what it has saved. Only
    the main thread can take signals; elsewhere (some launchers' workers) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name, signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
