"""Launcher presets (conf/hydra/launcher/): each composes onto its plugin's schema, and a 3-job
sweep run by Ray (started by the launcher) and by submitit (its local executor, the `slurm`
preset's twin) lands 3 children under one parent run in the right experiment. A pre-started Ray
cluster is tested in test_server.py, against a server that needs the credentials it forwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.plugins import Plugins
from hydra.utils import get_class
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from tests.conftest import CONF
from tests.procs import TINY_SWEEP, ray_env, sweep_runs, train

PRESETS = {
    "ray_local": "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher",
    "ray_cluster": "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher",
    "slurm": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
    "slurm_local": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
}


def launcher_config(name: str):  # type: ignore[no-untyped-def]
    Plugins.instance()  # imports the launcher plugins, which register their schemas
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("config", [f"hydra/launcher={name}"], return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    return cfg.hydra.launcher


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_composes_onto_its_plugin(name: str) -> None:
    launcher = launcher_config(name)
    assert launcher._target_ == PRESETS[name]
    get_class(launcher._target_)  # the plugin is installed
    if name.startswith("slurm"):
        assert launcher.cpus_per_task == 1 and launcher.timeout_min == 30


def test_ray_local_stays_small_and_quiet() -> None:
    init = launcher_config("ray_local").ray.init
    assert init.address is None and init.include_dashboard is False
    assert init.object_store_memory <= 100 * 2**20


def test_ray_cluster_forwards_credentials_and_omits_object_store(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6390")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ann")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    init = OmegaConf.to_container(launcher_config("ray_cluster").ray.init, resolve=True)
    assert isinstance(init, dict)
    assert init["address"] == "127.0.0.1:6390"
    assert init["object_store_memory"] is None and init["num_cpus"] is None
    env_vars = init["runtime_env"]["env_vars"]
    assert env_vars["MLFLOW_TRACKING_USERNAME"] == "ann"
    assert env_vars["MLFLOW_TRACKING_PASSWORD"] == ""  # unset: sent empty, MLflow ignores it
    assert all(isinstance(v, str) for v in env_vars.values())


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["ray_local", "slurm_local"])
def test_three_job_sweep_lands_under_one_parent(launcher: str, store_uri: str,
                                                tmp_path: Path) -> None:
    done = train(["-m", f"hydra/launcher={launcher}", *TINY_SWEEP, f"tracking.uri={store_uri}"],
                 cwd=tmp_path, env=ray_env())
    assert done.returncode == 0, done.stderr[-3000:]
    parent, children = sweep_runs(MlflowClient(store_uri))
    assert len(children) == 3
    assert {r.info.status for r in children} == {"FINISHED"}
    assert sorted(float(r.data.params["train.lr"]) for r in children) == [0.001, 0.01, 0.1]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["launcher"] in ("RayLauncher", "LocalLauncher")
