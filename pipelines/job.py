"""One training job: the five stages with MLflow tracking, whatever launcher runs it.

Kept out of `__main__` so that parallel launchers (joblib, Ray) can import it in their workers.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from backprop_lab import plots, provenance, reproduce, stages, tracking
from backprop_lab.config import Config, hidden_layers, validate
from backprop_lab.data import Dataset
from backprop_lab.weights import save_network


@dataclass
class JobOutcome:
    run_id: str
    status: str  # FINISHED or FAILED (diverged)
    metrics: dict[str, float]
    objective: float  # what a sweeper minimises: the validation (or test) MSE in original units


class Diverged(RuntimeError):
    """Training diverged; the run is recorded as FAILED with the epoch and last finite cost."""


def to_config(cfg: DictConfig) -> Config:
    """The typed, range-checked config (a `ConfigError` names any bad key)."""
    config = OmegaConf.to_object(cfg)
    assert isinstance(config, Config)
    return validate(config)


def hydra_context() -> tuple[list[str], Path | None, bool]:
    """The job's overrides, its Hydra output folder (holding .hydra/), and whether in a multirun."""
    if not HydraConfig.initialized():
        return [], None, False
    hc = HydraConfig.get()
    return list(hc.overrides.task), Path(hc.runtime.output_dir), hc.mode == RunMode.MULTIRUN


def run_name(config: Config, overrides: list[str], swept: list[str] | None = None) -> str:
    """`lr=0.01,depth=2`: the last part of each override's key, and its value; in a sweep only
    the swept keys (`swept`, from sweep.json)."""
    if config.tracking.run_name:
        return config.tracking.run_name
    short = []
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if key.startswith(("tracking.", "hydra")) or (swept and key not in swept):
            continue
        short.append(f"{key.split('.')[-1]}={value}")
    return ",".join(short)[:200] or f"{config.data.name}-{hidden_layers(config.model)}"


def start_tags(config: Config, overrides: list[str]) -> dict[str, str]:
    git = provenance.git_state()
    return {
        "seed": str(config.seed),
        "hydra_overrides": " ".join(overrides),
        "git_commit": git["commit"],
        "git_dirty": git["dirty"],
        **provenance.environment(),
    }


def signature_and_example(ds: Dataset, X_rows: np.ndarray) -> tuple[Any, pd.DataFrame]:
    """Input columns typed as the raw file has them (int64 stays long), so a user's
    `pd.read_csv(...)` frame predicts without casting."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    kinds = {name: ds.feature_dtypes.get(name, "float64") for name in ds.feature_names}
    example = pd.DataFrame(X_rows, columns=ds.feature_names)
    for name, kind in kinds.items():
        if kind.startswith("int"):
            example[name] = example[name].round().astype("int64")
    inputs = Schema([ColSpec("long" if kinds[n].startswith("int") else "double", n)
                     for n in ds.feature_names])
    outputs = Schema([ColSpec("double", n) for n in ds.target_names])
    return ModelSignature(inputs=inputs, outputs=outputs), example


def write_artifacts(folder: Path, config: DictConfig, result: stages.Result,
                    git_diff: str, hydra_dir: Path | None) -> Path:
    """Everything a reader or a rerun needs, written to `folder`; returns the model .npz path."""
    write_provenance(folder, config, git_diff, hydra_dir)
    ds, prepared, net = result.dataset, result.prepared, result.network
    scalers = {**prepared.x_scaler.to_arrays("x_"), **prepared.y_scaler.to_arrays("y_")}
    names = {"feature_names": np.array(ds.feature_names), "target_names": np.array(ds.target_names)}
    model_npz = save_network(net, folder / "model.npz", {**scalers, **names})
    arrays: dict[str, Any] = {**scalers, **names}
    np.savez(folder / "scaler.npz", **arrays)
    result.evaluation.predictions.to_csv(folder / "predictions_test.csv", index=False)
    plots.learning_curve(result.histories, folder / "learning_curve.png")
    target = ds.target_names[0]
    preds = result.evaluation.predictions
    if f"actual_{target}" in preds:
        plots.predicted_vs_actual(preds[f"actual_{target}"].to_numpy(),
                                  preds[f"predicted_{target}"].to_numpy(), target,
                                  folder / "predicted_vs_actual.png")
    return model_npz


def write_provenance(folder: Path, config: DictConfig, git_diff: str,
                     hydra_dir: Path | None) -> None:
    """What a rerun needs of any run (cross-validation too): config.yaml, environment.json,
    git_diff.patch when the tree is dirty, and Hydra's .hydra/ folder."""
    OmegaConf.save(config, folder / "config.yaml", resolve=True)
    (folder / "environment.json").write_text(json.dumps(provenance.environment(), indent=2))
    if git_diff:
        (folder / "git_diff.patch").write_text(git_diff)
    if hydra_dir is not None and (hydra_dir / ".hydra").is_dir():
        import shutil

        shutil.copytree(hydra_dir / ".hydra", folder / ".hydra")


