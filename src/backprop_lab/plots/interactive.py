"""The interactive report of a sweep: one self-contained HTML file (Plotly, its JavaScript
embedded, so it opens offline and in the MLflow UI's artifact viewer) with

- parallel coordinates of the finished jobs: log10 of the learning rate (ticks at the swept
  values), depth, the other varying params, the verdict (`tier`) and the unstable jobs' wild
  cells when the table has them, and the scores; lines coloured by the verdict (else by the
  ranking metric);
- learning curves, one panel per depth, one colour per learning rate: the median over every
  curve of that (depth, lr) (the repeats and folds of a job, and jobs that differ only in other
  keys, e.g. the seed) with its interquartile band, the y range from those (a cell that blew up
  sets neither); jobs that did not finish dashed, crossed where they ended;
- the learning-rate x depth heatmap of the ranking metric: each job's centre [95% CI], its
  verdict as the cell's border and badge, "!" for an unstable job (the words in the hover).

A sweep at the edge of stability has a job or a cell 10-1000x the others: every score axis and
colour scale here is `sweep_plots.Scale`'s (an error on log10, R² on log10(1 − R²), the range
from the finished jobs' quartiles), so such a job is drawn at the edge and marked (≥ / ▲)
instead of pressing the other jobs into a tenth of the axis or one colour. What is drawn for the
ranking metric is the job's `centre` where the table has one, else its mean.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from backprop_lab.plots.sweep_plots import (
    TIER_COLOURS,
    HeatCell,
    HeatGrid,
    Scale,
    heat_grid,
    tier_colour,
    value_name,
    values,
)

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
    jobs["value"] = values(jobs, metric)
    jobs["finished"] = jobs["status"] == "FINISHED"
    return jobs


def _lr_colours(lrs: Sequence[float]) -> dict[float, str]:
    ordered = sorted({lr for lr in lrs if math.isfinite(lr)})
    steps = list(np.linspace(0.0, 0.85, max(len(ordered), 2)))[: len(ordered)]
    return dict(zip(ordered, sample_colorscale("Plasma", steps)))


def _score_axis(label: str, scale: Scale, raw: pd.Series) -> tuple[dict[str, Any], int]:
    """A parallel axis of a score on its `Scale` (its range the jobs' whiskers, a job beyond
    held at the edge, whose tick says "≥ x"), and how many jobs lie beyond."""
    metric = scale.metric
    drawn = scale.transform(raw)
    beyond = int(np.sum(np.isfinite(drawn) & ((drawn < scale.low) | (drawn > scale.high))))
    axis: dict[str, Any] = dict(label=scale.label.replace(metric, label, 1),
                                values=np.clip(drawn, scale.low, scale.high),
                                range=[scale.low, scale.high])
    ticks, words = scale.ticks()
    if ticks:
        axis.update(tickvals=ticks, ticktext=words)
    return axis, beyond


def _metric_line(axis: Mapping[str, Any], scale: Scale) -> dict[str, Any]:
    """Lines coloured by the ranking metric's axis (a table without verdicts): its range and
    ticks, better at the bright end."""
    bar: dict[str, Any] = {"title": axis["label"]}
    if "tickvals" in axis:
        bar.update(tickvals=axis["tickvals"], ticktext=axis["ticktext"])
    return dict(color=axis["values"], colorscale="Viridis", reversescale=scale.lower_better,
                cmin=scale.low, cmax=scale.high, showscale=True, colorbar=bar)


def _tier_codes(ok: pd.DataFrame) -> tuple[np.ndarray, list[str]] | None:
    """Each job's verdict as an index into the verdict names (TIER_COLOURS' order, unknown
    names after); None when the table has no verdicts."""
    if "tier" not in ok or not ok["tier"].fillna("").astype(str).str.len().any():
        return None
    tiers = ok["tier"].fillna("").astype(str)
    names = list(TIER_COLOURS) + sorted(set(tiers) - set(TIER_COLOURS))
    return np.array([names.index(t) for t in tiers]), names


def _tier_colourscale(names: Sequence[str]) -> list[list[Any]]:
    """A stepped colour scale: index i of `names` (with cmin -0.5, cmax n - 0.5) in its
    verdict's colour."""
    n = len(names)
    return [[edge / n, tier_colour(name)] for i, name in enumerate(names)
            for edge in (i, i + 1)]


