"""Compare the jobs of a sweep: the table, the plots and the summary, written to a folder and
logged to the sweep's parent run.

Reads the sweep's parent run and its children from MLflow (the latest sweep unless `sweep_id`
is given) and writes, into `out` (default: <sweep dir>/compare, else ./sweep-<id>-compare):
  jobs.csv, jobs.md            every job: params, final metrics, status, duration; best first
  loss_vs_lr.png               final validation loss against lr (log x), one line per depth
  learning_curves.png          the per-epoch validation cost of every job (median over its
                               cells), a panel per depth
  heatmap_lr_depth.png         the ranking metric over lr x depth: centre [95% CI], verdict
  gradient_flow_l0.png         the first layer's gradient norm of every job (diag.every > 0)
  optimization_history.png     an Optuna search only: each trial's score and the best so far
  report.html                  interactive (Plotly, offline): parallel coordinates on a log10
                               lr axis, learning curves per depth with quartile bands, the
                               heatmap
The parent run's description (`mlflow.note.content`) becomes the comparison
(`experiments.sweep.description`).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from backprop_lab.errors import ConfigError
from backprop_lab.experiments.sweep import assess, console, description, readback, search
from backprop_lab.pipeline.config import CompareCommand
from backprop_lab.plots import interactive, search_plots, sweep_plots
from backprop_lab.tracking import ui
from backprop_lab.tracking.store import open_client, resolve_uri

CURVE_KEYS = ("val_loss", "val_cost", "train_loss", "train_cost")  # per-epoch, first found wins
FLOW_KEY = "diag.grad_norm.l0"  # the first layer's gradient norm (nn.diagnostics)
CELL_CURVES = "curves.csv"  # optional artifact: repeat, fold, epoch and per-epoch CURVE_KEYS


def output_folder(out: str | None, sweep_dir: str | None, sweep_id: str) -> Path:
    if out:
        return Path(out)
    if sweep_dir and Path(sweep_dir).is_dir():
        return Path(sweep_dir) / "compare"
    return Path.cwd() / f"sweep-{sweep_id[:8]}-compare"


def learning_curve(client: Any, run: Any) -> tuple[str, list[float]]:
    """A job's per-epoch validation loss (its training loss without a validation split)."""
    for key in CURVE_KEYS:
        history = client.get_metric_history(run.info.run_id, key)
        if len(history) > 1 or (history and key.endswith("_loss")):
            return str(run.info.run_name), [m.value for m in sorted(history, key=lambda m: m.step)]
    return str(run.info.run_name), []


def metric_history(client: Any, run: Any, key: str) -> tuple[str, list[float]]:
    """A job's per-epoch values of `key`, by step."""
    history = client.get_metric_history(run.info.run_id, key)
    return str(run.info.run_name), [m.value for m in sorted(history, key=lambda m: m.step)]


def cell_curves(client: Any, run: Any, folder: Path) -> list[list[float]]:
    """A job's learning curves, one per score cell: from its `curves.csv` artifact (columns
    repeat, fold, epoch and a per-epoch key) when it logged one, else its one logged curve."""
    run_id = run.info.run_id
    if any(a.path == CELL_CURVES for a in client.list_artifacts(run_id)):
        frame = pd.read_csv(client.download_artifacts(run_id, CELL_CURVES, str(folder)))
        key = next((k for k in CURVE_KEYS if k in frame and frame[k].notna().any()), None)
        if key is not None:
            return [list(cell.sort_values("epoch")[key])
                    for _, cell in frame.groupby(["repeat", "fold"])]
    values = learning_curve(client, run)[1]
    return [values] if values else []


def median_curve(cells: list[list[float]]) -> list[float]:
    """The epoch-wise median of a job's cell curves (the curve itself when there is one): one
    cell that blew up does not set its job's curve, as it would the mean."""
    if len(cells) == 1:
        return cells[0]
    length = max(len(c) for c in cells)
    return [float(pd.Series([c[i] for c in cells if i < len(c)]).median())
            for i in range(length)]


