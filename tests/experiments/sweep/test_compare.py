"""`pipelines.compare` reads a sweep back from MLflow: the table (one row per job, values as
logged, best first), the plots, all logged to the parent run; and the MLflow UI serves the sweep."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hydra.errors import ConfigCompositionException

from backprop_lab.experiments.sweep.compare import compare
from backprop_lab.experiments.sweep.readback import SweepNotFound
from backprop_lab.pipeline.config import CompareCommand
from tests.conftest import compose_command
from tests.procs import free_port, stop_group

from .test_sweeps import diverging_sweep, sweep_runs  # noqa: F401  (the shared sweep fixture)

PLOTS = ("loss_vs_lr.png", "learning_curves.png", "heatmap_lr_depth.png", "gradient_flow_l0.png",
         "report.html")


@pytest.fixture(scope="module")
def compared(diverging_sweep: dict[str, Any],  # noqa: F811
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("compare")
    compare(compose_command("compare", [f"tracking.uri={diverging_sweep['uri']}", f"out={out}"],
                            CompareCommand))
    return {**diverging_sweep, "out": out}


def test_compare_writes_the_table_and_the_plots(compared: dict[str, Any]) -> None:
    out = compared["out"]
    for name in ("jobs.csv", "jobs.md", *PLOTS):
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "jobs.csv")
    _, _, children = sweep_runs(compared["uri"])
    assert len(table) == len(children) == 4
    assert set(table["run_id"]) == {c.info.run_id for c in children}
    by_id = table.set_index("run_id")
    for child in children:
        row = by_id.loc[child.info.run_id]
        assert row["run_name"] == child.info.run_name
        assert row["train.lr"] == pytest.approx(float(child.data.params["train.lr"]))
        assert row["depth"] == int(child.data.params["depth"])
        for key in ("val_mse", "test_r2"):  # nan for a diverged job, which logs no scores
            assert row[key] == pytest.approx(child.data.metrics.get(key, math.nan), nan_ok=True)
        assert row["epochs_run"] == child.data.metrics["epochs_run"]
        expected = "DIVERGED" if child.data.tags.get("diverged") == "true" else "FINISHED"
        assert row["status"] == expected
        duration = (child.info.end_time - child.info.start_time) / 1000
        assert row["duration_s"] == pytest.approx(duration)
    # best first: the finished jobs by validation MSE, then the diverged ones
    assert list(table["status"]) == ["FINISHED", "FINISHED", "DIVERGED", "DIVERGED"]
    assert table["val_mse"].iloc[0] <= table["val_mse"].iloc[1]
    markdown = (out / "jobs.md").read_text()
    assert markdown.count("| lr=") == 4 and "diverged: " in markdown
    # one cell per job: no tier without evidence, and the way to get one
    assert "nothing to test" in markdown and "eval.repeats" in markdown
    assert set(table["tier"]) <= {"n/a (one cell)", "diverged"}


def test_compare_logs_everything_to_the_parent_run(compared: dict[str, Any]) -> None:
    client, parent, _ = sweep_runs(compared["uri"])
    logged = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "compare")}
    assert {"jobs.csv", "jobs.md", *PLOTS} <= logged


def test_compare_describes_the_parent_run_with_links_to_the_runs(
        compared: dict[str, Any]) -> None:
    """The parent's description (the UI's Markdown) is the comparison: the best job and
    best_run_id as links, the finished jobs ranked, the diverged ones apart, the report."""
    _, parent, children = sweep_runs(compared["uri"])
    text = parent.data.tags["mlflow.note.content"]
    eid, best = parent.info.experiment_id, parent.data.tags["best_run_id"]
    link = f"(#/experiments/{eid}/runs/{best}?workflowType=machine_learning)"
    assert f"best_run_id: [`{best}`]{link}" in text
    ranked, rest = text.split("**Did not finish** (not ranked):")
    for child in children:
        diverged = child.data.tags.get("diverged") == "true"
        assert (child.info.run_id in rest) == diverged
        assert (child.info.run_id in ranked) == (not diverged)
    assert "| 1 | 0.01 | none | 10 |" in text and "| 2 | 0.01 | none | 10 |" in text  # frontier
    assert "artifacts/compare/report.html" in text
    page = (compared["out"] / "report.html").read_text()
    assert "learning rate (log10 axis)" in page and page.count('class="plotly-graph-div"') == 3


def test_compare_finds_a_sweep_by_id_prefix_and_names_a_missing_one(
        compared: dict[str, Any], tmp_path: Path) -> None:
    _, parent, _ = sweep_runs(compared["uri"])
    prefix = parent.data.tags["sweep_id"][:8]
    args = [f"tracking.uri={compared['uri']}", f"out={tmp_path}", "log_artifacts=false"]
    compare(compose_command("compare", [f"sweep_id={prefix}", "metric=test_r2", *args],
                            CompareCommand))
    table = pd.read_csv(tmp_path / "jobs.csv")
    finished = table[table["status"] == "FINISHED"]
    assert finished["test_r2"].is_monotonic_decreasing  # r2: highest first
    with pytest.raises(SweepNotFound, match="no sweep with sweep_id '0123abcd'"):
        compare(compose_command("compare", ["sweep_id=0123abcd", *args], CompareCommand))
    with pytest.raises(ConfigCompositionException):
        compose_command("compare", ["bogus=1"], CompareCommand)


def http(base: str, path: str, body: dict[str, Any] | None = None) -> str:
    """GET, or POST `body` as JSON; the response's text."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


