"""The pictures of a sweep, drawn from its jobs table (`experiments.sweep.readback.jobs_table`)
and learning curves: final validation loss against the learning rate (one line per depth), the
learning curves (one panel per depth, coloured by learning rate, jobs that did not finish dashed
and crossed where they ended), and a learning-rate x depth heatmap. The interactive report is
`plots.interactive`; the two share what is drawn here:

- the value of a job is its `centre` (the trimmed geometric mean over its cells: one wild cell
  moves it little) where the table has one, else the metric's column (old or one-cell sweeps);
- an error is drawn on a log scale (log10 of the error; R² as log10(1 − R²)), so that a factor
  of 2 looks the same at MSE 9 and at 264, and the colour or axis range comes from the finished
  jobs' quartiles (a box plot's whiskers: Tukey's fences, at least a factor 2 beyond the
  quartiles): a job far off is drawn at the edge and marked (▲ above, ▼ below) rather than
  squeezing every other job into one colour;
- a verdict (`tier`) has one colour everywhere (`TIER_COLOURS`, Okabe-Ito: distinct for the
  colour-blind), and an unstable job (some cells blew up) carries a "!".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

LR, DEPTH = "train.lr", "depth"
Colour = tuple[float, float, float, float]
GREY: Colour = (0.5, 0.5, 0.5, 1.0)  # a job without a learning rate
ERRORS = ("mse", "rmse", "mae", "cost", "loss")  # metric name endings that are errors
TIER_COLOURS = {  # the verdicts of experiments.sweep.statistics, in the order a reader wants
    "best": "#009E73", "equivalent": "#56B4E9", "undecided": "#E69F00", "worse": "#D55E00",
    "diverged": "#CC79A7", "n/a (one cell)": "#999999"}
OTHER_TIER = "#DDDDDD"  # a tier name this module does not know (an older sweep's)
DIVERGED = "diverged"
UNSTABLE_MARK = "!"
FENCE = 1.5  # the range reaches FENCE interquartile ranges beyond the quartiles ...
MIN_FACTOR = 2.0  # ... and never less than a factor 2 beyond them (log scales)


def tier_colour(tier: str) -> str:
    return TIER_COLOURS.get(tier, OTHER_TIER)


def values(table: pd.DataFrame, metric: str) -> pd.Series:
    """What is drawn for each job: its `centre` where the table has one, else `metric`."""
    mean = (pd.to_numeric(table[metric], errors="coerce") if metric in table
            else pd.Series(np.nan, index=table.index))
    if "centre" not in table:
        return mean
    return pd.to_numeric(table["centre"], errors="coerce").fillna(mean)


def value_name(table: pd.DataFrame, metric: str) -> str:
    """The drawn value's name: "<metric> centre" when `values` reads centres of several cells
    (the centre of one cell is its value)."""
    if "centre" not in table or pd.to_numeric(table["centre"], errors="coerce").isna().all():
        return metric
    cells = pd.to_numeric(table.get("n_cells", pd.Series(2, index=table.index)), errors="coerce")
    return f"{metric} centre" if (cells > 1).any() else metric


def robust_range(points: np.ndarray, floor: float) -> tuple[float, float] | None:
    """The finite `points`' range, once there are 4 or more cut at a box plot's whiskers: the
    most extreme points within Tukey's fences (FENCE interquartile ranges beyond the
    quartiles, at least `floor` beyond them), so that one point far off neither sets the range
    nor leaves the rest in a sliver of it. None without a finite point."""
    x = np.asarray(points, dtype=float)
    x = x[np.isfinite(x)]
    if not len(x):
        return None
    low, high = float(x.min()), float(x.max())
    if len(x) >= 4:
        q1, q3 = (float(q) for q in np.quantile(x, [0.25, 0.75]))
        pad = max(FENCE * (q3 - q1), floor)
        inside = x[(x >= q1 - pad) & (x <= q3 + pad)]
        low, high = float(inside.min()), float(inside.max())
    if high - low < 1e-12:  # one value: a range around it
        half = max(floor, abs(low) * 0.05, 1e-3)
        low, high = low - half, high + half
    return low, high


@dataclass(frozen=True)
class Scale:
    """How a metric's values are drawn: `log` (errors: log10 of the error; R²: log10(1 − R²))
    or linear; the range the colours or the axis span, on that scale; whether some values lay
    beyond it (drawn at its edge); and whether lower is better on it."""

    metric: str
    log: bool
    low: float
    high: float
    cut_low: bool = False
    cut_high: bool = False
    lower_better: bool = True

    @property
    def r2(self) -> bool:
        return self.metric.endswith("r2")

    @classmethod
    def of(cls, metric: str, points: Sequence[float] | np.ndarray | pd.Series,
           higher_better: bool = False) -> Scale:
        """The scale of `metric` fitted to `points` (the finished jobs' values)."""
        log = metric.endswith(ERRORS) or metric.endswith("r2")
        drawn = cls(metric, log, 0.0, 1.0).transform(points)
        found = robust_range(drawn, math.log10(MIN_FACTOR) if log else 0.0)
        low, high = found if found is not None else (0.0, 1.0)
        finite = drawn[np.isfinite(drawn)]
        return cls(metric, log, low, high, bool((finite < low).any()),
                   bool((finite > high).any()), log or not higher_better)

    def transform(self, points: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
        """Values on the drawn scale (nan where an error is not positive)."""
        x = np.asarray(points, dtype=float)
        if not self.log:
            return x
        error = 1.0 - x if self.r2 else x
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(error > 0, np.log10(np.where(error > 0, error, 1.0)), np.nan)

    def clip(self, points: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
        """`transform`, then held to the range: beyond it, at its edge."""
        return np.clip(self.transform(points), self.low, self.high)

    def beyond(self, value: float) -> str:
        """"▲" for a value beyond the range's high end (on the drawn scale), "▼" beyond its low
        end, else ''."""
        drawn = float(self.transform([value])[0])
        if not math.isfinite(drawn):
            return ""
        return "▲" if drawn > self.high + 1e-12 else "▼" if drawn < self.low - 1e-12 else ""

    @property
    def label(self) -> str:
        """The colour bar's or the axis' title."""
        if not self.log:
            return self.metric
        if self.r2:
            return f"{self.metric} (log10(1 − R²) scale)"
        return f"{self.metric} (log10 scale)"

    def number(self, value: float) -> str:
        """`value` in the metric's units, 3 significant digits; an R² near 1 with as many
        decimals as its error 1 − R² needs (0.9995, not 1)."""
        if not math.isfinite(value):
            return "–"
        if not (self.r2 and self.log) or value >= 1.0:
            return f"{value:.3g}"
        decimals = max(0, -math.floor(math.log10(1.0 - value))) + 2
        return f"{value:.{decimals}f}".rstrip("0").rstrip(".")

    def _words(self, drawn: float) -> str:
        error = 10.0**drawn
        return self.number(1.0 - error if self.r2 else error)

    def _round_ticks(self) -> list[float]:
        """Round values of the error inside the range, on the drawn scale: 1, 2, 5 x 10^k over
        more than a decade, else evenly spaced round steps (1, 2, 2.5 or 5 x 10^k apart)."""
        low, high = 10.0**self.low, 10.0**self.high
        if self.high - self.low > 1.0:  # over 3 decades, the powers of 10 alone
            mantissas = (1, 2, 5) if self.high - self.low <= 3.0 else (1,)
            found = [m * 10.0**k for k in range(math.floor(self.low), math.ceil(self.high) + 1)
                     for m in mantissas]
        else:
            raw = (high - low) / 6
            size = 10.0 ** math.floor(math.log10(raw))
            step = next(m * size for m in (1, 2, 2.5, 5, 10) if m * size >= raw)
            found = [k * step for k in range(math.ceil(low / step), math.floor(high / step) + 1)]
        return [math.log10(v) for v in found if low * (1 - 1e-9) <= v <= high * (1 + 1e-9)]

    def ticks(self, ends: bool = True) -> tuple[list[float], list[str]]:
        """Ticks on the drawn scale labelled in the metric's own units: round values of the
        error (for R² 1 − those) and, with `ends` (a colour bar, a parallel axis), the range's
        two ends, an end that cut values off labelled "≥ x" (or "≤ x"); both ends whenever
        fewer than two round values fall inside. None on a linear scale (the plotting
        library's own)."""
        if not self.log:
            return [], []
        high_sign, low_sign = ("≤ ", "≥ ") if self.r2 else ("≥ ", "≤ ")  # R²: low is high R²
        edges = [(self.low, low_sign if self.cut_low else ""),
                 (self.high, high_sign if self.cut_high else "")]
        marks = [(t, f"{sign}{self._words(t)}") for t, sign in edges if ends or sign]
        marks += [(t, self._words(t)) for t in self._round_ticks()
                  if all(abs(t - e) > 0.1 * (self.high - self.low) for e, _ in marks)]
        if len(marks) < 2:
            marks = [(t, f"{sign}{self._words(t)}") for t, sign in edges]
        marks.sort()
        return [t for t, _ in marks], [w for _, w in marks]


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _usable(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows with a numeric lr and depth (a depth of -1 groups jobs that do not log one), and
    `value`: what is drawn for each (`values`)."""
    cols = [c for c in (LR, DEPTH, metric, "status", "run_name", "centre", "ci_low", "ci_high",
                        "n_cells", "tier", "unstable") if c in table]
    rows = table[cols].copy()
    rows[LR] = pd.to_numeric(rows[LR], errors="coerce") if LR in rows else np.nan
    rows[DEPTH] = pd.to_numeric(rows[DEPTH], errors="coerce").fillna(-1) if DEPTH in rows else -1
    rows[metric] = pd.to_numeric(rows[metric], errors="coerce") if metric in rows else np.nan
    rows["value"] = values(rows, metric)
    for col in ("ci_low", "ci_high"):
        if col in rows:
            rows[col] = pd.to_numeric(rows[col], errors="coerce")
    return rows.dropna(subset=[LR])


@dataclass
class HeatCell:
    """One learning rate x depth cell: its best finished job (by the drawn value) and the jobs
    there that did not finish."""

    value: float = math.nan  # the best job's centre (else its mean)
    low: float = math.nan  # the 95% interval of the centre
    high: float = math.nan
    mean: float = math.nan  # the arithmetic mean over its cells
    tier: str = ""
    unstable: str = ""  # "unstable (k of n cells)" or ''
    name: str = ""
    n_cells: int = 0
    finished: int = 0  # finished jobs in this cell
    stopped: tuple[str, ...] = ()  # the statuses of the jobs that did not finish

    @property
    def shown(self) -> bool:
        return math.isfinite(self.value)

    @property
    def stopped_words(self) -> str:
        """"diverged", "failed", "diverged, failed"...: what the unfinished jobs did."""
        return ", ".join(sorted({s.lower() for s in self.stopped}))

    @property
    def verdict(self) -> str:
        """The tier the cell is coloured by: its best job's, else diverged if a job stopped."""
        if self.shown:
            return self.tier
        return DIVERGED if self.stopped else ""

    @property
    def badge(self) -> str:
        """The verdict's words, with "!" when the job is unstable."""
        words = self.tier if self.shown else self.stopped_words
        return f"{words} {UNSTABLE_MARK}".strip() if self.unstable else words

    def value_text(self, scale: Scale) -> str:
        """"10.2 [9.1, 11.5]" (centre and its 95% interval), "▲" first when off the scale."""
        if not self.shown:
            return ""
        words = scale.number(self.value)
        if math.isfinite(self.low) and math.isfinite(self.high):
            words += f" [{scale.number(self.low)}, {scale.number(self.high)}]"
        mark = scale.beyond(self.value)
        return f"{mark} {words}" if mark else words

    def scale_note(self, scale: Scale) -> str:
        """Why the colour is at the range's edge, for a value beyond it; else ''."""
        mark = scale.beyond(self.value) if self.shown else ""
        return f"{mark} beyond the colour range: drawn at its edge" if mark else ""

    def notes(self) -> list[str]:
        """The unstable flag's words and the unfinished jobs beside a finished one."""
        found = [f"{UNSTABLE_MARK} {self.unstable}"] if self.unstable else []
        if self.shown and self.stopped:
            found.append(f"+ {len(self.stopped)} {self.stopped_words}")
        return found


@dataclass
class HeatGrid:
    """The heatmap's rows (depths), columns (learning rates), cells and colour scale."""

    depths: list[float]
    lrs: list[float]
    cells: dict[tuple[int, int], HeatCell]
    scale: Scale
    value_name: str

    @property
    def tiers(self) -> list[str]:
        """The verdicts shown, in TIER_COLOURS' order (unknown ones last)."""
        shown = {c.verdict for c in self.cells.values()} - {""}
        return [t for t in TIER_COLOURS if t in shown] + sorted(shown - set(TIER_COLOURS))

    @property
    def unstable(self) -> bool:
        return any(c.unstable for c in self.cells.values())


def _text(job: pd.Series, key: str) -> str:
    value = job.get(key, "")
    return "" if pd.isna(value) else str(value)


def _float(job: pd.Series, key: str) -> float:
    value = pd.to_numeric(pd.Series([job.get(key, math.nan)]), errors="coerce").iloc[0]
    return float(value)


def heat_grid(table: pd.DataFrame, metric: str, higher_better: bool = False) -> HeatGrid:
    """The heatmap of `metric` over learning rate x depth, shared by the PNG and the report:
    per cell the best finished job by its drawn value (`values`), the colour scale fitted to
    every finished job's value."""
    rows = _usable(table, metric)
    finished = rows["status"] == "FINISHED" if "status" in rows else pd.Series(True, rows.index)
    scale = Scale.of(metric, rows.loc[finished, "value"], higher_better)
    depths, lrs = sorted(set(rows[DEPTH])), sorted(set(rows[LR]))
    cells: dict[tuple[int, int], HeatCell] = {}
    for (i, depth), (j, lr) in ((a, b) for a in enumerate(depths) for b in enumerate(lrs)):
        here = (rows[DEPTH] == depth) & (rows[LR] == lr)
        ok = rows[here & finished & rows["value"].notna()]
        stopped = tuple(str(s) for s in rows.loc[here & ~finished, "status"])
        if not len(ok) and not stopped:
            continue
        cell = HeatCell(finished=int((here & finished).sum()), stopped=stopped)
        if len(ok):
            best = ok.sort_values("value", ascending=not higher_better, kind="stable").iloc[0]
            cell.value, cell.mean = float(best["value"]), _float(best, metric)
            cell.low, cell.high = _float(best, "ci_low"), _float(best, "ci_high")
            cell.tier, cell.unstable = _text(best, "tier"), _text(best, "unstable")
            cell.name = _text(best, "run_name")
            n_cells = _float(best, "n_cells")
            cell.n_cells = int(n_cells) if math.isfinite(n_cells) else 0
        cells[(i, j)] = cell
    return HeatGrid(depths, lrs, cells, scale, value_name(table, metric))


def _log_limits(values: np.ndarray) -> tuple[float, float] | None:
    """Log-axis limits that show `values` (the finished jobs) with a margin, or None."""
    finite = values[np.isfinite(values) & (values > 0)]
    if not len(finite):
        return None
    return float(finite.min()) / 1.5, float(finite.max()) * 3.0


def _band(ok: pd.DataFrame, scale: Scale, bottom: float) -> tuple[np.ndarray, np.ndarray]:
    """The 95% CI band of the finished jobs on the drawn scale, never below zero: an error's
    low end at or below zero (an old table's symmetric interval) is drawn at the bottom edge."""
    ends = []
    for col in ("ci_low", "ci_high"):
        raw = ok[col].to_numpy(dtype=float)
        drawn = scale.transform(raw)
        ends.append(np.where(np.isfinite(raw) & ~np.isfinite(drawn), bottom, drawn))
    return ends[0], ends[1]


def _off_chart(ax: Axes, x: np.ndarray, raw: np.ndarray, scale: Scale,
               limits: tuple[float, float], colour: Any) -> bool:
    """Finished jobs beyond the y range: a triangle at the edge (▲ above, ▼ below), with
    their value; whether there was one."""
    found = False
    for xi, value, y in zip(x, raw, scale.transform(raw)):
        if not math.isfinite(y) or limits[0] <= y <= limits[1]:
            continue
        up = y > limits[1]
        edge = limits[1] if up else limits[0]
        ax.plot([xi], [edge], "^" if up else "v", color=colour, markersize=9, clip_on=False)
        ax.annotate(scale.number(value), (xi, edge), textcoords="offset points",
                    xytext=(7, -10 if up else 4), fontsize=8, color=colour)
        found = True
    return found


def _axis_scale(finished: pd.DataFrame, metric: str) -> Scale:
    """The y axis of `loss_vs_lr`: `Scale`'s robust range of the finished jobs' values, widened
    to the 95% intervals of the jobs inside it (a job beyond it widens nothing)."""
    scale = Scale.of(metric, finished["value"], metric.endswith("r2"))
    inside = scale.transform(finished["value"])
    inside = (inside >= scale.low) & (inside <= scale.high)
    ends = [scale.transform(finished.loc[inside, c]) for c in ("ci_low", "ci_high")
            if c in finished]
    found = np.concatenate([[scale.low, scale.high], *ends])
    found = found[np.isfinite(found)]
    return replace(scale, low=float(found.min()), high=float(found.max()), cut_low=False,
                   cut_high=False)


def loss_vs_lr(table: pd.DataFrame, metric: str, path: Path,
               frontier: Mapping[str, float] | None = None) -> Path:
    """`draw_loss_vs_lr`, saved to `path`."""
    return _save(draw_loss_vs_lr(table, metric, frontier), path)


def draw_loss_vs_lr(table: pd.DataFrame, metric: str,
                    frontier: Mapping[str, float] | None = None) -> Figure:
    """Final `metric` (each job's centre where the table has one, else its mean) against the
    learning rate (log x), one line per depth, with the centre's 95% CI as a band when the jobs
    have several cells. The y axis is `Scale`'s (an error on a log scale, R² as
    log10(1 − R²)), its range the finished jobs' whiskers and their intervals (`_axis_scale`):
    a job beyond is a triangle at the edge with its value; diverged or failed jobs are crosses,
    pinned to the top edge when their value is off the chart; a dashed vertical line marks, per
    depth, the smallest learning rate that diverged."""
    rows = _usable(table, metric)
    finished = rows["status"] == "FINISHED"
    scale = _axis_scale(rows[finished], metric)
    pad = 0.06 * (scale.high - scale.low)
    limits = (scale.low - pad, scale.high + pad)
    fig = Figure(figsize=(8.0, 4.5))
    ax = fig.subplots()
    beyond = False
    for depth in sorted(rows[DEPTH].unique()):
        group = rows[rows[DEPTH] == depth].sort_values(LR)
        ok = group[group["status"] == "FINISHED"]
        label = f"depth {int(depth)}" if depth >= 0 else "all jobs"
        drawn = scale.transform(ok["value"])
        (line,) = ax.plot(ok[LR], drawn, marker="o", label=label)
        if "ci_low" in ok and ok["ci_low"].notna().any():
            low, high = _band(ok, scale, limits[0])
            ax.fill_between(ok[LR], low, high, color=line.get_color(), alpha=0.15, linewidth=0)
        beyond |= _off_chart(ax, ok[LR].to_numpy(dtype=float),
                             ok["value"].to_numpy(dtype=float), scale, limits, line.get_color())
        edge = (frontier or {}).get(f"lr_min_diverged.depth_{int(depth)}")
        if edge is not None:
            ax.axvline(edge, color=line.get_color(), linestyle="--", linewidth=1)
        bad = group[group["status"] != "FINISHED"]
        if len(bad):
            y = scale.transform(bad["value"])
            y = np.where(np.isfinite(y), np.clip(y, *limits), limits[1])
            ax.scatter(bad[LR], y, marker="x", s=60, color=line.get_color(), clip_on=False)
    if (~finished).any():
        ax.scatter([], [], marker="x", color="grey", label="diverged / failed (clipped)")
    if beyond:
        ax.plot([], [], "^", color="grey", label="beyond the range (its value)")
    if frontier:
        ax.plot([], [], color="grey", linestyle="--", label="smallest lr that diverged")
    if "ci_low" in rows and rows["ci_low"].notna().any():
        ax.fill_between([], [], [], color="grey", alpha=0.15, label="95% CI")
    name = value_name(table, metric)
    ax.set(xscale="log", xlabel="learning rate (train.lr)", ylim=limits,
           ylabel=scale.label.replace(metric, name, 1),
           title=f"Final {name} by learning rate and depth")
    ticks, words = scale.ticks(ends=False)
    if ticks:
        ax.set_yticks(ticks, words)
    if len(rows):
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


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


def _cell_marks(ax: Axes, i: int, j: int, cell: HeatCell, scale: Scale) -> None:
    """A cell's border in its verdict's colour, its centre [95% CI], the verdict as a badge of
    that colour, and the unstable flag and unfinished jobs in words."""
    colour = tier_colour(cell.verdict) if cell.verdict else None
    if colour is not None:
        ax.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, edgecolor=colour,
                               linewidth=3.5))
    lines: list[tuple[str, str | None]] = []  # (words, badge colour)
    if cell.shown:
        lines.append((cell.value_text(scale), None))
    if cell.badge:
        lines.append((cell.badge, colour))
    lines += [(note, None) for note in cell.notes()]
    for k, (words, badge) in enumerate(lines):
        y = i + (k - (len(lines) - 1) / 2) * 0.24
        box = ({"facecolor": badge, "edgecolor": "black", "linewidth": 0.5,
                "boxstyle": "round,pad=0.25"} if badge else
               {"facecolor": "white", "alpha": 0.75, "linewidth": 0, "boxstyle": "round,pad=0.2"})
        ax.text(j, y, words, ha="center", va="center", fontsize=7.5, color="black", bbox=box,
                fontweight="bold" if badge else "normal")


def _heat_legend(fig: Figure, grid: HeatGrid) -> None:
    """The verdicts' colours, and what "!" and "▲/▼" mean, under the axes."""
    handles: list[Patch | Line2D] = [
        Patch(facecolor=tier_colour(t), edgecolor="black", linewidth=0.5, label=t)
        for t in grid.tiers]
    if grid.unstable:
        handles.append(Line2D([], [], linestyle="", label="! unstable: some cells blew up"))
    if grid.scale.cut_low or grid.scale.cut_high:
        handles.append(Line2D([], [], linestyle="",
                              label="▲▼ beyond the colour range: drawn at its edge"))
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4),
                   fontsize="small", title="verdict vs the best (border and badge)",
                   title_fontsize="small")


