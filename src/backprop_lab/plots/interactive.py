"""The interactive report of a sweep: one self-contained HTML file (Plotly, its JavaScript
embedded, so it opens offline and in the MLflow UI's artifact viewer) with

- parallel coordinates of the finished jobs: log10 of the learning rate (ticks at the swept
  values), depth, the other varying params and the scores, coloured by the ranking metric;
- learning curves, one panel per depth, one colour per learning rate: the mean over every
  curve of that (depth, lr) (the repeats and folds of a job, and jobs that differ only in other
  keys, e.g. the seed) with a band of ± one standard deviation; jobs that did not finish dashed,
  crossed where they ended;
- the learning-rate x depth heatmap of the ranking metric (mean ± CI half-width and tier).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

LR, DEPTH = "train.lr", "depth"
SCORES = ("val_mse", "test_mse", "val_r2", "test_r2", "test_rmse")
NOT_AXES = {LR, DEPTH, "train.log10_lr", "model.depth", "model.hidden", "model.hidden_layers",
            "seed"}
Curves = Mapping[str, Sequence[Sequence[float]]]  # run id -> its curves (one per cell)


def _jobs(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    jobs = table.copy()
    jobs[LR] = pd.to_numeric(jobs[LR], errors="coerce") if LR in jobs else np.nan
    jobs[DEPTH] = pd.to_numeric(jobs[DEPTH], errors="coerce").fillna(-1) if DEPTH in jobs else -1
    jobs[metric] = pd.to_numeric(jobs[metric], errors="coerce") if metric in jobs else np.nan
    jobs["finished"] = jobs["status"] == "FINISHED"
    return jobs


def _lr_colours(lrs: Sequence[float]) -> dict[float, str]:
    ordered = sorted({lr for lr in lrs if math.isfinite(lr)})
    steps = list(np.linspace(0.0, 0.85, max(len(ordered), 2)))[: len(ordered)]
    return dict(zip(ordered, sample_colorscale("Plasma", steps)))


def parallel_coordinates(table: pd.DataFrame, metric: str, higher_better: bool,
                         params: Sequence[str] = ()) -> go.Figure:
    """The finished jobs on parallel axes: the learning rate on a log10 axis, depth, the
    numeric `params` that vary, and up to three scores."""
    jobs = _jobs(table, metric)
    ok = jobs[jobs["finished"] & jobs[LR].notna() & (jobs[LR] > 0)]
    log_lr = np.log10(ok[LR].to_numpy(dtype=float))
    lrs = sorted(set(ok[LR]))
    ticks = ({"tickvals": [math.log10(v) for v in lrs], "ticktext": [f"{v:g}" for v in lrs]}
             if len(lrs) <= 12 else {})
    dims = [dict(label="learning rate (log10 axis)", values=log_lr, **ticks),
            dict(label="depth", values=ok[DEPTH], tickvals=sorted(set(ok[DEPTH])))]
    for col in params:
        if col in NOT_AXES or col not in ok:
            continue
        values = pd.to_numeric(ok[col], errors="coerce")
        if values.notna().all() and values.nunique() > 1:
            dims.append(dict(label=col, values=values))
    scores = [metric, *(s for s in SCORES if s != metric and s in ok and ok[s].notna().any())]
    dims += [dict(label=s, values=ok[s]) for s in scores[:3]]
    left_out = int((~jobs["finished"]).sum())
    note = f"; {left_out} job(s) that did not finish left out" if left_out else ""
    line = dict(color=ok[metric], colorscale="Viridis", reversescale=not higher_better,
                showscale=True, colorbar={"title": metric})
    fig = go.Figure(go.Parcoords(line=line, dimensions=dims))
    fig.update_layout(title=f"Finished jobs: drag on an axis to select{note}", height=480)
    return fig


def _mean_band(curves: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and ± one standard deviation per epoch over ragged curves (nan where none)."""
    length = max(len(c) for c in curves)
    stack = np.full((len(curves), length), np.nan)
    for i, c in enumerate(curves):
        stack[i, : len(c)] = np.where(np.isfinite(c), c, np.nan)
    counts = np.sum(np.isfinite(stack), axis=0)
    safe = np.where(counts > 0, stack, 0.0)
    mean = np.where(counts > 0, np.nansum(safe, axis=0) / np.maximum(counts, 1), np.nan)
    spread = np.array([np.nanstd(col) if n > 1 else 0.0 for col, n in zip(stack.T, counts)])
    return mean, mean - spread, mean + spread


