"""A sweep's jobs assessed on their score cells: centre, 95% interval, verdict against the best,
the `unstable` flag; and the learning-rate frontier of divergence per depth.

The cells of a job come from its `scores.csv` artifact (one row per (repeat, fold), every final
metric); a job logged before that artifact existed falls back on its `fold{k}.<metric>`
metrics, or on its one final metric. The statistics are `experiments.sweep.statistics`; this
module reads MLflow and writes the table's columns, the summary's words and the runs' tags.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backprop_lab.experiments.run.cells import Interval, wild_cells
from backprop_lab.experiments.run.scoring import BASELINES_CSV
from backprop_lab.experiments.sweep import importance, readback, statistics
from backprop_lab.experiments.sweep.readback import ALIASES
from backprop_lab.experiments.sweep.statistics import NO_EVIDENCE, Cells, Verdict

LR, DEPTH = "train.lr", "depth"
PRUNED = "pruned"  # the verdict of a job a search's pruner stopped: not ranked, not diverged
FAILED, KILLED = "failed", "killed"  # a job that ended on an error / was stopped: not ranked
UNRANKED = (statistics.DIVERGED, PRUNED, FAILED, KILLED)  # no scores: listed apart
WORDS = {  # what each verdict means, in the summary and the description
    statistics.BEST: "the smallest trimmed geometric mean error",
    statistics.EQUIVALENT: "shown within ±{eq:g}% of the best",
    statistics.UNDECIDED: "neither shown worse nor shown equivalent: this sweep cannot tell",
    statistics.WORSE: "shown worse than the best",
    statistics.DIVERGED: "diverged, not ranked",
    PRUNED: "stopped early by the search's pruner, not ranked",
    FAILED: "ended on an error, not ranked",
    KILLED: "stopped before it ended (interrupted, or its process died), not ranked",
}


@dataclass
class JobCells:
    """One job's cells on the ranking metric, and the ones that blew up."""

    cells: Cells
    ratio: float  # mean n_held_out / n_train (0: not known, the cells count as independent)
    wild: list[tuple[int, int]] = field(default_factory=list)


def job_cells(client: Any, run: Any, metric: str, folder: Path) -> JobCells:
    """The job's (repeat, fold) -> `metric` cells, its mean n_held_out/n_train (the rows
    `metric` is scored on: validation rows for `val_*`, else test rows) and its wild cells
    (`run.cells.wild_cells`, on `metric` and on the same split's R²)."""
    run_id = run.info.run_id
    if any(a.path == "scores.csv" for a in client.list_artifacts(run_id)):
        path = client.download_artifacts(run_id, "scores.csv", str(folder))
        scores = pd.read_csv(path)
        if metric in scores:
            scores = scores.dropna(subset=[metric]).reset_index(drop=True)
            keys = [(int(r), int(f)) for r, f in zip(scores["repeat"], scores["fold"])]
            cells = dict(zip(keys, scores[metric].astype(float)))
            held_out = "n_val" if metric.startswith("val_") and "n_val" in scores else "n_test"
            ratio = float((scores[held_out] / scores["n_train"]).mean()) if len(scores) else 0.0
            r2 = f"{metric.split('_')[0]}_r2"
            wild = wild_cells(metric, scores[metric].to_numpy(),
                              scores[r2].to_numpy() if r2 in scores else None)
            return JobCells(cells, ratio, [keys[i] for i in wild])
    metrics = run.data.metrics
    folds = {(0, int(k[4:].split(".")[0])): v for k, v in metrics.items()
             if k.startswith("fold") and k.endswith(f".{metric}")}
    if folds:
        return JobCells(folds, 0.0)
    return JobCells({(0, 0): float(metrics[metric])} if metric in metrics else {}, 0.0)