def print_report(result: stages.Result, n_examples: int) -> None:
    m = result.evaluation.metrics
    print("\nsplit   " + "".join(f"{k:>12}" for k in ("cost", "mse", "rmse", "mae", "r2")))
    for part in stages.SPLITS:
        if f"{part}_mse" in m:
            row = "".join(f"{m.get(f'{part}_{k}', float('nan')):>12.4f}"
                          for k in ("cost", "mse", "rmse", "mae", "r2"))
            print(f"{part:<8}{row}")
    if n_examples and len(result.evaluation.predictions):
        print("\npredicted vs actual (first test examples, original units):")
        print(result.evaluation.predictions.head(n_examples).to_string(index=False))


def sweep_parent(multirun: bool) -> dict[str, str]:
    """The sweep's parent run and id, written by `pipelines.callbacks.SweepTracking`."""
    if not multirun:
        return {}
    hc = HydraConfig.get()  # a relative sweep dir is the launching process's: Ray cluster
    marker = Path(hc.runtime.cwd) / hc.sweep.dir / "sweep.json"  # workers start elsewhere
    return json.loads(marker.read_text()) if marker.is_file() else {}


def train_job(cfg: DictConfig) -> JobOutcome:
    """Run the pipeline as one MLflow run; its status says how it ended (FINISHED, FAILED on
    divergence or error, KILLED on Ctrl-C). Raises `Diverged` outside a multirun. In a multirun,
    a job that a finished run already did (same config_hash) is reused, unless rerun.force."""
    overrides, hydra_dir, multirun = hydra_context()
    outcome = run_job(cfg, overrides, hydra_dir, sweep_parent(multirun), reuse=multirun)
    if outcome.status == "FAILED" and not multirun:
        raise Diverged(f"run {outcome.run_id} diverged; see its tags in MLflow")
    return outcome


def run_job(cfg: DictConfig, overrides: list[str], hydra_dir: Path | None,
            sweep: dict[str, Any] | None = None, extra_tags: dict[str, str] | None = None,
            name: str | None = None, reuse: bool = False) -> JobOutcome:
    """The job without Hydra's globals (`pipelines.rerun` calls it with a logged config)."""
    config = to_config(cfg)
    sweep = sweep or {}
    store = tracking.Store(config.tracking.uri or tracking.default_uri(),
                           config.tracking.experiment, sweep.get("experiment_id", ""))
    ds, chash, code_known = hashed_dataset(cfg, config)
    if reuse and chash and code_known and not config.rerun.force:
        found = reproduce.find_reusable(store.client, store.experiment_id, chash)
        if found is not None:
            return reused(store, found, sweep, overrides)
    tags = {**start_tags(config, overrides), **(extra_tags or {})}
    if chash:
        tags["config_hash"] = chash
    if sweep:
        tags["sweep_id"] = sweep["sweep_id"]
    name = name or run_name(config, overrides, sweep.get("swept"))
    run = tracking.Run.start(store, name, tags, sweep.get("parent_run_id"))
    try:
        return _tracked_pipeline(cfg, config, run, overrides, hydra_dir, ds)
    except KeyboardInterrupt:
        run.set_tags({"interrupted": "true"})
        run.end("KILLED")
        raise
    except Exception as err:
        run.set_tags({"error": f"{type(err).__name__}: {err}"})
        run.end("FAILED")
        raise


def hashed_dataset(cfg: DictConfig, config: Config) -> tuple[Dataset | None, str, bool]:
    """The dataset, the run's config_hash (`backprop_lab.reproduce.config_hash`) and whether the
    code version is known (git); (None, "", False) when the data fails to load: the run that
    follows loads it again and records the error."""
    try:
        ds = stages.load(config.data)
    except Exception:
        return None, "", False
    git = provenance.git_state()
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(resolved, dict)
    chash = reproduce.config_hash(resolved, ds.fingerprint, git["commit"], git["diff"])
    return ds, chash, git["commit"] != "unknown"


def reused(store: tracking.Store, run: Any, sweep: dict[str, Any],
           overrides: list[str]) -> JobOutcome:
    """Report a finished run of the same config, code and data instead of training again; the
    sweep parent gets a tag `reused.<run_id>` = the job's overrides."""
    run_id, status, metrics = run.info.run_id, run.info.status, dict(run.data.metrics)
    print(f"reused run {run_id} ({status}): same config, code and data "
          f"(config_hash {run.data.tags['config_hash'][:12]}); rerun.force=true trains it again")
    if sweep.get("parent_run_id"):
        tracking.Run(store, sweep["parent_run_id"]).set_tags(
            {f"{reproduce.REUSE_TAG}{run_id}": " ".join(overrides) or "-"})
    return JobOutcome(run_id, status, metrics, reproduce.objective(metrics, status))


