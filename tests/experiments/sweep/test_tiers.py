"""End to end: a repeated sweep gets tiers from compare, on the table, the runs and the parent."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli


@pytest.mark.slow
def test_a_repeated_sweep_is_tiered(store_uri: str, tmp_path: Path) -> None:
    out = run_cli("pipelines.train", "-m", "model.hidden=[],[16]", "train.lr=0.01",
                  "train.epochs=150", "train.patience=null", "eval.cv_folds=5",
                  "eval.cv_val_fraction=0", "eval.repeats=2",
                  "tracking.log_model=false", f"tracking.uri={store_uri}",
                  f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "verdicts on test_mse (10 paired cells per job" in out.stdout
    done = run_cli("pipelines.compare", f"tracking.uri={store_uri}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(tmp_path / "sweep" / "compare" / "jobs.csv").set_index("run_name")
    # a linear model against one hidden layer on Boston: CV R² about 0.71 against 0.85
    assert table.loc["hidden=[16]", "tier"] == "best"
    assert table.loc["hidden=[]", "tier"] == "worse"
    assert (table["n_cells"] == 10).all() and (table["ci_low"] < table["test_mse"]).all()
    client = MlflowClient(store_uri)
    runs = client.search_runs([client.get_experiment_by_name("backprop-lab").experiment_id])
    children = [r for r in runs if r.data.tags.get("sweep_role") != "parent"]
    assert {r.data.tags["tier"] for r in children} == set(table["tier"])
    scores = client.download_artifacts(children[0].info.run_id, "scores.csv", str(tmp_path))
    assert list(pd.read_csv(scores)["repeat"]) == [0] * 5 + [1] * 5
    assert "test_mse_ci_low" in children[0].data.metrics
    curves = pd.read_csv(client.download_artifacts(children[0].info.run_id, "curves.csv",
                                                   str(tmp_path)))
    assert curves.groupby(["repeat", "fold"]).size().tolist() == [150] * 10  # one per cell
    assert curves["val_loss"].isna().all() and curves["train_loss"].notna().all()
