"""The sweep's parent is a first-class run (issue 24, part 5): it logs the swept keys with their
values and the fixed config as params, so the runs table filters sweeps; and each job of the
stacked launcher writes its log into its own Hydra output folder (they all went to the last
job's). One stacked sweep whose jobs each log one warning after the shared training."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli

pytestmark = pytest.mark.slow
VANISHING = ["diag.every=1", "model.depth=8", "model.width=8", "model.activation=sigmoid",
             "model.init=uniform"]  # each job warns `gradient flow: vanishing` once, at its end


def test_the_parent_logs_the_sweep_and_each_job_its_own_log(store_uri: str,
                                                             tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    out = run_cli("pipelines.train", "-m", "train.lr=0.01,0.03,0.1", "seed=0,1",
                  "train.epochs=6", *VANISHING, "tracking.log_model=false",
                  "hydra/launcher=stacked", f"tracking.uri={store_uri}",
                  f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    for job in range(6):
        [log] = (sweep_dir / str(job)).glob("*.log")
        lines = log.read_text().splitlines()
        assert sum("gradient flow: vanishing" in line for line in lines) == 1, (job, lines)
        assert not [line for line in lines if "stacked_launcher" in line], lines

    client = MlflowClient(store_uri)
    experiment = client.get_experiment_by_name("backprop-lab").experiment_id
    [parent] = client.search_runs([experiment], "params.`train.lr` = '[0.01, 0.03, 0.1]'")
    params = parent.data.params
    assert parent.data.tags["sweep_role"] == "parent"
    assert params["seed"] == "[0, 1]" and params["train.epochs"] == "6"
    assert params["data.name"] == "boston" and params["model.activation"] == "sigmoid"
    jobs = client.search_runs([experiment], "params.`train.epochs` = '6'")
    assert len(jobs) == 7  # the parent and its six jobs share the fixed keys
