"""The pictures of a sweep, drawn from its jobs table (`experiments.sweep.readback.jobs_table`)
and learning curves: final validation loss against the learning rate (one line per depth), the
learning curves (one panel per depth, coloured by learning rate, jobs that did not finish dashed
and crossed where they ended), and a learning-rate x depth heatmap. The interactive report is
`plots.interactive`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

LR, DEPTH = "train.lr", "depth"
Colour = tuple[float, float, float, float]
GREY: Colour = (0.5, 0.5, 0.5, 1.0)  # a job without a learning rate


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _usable(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows with a numeric lr and depth (a depth of -1 groups jobs that do not log one)."""
    cols = [c for c in (LR, DEPTH, metric, "status", "ci_low", "ci_high", "tier") if c in table]
    rows = table[cols].copy()
    rows[LR] = pd.to_numeric(rows[LR], errors="coerce") if LR in rows else np.nan
    rows[DEPTH] = pd.to_numeric(rows[DEPTH], errors="coerce").fillna(-1) if DEPTH in rows else -1
    rows[metric] = pd.to_numeric(rows[metric], errors="coerce") if metric in rows else np.nan
    return rows.dropna(subset=[LR])


def _log_limits(values: np.ndarray) -> tuple[float, float] | None:
    """Log-axis limits that show `values` (the finished jobs) with a margin, or None."""
    finite = values[np.isfinite(values) & (values > 0)]
    if not len(finite):
        return None
    return float(finite.min()) / 1.5, float(finite.max()) * 3.0


def loss_vs_lr(table: pd.DataFrame, metric: str, path: Path,
               frontier: Mapping[str, float] | None = None) -> Path:
    """Final `metric` against the learning rate (log x), one line per depth, with its 95% CI as
    a band when the jobs have several cells. The y range is that of the finished jobs; diverged
    or failed jobs are crosses, pinned to the top edge when their value is off the chart; a
    dashed vertical line marks, per depth, the smallest learning rate that diverged."""
    rows = _usable(table, metric)
    finished = rows["status"] == "FINISHED"
    limits = _log_limits(rows.loc[finished, metric].to_numpy(dtype=float))
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    for depth in sorted(rows[DEPTH].unique()):
        group = rows[rows[DEPTH] == depth].sort_values(LR)
        ok = group[group["status"] == "FINISHED"]
        label = f"depth {int(depth)}" if depth >= 0 else "all jobs"
        (line,) = ax.plot(ok[LR], ok[metric], marker="o", label=label)
        if "ci_low" in ok and ok["ci_low"].notna().any():
            ax.fill_between(ok[LR], ok["ci_low"], ok["ci_high"], color=line.get_color(),
                            alpha=0.15, linewidth=0)
        edge = (frontier or {}).get(f"lr_min_diverged.depth_{int(depth)}")
        if edge is not None:
            ax.axvline(edge, color=line.get_color(), linestyle="--", linewidth=1)
        bad = group[group["status"] != "FINISHED"]
        if len(bad):
            y = bad[metric].to_numpy(dtype=float)
            if limits is not None:
                y = np.where(np.isfinite(y), np.clip(y, *limits), limits[1])
            ax.scatter(bad[LR], y, marker="x", s=60, color=line.get_color())
    if (~finished).any():
        ax.scatter([], [], marker="x", color="grey", label="diverged / failed (clipped)")
    if frontier:
        ax.plot([], [], color="grey", linestyle="--", label="smallest lr that diverged")
    if "ci_low" in rows and rows["ci_low"].notna().any():
        ax.fill_between([], [], [], color="grey", alpha=0.15, label="95% CI")
    ax.set(xscale="log", xlabel="learning rate (train.lr)", ylabel=metric,
           title=f"Final {metric} by learning rate and depth")
    if limits is not None and not metric.endswith("r2"):
        ax.set(yscale="log", ylim=limits)
    if len(rows):
        ax.legend()
    return _save(fig, path)


def _lr_colours(lrs: Sequence[float]) -> dict[float, Colour]:
    """One colour per learning rate, ordered (dark: small lr, bright: large), evenly spaced on
    a perceptually uniform colormap so that neighbours stay distinguishable."""
    cmap = colormaps["plasma"]
    ordered = sorted(lr for lr in set(lrs) if math.isfinite(lr))
    steps = np.linspace(0.0, 0.85, max(len(ordered), 2))  # plasma's last 15% is pale yellow
    return {lr: cmap(x) for lr, x in zip(ordered, steps)}


def _jobs(table: pd.DataFrame) -> pd.DataFrame:
    """run_id -> name, lr, depth (-1 when not logged) and whether it finished."""
    jobs = pd.DataFrame({"run_id": table["run_id"],
                         "name": table.get("run_name", table["run_id"]).astype(str)})
    jobs["lr"] = pd.to_numeric(table[LR], errors="coerce") if LR in table else np.nan
    jobs["depth"] = (pd.to_numeric(table[DEPTH], errors="coerce").fillna(-1)
                     if DEPTH in table else -1)
    jobs["finished"] = table["status"] == "FINISHED" if "status" in table else True
    return jobs.set_index("run_id")


