"""A tracking server that goes away mid-run: one line naming the URL and what was not recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.procs import free_port, stop_group, wait_for


@pytest.mark.slow
def test_a_server_lost_mid_run_ends_the_command_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
        cwd=tmp_path, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        def healthy() -> bool:
            try:
                MlflowClient(url).search_experiments(max_results=1)
                return True
            except Exception:
                return False

        wait_for(healthy, 90, "mlflow server")
        train = subprocess.Popen(
            [sys.executable, "-m", "pipelines.train", "train.epochs=20000", "train.patience=null",
             "tracking.log_model=false", f"tracking.uri={url}"],
            cwd=tmp_path, env={**env, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        client = MlflowClient(url)
        wait_for(lambda: any(r.info.status == "RUNNING" for r in client.search_runs(
            [e.experiment_id for e in client.search_experiments()])), 120, "a RUNNING run")
        time.sleep(1)
        stop_group(server)
        _, err = train.communicate(timeout=240)
    finally:
        stop_group(server)
        if "train" in locals() and train.poll() is None:
            train.send_signal(signal.SIGKILL)
    assert train.returncode == 1, err[-3000:]
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err[-3000:]
    assert url in lines[0] and "not recorded:" in lines[0] and "metric points" in lines[0]
