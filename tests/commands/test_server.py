"""The shared tracking server (server/mlflow_server.py): a real PostgreSQL and `mlflow server
--app-name basic-auth`, both on loopback and started here. Runs with credentials land (a joblib
sweep, and a sweep on a pre-started Ray cluster whose workers get the credentials only through
the ray_cluster preset); a run without them, with a wrong password, or as a READ-only user fails
with a message naming the URL and the cause; an unreachable server fails at once."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from backprop_lab.tracking import store as tracking
from tests.conftest import ROOT
from tests.procs import TINY_SWEEP, free_port, ray_env, stop_group, sweep_runs, train, wait_for

pytestmark = pytest.mark.slow
SCRIPT = ROOT / "server" / "mlflow_server.py"


def postgres_installed() -> bool:
    return bool(shutil.which("initdb") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb")))


@dataclass
class Server:
    url: str
    artifacts: Path
    passwords: dict[str, str]

    def env(self, user: str | None, **extra: str) -> dict[str, str]:
        """This process's environment with `user`'s credentials (none for None)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        if user:
            env.update(MLFLOW_TRACKING_USERNAME=user, MLFLOW_TRACKING_PASSWORD=self.passwords[user])
        return {**env, **extra}


@contextlib.contextmanager
def credentials(server: Server, user: str, password: str | None = None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.update(MLFLOW_TRACKING_USERNAME=user,
                      MLFLOW_TRACKING_PASSWORD=password or server.passwords[user])
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`server/mlflow_server.py` on a free port: its own throwaway PostgreSQL, users ann (EDIT)
    and bob (READ), passwords made up here and passed only through the environment."""
    if not postgres_installed():
        pytest.skip("PostgreSQL server binaries are absent (apt-get install postgresql)")
    folder = tmp_path_factory.mktemp("server")
    passwords = {name: secrets.token_urlsafe(16) for name in ("admin", "ann", "bob")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    env.update(MLFLOW_AUTH_ADMIN_PASSWORD=passwords["admin"],
               BACKPROP_LAB_USERS=f"ann:{passwords['ann']}:EDIT bob:{passwords['bob']}")
    log = folder / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--port", str(free_port()),
             "--artifacts", str(folder / "artifacts")],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    info: dict[str, int | str] = {}
    try:
        wait_for(lambda: "READY" in log.read_text() or process.poll() is not None, 120,
                 "server/mlflow_server.py")
        assert process.poll() is None, log.read_text()[-3000:]
        line = next(x for x in log.read_text().splitlines() if x.startswith('{"url"'))
        info = json.loads(line)
        served = Server(str(info["url"]), folder / "artifacts", passwords)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)  # the script stops the server and PostgreSQL
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            stop_group(process)
            for key in ("server_pid", "postgres_pid"):
                if info.get(key):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(info[key]), signal.SIGKILL)


def test_unreachable_server_fails_at_once() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(tracking.TrackingUnavailable, match=f"{url} is unreachable.*refused"):
        tracking.Store(url, "backprop-lab")
    assert time.monotonic() - started < 15


def test_joblib_sweep_lands_every_run(server: Server, tmp_path: Path) -> None:
    done = train(["-m", "hydra/launcher=joblib", "tracking=server", f"tracking.uri={server.url}",
                  "tracking.experiment=joblib-sweep", "train.epochs=3", "tracking.log_model=false",
                  "train.lr=0.001,0.003,0.01,0.03"], cwd=tmp_path, env=server.env("ann"))
    assert done.returncode == 0, done.stderr[-3000:]
    with credentials(server, "ann"):
        parent, children = sweep_runs(MlflowClient(server.url), "joblib-sweep")
    assert len(children) == 4 and {r.info.status for r in children} == {"FINISHED"}
    assert parent.info.status == "FINISHED"
    assert list(server.artifacts.rglob("model.npz")), "artifacts go to the configured folder"


def test_run_without_credentials_fails_with_401(server: Server, tmp_path: Path) -> None:
    done = train(["tracking=server", f"tracking.uri={server.url}", "train.epochs=3"],
                 cwd=tmp_path, env=server.env(None))
    assert done.returncode == 1
    assert f"error: MLflow tracking server {server.url} refused" in done.stderr
    assert "401" in done.stderr and "MLFLOW_TRACKING_USERNAME" in done.stderr


def test_wrong_password_is_refused(server: Server) -> None:
    with credentials(server, "ann", "not-the-password"), pytest.raises(
            tracking.TrackingUnavailable, match=f"{server.url} refused user 'ann'.*401"):
        tracking.Store(server.url, "backprop-lab")


def test_read_only_user_cannot_write(server: Server) -> None:
    with credentials(server, "admin", server.passwords["admin"]):
        admin = MlflowClient(server.url)
        experiment_id = admin.create_experiment("read-only")
    with credentials(server, "bob"):
        store = tracking.Store(server.url, "read-only")  # bob may read it
        assert store.experiment_id == experiment_id
        with pytest.raises(MlflowException, match="403"):
            tracking.Run.start(store, "bob-run", {})
    with credentials(server, "admin", server.passwords["admin"]):
        assert admin.search_runs([experiment_id]) == []


def test_ray_cluster_sweep_gets_credentials_through_runtime_env(
        server: Server, tmp_path: Path) -> None:
    """The cluster starts without any MLflow credentials (and in another folder than the
    driver): its workers can only log because the ray_cluster preset forwards them."""
    port = free_port()
    cluster_env = ray_env()
    (tmp_path / "cluster").mkdir()
    (tmp_path / "driver").mkdir()
    ray_log = tmp_path / "ray.log"
    ray_bin = str(Path(sys.executable).with_name("ray"))
    temp_dir = tempfile.mkdtemp(prefix="ray-")  # short (socket paths), and not /tmp/ray
    with ray_log.open("w") as out:
        head = subprocess.Popen(
            [ray_bin, "start", "--head", "--block", "--port", str(port), "--temp-dir", temp_dir,
             "--node-ip-address", "127.0.0.1", "--disable-usage-stats",
             "--include-dashboard", "false", "--num-cpus", "2",
             "--object-store-memory", str(75 * 2**20)],
            cwd=tmp_path / "cluster", env=cluster_env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        wait_for(lambda: "Ray runtime started" in ray_log.read_text() or head.poll() is not None,
                 90, "ray start --head")
        assert head.poll() is None, ray_log.read_text()[-3000:]
        driver_env = {**cluster_env, **server.env("ann"), "RAY_ADDRESS": f"127.0.0.1:{port}"}
        done = train(["-m", "hydra/launcher=ray_cluster", *TINY_SWEEP, "tracking=server",
                      f"tracking.uri={server.url}", "tracking.experiment=ray-cluster"],
                     cwd=tmp_path / "driver", env=driver_env)
        assert done.returncode == 0, done.stderr[-3000:]
        with credentials(server, "ann"):
            parent, children = sweep_runs(MlflowClient(server.url), "ray-cluster")
        assert len(children) == 3 and {r.info.status for r in children} == {"FINISHED"}
    finally:
        stop_group(head)
        shutil.rmtree(temp_dir, ignore_errors=True)
