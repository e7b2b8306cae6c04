"""The pictures of a sweep, drawn from its jobs table (`sweeps.jobs_table`) and learning curves:
final validation loss against the learning rate (one line per depth), all learning curves
overlaid, and a learning-rate x depth heatmap."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

LR, DEPTH = "train.lr", "depth"


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


def learning_curves(curves: Mapping[str, Sequence[float]], path: Path,
                    diverged: Collection[str] = (),
                    ylabel: str = "validation loss (training units)",
                    title: str = "Learning curves of all jobs") -> Path:
    """Every job's per-epoch curve overlaid (log y), labelled by run name; diverged jobs dashed,
    and the y range that of the other jobs."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    kept = []
    for name, values in curves.items():
        y = np.asarray(values, dtype=float)
        y = np.where(np.isfinite(y) & (y > 0), y, np.nan)
        style = "--" if name in diverged else "-"
        ax.plot(np.arange(len(y)), y, style, label=name, linewidth=1.2, marker="." if len(y) < 3
                else None)
        if name not in diverged:
            kept.append(y)
    if not curves:
        ax.text(0.5, 0.5, "no per-epoch metrics logged\n(cross-validated runs log final ones)",
                ha="center", va="center", transform=ax.transAxes)
    else:
        ax.set_yscale("log")
        limits = _log_limits(np.concatenate(kept)) if kept else None
        if limits is not None:
            ax.set_ylim(limits[0], limits[1])
        ax.legend(fontsize="x-small", ncol=2 if len(curves) > 10 else 1)
    ax.set(xlabel="epoch", ylabel=ylabel, title=f"{title} (diverged: dashed)")
    return _save(fig, path)


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