@dataclass
class Assessment:
    metric: str
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # by run id
    n_cells: int = 0  # the most cells a job has
    ratio: float = 0.0
    equivalence: float = statistics.EQUIVALENCE
    unstable: dict[str, tuple[int, int]] = field(default_factory=dict)  # run id -> (k, n)
    shares: dict[str, float] = field(default_factory=dict)  # ANOVA term -> share (importance)
    baselines: list[str] = field(default_factory=list)  # pseudo run ids `baseline:<name>`
    baselines_skipped: bool = False  # the jobs logged baselines, but not on `metric`

    @property
    def tested(self) -> bool:
        return any(v.tier not in (statistics.BEST, NO_EVIDENCE, *UNRANKED)
                   for v in self.verdicts.values())

    @property
    def best(self) -> str | None:
        return next((j for j, v in self.verdicts.items() if v.tier == statistics.BEST), None)

    @property
    def log_scale(self) -> bool:
        return any(v.scale == "log" for v in self.verdicts.values())

    def unstable_text(self, run_id: str) -> str:
        """"unstable (k of n cells)" for a job with wild cells, else ''."""
        k, n = self.unstable.get(run_id, (0, 0))
        return f"unstable ({k} of {n} cells)" if k else ""

    def columns(self, table: pd.DataFrame) -> pd.DataFrame:
        """The table with each job's centre, median, 95% interval, ratio to the best with its
        interval, p-values, verdict, unstable flag and repeats that would decide it; finished
        jobs ranked by the centre the verdicts use, best first."""
        if table.empty:
            return table
        if self.baselines:  # a row per baseline, compared like a job
            rows = [{"run_name": f"baseline: {b.removeprefix(BASELINE)}", "status": "FINISHED",
                     self.metric: self.verdicts[b].interval.mean, "run_id": b}
                    for b in self.baselines if b in self.verdicts]
            table = pd.concat([table, pd.DataFrame(rows)], ignore_index=True)
        by_id = [self.verdicts.get(run_id) for run_id in table["run_id"]]
        by_id = [v if v is None or v.tier not in UNRANKED else  # no scores
                 Verdict(v.tier, math.nan, Interval(math.nan, math.nan, math.nan, math.nan, 0))
                 for v in by_id]
        nan = math.nan
        table = table.assign(
            n_cells=[v.interval.n if v else 0 for v in by_id],
            centre=[v.interval.centre if v else nan for v in by_id],
            median=[v.interval.median if v else nan for v in by_id],
            ci_low=[v.interval.low if v else nan for v in by_id],
            ci_high=[v.interval.high if v else nan for v in by_id],
            ratio_vs_best=[v.ratio if v else nan for v in by_id],
            ratio_ci_low=[v.ratio_low if v else nan for v in by_id],
            ratio_ci_high=[v.ratio_high if v else nan for v in by_id],
            p_vs_best=[v.p_vs_best if v else nan for v in by_id],
            p_equivalent=[v.p_equivalent if v else nan for v in by_id],
            tier=[v.tier if v else NO_EVIDENCE for v in by_id],
            unstable=[self.unstable_text(run_id) for run_id in table["run_id"]],
            repeats_to_decide=[v.repeats_to_decide if v else nan for v in by_id])
        if table["centre"].notna().any():
            higher = self.metric.endswith("r2")
            table = table.assign(_failed=table["status"] != "FINISHED")
            table = table.sort_values(["_failed", "centre"], ascending=[True, not higher],
                                      na_position="last", kind="stable").drop(columns="_failed")
        return table.reset_index(drop=True)

    def scale_text(self) -> str:
        cells = f"{self.n_cells} paired cells per job"
        if self.log_scale:
            how = ("per-cell log ratios of the error (R² through 1 − R²), 20%-trimmed mean "
                   "(Yuen)")
        else:
            how = "per-cell differences, 20%-trimmed mean (Yuen)"
        correction = ", corrected for shared training rows (Nadeau & Bengio)" if \
            self.ratio > 0 else ""
        return (f"verdicts on {self.metric} ({cells}; {how}{correction}; against the best: "
                "worse by the studentized range of the jobs still in the running, "
                f"equivalent within ±{self.equivalence * 100:g}% by two one-sided tests with "
                "Holm; 5% family-wise over the sweep)")

    def text(self, names: dict[str, str]) -> str:
        """The summary's words: the test, then each verdict's jobs, or why nothing is tested."""
        if not self.tested:
            return (f"verdicts: nothing to test on {self.metric}: "
                    f"{'one cell' if self.n_cells <= 1 else 'too few shared cells'} per job; "
                    "run the sweep with eval.repeats=K or eval.cv_folds=K (K >= 2) to tell "
                    "real differences from noise")
        groups: dict[str, list[str]] = {}
        for run_id, verdict in self.verdicts.items():
            label = names.get(run_id, run_id)
            if self.unstable.get(run_id, (0, 0))[0]:
                label += f" [{self.unstable_text(run_id)}]"
            groups.setdefault(verdict.tier, []).append(label)
        lines = [self.scale_text() + ":"]
        for tier in (*statistics.TIERS, PRUNED, FAILED, KILLED):
            if tier in groups:
                lines.append(f"  {tier}: {'; '.join(groups[tier])}")
        if self.shares:
            lines.append(importance.text(self.shares))
        if self.baselines_skipped:
            lines.append(f"baselines: scored on test rows only, not on {self.metric}; "
                         "`python -m pipelines.compare metric=test_mse` ranks them with the jobs")
        return "\n".join(lines)

    def tags(self, run_id: str) -> dict[str, str]:
        verdict = self.verdicts.get(run_id)
        if verdict is None:
            return {}

        def number(value: float) -> str:
            return "" if math.isnan(value) else f"{value:.4g}"

        tags = {"tier": verdict.tier, "p_vs_best": number(verdict.p_vs_best),
                "p_equivalent": number(verdict.p_equivalent),
                "unstable": self.unstable_text(run_id) or "false"}
        if verdict.scale == "log" and not math.isnan(verdict.ratio):
            tags["error_ratio_vs_best"] = number(verdict.ratio)
        if verdict.tier == statistics.UNDECIDED:
            tags["repeats_to_decide"] = ("more repeats cannot decide it"
                                         if math.isinf(verdict.repeats_to_decide)
                                         else str(int(verdict.repeats_to_decide)))
        return tags


