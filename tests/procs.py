"""Helpers for tests that start real processes (a Ray cluster, PostgreSQL, an MLflow server):
free loopback ports, bounded waits, sweeps run as a user would, stopping by process id."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

TINY_SWEEP = ["train.epochs=3", "tracking.log_model=false", "train.lr=0.001,0.01,0.1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")


def stop_group(process: subprocess.Popen[Any], grace: float = 20.0) -> None:
    """SIGTERM the process group that `process` leads (started with start_new_session=True),
    wait for all of it to go, then SIGKILL what is left."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()  # reap the leader
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def ray_env(**extra: str) -> dict[str, str]:
    """Ray on this machine only: loopback addresses, no usage stats, and a token of its own (so
    nothing is written to ~/.ray)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_", "RAY_"))}
    env.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_USAGE_STATS_ENABLED="0",
               RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
               RAY_DEDUP_LOGS="0", MLFLOW_DISABLE_TELEMETRY="true")
    env.update(extra)
    return env


def train(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 150
          ) -> subprocess.CompletedProcess[str]:
    """`python -m pipelines.train ARGS` as a user would run it."""
    return subprocess.run([sys.executable, "-m", "pipelines.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def sweep_runs(client: MlflowClient, experiment: str = "backprop-lab") -> tuple[Any, list[Any]]:
    """The one sweep parent in `experiment` and its children; asserts nothing went elsewhere."""
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    runs = client.search_runs([found.experiment_id])
    parents = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    assert len(parents) == 1, [r.data.tags for r in runs]
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(runs) - 1, "every other run is a child of the parent"
    assert all(r.data.tags.get("sweep_id") == parent.data.tags["sweep_id"] for r in children)
    assert client.search_runs(["0"]) == [], "nothing in the Default experiment"
    return parent, children


def local_postgres() -> tuple[Path, Any]:
    """(a fresh folder, server/mlflow_server.py's own PostgreSQL cluster in it, started: the one
    `make server` runs) with databases mlflow, mlflow_auth and optuna; skips without
    PostgreSQL's server programs. The caller stops it and removes the folder."""
    import importlib.util
    import shutil
    import tempfile

    import pytest

    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")) and not shutil.which("initdb"):
        pytest.skip("PostgreSQL server binaries are absent (apt-get install postgresql)")
    script = Path(__file__).resolve().parents[1] / "server" / "mlflow_server.py"
    spec = importlib.util.spec_from_file_location("mlflow_server", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = Path(tempfile.mkdtemp(prefix="backprop-pg-"))
    folder.chmod(0o711)  # PostgreSQL runs as `postgres` when we are root: it must get through
    postgres = module.LocalPostgres(folder / "pg", free_port())
    postgres.start()
    import psycopg

    with psycopg.connect(postgres.url("postgres", "postgresql"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE optuna")
    return folder, postgres
