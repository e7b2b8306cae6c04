"""What a sweep prints: the progress line's counts and the end table's width and words."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
from omegaconf import OmegaConf

from backprop_lab.experiments.sweep import console, progress
from pipelines.callbacks import expected_jobs


def run(status: str, tags: dict[str, str] | None = None, ensemble: str = "1") -> SimpleNamespace:
    return SimpleNamespace(info=SimpleNamespace(status=status), data=SimpleNamespace(
        tags={"n_cells": "15", **(tags or {})}, params={"model.ensemble": ensemble}))


def test_progress_counts_jobs_by_how_they_ended() -> None:
    runs = [run("FINISHED", ensemble="5"), run("FAILED", {"diverged": "true"}),
            run("FAILED"), run("KILLED"), run("RUNNING")]
    c = progress.count(runs)
    assert (c.finished, c.diverged, c.failed, c.running, c.done) == (1, 1, 2, 1, 4)
    assert c.networks == 15 * 5 + 15 * 3
    text = progress.line(c, 10, elapsed=40.0)
    assert text == ("jobs 4/10 (1 running) | 120 networks | 1 finished, 1 diverged, 2 failed "
                    "| 0:40 < 1:00")  # 10 s a job, 6 left
    assert progress.line(progress.Counts(), None, 3725) .endswith("| 1:02:05")


def test_the_jobs_a_multirun_launches_are_counted_ahead() -> None:
    cfg = OmegaConf.create({"eval": {"race": False, "repeats": 1}, "hydra": {
        "sweeper": {"params": {"train.lr": "1e-4,1e-3,1e-2,1e-1,1", "model.depth": "0,1,2,3"}},
        "overrides": {"task": ["eval.cv_folds=5", "seed=0,1"]}}})
    assert expected_jobs(cfg) == 40
    cfg.hydra.sweeper.n_trials = 20  # a search: its trials
    assert expected_jobs(cfg) == 20


def test_the_end_table_fits_100_columns_and_says_the_verdicts() -> None:
    rows = [{"run_name": "lr=0.01,depth=3" + ",width=16" * 5, "status": "FINISHED",
             "test_mse": 9.23, "centre": 8.866, "ci_low": 5.096, "ci_high": 15.43,
             "ratio_vs_best": 1.0, "p_vs_best": math.nan, "tier": "best", "unstable": "",
             "repeats_to_decide": math.nan},
            {"run_name": "lr=1,depth=3", "status": "FINISHED", "test_mse": 263.9,
             "centre": 97.35, "ci_low": 76.17, "ci_high": 124.4, "ratio_vs_best": 11.97,
             "p_vs_best": 0.00586, "tier": "worse", "unstable": "unstable (1 of 15 cells)",
             "repeats_to_decide": math.nan},
            {"run_name": "lr=0.1,depth=3", "status": "FINISHED", "test_mse": 13.4,
             "centre": 12.16, "ci_low": 8.3, "ci_high": 17.7, "ratio_vs_best": 1.43,
             "p_vs_best": 1.0, "tier": "undecided", "unstable": "", "repeats_to_decide": math.inf},
            {"run_name": "lr=10,depth=3", "status": "DIVERGED", "tier": "diverged"}]
    text = console.end_text(pd.DataFrame(rows), "test_mse", {"parent run": "http://x"}, [])
    lines = text.splitlines()
    assert all(len(line) <= console.WIDTH for line in lines)
    assert "97.35" in lines[2] and "76–120" in lines[2] and "12×" in lines[2]
    assert "worse !" in lines[2] and "0.0059" in lines[2]
    assert "undecided (never)" in lines[3] and "diverged" in lines[4]
    assert "…" in lines[1]  # a long name is cut
    assert text.count("parent run: http://x") == 1 and "! unstable" in text