def assess(client: Any, runs: Sequence[Any], metric: str, failed: set[str],
           equivalence: float | None = None, swept: Sequence[str] = ()) -> Assessment:
    """Verdicts on `runs` on `metric` (`failed`: the run ids that diverged or failed;
    `equivalence`: None takes the jobs' logged `eval.equivalence`, else 1%), and the share of
    the variation each of the `swept` keys explains."""
    found: dict[str, JobCells] = {}
    with tempfile.TemporaryDirectory(prefix="backprop-cells-") as tmp:
        for run in runs:
            found[run.info.run_id] = job_cells(client, run, metric, Path(tmp) / run.info.run_id)
    ratios = [j.ratio for j in found.values()]
    ratio = float(np.mean(ratios)) if ratios else 0.0
    if equivalence is None:
        logged = {r.data.params.get("eval.equivalence") for r in runs} - {None}
        equivalence = float(logged.pop()) if len(logged) == 1 else statistics.EQUIVALENCE
        base = baseline_cells(client, runs, metric, Path(tmp) / "baselines")
    cells = {run_id: j.cells for run_id, j in found.items()}
    keys = [ALIASES.get(k, k) for k in swept]
    values = {r.info.run_id: {k: r.data.params.get(k) for k in keys} for r in runs}
    alive = {run_id: c for run_id, c in cells.items() if run_id not in failed and c}
    shares = importance.shares(alive, values, keys, metric)
    skipped = base.pop(f"{BASELINE}{NOT_RANKED}", None) is not None
    cells.update(base)  # the baselines are judged as jobs, on the same cells
    verdicts = statistics.verdicts(cells, ratio, metric, frozenset(failed), equivalence)
    for run in runs:  # not ranked, as a diverged job, but said for what it is
        said = {"PRUNED": PRUNED, "FAILED": FAILED, "KILLED": KILLED, "RUNNING": KILLED}.get(
            readback.job_status(run))
        verdict = verdicts.get(run.info.run_id)
        if said and verdict is not None and verdict.tier == statistics.DIVERGED:
            verdicts[run.info.run_id] = replace(verdict, tier=said)
    unstable = {run_id: (len(j.wild), len(j.cells)) for run_id, j in found.items()
                if j.wild and run_id not in failed}
    return Assessment(metric, verdicts, max((len(c) for c in cells.values()), default=0), ratio,
                      equivalence, unstable, shares, sorted(base), skipped)


