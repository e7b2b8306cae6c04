"""The interactive sweep report: one offline HTML file with parallel coordinates on a log10 lr
axis, learning curves per depth with bands over repeats/folds, and the heatmap."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from backprop_lab.plots import interactive

LRS = (1e-3, 1e-2, 1.0)


def sweep() -> tuple[pd.DataFrame, dict[str, list[list[float]]]]:
    """2 depths x 3 lrs, 3 cells per job (e.g. folds); lr 1 diverges at depth 2."""
    rng = np.random.default_rng(0)
    rows, curves = [], {}
    for depth in (1, 2):
        for k, lr in enumerate(LRS):
            run_id = f"d{depth}k{k}"
            bad = depth == 2 and lr == 1.0
            rows.append({"run_id": run_id, "run_name": f"lr={lr:g},depth={depth}",
                         "status": "DIVERGED" if bad else "FINISHED", "train.lr": lr,
                         "depth": depth, "width": 16, "val_mse": math.nan if bad else 10 + k,
                         "test_r2": math.nan if bad else 0.8 - 0.01 * k,
                         "ci_low": 9 + k, "ci_high": 11 + k, "tier": "indistinguishable"})
            base = 1.0 / (1 + np.arange(8) * (k + 1))
            curves[run_id] = ([[0.5, 2.0, 1e30]] if bad else
                              [list(base * (1 + 0.1 * rng.standard_normal(8)) + 0.05)
                               for _ in range(3)])
    return pd.DataFrame(rows), curves


def test_parallel_coordinates_read_lr_on_a_log10_axis() -> None:
    table, _ = sweep()
    fig = interactive.parallel_coordinates(table, "val_mse", False, ["width"])
    dims = fig.data[0].dimensions
    assert dims[0].label == "learning rate (log10 axis)"
    assert list(dims[0].values) == [-3, -2, 0, -3, -2]  # the finished jobs only
    assert list(dims[0].ticktext) == ["0.001", "0.01", "1"]
    assert [d.label for d in dims[1:]] == ["depth", "val_mse", "test_r2"]  # width is constant
    assert "1 job(s) that did not finish left out" in fig.layout.title.text


def test_learning_curves_one_panel_per_depth_with_bands_over_cells() -> None:
    table, curves = sweep()
    fig = interactive.learning_curves(table, curves, "val_mse")
    assert [a.text for a in fig.layout.annotations] == ["depth 1", "depth 2"]
    bands = [t for t in fig.data if t.fill == "toself"]
    means = [t for t in fig.data if t.fill is None and t.line.dash is None]
    assert len(bands) == len(means) == 5  # one per finished (depth, lr)
    cells = np.array(curves["d1k0"])
    mean = next(t for t in means if t.xaxis == "x" and t.name == "lr=0.001")
    np.testing.assert_allclose(mean.y, cells.mean(axis=0))
    band = next(t for t in bands if t.xaxis == "x" and t.legendgroup == "lr=0.001")
    np.testing.assert_allclose(band.y[:8], cells.mean(axis=0) + cells.std(axis=0))
    (dashed,) = [t for t in fig.data if t.line.dash == "dash"]
    assert dashed.xaxis == "x2" and dashed.marker.symbol[-1] == "x"
    top = 10 ** fig.layout.yaxis.range[1]
    assert dashed.y[-1] == top  # the blow-up (the 1e30 sentinel) pinned to the top edge
    assert len({t.line.color for t in means if t.xaxis == "x"}) == 3  # a colour per lr


def test_the_report_is_one_offline_html_file(tmp_path: Path) -> None:
    table, curves = sweep()
    path = interactive.sweep_report(table, curves, "val_mse", tmp_path / "report.html",
                                    params=["width"], title="Sweep abc", summary="a < b")
    page = path.read_text()
    assert page.count('class="plotly-graph-div"') == 3
    assert "parcoords" in page and "heatmap" in page
    assert not re.search(r"<script[^>]*\bsrc=", page)  # JavaScript embedded, nothing fetched
    assert len(page) > 3_000_000 and "a &lt; b" in page
    heat = interactive.heatmap(table, "val_mse", False).data[0]
    assert heat.z[1][2] is None or math.isnan(heat.z[1][2])
    assert heat.text[1][2] == "diverged" and heat.text[0][0] == "10 ± 1<br>indistinguishable"
