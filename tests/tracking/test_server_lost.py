"""A tracking server that goes away mid-run and mid-sweep, for real: the server process killed
and started again on the same database. Nothing the runs trained is lost: they spool, train on,
and deliver when it is back; a server still away at the end leaves a spool that
`pipelines.sync` uploads, once however often it runs (tests/tracking/test_spool.py has the
details without processes)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.procs import free_port, local_postgres, stop_group, wait_for

ENV = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
EPOCHS = 6000  # ~20 s of training: long enough to lose the server in the middle


class Server:
    """`mlflow server` on a sqlite file in `folder` (or the database `backend`), stopped and
    started again on one port."""

    def __init__(self, folder: Path, backend: str | None = None):
        self.folder, self.port = folder, free_port()
        self.backend = backend or f"sqlite:///{folder / 'server.db'}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
             str(self.port), "--backend-store-uri", self.backend,
             "--artifacts-destination", str(self.folder / "artifacts"), "--workers", "1"],
            cwd=self.folder, env=ENV, start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        wait_for(self.healthy, 90, "mlflow server")

    def healthy(self) -> bool:
        try:
            MlflowClient(self.url).search_experiments(max_results=1)
            return True
        except Exception:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)
            self.process = None

    def runs(self) -> list[Any]:
        client = MlflowClient(self.url)
        return client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    served = Server(tmp_path)
    served.start()
    try:
        yield served
    finally:
        served.stop()


def command(module: str, *args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def train(server: Server, *args: str, log_model: bool = False) -> subprocess.Popen[str]:
    return command("pipelines.train", f"train.epochs={EPOCHS}", "train.patience=null",
                   f"tracking.log_model={str(log_model).lower()}", f"tracking.uri={server.url}",
                   *args, cwd=server.folder)


def kill_while_running(server: Server, running: int = 1) -> None:
    wait_for(lambda: sum(r.info.status == "RUNNING" for r in server.runs()) >= running, 180,
             "a RUNNING run")
    time.sleep(2)
    server.stop()


def points(server: Server, run_id: str, key: str = "train_loss") -> list[int]:
    return sorted(m.step for m in MlflowClient(server.url).get_metric_history(run_id, key))


def finish(process: subprocess.Popen[str], timeout: float = 400) -> tuple[str, str]:
    """The command's stdout and stderr, once it has ended (no traceback in either)."""
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
    assert "Traceback" not in out + err, (out + err)[-3000:]
    return out, err


@pytest.mark.slow
def test_a_server_restarted_mid_run_loses_nothing(server: Server) -> None:
    run = train(server)
    kill_while_running(server)
    time.sleep(10)
    server.start()
    out, err = finish(run)
    assert run.returncode == 0, err[-3000:]
    assert "trains on; its writes are spooled in" in out + err
    [logged] = server.runs()
    assert logged.info.status == "FINISHED"
    assert points(server, logged.info.run_id) == list(range(EPOCHS))
    assert points(server, logged.info.run_id, "val_loss") == list(range(EPOCHS))
    assert "test_rmse" in logged.data.metrics
    assert not list(server.folder.rglob("mlflow-spool/*"))  # delivered: nothing left to sync


@pytest.mark.slow
def test_a_server_away_past_the_run_leaves_a_spool_that_sync_uploads_once(
        server: Server) -> None:
    run = train(server, "tracking.spool_wait=1", log_model=True)
    kill_while_running(server)
    _, err = finish(run)
    assert run.returncode == 1, err[-3000:]
    [line] = [line for line in err.splitlines() if line.startswith("error: ")]
    assert "spool_wait=1 s" in line and "pipelines.sync path=" in line
    folder = Path(line.split("pipelines.sync path=")[1].rstrip("`. "))
    assert folder.is_dir() and folder.parent.name == "mlflow-spool"

    away = subprocess.run([sys.executable, "-m", "pipelines.sync"], cwd=server.folder, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert away.returncode == 2 and away.stderr.startswith("error: "), away.stderr[-2000:]
    assert server.url in away.stderr

    server.start()
    first = subprocess.run([sys.executable, "-m", "pipelines.sync"], cwd=server.folder, env=ENV,
                           capture_output=True, text=True, timeout=300)
    second = subprocess.run([sys.executable, "-m", "pipelines.sync", f"path={folder}"],
                            cwd=server.folder, env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    assert second.returncode == 0, second.stderr[-2000:]
    assert "sent " in first.stdout and "nothing sent" in second.stdout, first.stdout
    [logged] = server.runs()
    assert logged.info.status == "FINISHED"
    assert points(server, logged.info.run_id) == list(range(EPOCHS))
    assert "test_rmse" in logged.data.metrics
    assert "model_not_logged" in logged.data.tags  # MLflow's model API cannot be spooled
    files = [a.path for a in MlflowClient(server.url).list_artifacts(logged.info.run_id)]
    assert "model.npz" in files  # the weights came with the spooled artifacts


@pytest.mark.slow
def test_a_server_restarted_mid_sweep_loses_no_job(server: Server) -> None:
    sweep = command("pipelines.train", "-m", "train.lr=0.001,0.002,0.003",
                    f"train.epochs={EPOCHS // 3}", "train.patience=null",
                    "tracking.log_model=false", f"tracking.uri={server.url}", cwd=server.folder)
    kill_while_running(server, running=2)  # the sweep's parent and its first job
    time.sleep(10)
    server.start()
    _, err = finish(sweep, timeout=600)
    assert sweep.returncode == 0, err[-3000:]
    runs = server.runs()
    jobs = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(runs) == 4 and len(jobs) == 3
    assert all(r.info.status == "FINISHED" for r in runs), [r.info.status for r in runs]
    for job in jobs:
        assert points(server, job.info.run_id) == list(range(EPOCHS // 3))


@pytest.mark.slow
def test_postgresql_restarted_behind_the_server_loses_nothing() -> None:
    """The server stays up; its database goes away (the server answers 500) and comes back."""
    folder, postgres = local_postgres()
    served = Server(folder, backend=postgres.url("mlflow"))
    try:
        served.start()
        run = train(served)
        wait_for(lambda: any(r.info.status == "RUNNING" for r in served.runs()), 180,
                 "a RUNNING run")
        time.sleep(2)
        postgres.stop()
        time.sleep(20)  # past MLflow's ~15 s of retries: the run spools
        postgres.start()
        out, err = finish(run)
        assert run.returncode == 0, err[-3000:]
        assert "trains on; its writes are spooled in" in out + err
        [logged] = served.runs()
        assert logged.info.status == "FINISHED"
        assert points(served, logged.info.run_id) == list(range(EPOCHS))
    finally:
        served.stop()
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)
