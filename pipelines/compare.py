"""Compare the jobs of a sweep: python -m pipelines.compare [sweep_id=<id or prefix>] [key=value...]

Reads the sweep's parent run and its children from MLflow (the latest sweep unless `sweep_id`
is given) and writes, into `out` (default: <sweep dir>/compare, else ./sweep-<id>-compare):
  jobs.csv, jobs.md            every job: params, final metrics, status, duration; best first
  loss_vs_lr.png               final validation loss against lr (log x), one line per depth
  learning_curves.png          the per-epoch validation cost of every job, overlaid
  heatmap_lr_depth.png         the ranking metric over lr x depth
All of it is also logged as artifacts of the parent run (folder `compare/`), next to the children.
Keys: sweep_id, tracking.uri (default: the project's store), out, metric (default val_mse;
`*r2` ranks highest first), log_artifacts (default true).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException


@dataclass
class TrackingArgs:
    uri: str | None = None


@dataclass
class CompareArgs:
    sweep_id: str | None = None
    tracking: TrackingArgs = field(default_factory=TrackingArgs)
    out: str | None = None
    metric: str | None = None
    log_artifacts: bool = True


def parse(argv: list[str]) -> CompareArgs:
    """`key=value` arguments, typed and checked against `CompareArgs` (unknown keys named)."""
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        sys.exit(0)
    merged = OmegaConf.merge(OmegaConf.structured(CompareArgs), OmegaConf.from_dotlist(argv))
    args = OmegaConf.to_object(merged)
    assert isinstance(args, CompareArgs)
    return args


def output_folder(args: CompareArgs, sweep_dir: str | None, sweep_id: str) -> Path:
    if args.out:
        return Path(args.out)
    if sweep_dir and Path(sweep_dir).is_dir():
        return Path(sweep_dir) / "compare"
    return Path.cwd() / f"sweep-{sweep_id[:8]}-compare"


CURVE_KEYS = ("val_loss", "val_cost", "train_loss", "train_cost")  # per-epoch, first found wins


def learning_curve(client: Any, run: Any) -> tuple[str, list[float]]:
    """A job's per-epoch validation loss (its training loss without a validation split)."""
    for key in CURVE_KEYS:
        history = client.get_metric_history(run.info.run_id, key)
        if len(history) > 1 or (history and key.endswith("_loss")):
            return str(run.info.run_name), [m.value for m in sorted(history, key=lambda m: m.step)]
    return str(run.info.run_name), []


def compare(args: CompareArgs) -> Path:
    """Table and plots of one sweep; returns the folder they were written to."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from backprop_lab import sweep_plots, sweeps, tracking

    uri = args.tracking.uri or tracking.default_uri()
    client = MlflowClient(uri)
    parent = sweeps.find_parent(client, args.sweep_id)
    tags = parent.data.tags
    sweep_id = tags["sweep_id"]
    runs = sweeps.children(client, parent.info.run_id)
    swept = [k for k in tags.get("swept", "").split(",") if k]
    table = sweeps.jobs_table(runs, swept, args.metric, parent.info.run_id)
    metric = sweeps.metric_for(list(table.columns), args.metric)
    summary = sweeps.summarize(runs, sweep_id, args.metric, parent.info.run_id)

    out = output_folder(args, tags.get("sweep_dir"), sweep_id)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "jobs.csv", index=False)
    (out / "jobs.md").write_text(f"# Sweep {sweep_id}\n\n{summary.text()}\n\n"
                                 + sweeps.to_markdown(table))
    curves = {name: values for name, values in
              (learning_curve(client, run) for run in runs) if values}
    diverged = {str(r.info.run_name) for r in runs if sweeps.job_status(r) != "FINISHED"}
    if not table.empty:
        higher = sweeps.higher_is_better(metric)
        sweep_plots.loss_vs_lr(table, metric, out / "loss_vs_lr.png")
        sweep_plots.heatmap(table, metric, out / "heatmap_lr_depth.png", higher)
    sweep_plots.learning_curves(curves, out / "learning_curves.png", diverged)

    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.float_format", "{:.4g}".format):
        print(table.drop(columns=["run_id"], errors="ignore").to_string(index=False))
    print(f"\n{summary.text()}\nparent run {parent.info.run_id} "
          f"(experiment {parent.info.experiment_id}) at {uri}")
    if args.log_artifacts:
        client.log_artifacts(parent.info.run_id, str(out), "compare")
        print(f"logged as artifacts of the parent run under compare/; files in {out}")
    else:
        print(f"files in {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(sys.argv[1:] if argv is None else argv)
    except OmegaConfBaseException as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from backprop_lab.sweeps import SweepNotFound

    try:
        compare(args)
    except SweepNotFound as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
