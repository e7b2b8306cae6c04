"""The sweep parent's description: the comparison in Markdown, links to the runs, the jobs that
did not finish listed apart, and never more than a tag holds."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd

from backprop_lab.experiments.sweep import description, readback, statistics
from backprop_lab.experiments.sweep.assess import Assessment
from backprop_lab.experiments.sweep.statistics import Interval, Verdict

EID, PARENT = "7", "p" * 32


def job(i: int, lr: float, depth: int, status: str, val_mse: float) -> dict[str, Any]:
    return {"run_name": f"lr={lr:g},depth={depth}", "status": status, "train.lr": lr,
            "depth": depth, "hidden": str([16] * depth), "val_mse": val_mse,
            "test_r2": 1 - val_mse / 100, "epochs_run": 5, "run_id": f"{i:032x}"}


def fake_run(row: dict[str, Any], tags: dict[str, str]) -> Any:
    return SimpleNamespace(info=SimpleNamespace(run_id=row["run_id"]), data=SimpleNamespace(
        tags=tags))


def sweep(n_finished: int = 3, tested: bool = True) -> dict[str, Any]:
    rows = [job(i, 10.0 ** -(i % 4 + 1), i % 3, "FINISHED", 10.0 + i)
            for i in range(n_finished)]
    diverged = job(900, 10.0, 2, "DIVERGED", math.nan)
    failed = job(901, 0.5, 1, "FAILED", math.nan)
    table = pd.DataFrame([*rows, diverged, failed])
    runs = [fake_run(r, {}) for r in rows] + [
        fake_run(diverged, {"diverged_epoch": "3", "last_finite_cost": "12.5"}),
        fake_run(failed, {"error": "ValueError: boom"})]
    verdicts = {}
    for k, r in enumerate(rows):
        tier = (statistics.BEST if k == 0 else statistics.UNDECIDED) if tested else \
            statistics.NO_EVIDENCE
        p = math.nan if k == 0 or not tested else 0.5
        mse = r["val_mse"]
        verdicts[r["run_id"]] = Verdict(tier, p, Interval(mse, 1.0, mse - 1, mse + 1, 5, mse, mse),
                                        p_equivalent=p, ratio=mse / 10.0,
                                        ratio_low=mse / 10.0 - 0.1, ratio_high=mse / 10.0 + 0.1,
                                        repeats_to_decide=math.inf if k == 2 else 3.0)
    unstable = {rows[1]["run_id"]: (1, 5)} if len(rows) > 1 else {}
    assessment = Assessment("val_mse", verdicts, n_cells=5 if tested else 1, ratio=0.25,
                            unstable=unstable)
    table = assessment.columns(table)
    summary = readback.Summary("ab" * 16, {"FINISHED": n_finished, "DIVERGED": 1, "FAILED": 1},
                             diverged=[diverged["run_name"]], failed=[failed["run_name"]],
                             metric="val_mse")
    if rows:
        summary.best_name, summary.best_run_id = rows[0]["run_name"], rows[0]["run_id"]
        summary.best_value = rows[0]["val_mse"]
    edge = {"lr_max_stable.depth_2": 0.01, "lr_min_diverged.depth_2": 10.0,
            "lr_max_stable.depth_0": 0.1}
    return {"table": table, "runs": runs, "summary": summary, "assessment": assessment,
            "edge": edge, "rows": rows, "diverged": diverged, "failed": failed}


def describe(s: dict[str, Any], compared: bool = True) -> str:
    return description.describe(s["table"], s["runs"], s["summary"], s["assessment"], s["edge"],
                                 EID, PARENT, "lr_depth", compared=compared)


def test_the_description_links_the_best_run_and_ranks_finished_jobs_only() -> None:
    s = sweep()
    text = describe(s)
    best = s["rows"][0]["run_id"]
    link = f"#/experiments/{EID}/runs/{best}?workflowType=machine_learning"
    assert f"**Best:** [{s['rows'][0]['run_name']}]({link})" in text
    assert f"best_run_id: [`{best}`]({link})" in text
    ranked, rest = text.split("**Did not finish** (not ranked):")
    table = [line for line in ranked.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| # | job | lr | depth | hidden | val_mse mean | centre | median "
                               "| 95% CI | × best (95% CI) | p worse | p equiv. | verdict |")
    assert [line.split(" | ")[0] for line in table[1:]][:3] == ["| 1", "| 2", "| 3"]
    assert "| best |" in table[1]
    assert "| undecided · unstable (1 of 5 cells) (~3 more repeats would decide it) |" in table[2]
    assert "more repeats cannot decide it" in table[3]
    assert "| 1.1× (1–1.2) |" in table[2]  # the error ratio to the best, with its interval
    assert "9 – 11" in table[1]  # the CI of the best job
    assert "*undecided*: neither shown worse nor shown equivalent" in text
    for bad in (s["diverged"], s["failed"]):
        assert bad["run_id"] not in ranked  # never ranked among the finished jobs
        assert f"[{bad['run_name']}](#/experiments/{EID}/runs/{bad['run_id']}" in rest
    assert "DIVERGED at epoch 3 (last finite cost 12.5)" in rest
    assert "FAILED: ValueError: boom" in rest


def test_the_description_has_the_frontier_and_the_report_link() -> None:
    text = describe(sweep())
    assert ("| depth | largest lr that trained stably | smallest lr unstable | smallest lr that "
            "diverged |") in text
    assert "| 0 | 0.1 | none | none |" in text and "| 2 | 0.01 | none | 10 |" in text
    report = f"#/experiments/{EID}/runs/{PARENT}/artifacts/compare/report.html"
    assert f"[compare/report.html]({report}?workflowType=machine_learning)" in text
    # before `compare` has run, it says how to get the plots instead
    assert "python -m pipelines.compare sweep_id=abababab" in describe(sweep(), compared=False)


def test_without_evidence_there_are_no_tier_columns_and_the_reason_is_given() -> None:
    text = describe(sweep(tested=False))
    header = next(line for line in text.splitlines() if line.startswith("| # |"))
    assert "verdict" not in header and "p worse" not in header
    assert "nothing to test on val_mse" in text


def test_a_large_sweep_fits_in_one_tag() -> None:
    s = sweep(n_finished=300)
    text = describe(s)
    assert len(text) <= description.LIMIT
    assert "more finished jobs: `compare/jobs.md`" in text
    assert "**Did not finish** (not ranked):" in text and "Learning-rate frontier" in text


def test_no_finished_job_says_so() -> None:
    text = describe(sweep(n_finished=0))
    assert "**No job finished**" in text and "**Did not finish**" in text


def test_the_parent_gets_the_description_when_the_sweep_ends(store_uri: str,
                                                              tmp_path: Path) -> None:
    """`SweepRun.finish` (the multirun's end) describes the parent: children made by hand."""
    from mlflow.tracking import MlflowClient

    from backprop_lab.experiments.sweep.parent import SweepRun

    sweep_run = SweepRun.start(store_uri, "backprop-lab", tmp_path / "sweep", "lr_depth",
                               ["train.lr", "model.depth"], {})
    client, pid = MlflowClient(store_uri), sweep_run.parent.run_id
    eid = sweep_run.parent.store.experiment_id
    ids = {}
    for lr, val_mse, status in ((0.01, 20.0, "FINISHED"), (0.001, 30.0, "FINISHED"),
                                (10.0, 5.0, "FAILED")):
        tags = {"mlflow.parentRunId": pid, "sweep_id": sweep_run.sweep_id}
        if status == "FAILED":
            tags.update(diverged="true", diverged_epoch="2", last_finite_cost="3.5")
        run = client.create_run(eid, tags=tags, run_name=f"lr={lr:g},depth=1")
        client.log_param(run.info.run_id, "train.lr", str(lr))
        client.log_param(run.info.run_id, "depth", "1")
        client.log_metric(run.info.run_id, "val_mse", val_mse)  # a FAILED run's low value
        client.set_terminated(run.info.run_id, status)
        ids[lr] = run.info.run_id
    sweep_run.finish("FINISHED")
    text = client.get_run(pid).data.tags[description.DESCRIPTION]
    assert text.startswith(f"**Sweep `lr_depth` `{sweep_run.sweep_id[:8]}`**: 3 jobs")
    assert f"best_run_id: [`{ids[0.01]}`](#/experiments/{eid}/runs/{ids[0.01]}?" in text
    ranked, rest = text.split("**Did not finish**")
    assert ids[10.0] not in ranked and ids[10.0] in rest  # its low val_mse is not ranked
    assert ranked.index(ids[0.01]) < ranked.index(ids[0.001])
    assert f"pipelines.compare sweep_id={sweep_run.sweep_id[:8]}" in text
