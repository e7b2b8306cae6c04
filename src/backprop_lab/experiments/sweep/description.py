"""The sweep parent's description: the comparison, as Markdown the MLflow UI renders.

Set as the parent's tag `mlflow.note.content` when the sweep ends and again by `compare`:
the outcome in a line, the best job (and `best_run_id`) as links to their runs, the finished
jobs ranked with their CI, p against the best and tier, the learning-rate frontier per depth,
and, listed apart and never ranked, the jobs that diverged or failed. Links are relative to
the UI (`#/experiments/<id>/runs/<run_id>`), so they work on any host and port.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from backprop_lab.experiments.run.report import DESCRIPTION
from backprop_lab.experiments.sweep import importance, readback, statistics
from backprop_lab.experiments.sweep.assess import FAILED, KILLED, LR, PRUNED, WORDS, Assessment
from backprop_lab.tracking.ui import run_link

LIMIT = 7900  # MLflow keeps at most 8000 characters of a tag value
HIDDEN = ("model.hidden_layers", "model.hidden", "hidden")  # the widths' param, first found
REPORT = "compare/report.html"


def _cell(value: Any, digits: str = ".4g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return format(value, digits)
    return str(value).replace("|", "\\|")


def _link(name: Any, experiment_id: str, run_id: str) -> str:
    label = str(name).replace("|", "\\|").replace("[", "(").replace("]", ")")
    if str(run_id).startswith("baseline:"):  # scored inside the jobs' runs: no run of its own
        return f"*{label}*"
    return f"[{label}]({run_link(experiment_id, run_id)})"


def ranked_table(finished: pd.DataFrame, metric: str, experiment_id: str,
                 assessment: Assessment) -> list[str]:
    """One Markdown row per finished job, best first (the table's order): the metric's mean,
    the centre the verdicts rank by and its interval, the error ratio to the best, p-values
    and the verdict with the unstable flag."""
    hidden = next((h for h in HIDDEN if h in finished), None)
    tested = assessment.tested
    has_ci = "ci_low" in finished and finished["ci_low"].notna().any()
    log = assessment.log_scale and "centre" in finished
    extra = [m for m in ("test_r2", "epochs_run") if m in finished and m != metric]
    header = ["#", "job", "lr", "depth", *([hidden] if hidden else []), f"{metric} mean",
              *(["centre", "median"] if log else []), *(["95% CI"] if has_ci else []),
              *(["× best (95% CI)"] if tested and log else []),
              *(["p worse", "p equiv.", "verdict"] if tested else []), *extra]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, job in enumerate(finished.to_dict("records"), start=1):
        values = [str(rank), _link(job["run_name"], experiment_id, job["run_id"]),
                  _cell(job.get(LR)), _cell(job.get("depth"))]
        values += [_cell(job.get(hidden))] if hidden else []
        values.append(_cell(job.get(metric)))
        if log:
            values += [_cell(job.get("centre")), _cell(job.get("median"))]
        if has_ci:
            low, high = job.get("ci_low", math.nan), job.get("ci_high", math.nan)
            values.append("" if math.isnan(low) else f"{low:.4g} – {high:.4g}")
        if tested and log:
            values.append(ratio_text(job))
        if tested:
            verdict = _cell(job.get("tier"))
            if job.get("unstable"):
                verdict += f" · {job['unstable']}"
            if job.get("tier") == statistics.UNDECIDED:
                verdict += f" ({decide_text(job.get('repeats_to_decide', math.nan))})"
            values += [_cell(job.get("p_vs_best"), ".2g"), _cell(job.get("p_equivalent"), ".2g"),
                       verdict]
        values += [_cell(job.get(m)) for m in extra]
        lines.append("| " + " | ".join(values) + " |")
    return lines


def ratio_text(job: Mapping[Any, Any]) -> str:
    """"1.16× (1.02–1.32)": the job's error over the best's, per cell, with its interval."""
    ratio = job.get("ratio_vs_best", math.nan)
    if ratio is None or math.isnan(ratio):
        return ""
    low, high = job.get("ratio_ci_low", math.nan), job.get("ratio_ci_high", math.nan)
    return f"{ratio:.3g}×" + ("" if math.isnan(low) else f" ({low:.3g}–{high:.3g})")


def decide_text(repeats: float) -> str:
    """How many more repeats would decide an undecided job, at the variance observed."""
    if repeats is None or math.isnan(repeats):
        return ""
    if math.isinf(repeats):
        return "more repeats cannot decide it"
    return f"~{int(repeats)} more repeat{'s' if repeats > 1 else ''} would decide it"


def frontier_table(edge: dict[str, float]) -> list[str]:
    """Per depth: the largest learning rate that trained stably, the smallest with wild cells,
    the smallest that diverged."""
    depths = sorted({k.rsplit(".", 1)[1] for k in edge},
                    key=lambda d: (not d.startswith("depth_"), d))
    if not depths:
        return []
    lines = ["| depth | largest lr that trained stably | smallest lr unstable | "
             "smallest lr that diverged |", "|---|---|---|---|"]
    for d in depths:
        ok, shaky = edge.get(f"lr_max_stable.{d}"), edge.get(f"lr_min_unstable.{d}")
        bad = edge.get(f"lr_min_diverged.{d}")
        lines.append(f"| {d.removeprefix('depth_')} | {'' if ok is None else f'{ok:g}'} | "
                     f"{'none' if shaky is None else f'{shaky:g}'} | "
                     f"{'none' if bad is None else f'{bad:g}'} |")
    return lines


def verdict_legend(assessment: Assessment) -> str:
    """What the verdicts are and what each word means, or why there are none."""
    if not assessment.tested:
        first = assessment.text({})
        return first[0].upper() + first[1:] + "."
    scale = assessment.scale_text()
    present = {v.tier for v in assessment.verdicts.values()}
    shown = [*statistics.TIERS, *(t for t in (PRUNED, FAILED, KILLED) if t in present)]
    words = "; ".join(f"*{tier}*: {WORDS[tier].format(eq=assessment.equivalence * 100)}"
                      for tier in shown if tier in WORDS)
    unstable = ("; *unstable (k of n cells)*: k cells more than 10× the job's median error, "
                "or with a negative R² while its others are fine")
    return f"{scale[0].upper()}{scale[1:]}. {words}{unstable}."


def unfinished(table: pd.DataFrame, runs: Sequence[Any], experiment_id: str) -> list[str]:
    """A line per job that diverged, failed, was killed or still runs: how and where."""
    tags = {r.info.run_id: r.data.tags for r in runs}
    lines = []
    for job in table.to_dict("records"):
        run_tags = tags.get(job["run_id"], {})
        how = str(job["status"])
        if how == "DIVERGED":
            epoch = run_tags.get("diverged_epoch")
            cells = run_tags.get("diverged_cells")
            how += f" at epoch {epoch}" if epoch else (f" in cells {cells}" if cells else "")
            if run_tags.get("last_finite_cost"):
                how += f" (last finite cost {float(run_tags['last_finite_cost']):.4g})"
        elif how == "PRUNED":
            how += f" by the search after epoch {run_tags.get('pruned_epoch', '?')}"
        elif run_tags.get("error"):
            how += f": {run_tags['error'][:160]}"
        lines.append(f"- {_link(job['run_name'], experiment_id, job['run_id'])}: {how}")
    return lines


def describe(table: pd.DataFrame, runs: Sequence[Any], summary: readback.Summary,
             assessment: Assessment, edge: dict[str, float], experiment_id: str,
             parent_run_id: str, preset: str = "", compared: bool = False,
             race: str = "", search: str = "") -> str:
    """The parent's description (see the module docstring); at most `LIMIT` characters: the
    ranked table loses its last rows first, naming how many it left out. `race`: what racing
    saved (the parent's `race_summary`); `search`: what an Optuna search found (its
    `search_summary`: best trial, pruned trials, importances, best value by trial)."""
    metric = summary.metric
    higher = readback.higher_is_better(metric)
    total = sum(summary.counts.values())
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(summary.counts.items()))
    reused = f" ({summary.reused} reused from earlier runs)" if summary.reused else ""
    what = f" `{preset}`" if preset and preset != "cli" else ""
    head = [f"**Sweep{what} `{summary.sweep_id[:8]}`**: {total} jobs: {counts or 'none'}"
            f"{reused}." + (f" **Racing**: {race.removeprefix('racing: ')}." if race else "")]
    if summary.best_run_id:
        row = table[table["run_id"] == summary.best_run_id]
        value = f"{metric} {summary.best_value:.4g}"
        if len(row) and "centre" in row and pd.notna(row["centre"].iloc[0]) and \
                assessment.log_scale:
            best = row.iloc[0]
            value = (f"{metric} {best['centre']:.4g} (trimmed geometric mean of its cells; "
                     f"95% CI {best['ci_low']:.4g} – {best['ci_high']:.4g}; mean "
                     f"{best[metric]:.4g}, median {best['median']:.4g})")
        elif len(row) and "ci_low" in row and pd.notna(row["ci_low"].iloc[0]):
            value += f" (95% CI {row['ci_low'].iloc[0]:.4g} – {row['ci_high'].iloc[0]:.4g})"
        link = run_link(experiment_id, summary.best_run_id)
        head.append(f"**Best:** {_link(summary.best_name, experiment_id, summary.best_run_id)}"
                    f", {value}; best_run_id: [`{summary.best_run_id}`]({link})")
    else:
        head.append("**No job finished**: nothing to rank.")
    if search:
        head.append(search)
    status = table["status"] if "status" in table else pd.Series(dtype=str)
    finished = table[status == "FINISHED"]
    ranked_intro = (f"**Finished jobs, ranked by {metric}** ({'higher' if higher else 'lower'}"
                    f" is better). {verdict_legend(assessment)}")
    edge_lines = frontier_table(edge)
    tail: list[str] = []
    if assessment.shares:
        shares = importance.text(assessment.shares)
        tail.append(f"**Which knob matters**: {shares[0].upper()}{shares[1:]}.")
    if edge_lines:
        tail += ["**Learning-rate frontier** (per depth):", "\n".join(edge_lines)]
    rest = unfinished(table[status != "FINISHED"], runs, experiment_id)
    if rest:
        tail += ["**Did not finish** (not ranked):", "\n".join(rest)]
    report = f"[{REPORT}]({run_link(experiment_id, parent_run_id, f'artifacts/{REPORT}')})"
    tail.append(f"**Interactive report** (parallel coordinates on a log10 lr axis, learning "
                f"curves per depth with bands, heatmap): {report}; plots and `jobs.csv` beside "
                "it under Artifacts." if compared else "Plots, tables and an interactive report: "
                f"`python -m pipelines.compare sweep_id={summary.sweep_id[:8]}`.")
    for shown in range(len(finished), -1, -1):
        lines = ranked_table(finished.head(shown), metric, experiment_id, assessment)
        if shown < len(finished):
            where = "`compare/jobs.md`" if compared else "`python -m pipelines.compare`"
            lines.append(f"\n… and {len(finished) - shown} more finished jobs: {where}")
        text = "\n\n".join([*head, ranked_intro, "\n".join(lines), *tail])
        if len(text) <= LIMIT:
            return text
    return text[:LIMIT]


def record(client: Any, parent_run_id: str, text: str) -> None:
    """Set `text` as the parent run's description."""
    client.set_tag(parent_run_id, DESCRIPTION, text)
