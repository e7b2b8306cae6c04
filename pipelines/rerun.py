"""Run a logged run again and check that it matches, bit for bit where it should.

    python -m pipelines.rerun run_id=<id> [tracking.uri=sqlite:///...] [force=true]
    python -m pipelines.rerun sweep_id=<id>          # every job of a sweep

The config comes from the run's `config.yaml` artifact (never from today's `conf/`), merged into
the typed schema and run through the same `pipelines.job.run_job` as training, as a new run
tagged `rerun_of=<id>`. Before that: the data is loaded and its sha256 checked against the run's
`data_fingerprint` (a mismatch refuses, unless force=true), and a changed commit, uncommitted
diff, package version, BLAS or platform is warned about. After: the final metrics and every
array of model.npz are compared, the verdict (identical / within tolerance / different) printed
with the largest difference per metric and per array, and tagged on the new run
(`rerun_verdict`; the full table is its `rerun_comparison.json` artifact).
Exit status: 0 identical or within tolerance, 1 different, 2 refused or failed.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from backprop_lab import provenance, reproduce, stages, tracking
from backprop_lab.config import Config, ConfigError
from backprop_lab.data import DataError
from backprop_lab.weights import load_arrays
from pipelines.job import run_job, to_config

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@dataclass
class StoreConfig:
    uri: str | None = None  # None: the project store, sqlite:///<project>/mlruns/mlflow.db


@dataclass
class RerunCommand:
    run_id: str | None = None
    sweep_id: str | None = None  # every job of this sweep (a prefix of the id is enough)
    force: bool = False  # rerun even when the data's sha256 differs from the logged one
    rtol: float = 1e-6  # "within tolerance": |a - b| <= atol + rtol * |a| everywhere
    atol: float = 1e-9
    tracking: StoreConfig = field(default_factory=StoreConfig)


ConfigStore.instance().store(name="rerun_schema", node=RerunCommand)


class RerunRefused(RuntimeError):
    """The run cannot be rerun faithfully (changed data, no logged config, ...)."""


class LoggedRun:
    """A run read back from the store; its artifacts are downloaded into `folder` on demand."""

    def __init__(self, client: Any, run_id: str, folder: Path):
        self.client, self.folder = client, folder
        self.run = client.get_run(run_id)
        self.run_id, self.tags = run_id, dict(self.run.data.tags)
        self.metrics = dict(self.run.data.metrics)
        self.artifacts = {a.path for a in client.list_artifacts(run_id)}

    def fetch(self, path: str) -> Path | None:
        if path not in self.artifacts:
            return None
        target = self.folder / self.run_id
        target.mkdir(parents=True, exist_ok=True)
        return Path(self.client.download_artifacts(self.run_id, path, str(target)))

    def config(self, uri: str) -> DictConfig:
        """The run's resolved config.yaml in today's schema, logging to `uri` and the run's
        experiment."""
        path = self.fetch("config.yaml")
        if path is None:
            raise RerunRefused(f"run {self.run_id} has no config.yaml artifact: it was not "
                               "logged by pipelines.train (or is a sweep's parent run)")
        try:
            cfg = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(path))
        except OmegaConfBaseException as err:
            raise RerunRefused(f"run {self.run_id}'s config.yaml does not fit today's schema "
                               f"(backprop_lab.config.Config): {err}; check out its commit "
                               f"{self.tags.get('git_commit', '?')} to rerun it") from err
        assert isinstance(cfg, DictConfig)
        cfg.tracking.uri = uri
        cfg.tracking.experiment = self.client.get_experiment(self.run.info.experiment_id).name
        return cfg

    def arrays(self) -> dict[str, Any]:
        path = self.fetch("model.npz")
        return load_arrays(path) if path is not None else {}

    def overrides(self) -> list[str]:
        path = self.fetch(".hydra")
        if path is not None and (path / "overrides.yaml").is_file():
            return [str(o) for o in OmegaConf.load(path / "overrides.yaml")]
        return self.tags.get("hydra_overrides", "").split()


def check_data(original: LoggedRun, config: Config, force: bool) -> list[str]:
    """Refuse (or, with force, warn) when the data as loaded now is not the run's data."""
    logged = original.tags.get("data_fingerprint")
    if logged is None:
        return [f"run {original.run_id} logged no data_fingerprint: the data cannot be checked"]
    ds = stages.load(config.data)
    if ds.fingerprint == logged:
        return []
    message = (f"the data changed since run {original.run_id}: it trained on data with sha256 "
               f"{logged[:16]}... ({original.tags.get('data_source', '?')}), the data loaded now "
               f"({ds.source}) has sha256 {ds.fingerprint[:16]}...")
    if not force:
        raise RerunRefused(f"{message}. A rerun would not reproduce the run: restore the data, "
                           "or pass force=true to rerun on the new data")
    return [message + " (force=true: rerunning anyway)"]


