"""Evaluate a logged model on a dataset, without retraining, as a new run linked to the original.

The weights and both scalers come from the run's model.npz artifact. split=auto (the default)
rebuilds the run's own train/val/test split when the data is the run's data (same sha256),
which reproduces its logged metrics exactly, and otherwise scores every row (metrics named
all_*). The evaluation run lands in the original's experiment (or `tracking.experiment`), tagged
`evaluation_of=<id>` and `run_kind=evaluation`, with the metrics and the predictions.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backprop_lab.data import splits
from backprop_lab.data.load import Dataset
from backprop_lab.data.scaling import Scaler
from backprop_lab.errors import ConfigError, DataError, RerunRefused
from backprop_lab.experiments.reproduce.logged_runs import LoggedRun
from backprop_lab.experiments.run.report import say
from backprop_lab.nn.weights import model_from_arrays
from backprop_lab.pipeline import stages
from backprop_lab.pipeline.compose import to_config
from backprop_lab.pipeline.config import SPLIT_MODES, Config, DataConfig, EvaluateCommand
from backprop_lab.tracking import provenance
from backprop_lab.tracking.store import Run, Store, flatten, resolve_uri


def columns(ds: Dataset, features: list[str], targets: list[str]) -> Dataset:
    """`ds` with the model's feature columns in the model's order (a clear error if missing)."""
    missing = [f for f in features if f not in ds.feature_names]
    if missing or ds.target_names != targets:
        raise DataError(f"{ds.source}: the model needs features {features} and targets "
                        f"{targets}; the data has {ds.feature_names} and {ds.target_names}")
    if ds.feature_names == features:
        return ds
    order = [ds.feature_names.index(f) for f in features]
    X = np.ascontiguousarray(ds.X[:, order])
    return Dataset(X, ds.y, features, targets, ds.source, ds.fingerprint)


def evaluate_arrays(arrays: dict[str, Any], ds: Dataset, config: Config,
                    mode: str) -> stages.Evaluation:
    """Metrics (original units) and test predictions of the logged network on `ds`."""
    net = model_from_arrays(arrays, "model.npz")
    x_scaler, y_scaler = Scaler.from_arrays(arrays, "x_"), Scaler.from_arrays(arrays, "y_")
    if mode == "run":  # the same stream and fractions as stages.run: the same rows
        split_rng = stages.streams(config.seed)[0]
        split = splits.split(ds, config.data.val_fraction, config.data.test_fraction, split_rng)
        return stages.evaluate(net, stages.Prepared(split, x_scaler, y_scaler), ds.target_names)
    rows = np.arange(ds.n_samples)
    none = np.array([], dtype=int)
    split = splits.split_by_index(ds, none, none, rows)
    found = stages.evaluate(net, stages.Prepared(split, x_scaler, y_scaler), ds.target_names)
    metrics = {f"all_{k.removeprefix('test_')}": v for k, v in found.metrics.items()}
    return stages.Evaluation(metrics, found.predictions)


@dataclass
class Evaluated:
    """What `evaluate` did: the new run, the run it evaluated, on which rows, the scores."""

    run_id: str
    of_run: str
    split: str  # run: the run's own split; all: every row
    metrics: dict[str, float]


def evaluate(cmd: EvaluateCommand) -> Evaluated:
    """Score the model of `cmd.run_id` and log the evaluation run."""
    if not cmd.run_id:
        raise ConfigError("run_id: give run_id=<id> of a logged training run")
    if cmd.split not in SPLIT_MODES:
        raise ConfigError(f"split: {cmd.split!r} is not one of {', '.join(SPLIT_MODES)}")
    uri = resolve_uri(cmd.tracking.uri)
    client = Store(uri, "Default").client
    with tempfile.TemporaryDirectory(prefix="backprop-evaluate-") as tmp:
        original = LoggedRun(client, cmd.run_id, Path(tmp))
        cfg = original.config(uri, cmd.tracking.experiment)
        config = to_config(cfg)
        arrays = original.arrays()
        if not arrays:
            raise RerunRefused(f"run {cmd.run_id} logged no model.npz (a cross-validation run "
                               "or a sweep parent): nothing to evaluate")
        data_cfg = cmd.data if cmd.data is not None else config.data
        names = [str(n) for n in arrays["feature_names"]], [str(n) for n in arrays["target_names"]]
        ds = columns(stages.load(data_cfg), *names)
        same = ds.fingerprint == original.tags.get("data_fingerprint")
        mode = cmd.split if cmd.split != "auto" else ("run" if same else "all")
        found = evaluate_arrays(arrays, ds, config, mode)
        report(original, found.metrics, mode)
        store = Store(uri, str(cfg.tracking.experiment))
        run_id = log_evaluation(store, original, data_cfg, ds, mode, found, Path(tmp))
    say(f"evaluation run {run_id} of run {cmd.run_id} at {uri}")
    return Evaluated(run_id, str(cmd.run_id), mode, dict(found.metrics))


def report(original: LoggedRun, metrics: dict[str, float], mode: str) -> None:
    say(f"\nmodel of run {original.run_id} on {'its own split' if mode == 'run' else 'all rows'}")
    for name, value in metrics.items():
        logged = original.metrics.get(name)
        note = ""
        if logged is not None and name.startswith("test_"):
            note = "  = logged" if logged == value else f"  logged {logged!r}"
        say(f"  {name:<12}{value:>14.6g}{note}")


def log_evaluation(store: Store, original: LoggedRun, data_cfg: DataConfig, ds: Dataset,
                   mode: str, found: stages.Evaluation, folder: Path) -> str:
    logged = {k: v for k, v in original.metrics.items() if k.startswith("test_")}
    matches = mode == "run" and all(
        found.metrics.get(k) == v or (math.isnan(v) and math.isnan(found.metrics.get(k, 0.0)))
        for k, v in logged.items())
    same = ds.fingerprint == original.tags.get("data_fingerprint")
    tags = {"evaluation_of": original.run_id, "run_kind": "evaluation", "eval_split": mode,
            "data_fingerprint": ds.fingerprint, "data_source": ds.source,
            "data_shape": f"{ds.X.shape[0]}x{ds.X.shape[1]}", "same_data_as_run": str(same).lower(),
            "git_commit": provenance.git_state()["commit"], **provenance.environment()}
    if mode == "run":
        tags["matches_logged_test_metrics"] = str(matches).lower()
    name = f"eval-{original.run.info.run_name or original.run_id[:8]}"
    run = Run.start(store, name, tags)
    try:
        data_params = {str(k): v for k, v in vars(data_cfg).items()}
        run.log_params({**flatten(data_params, "data."), "split": mode,
                        "evaluated_run": original.run_id})
        run.log_metrics(found.metrics)
        out = folder / "evaluation"
        out.mkdir()
        found.predictions.to_csv(out / f"predictions_{'test' if mode == 'run' else 'all'}.csv",
                                 index=False)
        run.log_artifacts(out)
    except BaseException:
        run.end("FAILED")
        raise
    run.end("FINISHED")
    return run.run_id
