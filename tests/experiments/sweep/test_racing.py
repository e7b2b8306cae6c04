"""Racing end to end: repeats in rounds, a decided job stops, each job one child run, resume."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from backprop_lab.experiments.sweep import readback
from backprop_lab.experiments.sweep.racing import job_key, round_overrides
from tests.conftest import run_cli

RACE = ["pipelines.train", "-m", "train.lr=0.01,0.03,3", "model.depth=1", "model.width=8",
        "train.epochs=40", "train.patience=null", "eval.cv_folds=3", "eval.cv_val_fraction=0",
        "eval.repeats=3", "eval.race=true", "hydra/sweeper=racing", "hydra/launcher=stacked",
        "tracking.log_model=false"]


def test_a_round_is_one_repeat_of_the_same_job() -> None:
    job = ["train.lr=0.01", "eval.repeats=3"]
    assert round_overrides(job, 2) == ["train.lr=0.01", "eval.repeats=1", "eval.first_repeat=2"]
    assert job_key(round_overrides(job, 2)) == job_key(round_overrides(job, 0)) == \
        "train.lr=0.01"


@pytest.mark.slow
def test_a_race_stops_decided_jobs_and_resumes(store_uri: str, tmp_path: Path) -> None:
    out = run_cli(*RACE, f"tracking.uri={store_uri}", f"hydra.sweep.dir={tmp_path / 's1'}",
                  cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(store_uri)
    parent = readback.find_parent(client)
    jobs = readback.children(client, parent.info.run_id)
    assert sorted(str(r.info.run_name) for r in jobs) == ["lr=0.01", "lr=0.03", "lr=3"]
    by_name = {r.info.run_name: r for r in jobs}
    diverged = by_name["lr=3"]
    assert diverged.data.tags["race_rounds"] == "1" and diverged.info.status == "FAILED"
    for name in ("lr=0.01", "lr=0.03"):  # the best and an undecided job run every round
        run = by_name[name]
        assert run.data.tags["race_rounds"] == "3" and run.data.params["eval.repeats"] == "3"
        scores = pd.read_csv(client.download_artifacts(run.info.run_id, "scores.csv",
                                                       str(tmp_path / name)))
        assert sorted(set(zip(scores["repeat"], scores["fold"]))) == [
            (r, f) for r in range(3) for f in range(3)]
        rounds = run.data.tags["race_round_runs"].split()
        assert all(client.get_run(r).data.tags["mlflow.parentRunId"] == run.info.run_id
                   for r in rounds)  # the rounds nest under their job
        assert "test_mse_ci_low" in run.data.metrics
    summary = client.get_run(parent.info.run_id).data.tags["race_summary"]
    # 3 folds x the default ensemble of 5 networks per repeat
    assert summary.startswith("racing: 7 of 9 repeats of the grid trained (105 of 135 networks")
    assert "**Racing**: 7 of 9" in client.get_run(parent.info.run_id).data.tags[
        "mlflow.note.content"]
    # the same command again: every round reused, the same jobs, nothing trained
    again = run_cli(*RACE, f"tracking.uri={store_uri}", f"hydra.sweep.dir={tmp_path / 's2'}",
                    cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("3-fold CV (3 cells)") == 0
    second = readback.find_parent(client)
    assert second.info.run_id != parent.info.run_id
    rerun = readback.children(client, second.info.run_id)
    assert sorted(str(r.info.run_name) for r in rerun) == ["lr=0.01", "lr=0.03", "lr=3"]
    assert {r.data.tags["race_rounds_reused"] for r in rerun} == {"1", "3"}


@pytest.mark.slow
def test_racing_needs_the_racing_sweeper(store_uri: str, tmp_path: Path) -> None:
    out = run_cli("pipelines.train", "-m", "train.lr=0.01,0.03", "eval.repeats=2",
                  "eval.race=true", "hydra/sweeper=basic", f"tracking.uri={store_uri}",
                  cwd=tmp_path)
    assert out.returncode == 2
    assert "error: eval.race=true: racing needs hydra/sweeper=racing" in out.stderr