def compare(cmd: CompareCommand) -> Path:
    """Table and plots of one sweep; returns the folder they were written to."""
    if cmd.output not in ("text", "json"):
        raise ConfigError(f"output: must be text or json, got {cmd.output!r}")
    if cmd.equivalence is not None and not 0 < cmd.equivalence < 1:
        raise ConfigError(f"equivalence: must be in (0, 1), got {cmd.equivalence}")
    uri = resolve_uri(cmd.tracking.uri)
    client = open_client(uri)
    parent = readback.find_parent(client, cmd.sweep_id, cmd.tracking.experiment)
    tags = parent.data.tags
    sweep_id = tags["sweep_id"]
    runs = readback.children(client, parent.info.run_id)
    swept = [k for k in tags.get("swept", "").split(",") if k]
    table = readback.jobs_table(runs, swept, cmd.metric, parent.info.run_id)
    metric = readback.metric_for(list(table.columns), cmd.metric)
    summary = readback.summarize(runs, sweep_id, cmd.metric, parent.info.run_id)
    failed = {r.info.run_id for r in runs if readback.job_status(r) != "FINISHED"}
    assessment = assess.assess(client, runs, metric, failed, cmd.equivalence, swept)
    table = assessment.columns(table)
    summary.adopt_best(table)
    edge = assess.frontier(table)
    names = {r.info.run_id: str(r.info.run_name) for r in runs}
    text = f"{summary.text()}\n{assessment.text(names)}"
    if tags.get("race_summary"):
        text += f"\n{tags['race_summary']}"
    if tags.get("search_summary"):  # an Optuna search: best trial, pruned, importances
        text += "\n" + tags["search_summary"].replace("**", "").replace("`", "")
    if edge:
        text += "\nfrontier: " + ", ".join(f"{k} {v:g}" for k, v in edge.items())

    out = output_folder(cmd.out, tags.get("sweep_dir"), sweep_id)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "jobs.csv", index=False)
    (out / "jobs.md").write_text(f"# Sweep {sweep_id}\n\n{text}\n\n"
                                 + readback.to_markdown(table))
    with tempfile.TemporaryDirectory(prefix="backprop-curves-") as tmp:
        cells = {r.info.run_id: cell_curves(client, r, Path(tmp) / r.info.run_id) for r in runs}
    cells = {run_id: found for run_id, found in cells.items() if found}
    curves = {run_id: median_curve(found) for run_id, found in cells.items()}
    higher = readback.higher_is_better(metric)
    jobs = table[~table["run_id"].astype(str).str.startswith(assess.BASELINE)] if len(table) \
        else table  # the plots place jobs by lr and depth: baselines have neither
    if not jobs.empty:
        sweep_plots.loss_vs_lr(jobs, metric, out / "loss_vs_lr.png", edge)
        sweep_plots.heatmap(jobs, metric, out / "heatmap_lr_depth.png", higher, edge)
        sweep_plots.learning_curves(curves, jobs, out / "learning_curves.png",
                                    title="Learning curves of every job")
        params = readback.param_columns(runs, swept)
        interactive.sweep_report(jobs, cells, metric, out / "report.html", higher, params,
                                 f"Sweep {sweep_id[:8]}", text)
        search_history(client, parent.info.run_id, out, metric)
        flow = {r.info.run_id: values for r in runs
                for _, values in [metric_history(client, r, FLOW_KEY)] if values}
        if flow:
            sweep_plots.learning_curves(
                flow, jobs, out / "gradient_flow_l0.png",
                ylabel="‖∂C/∂W_0‖, first layer (mean over batches)",
                title="Gradient reaching the first layer, every job")

    links = {"parent run": f"{parent.info.run_id} (experiment {parent.info.experiment_id}) "
                           f"at {uri}"}
    if not uri.startswith(("http://", "https://")):  # a server's own URL is the UI's
        links["in the MLflow UI (make ui)"] = ui.run_url(ui.base_url(), parent.info.experiment_id,
                                                         parent.info.run_id)
    if cmd.output == "json":
        print(json.dumps(as_json(table, summary, metric, text, out), default=str))
    else:
        print(f"{summary.text().splitlines()[0]}")
        notes = text.splitlines()[len(summary.text().splitlines()):]
        print(console.end_text(table.drop(columns=["reused"], errors="ignore"), metric, links,
                               notes))
        print(f"every column: {out / 'jobs.csv'}")
    assess.record(client, parent.info.run_id, runs, assessment, edge)
    markdown = description.describe(table, runs, summary, assessment, edge,
                                    parent.info.experiment_id, parent.info.run_id,
                                    tags.get("sweep_preset", ""), compared=cmd.log_artifacts,
                                    race=tags.get("race_summary", ""),
                                    search=tags.get("search_summary", ""))
    description.record(client, parent.info.run_id, markdown)
    if cmd.log_artifacts:
        client.log_artifacts(parent.info.run_id, str(out), "compare")
    if cmd.output != "json":
        print(f"files in {out}" + (" (logged on the parent run under compare/)"
                                   if cmd.log_artifacts else ""))
    return out


def search_history(client: Any, parent_run_id: str, out: Path, metric: str) -> None:
    """An Optuna search's optimization_history.png, from the parent's
    optimization_results.yaml (experiments.sweep.search); nothing for other sweeps."""
    if not any(a.path == search.RESULTS_FILE for a in client.list_artifacts(parent_run_id)):
        return
    with tempfile.TemporaryDirectory(prefix="backprop-search-") as tmp:
        found = json.loads(Path(client.download_artifacts(parent_run_id, search.RESULTS_FILE,
                                                          tmp)).read_text())
    search_plots.optimization_history(found.get("trials", []),
                                      out / "optimization_history.png", metric)


def as_json(table: pd.DataFrame, summary: readback.Summary, metric: str, text: str,
            out: Path) -> dict[str, Any]:
    """`compare output=json`: the jobs (every column of jobs.csv, NaN as null), the best, the
    verdicts' words and where the files are, for scripts."""
    jobs = json.loads(table.to_json(orient="records"))
    return {"sweep_id": summary.sweep_id, "metric": metric, "best_run_id": summary.best_run_id,
            "best_run_name": summary.best_name, "counts": summary.counts, "jobs": jobs,
            "summary": text, "folder": str(out)}