def _wild_cells(ok: pd.DataFrame) -> np.ndarray | None:
    """Each job's wild cells (the k of "unstable (k of n cells)"), None when no job is
    unstable."""
    if "unstable" not in ok:
        return None
    found = [re.search(r"(\d+) of \d+", str(u)) for u in ok["unstable"].fillna("")]
    k = np.array([int(m.group(1)) if m else 0 for m in found])
    return k if k.any() else None


def _param_axes(ok: pd.DataFrame, params: Sequence[str]) -> list[dict[str, Any]]:
    """The learning rate on a log10 axis (ticks at the swept values), depth, and the numeric
    `params` that vary."""
    lrs = sorted(set(ok[LR]))
    ticks = ({"tickvals": [math.log10(v) for v in lrs], "ticktext": [f"{v:g}" for v in lrs]}
             if len(lrs) <= 12 else {})
    axes = [dict(label="learning rate (log10 axis)",
                 values=np.log10(ok[LR].to_numpy(dtype=float)), **ticks),
            dict(label="depth", values=ok[DEPTH], tickvals=sorted(set(ok[DEPTH])))]
    for col in params:
        if col in NOT_AXES or col not in ok:
            continue
        found = pd.to_numeric(ok[col], errors="coerce")
        if found.notna().all() and found.nunique() > 1:
            axes.append(dict(label=col, values=found))
    return axes


