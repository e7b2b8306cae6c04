"""A sweep read back from MLflow: its parent run, its children, one table row per job, a summary.

A sweep is one parent run (tags `sweep_role=parent`, `sweep_id`, `swept`) created by
`experiments.sweep.parent.SweepRun`, and one child run per job with the same `sweep_id` tag.
The plots live in `plots.sweep_plots`; `experiments.sweep.compare` draws and writes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from mlflow.entities import Run as MlflowRun
from mlflow.tracking import MlflowClient

from backprop_lab.errors import NotFound
from backprop_lab.experiments.run.identity import RANKING_METRICS, REUSE_TAG

PARENT_FILTER = "tags.sweep_role = 'parent'"
# final metrics shown in the table, in this order, when the children logged them
METRICS = ("val_mse", "val_rmse", "val_r2", "test_mse", "test_rmse", "test_r2", "best_val_loss",
           "epochs_run", "cv_std.val_mse", "cv_std.test_r2")
# the architecture is one param, `hidden` (the widths that trained), with `depth` and `width`;
# runs logged before that have `model.hidden_layers`
ALWAYS_PARAMS = ("train.lr", "depth", "hidden", "model.hidden_layers")
NEVER_PARAMS = ("tracking.run_name", "train.log10_lr")  # log10_lr: for the UI's axes only
# swept keys shown by the architecture's columns
ALIASES = {"model.depth": "depth", "model.width": "width", "model.hidden": "hidden"}


class SweepNotFound(NotFound):
    """No sweep parent run matches (or the store holds no sweep at all)."""


def _search_all(client: MlflowClient, experiment_ids: list[str], filter_string: str,
                order_by: list[str] | None = None, limit: int | None = None) -> list[MlflowRun]:
    runs: list[MlflowRun] = []
    token = None
    while True:
        page = client.search_runs(experiment_ids, filter_string, max_results=1000,
                                  order_by=order_by, page_token=token)
        runs.extend(page)
        token = page.token
        if not token or (limit is not None and len(runs) >= limit):
            return runs[:limit] if limit is not None else runs


def find_parent(client: MlflowClient, sweep_id: str | None = None,
                experiment: str | None = None) -> MlflowRun:
    """The parent run of sweep `sweep_id` (a prefix is enough), or of the latest sweep; in
    `experiment` only, when it is given."""
    if experiment:
        found_experiment = client.get_experiment_by_name(experiment)
        if found_experiment is None:
            raise SweepNotFound(f"tracking.experiment: no experiment {experiment!r} in the store")
        experiment_ids = [found_experiment.experiment_id]
    else:
        experiment_ids = [e.experiment_id for e in client.search_experiments()]
    if not experiment_ids:
        raise SweepNotFound("the store has no experiments")
    latest_first = ["attributes.start_time DESC"]
    if not sweep_id:
        found = _search_all(client, experiment_ids, PARENT_FILTER, latest_first, limit=1)
        if not found:
            raise SweepNotFound("no sweep in this store: run `python -m pipelines.train -m ...`")
        return found[0]
    where = f"{PARENT_FILTER} and tags.sweep_id LIKE '{sweep_id}%'"
    found = _search_all(client, experiment_ids, where, latest_first)
    if len(found) != 1:
        what = "no sweep" if not found else f"{len(found)} sweeps"
        raise SweepNotFound(f"{what} with sweep_id {sweep_id!r}")
    return found[0]


def children(client: MlflowClient, parent_run_id: str) -> list[MlflowRun]:
    """Every job of the sweep whose parent run is `parent_run_id`, oldest first; then the runs
    a resumed sweep reused instead of training again (parent tags `reused.<run_id>`)."""
    parent = client.get_run(parent_run_id)
    sweep_id = parent.data.tags["sweep_id"]
    where = f"tags.sweep_id = '{sweep_id}' and tags.`mlflow.parentRunId` = '{parent_run_id}'"
    runs = _search_all(client, [parent.info.experiment_id], where, ["attributes.start_time ASC"])
    own = {r.info.run_id for r in runs}
    reused = [k.removeprefix(REUSE_TAG) for k in parent.data.tags if k.startswith(REUSE_TAG)]
    return runs + [client.get_run(run_id) for run_id in reused if run_id not in own]


def reused_by(run: MlflowRun, parent_run_id: str) -> bool:
    """Whether `run` is a job the sweep reused (a child of another sweep, or of none)."""
    return run.data.tags.get("mlflow.parentRunId") != parent_run_id


def job_status(run: MlflowRun) -> str:
    """FINISHED, DIVERGED (FAILED with tag diverged=true), PRUNED (FAILED with tag
    pruned=true: a search's pruner stopped it), FAILED, KILLED or RUNNING."""
    if run.info.status == "FAILED" and run.data.tags.get("diverged") == "true":
        return "DIVERGED"
    if run.info.status == "FAILED" and run.data.tags.get("pruned") == "true":
        return "PRUNED"
    return str(run.info.status)


def _number(value: str) -> Any:
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


def param_columns(runs: Sequence[MlflowRun], swept: Sequence[str] = ()) -> list[str]:
    """Always lr, depth and the hidden widths; then every swept key and every param that
    differs between the jobs."""
    names = {k for r in runs for k in r.data.params}
    varying = sorted(k for k in names if len({r.data.params.get(k) for r in runs}) > 1)
    wanted = [ALIASES.get(k, k) for k in (*ALWAYS_PARAMS, *swept, *varying)]
    columns: list[str] = []
    for key in wanted:
        if key in names and key not in columns and key not in NEVER_PARAMS:
            columns.append(key)
    return columns


def metric_for(columns: Sequence[str], metric: str | None = None) -> str:
    """The ranking metric: `metric` if given, else the first of `RANKING_METRICS` present."""
    if metric:
        return metric
    return next((m for m in RANKING_METRICS if m in columns), RANKING_METRICS[0])


def higher_is_better(metric: str) -> bool:
    return metric.endswith("r2")


def jobs_table(runs: Sequence[MlflowRun], swept: Sequence[str] = (),
               metric: str | None = None, parent_run_id: str | None = None) -> pd.DataFrame:
    """One row per job, best first (finished jobs before diverged or failed ones): name,
    status, params, final metrics, duration and the time spent training and in MLflow; with
    `parent_run_id`, a column `reused` (when the sweep reused any run instead of training it)."""
    params = param_columns(runs, swept)
    rows = []
    for run in runs:
        info, data = run.info, run.data
        row: dict[str, Any] = {"run_name": info.run_name, "status": job_status(run)}
        if parent_run_id is not None:
            row["reused"] = reused_by(run, parent_run_id)
        row.update({k: _number(data.params[k]) if k in data.params else None for k in params})
        row.update({m: data.metrics.get(m, math.nan) for m in METRICS})
        end = info.end_time or info.start_time
        row["duration_s"] = (end - info.start_time) / 1000.0
        for tag in ("seconds_training", "seconds_mlflow"):
            row[tag] = float(data.tags.get(tag, "nan"))
        row["run_id"] = info.run_id
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    optional = [*METRICS, "seconds_training", "seconds_mlflow"]
    table = table.drop(columns=[c for c in optional if table[c].isna().all()])
    if "reused" in table and not table["reused"].any():
        table = table.drop(columns="reused")
    key = metric_for(list(table.columns), metric)
    if key in table:
        table = table.assign(_failed=table["status"] != "FINISHED")
        table = table.sort_values(["_failed", key], ascending=[True, not higher_is_better(key)],
                                  na_position="last", kind="stable").drop(columns="_failed")
    return table.reset_index(drop=True)


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub Markdown table (no `tabulate` needed); floats with 4 significant digits."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.4g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


@dataclass
class Summary:
    """How the jobs of one sweep ended, and the best finished one."""

    sweep_id: str
    counts: dict[str, int] = field(default_factory=dict)
    diverged: list[str] = field(default_factory=list)  # run names
    failed: list[str] = field(default_factory=list)
    reused: int = 0  # jobs a resumed sweep took from earlier runs instead of training them
    metric: str = "val_mse"
    best_name: str | None = None
    best_run_id: str | None = None
    best_value: float | None = None
    notes: list[str] = field(default_factory=list)  # e.g. the tiers, appended by the caller

    def adopt_best(self, table: pd.DataFrame) -> None:
        """The best is the first finished row of `table` (ranked by the verdicts' centre)."""
        if table.empty or "run_id" not in table:
            return
        finished = table[table["status"] == "FINISHED"] if "status" in table else table
        finished = finished[~finished["run_id"].astype(str).str.startswith("baseline:")]
        if finished.empty or self.metric not in finished:
            return
        best = finished.iloc[0]
        if not math.isnan(best[self.metric]):
            self.best_name, self.best_run_id = str(best["run_name"]), str(best["run_id"])
            self.best_value = float(best[self.metric])

    def text(self) -> str:
        total = sum(self.counts.values())
        parts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(self.counts.items()))
        reused = f" ({self.reused} reused from earlier runs)" if self.reused else ""
        lines = [f"sweep {self.sweep_id}: {total} jobs: {parts or 'none'}{reused}"]
        if self.diverged:
            lines.append("diverged: " + "; ".join(self.diverged))
        if self.failed:
            lines.append("failed: " + "; ".join(self.failed))
        if self.best_name is not None:
            lines.append(f"best: {self.best_name} ({self.metric} {self.best_value:.4g}, "
                         f"run {self.best_run_id})")
        return "\n".join([*lines, *self.notes])

    def tags(self) -> dict[str, str]:
        tags = {"summary": self.text().splitlines()[0],
                **{f"n_{s.lower()}": str(self.counts.get(s, 0))
                   for s in ("FINISHED", "DIVERGED", "FAILED", *self.counts)},
                "n_reused": str(self.reused),
                "diverged_runs": "; ".join(self.diverged), "failed_runs": "; ".join(self.failed)}
        if self.best_run_id:
            tags.update(best_run_id=self.best_run_id, best_run_name=str(self.best_name))
        return tags


