"""A sweep's jobs assessed on their score cells: mean, 95% CI, p against the best, a tier; and
the learning-rate frontier of divergence per depth.

The cells of a job come from its `scores.csv` artifact (one row per (repeat, fold)); a job
logged before that artifact existed falls back on its `fold{k}.<metric>` metrics, or on its one
final metric. The statistics are `experiments.sweep.statistics`; this module reads MLflow and writes
the table's columns, the summary's words and the runs' tags.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backprop_lab.experiments.sweep import statistics
from backprop_lab.experiments.sweep.statistics import NO_EVIDENCE, Cells, Verdict

LR, DEPTH = "train.lr", "depth"


def job_cells(client: Any, run: Any, metric: str, folder: Path) -> tuple[Cells, float]:
    """The job's (repeat, fold) -> `metric` cells, and its mean n_held_out/n_train (the rows
    `metric` is scored on: validation rows for `val_*`, else test rows; 0 when the cells do not
    say, and the test is then the plain paired t-test)."""
    run_id = run.info.run_id
    if any(a.path == "scores.csv" for a in client.list_artifacts(run_id)):
        path = client.download_artifacts(run_id, "scores.csv", str(folder))
        scores = pd.read_csv(path)
        if metric in scores:
            scores = scores.dropna(subset=[metric])
            cells = {(int(r), int(f)): float(v) for r, f, v in
                     zip(scores["repeat"], scores["fold"], scores[metric])}
            held_out = "n_val" if metric.startswith("val_") and "n_val" in scores else "n_test"
            ratio = float((scores[held_out] / scores["n_train"]).mean()) if len(scores) else 0.0
            return cells, ratio
    metrics = run.data.metrics
    folds = {(0, int(k[4:].split(".")[0])): v for k, v in metrics.items()
             if k.startswith("fold") and k.endswith(f".{metric}")}
    if folds:
        return folds, 0.0
    return ({(0, 0): float(metrics[metric])} if metric in metrics else {}), 0.0


@dataclass
class Assessment:
    metric: str
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # by run id
    n_cells: int = 0  # the most cells a job has
    ratio: float = 0.0

    @property
    def tested(self) -> bool:
        return any(v.tier in (statistics.SAME, statistics.WORSE) for v in self.verdicts.values())

    def columns(self, table: pd.DataFrame) -> pd.DataFrame:
        """The table with n_cells, ci_low, ci_high, p_vs_best and tier per job."""
        if table.empty:
            return table
        by_id = [self.verdicts.get(run_id) for run_id in table["run_id"]]
        return table.assign(
            n_cells=[v.interval.n if v else 0 for v in by_id],
            ci_low=[v.interval.low if v else math.nan for v in by_id],
            ci_high=[v.interval.high if v else math.nan for v in by_id],
            p_vs_best=[v.p_vs_best if v else math.nan for v in by_id],
            tier=[v.tier if v else NO_EVIDENCE for v in by_id])

    def text(self, names: dict[str, str]) -> str:
        """The summary's words: the test, the best, the indistinguishable, or why none."""
        if not self.tested:
            return (f"tiers: nothing to test on {self.metric}: "
                    f"{'one cell' if self.n_cells <= 1 else 'too few shared cells'} per job; "
                    "run the sweep with eval.repeats=K or eval.cv_folds=K (K >= 2) to tell "
                    "real differences from noise")
        groups: dict[str, list[str]] = {}
        for run_id, verdict in self.verdicts.items():
            groups.setdefault(verdict.tier, []).append(names.get(run_id, run_id))
        test = ("corrected resampled t-test (Nadeau & Bengio)" if self.ratio > 0
                else "paired t-test")
        lines = [f"tiers on {self.metric} ({self.n_cells} paired cells per job, {test} against "
                 f"the best, Holm-adjusted, 5%):"]
        for tier in (statistics.BEST, statistics.SAME, statistics.WORSE, statistics.DIVERGED,
                     NO_EVIDENCE):
            if tier in groups:
                lines.append(f"  {tier}: {'; '.join(groups[tier])}")
        return "\n".join(lines)

    def tags(self, run_id: str) -> dict[str, str]:
        verdict = self.verdicts.get(run_id)
        if verdict is None:
            return {}
        p = "" if math.isnan(verdict.p_vs_best) else f"{verdict.p_vs_best:.4g}"
        return {"tier": verdict.tier, "p_vs_best": p}


def assess(client: Any, runs: Sequence[Any], metric: str, failed: set[str]) -> Assessment:
    """Tiers of `runs` on `metric` (`failed`: the run ids that diverged or failed)."""
    from backprop_lab.experiments.sweep.readback import higher_is_better

    cells: dict[str, Cells] = {}
    ratios = []
    with tempfile.TemporaryDirectory(prefix="backprop-cells-") as tmp:
        for run in runs:
            found, ratio = job_cells(client, run, metric, Path(tmp) / run.info.run_id)
            cells[run.info.run_id] = found
            ratios.append(ratio)
    ratio = float(np.mean(ratios)) if ratios else 0.0
    verdicts = statistics.tiers(cells, ratio, higher_is_better(metric), frozenset(failed))
    return Assessment(metric, verdicts, max((len(c) for c in cells.values()), default=0), ratio)


def frontier(table: pd.DataFrame) -> dict[str, float]:
    """Per depth, the largest learning rate that trained and the smallest that diverged:
    `lr_max_stable.depth_<d>` and `lr_min_diverged.depth_<d>` (MLflow keys allow no `=`)."""
    if table.empty or LR not in table:
        return {}
    depth = table[DEPTH] if DEPTH in table else pd.Series(-1, index=table.index)
    found: dict[str, float] = {}
    for d in sorted(set(depth.dropna())):
        rows = table[depth == d]
        lrs = pd.to_numeric(rows[LR], errors="coerce")
        ok, bad = lrs[rows["status"] == "FINISHED"], lrs[rows["status"] == "DIVERGED"]
        suffix = f"depth_{int(d)}" if d >= 0 else "all"
        if len(ok):
            found[f"lr_max_stable.{suffix}"] = float(ok.max())
        if len(bad):
            found[f"lr_min_diverged.{suffix}"] = float(bad.min())
    return found


def record(client: Any, parent_run_id: str, runs: Sequence[Any], assessment: Assessment,
           edge: dict[str, float]) -> None:
    """Tags `tier` and `p_vs_best` on the sweep's own children (a reused run belongs to another
    sweep and keeps its tags); on the parent, the tier of every job in one tag and the
    frontier as metrics."""
    import time

    from mlflow.entities import Metric, RunTag

    for run in runs:
        tags = assessment.tags(run.info.run_id)
        if tags and run.data.tags.get("mlflow.parentRunId") == parent_run_id:
            client.log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    names = {r.info.run_id: str(r.info.run_name) for r in runs}
    now = int(time.time() * 1000)
    client.log_batch(parent_run_id, metrics=[Metric(k, v, now, 0) for k, v in edge.items()],
                     tags=[RunTag("tiers", assessment.text(names)[:5000]),
                           RunTag("tier_metric", assessment.metric)])
