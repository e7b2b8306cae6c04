"""The sweep's PNGs. learning_curves.png: one panel per depth, one distinct colour per learning
rate, jobs that did not finish dashed and crossed where they ended, and a legend that names what
is drawn. heatmap and loss_vs_lr: a job 10x the others (a wild cell at the edge of stability)
sets neither the colour range nor the axis: it is drawn at the edge and marked; the verdicts in
their colours, the unstable job marked, centres (not means) drawn, old tables still drawn."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from backprop_lab.plots import sweep_plots

LRS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def grid(depths: tuple[int, ...] = (0, 1, 2, 3), diverge_at: float = 1.0
         ) -> tuple[dict[str, list[float]], pd.DataFrame]:
    """A 5 lr x len(depths) sweep; lr `diverge_at` diverges (its last cost: the sentinel)."""
    curves, rows = {}, []
    for d in depths:
        for k, lr in enumerate(LRS):
            run_id = f"d{d}lr{k}"
            bad = lr == diverge_at
            values = list(1.0 / (1 + np.arange(6) * (k + 1) * 0.1) + 0.01 * d)
            curves[run_id] = values[:3] + [1e30] if bad else values
            rows.append({"run_id": run_id, "run_name": f"lr={lr:g},depth={d}",
                         "status": "DIVERGED" if bad else "FINISHED", "train.lr": lr,
                         "depth": d})
    return curves, pd.DataFrame(rows)


def test_one_panel_per_depth_distinct_colours_and_dashed_crossed_divergence(
        tmp_path: Path) -> None:
    curves, table = grid()
    fig = sweep_plots.draw_learning_curves(curves, table)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["depth 0", "depth 1", "depth 2", "depth 3"]
    for ax in panels:
        lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 1]
        assert len(lines) == len(LRS)
        colours = {to_hex(ln.get_color()) for ln in lines}
        assert len(colours) == len(LRS)  # one colour per learning rate, none repeated
        styles = [ln.get_linestyle() for ln in lines]
        assert styles.count("--") == 1 and styles.count("-") == len(LRS) - 1
        dashed = next(ln for ln in lines if ln.get_linestyle() == "--")
        crosses = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
        assert len(crosses) == 1 and crosses[0].get_color() == dashed.get_color()
        assert crosses[0].get_xdata()[0] == 3  # the epoch where it blew up
        assert crosses[0].get_ydata()[0] == ax.get_ylim()[1]  # off the chart: the top edge
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [f"lr={lr:g}" for lr in LRS] + ["did not finish (× where it ended)"]
    out = sweep_plots.learning_curves(curves, table, tmp_path / "learning_curves.png")
    assert out.stat().st_size > 0


def test_without_a_diverged_job_the_legend_claims_none(tmp_path: Path) -> None:
    curves, table = grid(depths=(1,), diverge_at=-1)
    fig = sweep_plots.draw_learning_curves(curves, table)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [f"lr={lr:g}" for lr in LRS]
    assert all(ln.get_linestyle() == "-" for ax in fig.axes for ln in ax.get_lines())


WILD_LRS = (1e-3, 1e-2, 1e-1, 0.3, 1.0)
TIERS = ("best", "equivalent", "undecided", "worse", "diverged")
OLD_COLUMNS = ["n_cells", "centre", "median", "ci_low", "ci_high", "ratio_vs_best",
               "p_vs_best", "p_equivalent", "tier", "unstable", "repeats_to_decide"]


def wild_sweep(metric: str = "test_mse") -> pd.DataFrame:
    """A learning-rate sweep at the edge of stability, as `assess.Assessment.columns` leaves it:
    5 lrs x 4 depths, 19 jobs with centres 9..12, one (depth 2, lr 1) with a wild cell (mean
    264, centre 96, "unstable (1 of 15 cells)"), and lr 3 diverged at depths 3 and 4. The
    centre and interval are on `metric`'s scale (for test_r2, 1 − error / 100)."""
    on = (lambda e: 1 - e / 100) if metric.endswith("r2") else (lambda e: e)
    centres = iter(np.linspace(9.0, 12.0, 19))
    rows = []
    for depth in (1, 2, 3, 4):
        for lr in WILD_LRS:
            wild = depth == 2 and lr == 1.0
            centre = 96.0 if wild else float(next(centres))
            tier = ("best" if centre == 9.0 else "worse" if wild or centre > 11.5 else
                    "equivalent" if centre < 9.6 else "undecided")
            spread = 4.0 if wild else 1.1
            ends = sorted((on(centre / spread), on(centre * spread)))
            rows.append({"run_id": f"d{depth}lr{lr:g}", "run_name": f"lr={lr:g},depth={depth}",
                         "status": "FINISHED", "train.lr": lr, "depth": depth, "hidden": 32,
                         "val_mse": 264.0 if wild else centre * 1.02,
                         "test_mse": 264.0 if wild else centre * 1.03,
                         "test_r2": -2.77 if wild else 1 - centre * 1.03 / 100,
                         "n_cells": 15, "centre": on(centre), "median": on(centre),
                         "ci_low": ends[0], "ci_high": ends[1], "ratio_vs_best": centre / 9,
                         "p_vs_best": 0.5, "p_equivalent": 0.5, "tier": tier,
                         "unstable": "unstable (1 of 15 cells)" if wild else "",
                         "repeats_to_decide": np.nan})
    for depth in (3, 4):
        rows.append({"run_id": f"d{depth}lr3", "run_name": f"lr=3,depth={depth}",
                     "status": "DIVERGED", "train.lr": 3.0, "depth": depth, "hidden": 32,
                     "val_mse": np.nan, "test_mse": np.nan, "test_r2": np.nan, "n_cells": 0,
                     "centre": np.nan, "tier": "diverged", "unstable": ""})
    return pd.DataFrame(rows)


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_the_scale_of_a_wild_sweep_is_the_bulk_of_it_on_log10() -> None:
    table = wild_sweep()
    finished = table[table["status"] == "FINISHED"]
    scale = sweep_plots.Scale.of("test_mse", sweep_plots.values(finished, "test_mse"))
    assert scale.log and scale.cut_high and not scale.cut_low
    assert (scale.low, scale.high) == pytest.approx((math.log10(9), math.log10(12)))
    assert scale.beyond(96.0) == "▲" and scale.beyond(10.0) == ""
    ticks, words = scale.ticks()
    assert words[-1] == "≥ 12" and words[0] == "9" and "10" in words
    assert ticks == sorted(ticks)
    assert scale.clip([96.0])[0] == pytest.approx(math.log10(12))  # drawn at the edge
    r2 = sweep_plots.Scale.of("test_r2", finished["test_r2"], higher_better=True)
    assert r2.label == "test_r2 (log10(1 − R²) scale)"
    assert r2.transform([0.9])[0] == pytest.approx(-1.0)  # log10(1 − 0.9)
    assert r2.high == pytest.approx(math.log10(0.12 * 1.03))  # the bulk's; not R² = −2.77
    assert r2.ticks()[1][-1].startswith("≤ ")  # the bad end of R² is its low values
    assert r2.number(0.9995) == "0.9995" and r2.number(-2.77) == "-2.77"  # not "1"
    # four points or fewer than four: nothing to be robust against, the plain range
    assert sweep_plots.robust_range(np.array([1.0, 2.0, 30.0]), 0.3) == (1.0, 30.0)