def draw_heatmap(table: pd.DataFrame, metric: str, higher_better: bool = False,
                 frontier: Mapping[str, float] | None = None) -> Figure:
    """`metric` over learning rate x depth (the best job where a cell holds several): the
    colour is its centre on a log scale for an error (`Scale`: the range from the finished
    jobs' quartiles, a job beyond it at the edge and marked ▲/▼, the colour bar's end an
    arrow), each cell annotated with centre [95% CI] and a badge of its verdict, its border in
    the verdict's colour, "!" and the words for an unstable job; cells of diverged or failed
    jobs are marked, and the frontier is named in the title."""
    grid = heat_grid(table, metric, higher_better)
    scale, depths, lrs = grid.scale, grid.depths, grid.lrs
    z = np.full((len(depths), len(lrs)), np.nan)
    for (i, j), cell in grid.cells.items():
        if cell.shown:
            z[i, j] = scale.clip([cell.value])[0]
    rows_of_text = max((1 + bool(c.badge) + len(c.notes()) for c in grid.cells.values()),
                       default=1)
    fig = Figure(figsize=(1.75 * max(len(lrs), 3) + 2.2,
                          (0.3 + 0.26 * rows_of_text) * max(len(depths), 2) + 2.4))
    ax = fig.subplots()
    cmap = colormaps["viridis_r" if scale.lower_better else "viridis"]
    image = ax.imshow(np.ma.masked_invalid(z), cmap=cmap, aspect="auto",
                      norm=Normalize(vmin=scale.low, vmax=scale.high))
    for (i, j), cell in grid.cells.items():
        _cell_marks(ax, i, j, cell, scale)
    ax.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
    ax.set_yticks(range(len(depths)), [str(int(d)) if d >= 0 else "?" for d in depths])
    title = f"{grid.value_name} ({'higher' if higher_better else 'lower'} is better)"
    edges = [f"d{k.rsplit('_', 1)[-1]}: {v:g}" for k, v in (frontier or {}).items()
             if k.startswith("lr_min_diverged")]
    if edges:
        title += "\nsmallest lr that diverged: " + ", ".join(edges)
    ax.set(xlabel="learning rate (train.lr)", ylabel="depth (hidden layers)", title=title)
    if np.isfinite(z).any():
        extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get(
            (scale.cut_low, scale.cut_high), "neither")
        bar = fig.colorbar(image, ax=ax, label=scale.label, extend=extend)
        ticks, words = scale.ticks()
        if ticks:
            bar.set_ticks(ticks, labels=words)
    _heat_legend(fig, grid)
    legend_rows = math.ceil((len(grid.tiers) + grid.unstable
                             + (scale.cut_low or scale.cut_high)) / 4)
    bottom = (0.45 + 0.2 * legend_rows) / fig.get_figheight() if legend_rows else 0.0
    fig.tight_layout(rect=(0, min(bottom, 0.45), 1, 1))
    return fig


def heatmap(table: pd.DataFrame, metric: str, path: Path, higher_better: bool = False,
            frontier: Mapping[str, float] | None = None) -> Path:
    """`draw_heatmap`, saved to `path`."""
    fig = draw_heatmap(table, metric, higher_better, frontier)
    fig.savefig(path, dpi=100)
    return path
