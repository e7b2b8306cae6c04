"""No run stays RUNNING: signals end a run KILLED with what it has, dead runs are marked."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import backprop_lab
from backprop_lab.nn.weights import load_network
from backprop_lab.tracking.liveness import HEARTBEAT_TAG, mark_stale
from tests.conftest import run_cli

LONG_RUN = ["train.epochs=1000000", "train.patience=null", "tracking.log_model=false"]


def start_training(uri: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pipelines.train", *LONG_RUN,
                             f"tracking.uri={uri}"], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def running_run(client: MlflowClient, timeout: float = 120) -> object:
    """The one run of experiment backprop-lab, once it is RUNNING with a heartbeat."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name("backprop-lab")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if runs and runs[0].info.status == "RUNNING" and HEARTBEAT_TAG in runs[0].data.tags:
            return runs[0]
        time.sleep(0.5)
    raise TimeoutError("no RUNNING run")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_run_killed_with_its_metrics_config_and_weights(
        sig: signal.Signals, store_uri: str, tmp_path: Path) -> None:
    process = start_training(store_uri, tmp_path)
    client = MlflowClient(store_uri)
    run = running_run(client)
    time.sleep(2)  # some epochs, buffered and not yet written
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + sig, err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [
        f"error: interrupted by {sig.name}; the run is marked KILLED"]
    ended = client.get_run(run.info.run_id)  # type: ignore[attr-defined]
    assert ended.info.status == "KILLED"
    assert ended.data.tags["stop_reason"] == f"interrupted by {sig.name}"
    assert len(client.get_metric_history(ended.info.run_id, "train_loss")) > 0
    artifacts = {a.path for a in client.list_artifacts(ended.info.run_id)}
    assert {"config.yaml", "environment.json", "model.npz"} <= artifacts
    path = client.download_artifacts(ended.info.run_id, "model.npz", str(tmp_path))
    assert load_network(path).sizes == [13, 64, 64, 1]


@pytest.mark.slow
def test_a_killed_process_is_marked_stale_and_a_live_one_never(store_uri: str,
                                                               tmp_path: Path) -> None:
    client = MlflowClient(store_uri)
    live = start_training(store_uri, tmp_path)
    try:
        run = running_run(client)
        experiment_ids = [run.info.experiment_id]  # type: ignore[attr-defined]
        assert mark_stale(client, experiment_ids, stale_after=90) == []  # alive: never marked
        live.send_signal(signal.SIGKILL)
        live.wait(30)
        run_id = run.info.run_id  # type: ignore[attr-defined]
        assert client.get_run(run_id).info.status == "RUNNING"  # nobody ended it
        assert mark_stale(client, experiment_ids, stale_after=90) == []  # not yet 90 s old
        later = time.time() + 1000
        assert mark_stale(client, experiment_ids, stale_after=300, now=later) == [run_id]
        dead = client.get_run(run_id)
        assert dead.info.status == "FAILED" and dead.data.tags["stale"] == "true"
        assert "heartbeat" in dead.data.tags["stale_reason"]
    finally:
        live.kill()


def test_the_next_run_marks_a_dead_run_of_its_experiment(store_uri: str) -> None:
    client = MlflowClient(store_uri)
    experiment_id = client.create_experiment("dead-and-alive")
    dead = client.create_run(experiment_id, tags={HEARTBEAT_TAG: f"{time.time() - 1000:.0f}"})
    alive = client.create_run(experiment_id, tags={HEARTBEAT_TAG: f"{time.time():.0f}"})
    backprop_lab.run(["train.epochs=2", "tracking.log_model=false", f"tracking.uri={store_uri}",
                      "tracking.experiment=dead-and-alive"])
    assert client.get_run(dead.info.run_id).info.status == "FAILED"
    assert client.get_run(dead.info.run_id).data.tags["stale"] == "true"
    assert client.get_run(alive.info.run_id).info.status == "RUNNING"


@pytest.mark.slow
def test_cleanup_command_marks_stale_runs(store_uri: str, tmp_path: Path) -> None:
    client = MlflowClient(store_uri)
    experiment_id = client.create_experiment("old")
    dead = client.create_run(experiment_id, tags={HEARTBEAT_TAG: f"{time.time() - 1000:.0f}"})
    out = run_cli("pipelines.cleanup", f"tracking.uri={store_uri}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert dead.info.run_id in out.stdout and "1 stale run(s) marked FAILED" in out.stdout
    assert client.get_run(dead.info.run_id).info.status == "FAILED"
    out = run_cli("pipelines.cleanup", f"tracking.uri={store_uri}", "tracking.stale_after=10",
                  cwd=tmp_path)
    assert out.returncode == 2 and "tracking.stale_after" in out.stderr


@pytest.mark.slow
def test_an_interrupted_sweep_ends_its_parent_killed_with_its_table_and_no_traceback(
        store_uri: str, tmp_path: Path) -> None:
    """Ctrl-C after a job has finished: the job in flight ends KILLED, the parent too, and the
    end table says `killed` (not `diverged`) for it; the finished jobs keep their scores."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.train", "-m", "train.lr=0.001,0.002,0.003",
         "train.epochs=1000000", "train.patience=null", "tracking.log_model=false",
         f"tracking.uri={store_uri}"], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    client = MlflowClient(store_uri)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # the first job cannot finish: wait for it to train
        experiment = client.get_experiment_by_name("backprop-lab")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if sum(HEARTBEAT_TAG in r.data.tags for r in runs) >= 2:  # parent and first job
            break
        time.sleep(0.5)
    time.sleep(2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-3000:]
    assert "Traceback" not in out + err, (out + err)[-3000:]
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [
        "error: interrupted by SIGINT; the run is marked KILLED"]
    runs = client.search_runs([client.get_experiment_by_name("backprop-lab").experiment_id])
    assert sorted(r.info.status for r in runs) == ["KILLED", "KILLED"]
    assert "1 killed" in out and "killed" in out.split("#  job", 1)[1]
