"""learning_curves.png: one panel per depth, one distinct colour per learning rate, jobs that
did not finish dashed and crossed where they ended, and a legend that names what is drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import to_hex

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
