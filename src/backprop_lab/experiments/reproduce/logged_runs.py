"""A run read back from the store: its tags, metrics, config and arrays, for reruns and
evaluations. Artifacts are downloaded into a folder the caller owns, only when asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from backprop_lab.errors import NotFound, RerunRefused
from backprop_lab.nn.weights import load_arrays
from backprop_lab.pipeline.config import Config


class LoggedRun:
    """A logged run addressed by id; `fetch` downloads one artifact into `folder`."""

    def __init__(self, client: Any, run_id: str, folder: Path):
        self.client, self.folder = client, folder
        try:
            self.run = client.get_run(run_id)
        except MlflowException as err:
            raise NotFound(f"run_id: no run {run_id!r} in the store "
                           f"{client.tracking_uri}") from err
        self.run_id, self.tags = run_id, dict(self.run.data.tags)
        self.metrics = dict(self.run.data.metrics)
        self.artifacts = {a.path for a in client.list_artifacts(run_id)}

    @property
    def experiment(self) -> str:
        return str(self.client.get_experiment(self.run.info.experiment_id).name)

    def fetch(self, path: str) -> Path | None:
        if path not in self.artifacts:
            return None
        target = self.folder / self.run_id
        target.mkdir(parents=True, exist_ok=True)
        return Path(self.client.download_artifacts(self.run_id, path, str(target)))

    def config(self, uri: str, experiment: str | None = None) -> DictConfig:
        """The run's resolved config.yaml in today's schema, logging to `uri` and `experiment`
        (None: the run's own experiment), registering nothing."""
        path = self.fetch("config.yaml")
        if path is None:
            if "config_hash" in self.tags or "data_fingerprint" in self.tags:
                why = "its artifacts were deleted or cannot be read"
            else:
                why = "it was not logged by pipelines.train (or is a sweep's parent run)"
            raise RerunRefused(f"run {self.run_id} has no config.yaml artifact: {why}")
        try:
            cfg = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(path))
        except OmegaConfBaseException as err:
            raise RerunRefused(f"run {self.run_id}'s config.yaml does not fit today's schema "
                               f"(backprop_lab.pipeline.config.Config): {err}; check out its "
                               f"commit {self.tags.get('git_commit', '?')} to rerun it") from err
        assert isinstance(cfg, DictConfig)
        cfg.tracking.uri = uri
        cfg.tracking.experiment = experiment or self.experiment
        cfg.tracking.register = None  # a rerun checks a run; it makes no new model version
        return cfg

    def arrays(self) -> dict[str, Any]:
        path = self.fetch("model.npz")
        return load_arrays(path) if path is not None else {}

    def overrides(self) -> list[str]:
        path = self.fetch(".hydra")
        if path is not None and (path / "overrides.yaml").is_file():
            return [str(o) for o in OmegaConf.load(path / "overrides.yaml")]
        return self.tags.get("hydra_overrides", "").split()
