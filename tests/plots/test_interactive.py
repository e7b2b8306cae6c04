"""The interactive sweep report: one offline HTML file with parallel coordinates on a log10 lr
axis, learning curves per depth with bands over repeats/folds, and the heatmap; a job 10x the
others (a wild cell at the edge of stability) sets no colour range and no axis, read from the
figures' JSON as the page embeds it; the verdicts in their colours, the unstable job marked;
tables without the assessment's columns still drawn."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backprop_lab.plots import interactive
from backprop_lab.plots.sweep_plots import TIER_COLOURS
from tests.plots.test_sweep_plots import OLD_COLUMNS, TIERS, wild_sweep

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
    assert [d.label for d in dims[1:]] == [  # width is constant
        "depth", "verdict", "val_mse (log10 scale)", "test_r2 (log10(1 − R²) scale)"]
    np.testing.assert_allclose(dims[3].values, np.log10([10, 11, 12, 10, 11]))
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
    np.testing.assert_allclose(mean.y, np.median(cells, axis=0))  # the median, robust
    band = next(t for t in bands if t.xaxis == "x" and t.legendgroup == "lr=0.001")
    np.testing.assert_allclose(band.y[:8], np.percentile(cells, 75, axis=0))  # the quartiles
    (dashed,) = [t for t in fig.data if t.line.dash == "dash"]
    assert dashed.xaxis == "x2" and dashed.marker.symbol[-1] == "x"
    top = 10 ** fig.layout.yaxis.range[1]
    assert dashed.y[-1] == pytest.approx(top)  # the blow-up (1e30) pinned to the top edge
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
    fig = interactive.heatmap(table, "val_mse", False)
    heat = fig.data[0]
    assert heat.z[1][2] is None or math.isnan(heat.z[1][2])
    assert heat.text[1][2] == "lr 1, depth 2<br>verdict: diverged"
    words = [(a.x, a.y, a.text) for a in fig.layout.annotations]
    assert (0, 0, "10 [9, 11]") in words and (0, 0, "<b>indistinguishable</b>") in words
    assert (2, 1, "<b>diverged</b>") in words


def figures(table: pd.DataFrame, metric: str = "test_mse") -> dict[str, dict[str, Any]]:
    """The report's figures as the JSON the page embeds, by the type of their first trace (the
    learning curves, without curves here, have none)."""
    dicts = interactive.figure_dicts(table, {}, metric, metric.endswith("r2"), ["hidden"])
    assert len(dicts) == 3 and not dicts[1]["data"]
    return {"parcoords": dicts[0], "heatmap": dicts[2]}


def test_a_wild_job_sets_neither_the_heatmap_colours_nor_the_parallel_axes() -> None:
    found = figures(wild_sweep())
    heat = found["heatmap"]["data"][0]
    assert heat["zmin"] == pytest.approx(math.log10(9))
    assert heat["zmax"] == pytest.approx(math.log10(12))  # not 96 (centre) nor 264 (mean)
    assert heat["colorbar"]["ticktext"][-1] == "≥ 12"
    assert heat["z"][1][4] == pytest.approx(math.log10(12))  # the wild job, at the edge
    assert "mean over its cells: 264" in heat["text"][1][4]
    dims = {d["label"]: d for d in found["parcoords"]["data"][0]["dimensions"]}
    for label in ("test_mse centre (log10 scale)", "val_mse (log10 scale)",
                  "test_r2 (log10(1 − R²) scale)"):
        low, high = dims[label]["range"]
        drawn = np.array(dims[label]["values"])
        wild = drawn[9]  # the job at depth 2, lr 1
        assert wild == high and dims[label]["ticktext"][-1][0] in "≥≤"
        bulk = np.delete(drawn, 9)
        assert (bulk.max() - bulk.min()) / (high - low) > 0.9  # 19 jobs span the axis
    assert dims["val_mse (log10 scale)"]["range"][1] < math.log10(20)
    assert "3 score(s) beyond an axis' range" in found["parcoords"]["layout"]["title"]["text"]


def test_the_verdicts_have_their_colours_and_the_unstable_job_is_marked() -> None:
    found = figures(wild_sweep())
    heat = found["heatmap"]
    borders = {s["line"]["color"] for s in heat["layout"]["shapes"]}
    assert borders == {TIER_COLOURS[t] for t in TIERS}
    badges = {a["text"]: a["bgcolor"] for a in heat["layout"]["annotations"] if "bgcolor" in a}
    assert badges["<b>best</b>"] == TIER_COLOURS["best"]
    assert badges["<b>worse !</b>"] == TIER_COLOURS["worse"]
    assert badges["<b>diverged</b>"] == TIER_COLOURS["diverged"]
    words = [a["text"] for a in heat["layout"]["annotations"]]
    assert "▲ 96 [24, 384]" in words and "! unstable (1 of 15 cells)" in words
    assert "unstable (1 of 15 cells)" in heat["data"][0]["text"][1][4]  # the hover says it too
    legend = [t["name"] for t in heat["data"][1:]]
    assert legend == list(TIERS)
    assert [t["marker"]["color"] for t in heat["data"][1:]] == [TIER_COLOURS[t] for t in TIERS]
    lines = found["parcoords"]["data"][0]
    names = lines["line"]["colorbar"]["ticktext"]
    steps = lines["line"]["colorscale"]  # stepped: code i spans [i/n, (i+1)/n] in one colour
    assert (lines["line"]["cmin"], lines["line"]["cmax"]) == (-0.5, len(names) - 0.5)
    for code, tier in zip(lines["line"]["color"], wild_sweep()["tier"][:20]):
        assert names[code] == tier
        assert steps[2 * code][1] == steps[2 * code + 1][1] == TIER_COLOURS[tier]
    dims = {d["label"]: d for d in lines["dimensions"]}
    assert dims["unstable: wild cells"]["values"][9] == 1
    assert sum(dims["unstable: wild cells"]["values"]) == 1
    assert "lr=1,depth=2 [unstable (1 of 15 cells)]" in found["parcoords"]["layout"]["title"][
        "text"]


def test_r2_is_drawn_on_log10_one_minus_r2() -> None:
    found = figures(wild_sweep("test_r2"), "test_r2")
    bar = found["heatmap"]["data"][0]["colorbar"]
    assert bar["title"]["text"] == "test_r2 centre (log10(1 − R²) scale)"
    assert bar["ticktext"][-1] == "≤ 0.88" and bar["ticktext"][0] == "0.91"


def test_an_old_table_without_the_assessment_still_renders(tmp_path: Path) -> None:
    table = wild_sweep().drop(columns=OLD_COLUMNS)
    found = figures(table)
    heat = found["heatmap"]
    assert heat["data"][0]["zmax"] == pytest.approx(math.log10(12.36))  # the means' bulk
    assert {s["line"]["color"] for s in heat["layout"]["shapes"]} == {TIER_COLOURS["diverged"]}
    words = [a["text"] for a in heat["layout"]["annotations"]]
    assert "9.27" in words and "▲ 264" in words
    line = found["parcoords"]["data"][0]["line"]
    assert line["colorbar"]["title"]["text"] == "test_mse (log10 scale)"
    assert line["cmax"] == pytest.approx(math.log10(12.36))
    labels = [d["label"] for d in found["parcoords"]["data"][0]["dimensions"]]
    assert "verdict" not in labels and "unstable: wild cells" not in labels
    page = interactive.sweep_report(table, {}, "test_mse", tmp_path / "r.html").read_text()
    assert page.count('class="plotly-graph-div"') == 3