def summarize(runs: Sequence[MlflowRun], sweep_id: str = "", metric: str | None = None,
              parent_run_id: str | None = None) -> Summary:
    """Counts by status (FINISHED, DIVERGED, FAILED, ...), the names of the jobs that did not
    finish, how many were reused (given `parent_run_id`), and the best finished job."""
    summary = Summary(sweep_id or (runs[0].data.tags.get("sweep_id", "?") if runs else "?"))
    if parent_run_id is not None:
        summary.reused = sum(reused_by(r, parent_run_id) for r in runs)
    for run in runs:
        status = job_status(run)
        summary.counts[status] = summary.counts.get(status, 0) + 1
        if status == "DIVERGED":
            summary.diverged.append(str(run.info.run_name))
        elif status not in ("FINISHED", "PRUNED"):  # pruned: counted, not a failure
            summary.failed.append(f"{run.info.run_name} ({status})")
    table = jobs_table(runs, metric=metric)
    summary.metric = metric_for(list(table.columns), metric)
    if not table.empty and summary.metric in table:
        best = table.iloc[0]
        if best["status"] == "FINISHED" and not math.isnan(best[summary.metric]):
            summary.best_name, summary.best_run_id = str(best["run_name"]), str(best["run_id"])
            summary.best_value = float(best[summary.metric])
    return summary