BASELINE = "baseline:"  # the pseudo run id of a baseline row: baseline:<name>
NOT_RANKED = "?"  # baseline_cells' mark: the jobs logged baselines, not on this metric


def baseline_cells(client: Any, runs: Sequence[Any], metric: str,
                   folder: Path) -> dict[str, Cells]:
    """The baselines' cells on `metric` (`baseline:<name>` -> (repeat, fold) -> score), from the
    first job that logged `baselines.csv` (`eval.baselines=true`): every job of a sweep scores
    on the same cells, so any job's baselines are the sweep's. Only test metrics: baselines
    have no validation rows."""
    for run in runs:
        if any(a.path == BASELINES_CSV for a in client.list_artifacts(run.info.run_id)):
            path = client.download_artifacts(run.info.run_id, BASELINES_CSV, str(folder))
            frame = pd.read_csv(path)
            if metric not in frame:  # e.g. val_mse: say how to see them instead
                return {f"{BASELINE}{NOT_RANKED}": {}}
            return {f"{BASELINE}{name}": {(int(r), int(f)): float(v) for r, f, v in
                                          zip(rows["repeat"], rows["fold"], rows[metric])}
                    for name, rows in frame.groupby("baseline", sort=False)}
    return {}


def frontier(table: pd.DataFrame) -> dict[str, float]:
    """Per depth, the largest learning rate that trained stably, the smallest that was unstable
    (some cells blew up: the table's `unstable` column) and the smallest that diverged:
    `lr_max_stable.depth_<d>`, `lr_min_unstable.depth_<d>`, `lr_min_diverged.depth_<d>`
    (MLflow keys allow no `=`)."""
    if table.empty or LR not in table:
        return {}
    depth = table[DEPTH] if DEPTH in table else pd.Series(-1, index=table.index)
    found: dict[str, float] = {}
    for d in sorted(set(depth.dropna())):
        rows = table[depth == d]
        lrs = pd.to_numeric(rows[LR], errors="coerce")
        shaky = (rows["unstable"].fillna("") != "") if "unstable" in rows else False
        finished = rows["status"] == "FINISHED"
        ok, bad = lrs[finished & ~shaky], lrs[rows["status"] == "DIVERGED"]
        wobbly = lrs[finished & shaky]
        suffix = f"depth_{int(d)}" if d >= 0 else "all"
        if len(ok):
            found[f"lr_max_stable.{suffix}"] = float(ok.max())
        if len(wobbly):
            found[f"lr_min_unstable.{suffix}"] = float(wobbly.min())
        if len(bad):
            found[f"lr_min_diverged.{suffix}"] = float(bad.min())
    return found


def record(client: Any, parent_run_id: str, runs: Sequence[Any], assessment: Assessment,
           edge: dict[str, float]) -> None:
    """Tags `tier`, `p_vs_best`, `p_equivalent`, `unstable` (and `repeats_to_decide`) on the
    sweep's own children (a reused run belongs to another sweep and keeps its tags); on the
    parent, every job's verdict in one tag and the frontier as metrics."""
    import time

    from mlflow.entities import Metric, RunTag

    for run in runs:
        tags = assessment.tags(run.info.run_id)
        if tags and run.data.tags.get("mlflow.parentRunId") == parent_run_id:
            client.log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    names = {r.info.run_id: str(r.info.run_name) for r in runs}
    now = int(time.time() * 1000)
    found = {b: assessment.verdicts[b].interval.centre for b in assessment.baselines
             if b in assessment.verdicts}  # the baselines' centres, beside the jobs'
    centres = {f"{b.replace(':', '.')}.{assessment.metric}_centre": v for b, v in found.items()
               if not math.isnan(v)}
    client.log_batch(parent_run_id, metrics=[Metric(k, v, now, 0) for k, v in
                                             {**edge, **centres}.items()],
                     tags=[RunTag("tiers", assessment.text(names)[:5000]),
                           RunTag("tier_metric", assessment.metric)])
