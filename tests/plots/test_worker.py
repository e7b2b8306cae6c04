"""The plot worker (plots.worker): a single run's plots drawn in a second process are the same
bytes as drawn inline; a drawing's error, or a worker that dies, is a clear error and never a
hang; a worker that could not start leaves the run to draw inline; a run ends only after its
plots are logged; only a single run's command line starts one."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from backprop_lab.nn.training import History
from backprop_lab.plots import run_plots, worker
from backprop_lab.plots.worker import PlotFailed, Plots
from pipelines.cli import one_run
from tests.conftest import run_cli


@pytest.fixture
def started() -> Iterator[worker.Worker]:
    worker.start()
    assert worker._worker is not None
    yield worker._worker
    worker.stop()


def drawings(folder: Path) -> list[tuple[str, tuple]]:
    """One of each run plot, with what a real run hands them: an ensemble's two curves with
    validation, a kept best epoch and a blow-up; predictions; a flagged gradient flow."""
    first = History(train_cost=[5.0, 2.0, 1.0, 0.8], val_cost=[6.0, 2.5, 1.2, 1.1], best_epoch=3,
                    diag={e: {"diag.grad_norm.l0": 1.0 / (e + 1), "diag.grad_norm.l1": 0.5,
                              "diag.update_ratio.l0": 1e-3, "diag.update_ratio.l1": 0.0}
                          for e in (0, 10, 20)})
    other = History(train_cost=[5.0, 3.0, float("inf")], val_cost=[6.0, 3.5, float("inf")],
                    diverged=True, diverged_epoch=2)
    rng = np.random.default_rng(0)
    actual = rng.normal(22, 9, 50)
    return [
        ("learning_curve", ([first, other], folder / "learning_curve.png", True)),
        ("predicted_vs_actual", (actual, actual + rng.normal(0, 3, 50), "MEDV",
                                 folder / "predicted_vs_actual.png")),
        ("gradient_flow", (first.diag, folder / "gradient_flow.png",
                           {"vanishing": "layer 1"})),
    ]


def test_worker_draws_the_same_bytes_as_inline(started: worker.Worker, tmp_path: Path) -> None:
    (tmp_path / "inline").mkdir()
    (tmp_path / "worker").mkdir()
    for name, args in drawings(tmp_path / "inline"):
        getattr(run_plots, name)(*args)
    with Plots() as plots:
        assert plots.worker is started
        for name, args in drawings(tmp_path / "worker"):
            plots.draw(name, *args)
    assert started.alive() and started.sent == 3  # all three went to the worker
    for name in ("learning_curve", "predicted_vs_actual", "gradient_flow"):
        inline = (tmp_path / "inline" / f"{name}.png").read_bytes()
        assert (tmp_path / "worker" / f"{name}.png").read_bytes() == inline, name


def test_a_drawing_that_fails_in_the_worker_raises_its_error(
        started: worker.Worker, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "learning_curve.png"
    with pytest.raises(PlotFailed, match=r"learning_curve.png: FileNotFoundError: .*"
                       r"no-such-folder.*\(drawn by the plot worker\)"), Plots() as plots:
        plots.draw("learning_curve", [History(train_cost=[1.0, 0.5])], missing, False)
    with Plots() as plots:  # the worker goes on drawing the next ones
        plots.draw("learning_curve", [History(train_cost=[1.0, 0.5])],
                   tmp_path / "learning_curve.png", False)
    assert (tmp_path / "learning_curve.png").stat().st_size > 0


def test_a_worker_that_dies_while_drawing_is_an_error_not_a_hang(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # a stand-in that reads the start of a request and exits 3 before replying
    monkeypatch.setattr(worker.Worker, "command", [
        sys.executable, "-c", "import sys; sys.stdin.buffer.read(1); sys.exit(3)"])
    worker.start()
    try:
        with pytest.raises(PlotFailed, match=r"plot worker \(pid \d+\) exited with status 3 "
                           r"before drawing learning_curve.png"), Plots() as plots:
            plots.draw("learning_curve", [History(train_cost=[1.0])],
                       tmp_path / "learning_curve.png", False)
    finally:
        worker.stop()


def test_a_worker_gone_before_the_run_leaves_it_to_draw_inline(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(worker.Worker, "command", [sys.executable, "-c", "raise SystemExit(1)"])
    worker.start()
    try:
        assert worker._worker is not None
        worker._worker.process.wait()
        with caplog.at_level(logging.WARNING), Plots() as plots:
            plots.draw("learning_curve", [History(train_cost=[1.0, 0.5])],
                       tmp_path / "learning_curve.png", False)
        assert plots.worker is None
        assert "plot worker exited (status 1) before this run's plots" in caplog.text
        assert (tmp_path / "learning_curve.png").stat().st_size > 0
    finally:
        worker.stop()


def test_without_a_worker_plots_are_drawn_inline(tmp_path: Path) -> None:
    assert not worker.running()
    with Plots() as plots:
        plots.draw("learning_curve", [History(train_cost=[1.0, 0.5])],
                   tmp_path / "learning_curve.png", False)
        assert (tmp_path / "learning_curve.png").exists()  # at once, not at the block's end
    with pytest.raises(ValueError, match="not a run plot"):
        plots.draw("savefig", tmp_path / "x.png")


def test_warm_up_gives_way_to_a_waiting_request(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []
    monkeypatch.setattr(worker, "draw", lambda name, args: drawn.append(name))
    read, write = os.pipe()
    with os.fdopen(read, "rb") as requests, os.fdopen(write, "wb") as run:
        worker.warm_up(requests)
        assert sorted(drawn) == sorted(worker.DRAWINGS)  # one of each
        run.write(b"x")  # the run's first request
        run.flush()
        drawn.clear()
        worker.warm_up(requests)
        assert drawn == []


def test_stop_ends_the_worker(started: worker.Worker) -> None:
    assert worker.running()
    worker.stop()
    assert started.process.returncode == 0 and not worker.running()


def test_only_a_single_runs_command_line_starts_a_worker() -> None:
    assert one_run([]) and one_run(["train.epochs=1", "model=wide"])
    for flags in (["-m", "sweep=lr_depth"], ["--multirun"], ["hydra.mode=MULTIRUN"],
                  ["--cfg", "job"], ["--cfg=job"], ["--help"], ["--info"]):
        assert not one_run(flags), flags


@pytest.mark.slow
def test_a_single_run_ends_after_its_plots_are_logged(store_uri: str, tmp_path: Path) -> None:
    out = run_cli("pipelines.train", "train.epochs=3", "tracking.log_model=false",
                  f"tracking.uri={store_uri}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(store_uri)
    run = client.search_runs([client.get_experiment_by_name("backprop-lab").experiment_id])[0]
    assert run.info.status == "FINISHED"
    folder = Path(run.info.artifact_uri.removeprefix("file://"))
    for name in ("learning_curve.png", "predicted_vs_actual.png", "gradient_flow.png"):
        logged = folder / name
        assert logged.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert logged.stat().st_mtime <= run.info.end_time / 1000 + 0.01, name