def test_the_heatmap_of_a_wild_sweep_colours_the_bulk_and_marks_the_wild_job() -> None:
    fig = sweep_plots.draw_heatmap(wild_sweep(), "test_mse", frontier={
        "lr_min_diverged.depth_3": 3.0})
    ax, bar = fig.axes[0], fig.axes[1]
    (image,) = ax.get_images()
    assert image.norm.vmin == pytest.approx(math.log10(9))
    assert image.norm.vmax == pytest.approx(math.log10(12))  # not log10(96) nor log10(264)
    assert bar.get_ylabel() == "test_mse (log10 scale)"
    assert "≥ 12" in [t.get_text() for t in bar.get_yticklabels()]
    assert ax.get_title().startswith("test_mse centre (lower is better)")
    words = texts(fig)
    assert "9 [8.18, 9.9]" in words  # the centre (the mean is 9.27) and its 95% interval
    assert "▲ 96 [24, 384]" in words and "worse !" in words
    assert "! unstable (1 of 15 cells)" in words
    assert words.count("diverged") == 2
    borders = {to_hex(p.get_edgecolor()) for p in ax.patches if isinstance(p, Rectangle)}
    assert borders == {sweep_plots.TIER_COLOURS[t].lower() for t in TIERS}
    badges = {t.get_text().rstrip(" !"): to_hex(t.get_bbox_patch().get_facecolor())
              for t in ax.texts if t.get_text().rstrip(" !") in TIERS}
    assert badges == {t: sweep_plots.TIER_COLOURS[t].lower() for t in TIERS}
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:5] == list(TIERS) and any("unstable" in w for w in legend)


def test_the_heatmap_of_an_old_table_colours_the_metric(tmp_path: Path) -> None:
    table = wild_sweep().drop(columns=OLD_COLUMNS, errors="ignore")
    fig = sweep_plots.draw_heatmap(table, "test_mse")
    words = texts(fig)
    assert "9.27" in words and "▲ 264" in words and words.count("diverged") == 2
    assert fig.axes[0].get_title() == "test_mse (lower is better)"
    r2 = sweep_plots.draw_heatmap(wild_sweep("test_r2"), "test_r2", higher_better=True)
    assert r2.axes[1].get_ylabel() == "test_r2 (log10(1 − R²) scale)"
    assert sweep_plots.heatmap(table, "test_mse", tmp_path / "h.png").stat().st_size > 0


def test_loss_vs_lr_draws_centres_and_a_band_that_never_goes_below_zero(
        tmp_path: Path) -> None:
    table = wild_sweep()
    fig = sweep_plots.draw_loss_vs_lr(table, "test_mse")
    ax = fig.axes[0]
    depth1 = next(ln for ln in ax.get_lines() if ln.get_label() == "depth 1")
    np.testing.assert_allclose(depth1.get_ydata(), np.log10(table["centre"][:5]))
    low, high = ax.get_ylim()
    assert high < math.log10(20)  # the wild job does not set the axis ...
    edge = [ln for ln in ax.get_lines() if ln.get_marker() == "^" and len(ln.get_xdata())]
    assert len(edge) == 1 and edge[0].get_ydata()[0] == high  # ... it sits at its top edge
    assert "96" in [t.get_text() for t in ax.texts]
    old = table.drop(columns=OLD_COLUMNS).assign(ci_low=table["test_mse"] - 20,
                                                 ci_high=table["test_mse"] + 1)
    ax = sweep_plots.draw_loss_vs_lr(old, "test_mse").axes[0]
    bands = [p for p in ax.collections if isinstance(p, PolyCollection) and len(p.get_paths())]
    assert bands
    for band in bands:
        y = np.concatenate([path.vertices[:, 1] for path in band.get_paths()])
        assert np.isfinite(y).all() and y.min() >= ax.get_ylim()[0]  # a low end below zero
    assert sweep_plots.loss_vs_lr(table, "test_mse", tmp_path / "l.png").stat().st_size > 0