def rerun_one(client: Any, uri: str, run_id: str, cmd: RerunCommand, folder: Path,
              extra_tags: dict[str, str] | None = None) -> reproduce.Comparison:
    original = LoggedRun(client, run_id, folder)
    cfg = original.config(uri)
    config = to_config(cfg)
    warnings = check_data(original, config, cmd.force)
    git = provenance.git_state()
    now = {"git_commit": git["commit"], **provenance.environment()}
    diff_path = original.fetch("git_diff.patch")
    logged_diff = diff_path.read_text() if diff_path is not None else None
    warnings += reproduce.provenance_warnings(original.tags, now, logged_diff, git["diff"])
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    hydra_dir = original.fetch(".hydra")
    tags = {"rerun_of": run_id, **(extra_tags or {})}
    if warnings:
        tags["rerun_warnings"] = "; ".join(warnings)
    name = f"rerun-{original.run.info.run_name or run_id[:8]}"
    outcome = run_job(cfg, original.overrides(), hydra_dir.parent if hydra_dir else None,
                      extra_tags=tags, name=name)
    rerun = LoggedRun(client, outcome.run_id, folder)
    comparison = reproduce.compare(run_id, outcome.run_id, (original.metrics, rerun.metrics),
                                   (original.arrays(), rerun.arrays()), cmd.rtol, cmd.atol)
    same_hash = rerun.tags.get("config_hash") == original.tags.get("config_hash")
    if not same_hash:
        print("warning: the rerun's config_hash differs from the run's: its code, data or "
              "model.init_from weights are not the same", file=sys.stderr)
    run = tracking.Run(tracking.Store(uri, cfg.tracking.experiment), outcome.run_id)
    run.set_tags({**comparison.tags(), "rerun_same_config_hash": str(same_hash).lower()})
    report = folder / f"comparison-{outcome.run_id}"
    report.mkdir()
    (report / "rerun_comparison.json").write_text(json.dumps(comparison.to_dict(), indent=2))
    run.log_artifacts(report)
    print(f"\nrerun {outcome.run_id} of run {run_id}:\n{comparison.table()}")
    largest = {k: comparison.largest(k) for k in ("metric", "array")}
    shown = {k: "none logged" if math.isnan(v) else f"{v:.3g}" for k, v in largest.items()}
    print(f"verdict: {comparison.verdict} (largest |difference|: metrics {shown['metric']}, "
          f"weights {shown['array']}; tolerance rtol={cmd.rtol:g}, atol={cmd.atol:g})",
          flush=True)
    return comparison


def sweep_runs(client: Any, sweep_id: str) -> tuple[str, list[str]]:
    """The sweep's full id and its jobs: its children, then the runs it reused."""
    from backprop_lab import sweeps

    parent = sweeps.find_parent(client, sweep_id)
    ids = [r.info.run_id for r in sweeps.children(client, parent.info.run_id)]
    ids += [k[len(reproduce.REUSE_TAG):] for k in sorted(parent.data.tags)
            if k.startswith(reproduce.REUSE_TAG)]
    return parent.data.tags["sweep_id"], ids


def execute(cmd: RerunCommand) -> int:
    """The exit status: 0 all identical or within tolerance, 1 any different, 2 refused."""
    if bool(cmd.run_id) == bool(cmd.sweep_id):
        print("error: give run_id=<id> or sweep_id=<id>", file=sys.stderr)
        return 2
    uri = cmd.tracking.uri or tracking.default_uri()
    client = tracking.Store(uri, "Default").client
    extra: dict[str, str] = {}
    run_ids = [str(cmd.run_id)]
    if cmd.sweep_id:
        try:
            sweep_id, run_ids = sweep_runs(client, str(cmd.sweep_id))
        except LookupError as err:  # sweeps.SweepNotFound
            print(f"error: {err}", file=sys.stderr)
            return 2
        extra["rerun_of_sweep"] = sweep_id
        print(f"sweep {sweep_id}: rerunning {len(run_ids)} jobs")
    verdicts: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="backprop-rerun-") as tmp:
        for run_id in run_ids:
            try:
                verdicts[run_id] = rerun_one(client, uri, run_id, cmd, Path(tmp), extra).verdict
            except (RerunRefused, DataError, ConfigError, MlflowException) as err:
                print(f"error: {err}", file=sys.stderr)
                verdicts[run_id] = "refused"
    if len(run_ids) > 1:
        print("\n" + "\n".join(f"{r}: {v}" for r, v in verdicts.items()))
    if "refused" in verdicts.values():
        return 2
    return 1 if reproduce.DIFFERENT in verdicts.values() else 0


@hydra.main(version_base="1.3", config_path="../conf", config_name="rerun")
def main(cfg: DictConfig) -> None:
    cmd = OmegaConf.to_object(cfg)
    assert isinstance(cmd, RerunCommand)
    try:
        status = execute(cmd)
    except (tracking.TrackingUnavailable, MlflowException) as err:
        print(f"error: {err}", file=sys.stderr)
        status = 2
    sys.exit(status)


if __name__ == "__main__":
    main()