def _verdict_axes(ok: pd.DataFrame) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The verdict's axis and the unstable jobs' wild cells (when the table has them), and the
    lines coloured by verdict with its colour bar (None without verdicts)."""
    axes: list[dict[str, Any]] = []
    line = None
    tiers = _tier_codes(ok)
    if tiers is not None:
        codes, names = tiers
        shown = sorted(set(codes.tolist()))
        axes.append(dict(label="verdict", values=codes, range=[-0.5, len(names) - 0.5],
                         tickvals=shown, ticktext=[names[i] for i in shown]))
        line = dict(color=codes, colorscale=_tier_colourscale(names), cmin=-0.5,
                    cmax=len(names) - 0.5, showscale=True,
                    colorbar={"title": "verdict", "tickvals": list(range(len(names))),
                              "ticktext": names})
    wild = _wild_cells(ok)
    if wild is not None:
        counts = sorted(set(wild.tolist()))
        axes.append(dict(label="unstable: wild cells", values=wild, tickvals=counts,
                         ticktext=["stable" if k == 0 else f"! {k}" for k in counts]))
    return axes, line


def _score_axes(ok: pd.DataFrame, table: pd.DataFrame, metric: str, higher_better: bool
                ) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    """Up to three scores (the ranking metric's centre first), each on its robust `Scale`; the
    lines coloured by the ranking metric; how many scores lie beyond their axis."""
    others = [s for s in SCORES if s != metric and s in ok and ok[s].notna().any()][:2]
    scale = Scale.of(metric, ok["value"], higher_better)
    first, beyond = _score_axis(value_name(table, metric), scale, ok["value"])
    axes = [first]
    for score in others:
        axis, n = _score_axis(score, Scale.of(score, ok[score], score.endswith("r2")), ok[score])
        axes.append(axis)
        beyond += n
    return axes, _metric_line(first, scale), beyond


def _unstable_names(ok: pd.DataFrame) -> str:
    """"! name [unstable (k of n cells)]; ..." for the unstable jobs (parallel coordinates
    have no hover), else ''."""
    if "unstable" not in ok:
        return ""
    names = ok["run_name"] if "run_name" in ok else ok.index.to_series()
    found = [f"{html.escape(str(name))} [{html.escape(str(flag))}]"
             for name, flag in zip(names, ok["unstable"].fillna("")) if flag]
    return f"! {'; '.join(found)}" if found else ""


def parallel_coordinates(table: pd.DataFrame, metric: str, higher_better: bool,
                         params: Sequence[str] = ()) -> go.Figure:
    """The finished jobs on parallel axes: the learning rate on a log10 axis, depth, the
    numeric `params` that vary, the verdict and the wild cells of unstable jobs (when the
    table has them) and up to three scores, each on its robust `Scale`; the lines coloured by
    verdict, else by the ranking metric."""
    jobs = _jobs(table, metric)
    ok = jobs[jobs["finished"] & jobs[LR].notna() & (jobs[LR] > 0)]
    verdicts, by_verdict = _verdict_axes(ok)
    scores, by_metric, beyond = _score_axes(ok, table, metric, higher_better)
    left_out = int((~jobs["finished"]).sum())
    notes = [f"{left_out} job(s) that did not finish left out"] if left_out else []
    if beyond:
        notes.append(f"{beyond} score(s) beyond an axis' range drawn at its edge (≥ / ≤)")
    under = _unstable_names(ok)
    fig = go.Figure(go.Parcoords(line=by_verdict or by_metric, labelangle=-12, labelside="top",
                                 dimensions=[*_param_axes(ok, params), *verdicts, *scores]))
    fig.update_layout(title="Finished jobs: drag on an axis to select"
                            + "".join(f"; {n}" for n in notes)
                            + (f"<br><sup>{under}</sup>" if under else ""),
                      height=520, margin={"t": 130})
    return fig


def _median_band(curves: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and interquartile range per epoch over ragged curves (nan where none): a cell
    that blew up moves them by one rank, where it would drag a mean and its ± SD band."""
    length = max(len(c) for c in curves)
    stack = np.full((len(curves), length), np.nan)
    for i, c in enumerate(curves):
        stack[i, : len(c)] = np.where(np.isfinite(c), c, np.nan)
    counts = np.sum(np.isfinite(stack), axis=0)
    quartiles = np.full((3, length), np.nan)
    for e in np.flatnonzero(counts):
        quartiles[:, e] = np.percentile(stack[np.isfinite(stack[:, e]), e], [50, 25, 75])
    return quartiles[0], quartiles[1], quartiles[2]


def learning_curves(table: pd.DataFrame, curves: Curves, metric: str) -> go.Figure:
    """One panel per depth; per learning rate, the median curve and its quartile band."""
    jobs = _jobs(table, metric).set_index("run_id")
    jobs = jobs[jobs.index.isin(list(curves))]
    depths = sorted(set(jobs[DEPTH])) or [-1]
    names = [f"depth {int(d)}" if d >= 0 else "all jobs" for d in depths]
    fig = make_subplots(rows=1, cols=len(depths), shared_yaxes=True, subplot_titles=names,
                        horizontal_spacing=0.04)
    colours = _lr_colours(list(jobs[LR]))
    finished = jobs.index[jobs["finished"]]
    bands = [np.concatenate(_median_band(curves[str(run_id)])) for run_id in finished
             if any(len(c) for c in curves[str(run_id)])]
    kept = np.concatenate(bands or [np.array([])])  # the range: medians and quartiles only
    kept = kept[np.isfinite(kept) & (kept > 0)]
    low_y, top = (float(kept.min()) / 1.5, float(kept.max()) * 3) if len(kept) else (None, 1e3)
    shown: set[str] = set()
    for col, depth in enumerate(depths, start=1):
        here = jobs[jobs[DEPTH] == depth]
        for lr, group in here[here["finished"]].groupby(LR, dropna=False):
            cells = [c for run_id in group.index for c in curves[str(run_id)] if len(c)]
            if not cells:
                continue
            mean, low, high = _median_band(cells)
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
    fig.update_layout(title="Learning curves: median over repeats and folds, band: quartiles",
                      height=430)
    return fig


def _hover(cell: HeatCell, grid: HeatGrid, where: str) -> str:
    """A heatmap cell's hover: the job, its centre [95% CI] and mean, verdict, unstable flag,
    and the other jobs of the cell."""
    lines = [where]
    if cell.shown:
        lines.append(f"{html.escape(cell.name)}" if cell.name else "")
        lines.append(f"{grid.value_name}: {cell.value_text(grid.scale).lstrip('▲▼ ')}")
        if math.isfinite(cell.mean) and not math.isclose(cell.mean, cell.value):
            lines.append(f"mean over its cells: {cell.mean:.4g}")
        if cell.n_cells:
            lines.append(f"{cell.n_cells} cell(s)")
    if cell.verdict:
        lines.append(f"verdict: {cell.tier if cell.shown else cell.stopped_words}")
    if cell.unstable:
        lines.append(f"<b>{cell.unstable}</b>: some cells blew up")
    if cell.scale_note(grid.scale):
        lines.append(cell.scale_note(grid.scale))
    if cell.finished > 1:
        lines.append(f"best of {cell.finished} finished jobs here")
    if cell.shown and cell.stopped:
        lines.append(f"and {len(cell.stopped)} that did not finish ({cell.stopped_words})")
    return "<br>".join(line for line in lines if line)


def _cell_marks(fig: go.Figure, j: int, i: int, cell: HeatCell, grid: HeatGrid) -> None:
    """A cell's border in its verdict's colour, its centre [95% CI] on white, the verdict as a
    badge of that colour ("!" when unstable), and the notes under it (at column j, row i: a
    category axis places by index, which a label such as "1" would be mistaken for)."""
    colour = tier_colour(cell.verdict) if cell.verdict else None
    if colour is not None:
        fig.add_shape(type="rect", x0=j - 0.46, x1=j + 0.46, y0=i - 0.44, y1=i + 0.44,
                      line={"color": colour, "width": 4}, layer="above")
    rows: list[tuple[str, dict[str, Any]]] = []
    if cell.shown:
        rows.append((cell.value_text(grid.scale), {"bgcolor": "rgba(255,255,255,0.8)"}))
    if cell.badge:
        rows.append((f"<b>{html.escape(cell.badge)}</b>",
                     {"bgcolor": colour, "bordercolor": "black", "borderwidth": 1}))
    rows += [(html.escape(note), {"bgcolor": "rgba(255,255,255,0.8)", "font": {"size": 10}})
             for note in cell.notes()]
    for k, (words, style) in enumerate(rows):
        fig.add_annotation(x=j, y=i, text=words, showarrow=False, borderpad=2,
                           yshift=int(11 * (len(rows) - 1) - 22 * k),
                           font=style.pop("font", {"size": 11}), **style)


def heatmap(table: pd.DataFrame, metric: str, higher_better: bool) -> go.Figure:
    """`metric` over learning rate x depth, the best finished job of each cell (`heat_grid`,
    shared with the PNG): coloured by its centre on the robust `Scale` (a job beyond the range
    at the edge, marked ▲/▼), annotated with centre [95% CI] and a badge of its verdict, its
    border in the verdict's colour, "!" and the words for an unstable job; cells where a job
    did not finish say so."""
    grid = heat_grid(table, metric, higher_better)
    scale, depths, lrs = grid.scale, grid.depths, grid.lrs
    xs, ys = [f"{v:g}" for v in lrs], [str(int(d)) if d >= 0 else "?" for d in depths]
    z = np.full((len(depths), len(lrs)), np.nan)
    hover = [["" for _ in lrs] for _ in depths]
    for (i, j), cell in grid.cells.items():
        if cell.shown:
            z[i, j] = scale.clip([cell.value])[0]
        hover[i][j] = _hover(cell, grid, f"lr {xs[j]}, depth {ys[i]}")
    ticks, words = scale.ticks()
    bar: dict[str, Any] = {"title": {"text": scale.label.replace(metric, grid.value_name, 1),
                                     "side": "right"}}
    if ticks:
        bar.update(tickvals=ticks, ticktext=words)
    fig = go.Figure(go.Heatmap(
        z=z, x=xs, y=ys, text=hover, hovertemplate="%{text}<extra></extra>",
        colorscale="Viridis", reversescale=scale.lower_better, zmin=scale.low, zmax=scale.high,
        colorbar=bar, hoverongaps=False, showlegend=False))
    for (i, j), cell in grid.cells.items():
        _cell_marks(fig, j, i, cell, grid)
    for tier in grid.tiers:  # the legend of the verdicts' colours
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=tier,
                                 marker={"symbol": "square", "size": 14,
                                         "color": tier_colour(tier),
                                         "line": {"color": "black", "width": 1}}))
    keys = ["border and badge: the verdict vs the best"] if grid.tiers else []
    if grid.unstable:
        keys.append("! unstable (hover: k of n cells blew up)")
    if scale.cut_low or scale.cut_high:
        keys.append("▲▼ beyond the colour range, drawn at its edge")
    fig.update_xaxes(title_text="learning rate (train.lr)", type="category")
    fig.update_yaxes(title_text="depth (hidden layers)", type="category", autorange="reversed")
    fig.update_layout(
        title={"text": f"{grid.value_name} ({'higher' if higher_better else 'lower'} is better)"
                       f"<br><sup>{'; '.join(keys)}</sup>"},
        showlegend=bool(grid.tiers),
        legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
        plot_bgcolor="white", margin={"t": 120},
        height=200 + 100 * max(len(depths), 2))
    return fig