def learning_curves(table: pd.DataFrame, curves: Curves, metric: str) -> go.Figure:
    """One panel per depth; per learning rate, the mean curve and its ± 1 SD band."""
    jobs = _jobs(table, metric).set_index("run_id")
    jobs = jobs[jobs.index.isin(list(curves))]
    depths = sorted(set(jobs[DEPTH])) or [-1]
    names = [f"depth {int(d)}" if d >= 0 else "all jobs" for d in depths]
    fig = make_subplots(rows=1, cols=len(depths), shared_yaxes=True, subplot_titles=names,
                        horizontal_spacing=0.04)
    colours = _lr_colours(list(jobs[LR]))
    kept = np.concatenate([np.asarray(c, dtype=float) for run_id in jobs.index[jobs["finished"]]
                           for c in curves[str(run_id)]] or [np.array([])])
    kept = kept[np.isfinite(kept) & (kept > 0)]
    low_y, top = (float(kept.min()) / 1.5, float(kept.max()) * 3) if len(kept) else (None, 1e3)
    shown: set[str] = set()
    for col, depth in enumerate(depths, start=1):
        here = jobs[jobs[DEPTH] == depth]
        for lr, group in here[here["finished"]].groupby(LR, dropna=False):
            cells = [c for run_id in group.index for c in curves[str(run_id)] if len(c)]
            if not cells:
                continue
            mean, low, high = _mean_band(cells)
            colour = colours.get(float(lr), "grey")
            epochs = np.arange(len(mean))
            name = f"lr={lr:g}"
            if len(cells) > 1:
                fig.add_trace(go.Scatter(
                    x=np.concatenate([epochs, epochs[::-1]]),
                    y=np.concatenate([np.clip(high, 1e-300, None),
                                      np.clip(low, 1e-300, None)[::-1]]),
                    fill="toself", fillcolor=colour, opacity=0.2, line={"width": 0},
                    hoverinfo="skip", showlegend=False, legendgroup=name), row=1, col=col)
            fig.add_trace(go.Scatter(
                x=epochs, y=mean, mode="lines", line={"color": colour}, name=name,
                legendgroup=name, showlegend=name not in shown,
                hovertemplate=f"{name}, depth {int(depth)}, {len(cells)} curve(s)<br>"
                              "epoch %{x}: %{y:.4g}<extra></extra>"), row=1, col=col)
            shown.add(name)
        for run_id, job in here[~here["finished"]].iterrows():
            for c in curves[str(run_id)]:
                y = np.asarray(c, dtype=float)
                if not len(y):
                    continue
                finite = np.where(np.isfinite(y), y, top)
                finite = np.where(finite > top, top, finite)  # the blow-up, at the top edge
                fig.add_trace(go.Scatter(
                    x=np.arange(len(y)), y=finite, mode="lines+markers",
                    marker={"symbol": ["circle"] * (len(y) - 1) + ["x"],
                            "size": [0] * (len(y) - 1) + [12]},
                    line={"color": colours.get(float(job[LR]), "grey"), "dash": "dash"},
                    cliponaxis=False,
                    name="did not finish (× where it ended)", legendgroup="unfinished",
                    showlegend="unfinished" not in shown,
                    hovertemplate=f"{html.escape(str(job.get('run_name', run_id)))} "
                                  f"({job['status']})<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>"),
                    row=1, col=col)
                shown.add("unfinished")
    fig.update_yaxes(type="log")
    if low_y is not None:  # the finished jobs' range: a blown-up cost is pinned to its top
        fig.update_yaxes(range=[math.log10(low_y), math.log10(top)])
    fig.update_yaxes(title_text="validation loss (training units)", row=1, col=1)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title="Learning curves: mean over repeats and folds, band ± 1 SD",
                      height=430)
    return fig


def heatmap(table: pd.DataFrame, metric: str, higher_better: bool) -> go.Figure:
    """`metric` over learning rate x depth: the best finished job of each cell, annotated with
    mean ± CI half-width and tier; cells where a job did not finish say so."""
    jobs = _jobs(table, metric).dropna(subset=[LR])
    depths, lrs = sorted(set(jobs[DEPTH])), sorted(set(jobs[LR]))
    z = np.full((len(depths), len(lrs)), np.nan)
    text = [["" for _ in lrs] for _ in depths]
    for (i, d), (j, lr) in ((a, b) for a in enumerate(depths) for b in enumerate(lrs)):
        cell = jobs[(jobs[DEPTH] == d) & (jobs[LR] == lr)]
        ok = cell[cell["finished"] & cell[metric].notna()]
        if len(ok):
            best = ok.sort_values(metric, ascending=not higher_better).iloc[0]
            z[i, j] = best[metric]
            words = f"{best[metric]:.4g}"
            if "ci_low" in ok and pd.notna(best.get("ci_low")):
                words += f" ± {(best['ci_high'] - best['ci_low']) / 2:.2g}<br>{best['tier']}"
            text[i][j] = words
        if (~cell["finished"]).any():
            text[i][j] += ("<br>" if text[i][j] else "") + "diverged"
    fig = go.Figure(go.Heatmap(
        z=z, x=[f"{v:g}" for v in lrs], y=[str(int(d)) if d >= 0 else "?" for d in depths],
        text=text, texttemplate="%{text}", colorscale="Viridis", reversescale=not higher_better,
        colorbar={"title": metric}, hoverongaps=False))
    fig.update_xaxes(title_text="learning rate (train.lr)", type="category")
    fig.update_yaxes(title_text="depth (hidden layers)", type="category")
    fig.update_layout(title=f"{metric} ({'higher' if higher_better else 'lower'} is better)",
                      height=120 + 80 * max(len(depths), 2))
    return fig


def sweep_report(table: pd.DataFrame, curves: Curves, metric: str, path: Path,
                 higher_better: bool = False, params: Sequence[str] = (), title: str = "Sweep",
                 summary: str = "") -> Path:
    """The three figures in one HTML page at `path` (`params`: the table's param columns, for
    the parallel axes); Plotly's JavaScript is embedded once."""
    figures = [parallel_coordinates(table, metric, higher_better, params),
               learning_curves(table, curves, metric), heatmap(table, metric, higher_better)]
    divs = [fig.to_html(full_html=False, include_plotlyjs=(i == 0),
                        config={"displaylogo": False, "responsive": True})
            for i, fig in enumerate(figures)]
    body = "\n".join(f"<section>{div}</section>" for div in divs)
    page = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            "</title></head>\n<body style=\"font-family: sans-serif; margin: 1em 2em\">\n"
            f"<h2>{html.escape(title)}</h2>\n<pre style=\"white-space: pre-wrap\">"
            f"{html.escape(summary)}</pre>\n{body}\n"
            "</body></html>\n")
    path.write_text(page, encoding="utf-8")
    return path