def search(base: str, experiment_id: str, where: str) -> list[dict[str, Any]]:
    body = {"experiment_ids": [experiment_id], "filter": where, "max_results": 100}
    return list(json.loads(http(base, "/api/2.0/mlflow/runs/search", body)).get("runs", []))


def as_dict(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["key"]: e["value"] for e in entries}


@pytest.mark.slow
def test_mlflow_ui_serves_the_sweep(diverging_sweep: dict[str, Any]) -> None:  # noqa: F811
    """`mlflow ui` on this store, on a free port: the REST API finds the parent, its children
    and their params and metrics. The server is stopped by its process group id."""
    port, uri = free_port(), diverging_sweep["uri"]
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen(
        [str(mlflow_cli), "ui", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", uri], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True, env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # ~10 s on an idle machine, a minute when loaded
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            try:
                if http(base, "/health").strip() == "OK":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "mlflow ui did not answer /health in 240 s"
            time.sleep(0.5)
        found = http(base, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=backprop-lab")
        experiment_id = json.loads(found)["experiment"]["experiment_id"]
        parents = search(base, experiment_id, "tags.sweep_role = 'parent'")
        assert len(parents) == 1
        parent_id = parents[0]["info"]["run_id"]
        sweep_id = as_dict(parents[0]["data"]["tags"])["sweep_id"]
        children = search(base, experiment_id, f"tags.`mlflow.parentRunId` = '{parent_id}'")
        assert len(children) == 4
        for child in children:
            params, metrics = as_dict(child["data"]["params"]), as_dict(child["data"]["metrics"])
            assert as_dict(child["data"]["tags"])["sweep_id"] == sweep_id
            assert {"train.lr", "train.log10_lr", "depth", "hidden"} <= set(params)
            # a diverged job logs no scores, so that it never sorts among the finished ones
            finished = child["info"]["status"] == "FINISHED"
            assert ("val_mse" in metrics) == finished and "epochs_run" in metrics
        statuses = sorted(c["info"]["status"] for c in children)
        assert statuses == ["FAILED", "FAILED", "FINISHED", "FINISHED"]
    finally:
        stop_group(server)


def test_a_resumed_sweep_lists_the_runs_it_reused(
        diverging_sweep: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    """A relaunched sweep reuses finished runs (parent tags `reused.<run_id>`): they are jobs of
    the new sweep in its table and its summary."""
    from mlflow.tracking import MlflowClient

    from backprop_lab.experiments.sweep import readback

    db = tmp_path / "mlflow.db"
    shutil.copy(diverging_sweep["uri"].removeprefix("sqlite:///"), db)
    client = MlflowClient(f"sqlite:///{db}")
    _, old_parent, children = sweep_runs(f"sqlite:///{db}")
    reused = children[:2]
    tags = {"sweep_id": "f" * 32, "sweep_role": "parent",
            **{f"reused.{r.info.run_id}": "-" for r in reused}}
    parent = client.create_run(old_parent.info.experiment_id, tags=tags).info.run_id
    found = readback.children(client, parent)
    assert {r.info.run_id for r in found} == {r.info.run_id for r in reused}
    table = readback.jobs_table(found, parent_run_id=parent)
    assert table["reused"].all() and len(table) == 2
    summary = readback.summarize(found, "f" * 32, parent_run_id=parent)
    assert summary.reused == 2 and "(2 reused from earlier runs)" in summary.text()


def test_a_job_with_cell_curves_gives_one_curve_per_cell(tmp_path: Path) -> None:
    """A job that logs `curves.csv` (repeat, fold, epoch, val_loss) gives the report one curve
    per score cell, for its bands; its mean is what learning_curves.png draws."""
    from types import SimpleNamespace

    from backprop_lab.experiments.sweep.compare import CELL_CURVES, cell_curves, median_curve

    frame = pd.DataFrame({"repeat": [0, 0, 0, 0, 1, 1], "fold": [0, 0, 1, 1, 0, 0],
                          "epoch": [1, 0, 0, 1, 0, 1], "val_loss": [2.0, 3.0, 5.0, 4.0, 7.0, 6.0]})

    class Client:
        def list_artifacts(self, run_id: str) -> list[Any]:
            return [SimpleNamespace(path=CELL_CURVES)]

        def download_artifacts(self, run_id: str, path: str, folder: str) -> str:
            Path(folder).mkdir(parents=True, exist_ok=True)
            frame.to_csv(Path(folder) / path, index=False)
            return str(Path(folder) / path)

    run = SimpleNamespace(info=SimpleNamespace(run_id="r1", run_name="lr=0.1"))
    cells = cell_curves(Client(), run, tmp_path / "r1")
    assert cells == [[3.0, 2.0], [5.0, 4.0], [7.0, 6.0]]  # by epoch, one per (repeat, fold)
    assert median_curve(cells) == [5.0, 4.0]
    assert median_curve([*cells, [1e9, 1e9]]) == [6.0, 5.0]  # a wild cell moves it one rank