def _tracked_pipeline(cfg: DictConfig, config: Config, run: tracking.Run,
                      overrides: list[str], hydra_dir: Path | None,
                      ds: Dataset | None = None) -> JobOutcome:
    hidden = hidden_layers(config.model)
    params = tracking.flatten(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    params.update({"depth": str(len(hidden)), "model.hidden_layers": str(hidden)})
    run.log_params(params)
    ds = ds if ds is not None else stages.load(config.data)
    run.set_tags({"data_fingerprint": ds.fingerprint, "data_source": ds.source,
                  "data_shape": f"{ds.X.shape[0]}x{ds.X.shape[1]}"})
    if config.eval.cv_folds >= 2:
        with tempfile.TemporaryDirectory(prefix="backprop-lab-") as tmp:
            write_provenance(Path(tmp), cfg, provenance.git_state()["diff"], hydra_dir)
            run.log_artifacts(Path(tmp))
        return _cross_validate(config, ds, run)
    buffer = tracking.MetricBuffer(run)
    started = time.perf_counter()
    result = stages.run(config, [buffer], dataset=ds)
    train_seconds = time.perf_counter() - started
    buffer.flush()
    history, metrics = result.history, dict(result.evaluation.metrics)
    metrics["epochs_run"] = history.epochs_run
    if history.val_cost:
        metrics["best_val_loss"] = history.best_cost
    run.log_metrics(metrics)
    git = provenance.git_state()
    with tempfile.TemporaryDirectory(prefix="backprop-lab-") as tmp:
        folder = Path(tmp)
        model_npz = write_artifacts(folder, cfg, result, git["diff"], hydra_dir)
        run.log_artifacts(folder)
        if config.tracking.log_model and not history.diverged:
            X_example = result.prepared.split.X_test[:5]
            signature, example = signature_and_example(ds, X_example)
            tracking.log_pyfunc_model(run, model_npz, signature, example)
    run.set_tags({"stop_reason": history.stop_reason, "best_epoch": str(history.best_epoch),
                  "seconds_training": f"{train_seconds:.3f}",
                  "seconds_mlflow": f"{run.seconds_in_mlflow:.3f}"})
    status = "FINISHED"
    if history.diverged:
        status = "FAILED"
        run.set_tags({"diverged": "true", "diverged_epoch": str(history.diverged_epoch),
                      "last_finite_cost": str(history.last_finite_cost)})
        if config.model.ensemble > 1:  # fit stops at the first diverged member
            run.set_tags({"diverged_member": str(len(result.histories) - 1)})
        print(f"\nDIVERGED: {history.stop_reason}. The run is recorded as FAILED with tag "
              "diverged=true; try a smaller train.lr.")
    print_report(result, config.eval.n_examples)
    print(f"\ntraining {train_seconds:.2f} s, MLflow calls {run.seconds_in_mlflow:.2f} s")
    print(f"MLflow run {run.run_id} ({status}) in experiment {run.store.experiment!r} at "
          f"{run.store.uri}\n  see it with: mlflow ui --backend-store-uri {run.store.uri}")
    run.end(status)
    objective = metrics.get("val_mse", metrics.get("test_mse", float("inf")))
    objective = objective if status == "FINISHED" else float("inf")
    return JobOutcome(run.run_id, status, metrics, objective)


def _cross_validate(config: Config, ds: Dataset, run: tracking.Run) -> JobOutcome:
    """K folds of the same configuration; per-fold metrics plus their mean and std."""
    folds = stages.run_folds(config, ds)
    per_fold = [f.evaluation.metrics for f in folds]
    metrics: dict[str, float] = {}
    for k, fold_metrics in enumerate(per_fold):
        metrics.update({f"fold{k}.{name}": v for name, v in fold_metrics.items()})
    for name in per_fold[0]:
        values = np.array([m[name] for m in per_fold])
        metrics[f"cv_mean.{name}"], metrics[f"cv_std.{name}"] = values.mean(), values.std()
        metrics[name] = values.mean()
    diverged = [k for k, f in enumerate(folds) if f.history.diverged]
    run.log_metrics(metrics)
    status = "FAILED" if diverged else "FINISHED"
    if diverged:
        run.set_tags({"diverged": "true", "diverged_folds": str(diverged)})
    print(f"{config.eval.cv_folds}-fold CV: test R² {metrics['cv_mean.test_r2']:.4f} "
          f"± {metrics['cv_std.test_r2']:.4f}; test RMSE {metrics['cv_mean.test_rmse']:.4f}")
    print(f"MLflow run {run.run_id} ({status}) at {run.store.uri}")
    run.end(status)
    objective = metrics.get("cv_mean.val_mse", metrics["cv_mean.test_mse"])
    return JobOutcome(run.run_id, status, metrics, objective if not diverged else float("inf"))
