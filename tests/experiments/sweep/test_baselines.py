"""Baselines in a sweep: rows of the comparison, judged against the jobs like any job."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from backprop_lab.experiments.sweep import readback
from tests.conftest import run_cli


@pytest.mark.slow
def test_baselines_are_compared_with_the_jobs(store_uri: str, tmp_path: Path) -> None:
    out = run_cli("pipelines.train", "-m", "data=diabetes", "model.hidden=[],[8]",
                  "train.epochs=30", "eval.cv_folds=3", "eval.baselines=true",
                  "hydra/launcher=stacked", "tracking.log_model=false",
                  f"tracking.uri={store_uri}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                  cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "baselines: scored on test rows only, not on val_mse" in out.stdout
    client = MlflowClient(store_uri)
    job = readback.children(client, readback.find_parent(client).info.run_id)[0]
    assert {"baseline.ridge.test_r2", "baseline.linear.test_mse_ci_low"} <= set(job.data.metrics)
    done = run_cli("pipelines.compare", "metric=test_mse", f"tracking.uri={store_uri}",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(tmp_path / "sweep" / "compare" / "jobs.csv").set_index("run_name")
    rows = ["baseline: linear", "baseline: ridge", "baseline: sklearn_mlp"]
    assert set(rows) <= set(table.index) and (table.loc[rows, "n_cells"] == 3).all()
    assert table["tier"].isin(["best", "equivalent", "undecided", "worse"]).all()
    parent = readback.find_parent(client)
    assert "baseline.ridge.test_mse_centre" in client.get_run(parent.info.run_id).data.metrics
    assert "*baseline: ridge*" in client.get_run(parent.info.run_id).data.tags[
        "mlflow.note.content"]