def figures(table: pd.DataFrame, curves: Curves, metric: str, higher_better: bool = False,
            params: Sequence[str] = ()) -> list[go.Figure]:
    """The report's figures: parallel coordinates, learning curves, heatmap."""
    return [parallel_coordinates(table, metric, higher_better, params),
            learning_curves(table, curves, metric), heatmap(table, metric, higher_better)]


def _plain(node: Any) -> Any:
    """Plotly's JSON with its typed arrays ({"dtype", "bdata", "shape"}: base64 of a numpy
    array, which the browser decodes) as plain nested lists (NaN as None)."""
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if not isinstance(node, dict):
        return node
    if set(node) - {"shape"} == {"dtype", "bdata"}:
        array = np.frombuffer(base64.b64decode(node["bdata"]), dtype=np.dtype(node["dtype"]))
        if "shape" in node:
            array = array.reshape([int(n) for n in str(node["shape"]).split(",")])
        return [_plain(v) for v in array.tolist()] if array.ndim > 1 else [
            None if isinstance(v, float) and math.isnan(v) else v for v in array.tolist()]
    return {k: _plain(v) for k, v in node.items()}


def figure_dicts(table: pd.DataFrame, curves: Curves, metric: str, higher_better: bool = False,
                 params: Sequence[str] = ()) -> list[dict[str, Any]]:
    """`figures` as the JSON the page embeds (what a browser draws), parsed, its typed arrays
    as lists: for tests and for a look without a browser."""
    return [_plain(json.loads(fig.to_json()))
            for fig in figures(table, curves, metric, higher_better, params)]


def sweep_report(table: pd.DataFrame, curves: Curves, metric: str, path: Path,
                 higher_better: bool = False, params: Sequence[str] = (), title: str = "Sweep",
                 summary: str = "") -> Path:
    """The three figures in one HTML page at `path` (`params`: the table's param columns, for
    the parallel axes); Plotly's JavaScript is embedded once."""
    divs = [fig.to_html(full_html=False, include_plotlyjs=(i == 0),
                        config={"displaylogo": False, "responsive": True})
            for i, fig in enumerate(figures(table, curves, metric, higher_better, params))]
    body = "\n".join(f"<section>{div}</section>" for div in divs)
    page = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            "</title></head>\n<body style=\"font-family: sans-serif; margin: 1em 2em\">\n"
            f"<h2>{html.escape(title)}</h2>\n<pre style=\"white-space: pre-wrap\">"
            f"{html.escape(summary)}</pre>\n{body}\n"
            "</body></html>\n")
    path.write_text(page, encoding="utf-8")
    return path