def draw_learning_curves(curves: Mapping[str, Sequence[float]], table: pd.DataFrame,
                         ylabel: str = "validation loss (training units)",
                         title: str = "Learning curves") -> Figure:
    """Every job's per-epoch curve (`curves`: run id -> values by epoch), one panel per depth,
    coloured by learning rate (log y, the range of the finished jobs). A job that did not
    finish is dashed, with a cross where its curve ends (pinned to the top edge when its last
    value is off the chart or not finite): the point where it blew up."""
    jobs = _jobs(table).reindex(list(curves))
    jobs["depth"] = jobs["depth"].fillna(-1)
    jobs["finished"] = jobs["finished"].fillna(False).astype(bool)
    depths = sorted(set(jobs["depth"])) or [-1.0]
    cols = min(len(depths), 4)
    rows = math.ceil(len(depths) / cols)
    fig = Figure(figsize=(3.6 * cols + 1.0, 3.3 * rows + 1.2))
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=True, squeeze=False)).ravel()
    colours = _lr_colours(list(jobs["lr"]))
    kept = [np.asarray(curves[r], dtype=float) for r in jobs.index[jobs["finished"]]]
    kept_all = np.concatenate(kept) if kept else np.array([])
    limits = _log_limits(kept_all)
    ends: list[tuple[Axes, float, float, Colour]] = []
    for ax, depth in zip(axes, depths):
        here = jobs[jobs["depth"] == depth].sort_values("lr")
        for run_id, job in here.iterrows():
            y = np.asarray(curves[str(run_id)], dtype=float)
            colour = colours.get(job["lr"], GREY)
            shown = np.where(np.isfinite(y) & (y > 0), y, np.nan)
            style = "-" if job["finished"] else "--"
            ax.plot(np.arange(len(y)), shown, style, color=colour, linewidth=1.3,
                    marker="." if len(y) < 3 else None)
            if not job["finished"] and len(y):
                ends.append((ax, float(len(y) - 1), float(y[-1]), colour))
        ax.set(xlabel="epoch", title=f"depth {int(depth)}" if depth >= 0 else "all jobs")
        if len(here):
            ax.set_yscale("log")
    for ax in axes[len(depths):]:
        ax.set_visible(False)
    axes[0].set_ylabel(ylabel)
    if limits is not None:
        axes[0].set_ylim(*limits)
    for ax, x, last, colour in ends:
        top = ax.get_ylim()[1]
        ax.plot([x], [last if math.isfinite(last) and 0 < last <= top else top], "x", color=colour,
                markersize=9, markeredgewidth=2, clip_on=False)
    if not curves:
        axes[0].text(0.5, 0.5, "no per-epoch metrics logged", ha="center", va="center",
                     transform=axes[0].transAxes)
    handles = [Line2D([], [], color=colour, label=f"lr={lr:g}") for lr, colour in colours.items()]
    if (~jobs["finished"]).any():
        handles.append(Line2D([], [], color="grey", linestyle="--", marker="x",
                              label="did not finish (× where it ended)"))
    ncol = min(len(handles), 6)
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize="small")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05 * math.ceil(len(handles) / max(ncol, 1)) + 0.02, 1, 1))
    return fig


def learning_curves(curves: Mapping[str, Sequence[float]], table: pd.DataFrame, path: Path,
                    ylabel: str = "validation loss (training units)",
                    title: str = "Learning curves") -> Path:
    """`draw_learning_curves`, saved to `path`."""
    fig = draw_learning_curves(curves, table, ylabel, title)
    fig.savefig(path, dpi=100)
    return path


def heatmap(table: pd.DataFrame, metric: str, path: Path, higher_better: bool = False,
            frontier: Mapping[str, float] | None = None) -> Path:
    """`metric` over learning rate x depth (the best job where a cell holds several), each
    annotated with mean ± the CI's half-width and its tier when the jobs have several cells;
    cells of diverged or failed jobs are marked, and the frontier is named in the title."""
    rows = _usable(table, metric)
    finished = rows[rows["status"] == "FINISHED"]
    grid = finished.pivot_table(index=DEPTH, columns=LR, values=metric,
                                aggfunc="max" if higher_better else "min")
    bad = rows[rows["status"] != "FINISHED"].groupby([DEPTH, LR]).size()
    depths = sorted(set(rows[DEPTH]))
    lrs = sorted(set(rows[LR]))
    grid = grid.reindex(index=depths, columns=lrs)
    values = grid.to_numpy(dtype=float)
    fig = Figure(figsize=(1.2 * max(len(lrs), 3) + 2, 0.8 * max(len(depths), 2) + 1.5))
    ax = fig.subplots()
    finite = values[np.isfinite(values)]
    norm: Normalize = Normalize()
    if len(finite) and (finite > 0).all() and not higher_better:
        norm = LogNorm(vmin=finite.min(), vmax=finite.max())
    cmap = "viridis" if higher_better else "viridis_r"
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto")
    for i, depth in enumerate(depths):
        for j, lr in enumerate(lrs):
            text = "" if math.isnan(values[i, j]) else f"{values[i, j]:.3g}"
            here = finished[(finished[DEPTH] == depth) & (finished[LR] == lr)]
            if text and "ci_low" in here and here["ci_low"].notna().any():
                half = float((here["ci_high"] - here["ci_low"]).iloc[0]) / 2
                text += f" ± {half:.2g}\n{here['tier'].iloc[0]}"
            if (depth, lr) in bad.index:
                text = (text + "\n" if text else "") + "diverged"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="black",
                    bbox={"facecolor": "white", "alpha": 0.6, "linewidth": 0})
    ax.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
    ax.set_yticks(range(len(depths)), [str(int(d)) if d >= 0 else "?" for d in depths])
    title = f"{metric} ({'higher' if higher_better else 'lower'} is better)"
    edges = [f"d{k.rsplit('_', 1)[-1]}: {v:g}" for k, v in (frontier or {}).items()
             if k.startswith("lr_min_diverged")]
    if edges:
        title += "\nsmallest lr that diverged: " + ", ".join(edges)
    ax.set(xlabel="learning rate (train.lr)", ylabel="depth (hidden layers)", title=title)
    if len(finite):
        fig.colorbar(image, ax=ax, label=metric)
    return _save(fig, path)
