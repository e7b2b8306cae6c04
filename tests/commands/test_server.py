"""The shared tracking server (server/mlflow_server.py): a real PostgreSQL and `mlflow server`
with MLflow's basic auth plus server/auth_app.py's rule (only the admin and EDIT/MANAGE users
create), both on loopback and started here. Runs with credentials land (a joblib sweep, and a
sweep on a pre-started Ray cluster whose workers get the credentials only through the
ray_cluster preset); a run without them, with a wrong password, or as a READ-only user fails
with a message naming the URL and the cause; a READ user creates no experiment by any route; an
unreachable server fails at once. The script refuses a busy port and reports its server's death.

Only test_read_user_cannot_create_the_default_experiment uses the `backprop-lab` experiment: the
module's server is fresh for it."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
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


def post(server: Server, endpoint: str, body: dict[str, Any], user: str,
         password: str | None = None) -> requests.Response:
    return requests.post(f"{server.url}{endpoint}", json=body, timeout=30,
                         auth=(user, password or server.passwords[user]))


def script_env(passwords: dict[str, str], users: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    env.update(MLFLOW_AUTH_ADMIN_PASSWORD=passwords["admin"], BACKPROP_LAB_USERS=users)
    return env


@dataclass
class Started:
    process: subprocess.Popen[bytes]
    log: Path
    info: dict[str, int | str]


@contextlib.contextmanager
def start_script(folder: Path, env: dict[str, str], *args: str) -> Iterator[Started]:
    """`server/mlflow_server.py ARGS` on a free port, until READY; stopped (SIGTERM, then
    SIGKILL for whatever is left) at exit."""
    log = folder / "server.log"
    where = [] if "--data" in args else ["--artifacts", str(folder / "artifacts")]
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--port", str(free_port()), *where, *args],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    started = Started(process, log, {})
    try:
        wait_for(lambda: "READY" in log.read_text() or process.poll() is not None, 120,
                 "server/mlflow_server.py")
        assert process.poll() is None, log.read_text()[-3000:]
        line = next(x for x in log.read_text().splitlines() if x.startswith('{"url"'))
        started.info.update(json.loads(line))
        yield started
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the script stops the server and PostgreSQL
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            stop_group(process)
            for key in ("server_pid", "postgres_pid"):
                if started.info.get(key):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(started.info[key]), signal.SIGKILL)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`server/mlflow_server.py` on a free port: its own throwaway PostgreSQL, users ann (EDIT)
    and bob (READ), passwords made up here and passed only through the environment."""
    if not postgres_installed():
        pytest.skip("PostgreSQL server binaries are absent (apt-get install postgresql)")
    folder = tmp_path_factory.mktemp("server")
    passwords = {name: secrets.token_urlsafe(16) for name in ("admin", "ann", "bob")}
    env = script_env(passwords, f"ann:{passwords['ann']}:EDIT bob:{passwords['bob']}")
    with start_script(folder, env) as started:
        yield Server(str(started.info["url"]), folder / "artifacts", passwords)


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
    assert done.returncode == 2  # a login a user can fix: bad input
    assert f"error: MLflow tracking server {server.url} refused" in done.stderr
    assert "401" in done.stderr and "MLFLOW_TRACKING_USERNAME" in done.stderr


def test_wrong_password_is_refused(server: Server) -> None:
    with credentials(server, "ann", "not-the-password"), pytest.raises(
            tracking.TrackingUnavailable, match=f"{server.url} refused user 'ann'.*401"):
        tracking.Store(server.url, "backprop-lab")


CREATE = "/mlflow/experiments/create"


def test_read_only_user_cannot_write(server: Server) -> None:
    """bob (READ) may read, but creates no experiment (REST, the UI's ajax route, the client),
    model, demo data, MCP server or skill, and so writes no run anywhere; ann (EDIT) creates
    experiments, models and runs."""
    with credentials(server, "admin", server.passwords["admin"]):
        admin = MlflowClient(server.url)
        experiment_id = admin.create_experiment("read-only")
    for prefix in ("/api/2.0", "/ajax-api/2.0"):
        refused = post(server, prefix + CREATE, {"name": f"bob{prefix}"}, "bob")
        assert refused.status_code == 403 and "may browse but not create" in refused.text
    assert post(server, "/ajax-api/3.0/mlflow/demo/generate", {}, "bob").status_code == 403
    for registry in ("mcp-servers", "skills"):  # FastAPI's own routes (skills: MLflow 3.18)
        for prefix in ("/api/3.0", "/ajax-api/3.0"):
            refused = post(server, f"{prefix}/mlflow/{registry}", {"name": "bob-x"}, "bob")
            assert refused.status_code == 403 and "may browse but not create" in refused.text
        wrong = post(server, f"/api/3.0/mlflow/{registry}", {"name": "x"}, "bob", "wrong-pw")
        assert wrong.status_code == 401  # bad credentials: MLflow's answer, not the rule's
    with credentials(server, "bob"):
        bob = MlflowClient(server.url)
        with pytest.raises(MlflowException, match="403"):
            bob.create_experiment("bob-client")
        with pytest.raises(MlflowException, match="403"):
            bob.create_registered_model("bob-model")
        store = tracking.Store(server.url, "read-only")  # bob may read it
        assert store.experiment_id == experiment_id
        with pytest.raises(MlflowException, match="403"):
            tracking.Run.start(store, "bob-run", {})
    with credentials(server, "admin", server.passwords["admin"]):
        assert admin.search_runs([experiment_id]) == []
        names = {e.name for e in admin.search_experiments()}
        assert not {n for n in names if n.startswith("bob")}, names
    for prefix in ("/api/2.0", "/ajax-api/2.0"):
        assert post(server, prefix + CREATE, {"name": f"ann{prefix}"}, "ann").status_code == 200
    with credentials(server, "ann"):
        ann = MlflowClient(server.url)
        ann.create_registered_model("ann-model")
        store = tracking.Store(server.url, "ann-client")  # created by the client
        run = tracking.Run.start(store, "ann-run", {})
        run.end("FINISHED")
        assert [r.info.status for r in ann.search_runs([store.experiment_id])] == ["FINISHED"]
        tracking.Run.start(tracking.Store(server.url, "read-only"), "ann-run", {}).end("FINISHED")


def test_the_rule_follows_grants_given_later(server: Server) -> None:
    """The hook reads the grants from MLflow's auth store on each request: a user the admin adds
    later is READ until granted EDIT on every experiment, then creates at once."""
    password = secrets.token_urlsafe(16)
    admin = ("admin", server.passwords["admin"])
    body = {"username": "carol", "password": password}
    assert post(server, "/api/2.0/mlflow/users/create", body, *admin).status_code == 200
    assert post(server, "/api/2.0" + CREATE, {"name": "carol-1"}, "carol", password
                ).status_code == 403
    grant = {"username": "carol", "resource_type": "experiment", "resource_id": "*",
             "permission": "EDIT"}
    assert post(server, "/api/3.0/mlflow/users/permissions/grant", grant, *admin
                ).status_code == 200
    assert post(server, "/api/2.0" + CREATE, {"name": "carol-2"}, "carol", password
                ).status_code == 200


def test_read_user_cannot_create_the_default_experiment(server: Server, tmp_path: Path) -> None:
    """On a fresh server the first run creates `backprop-lab`: not as bob (one `error:` line,
    no traceback, nothing created), but as ann."""
    args = ["tracking=server", f"tracking.uri={server.url}", "train.epochs=3",
            "tracking.log_model=false"]
    done = train(args, cwd=tmp_path, env=server.env("bob"))
    assert done.returncode in (1, 2), done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "403" in errors[0], done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    with credentials(server, "admin", server.passwords["admin"]):
        assert MlflowClient(server.url).get_experiment_by_name("backprop-lab") is None
    done = train(args, cwd=tmp_path, env=server.env("ann"))
    assert done.returncode == 0, done.stderr[-3000:]
    with credentials(server, "ann"):
        client = MlflowClient(server.url)
        found = client.get_experiment_by_name("backprop-lab")
        assert found is not None
        assert [r.info.status for r in client.search_runs([found.experiment_id])] == ["FINISHED"]


def test_the_login_is_the_runs_user(server: Server, tmp_path: Path) -> None:
    """ann logs a sweep (parent and children) and dan a single run with its model, both from
    this machine's OS user: every run's user_id and mlflow.user is the login, as the runs search
    API (the UI's User column) returns it. A client that claims another user at creation is
    overruled; setting mlflow.user to someone else later, or deleting it, is refused (403);
    setting it to oneself passes."""
    admin = ("admin", server.passwords["admin"])
    server.passwords["dan"] = secrets.token_urlsafe(16)
    body = {"username": "dan", "password": server.passwords["dan"]}
    assert post(server, "/api/2.0/mlflow/users/create", body, *admin).status_code == 200
    grant = {"username": "dan", "resource_type": "experiment", "resource_id": "*",
             "permission": "EDIT"}
    assert post(server, "/api/3.0/mlflow/users/permissions/grant", grant, *admin
                ).status_code == 200
    where = ["tracking=server", f"tracking.uri={server.url}", "tracking.experiment=users"]
    done = train(["-m", *TINY_SWEEP, *where], cwd=tmp_path, env=server.env("ann"))
    assert done.returncode == 0, done.stderr[-3000:]
    with credentials(server, "ann"):
        parent, children = sweep_runs(MlflowClient(server.url), "users")
    done = train(["train.epochs=3", *where], cwd=tmp_path, env=server.env("dan"))
    assert done.returncode == 0, done.stderr[-3000:]
    experiment_id = parent.info.experiment_id
    found = post(server, "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment_id]},
                 *admin).json()["runs"]
    users = {r["info"]["run_id"]: (r["info"]["user_id"],
                                   {t["key"]: t["value"] for t in r["data"]["tags"]}["mlflow.user"])
             for r in found}
    sweep = [parent.info.run_id, *(r.info.run_id for r in children)]
    assert len(users) == 5 and len(sweep) == 4
    assert {users[run_id] for run_id in sweep} == {("ann", "ann")}, users
    assert [who for run_id, who in users.items() if run_id not in sweep] == [("dan", "dan")]

    claimed = post(server, "/api/2.0/mlflow/runs/create", {
        "experiment_id": experiment_id, "user_id": "mallory",
        "tags": [{"key": "mlflow.user", "value": "mallory"}]}, "ann").json()["run"]
    assert claimed["info"]["user_id"] == "ann"
    assert {t["key"]: t["value"] for t in claimed["data"]["tags"]}["mlflow.user"] == "ann"
    run_id = claimed["info"]["run_id"]
    for endpoint, change in (
            ("set-tag", {"key": "mlflow.user", "value": "dan"}),
            ("log-batch", {"tags": [{"key": "seed", "value": "1"},
                                    {"key": "mlflow.user", "value": "dan"}]}),
            ("delete-tag", {"key": "mlflow.user"})):
        for prefix in ("/api/2.0", "/ajax-api/2.0"):
            refused = post(server, f"{prefix}/mlflow/runs/{endpoint}",
                           {"run_id": run_id, **change}, "ann")
            assert refused.status_code == 403 and "mlflow.user" in refused.text, refused.text
    assert post(server, "/api/2.0/mlflow/runs/set-tag",
                {"run_id": run_id, "key": "mlflow.user", "value": "ann"}, "ann").status_code == 200
    with credentials(server, "ann"):
        run = MlflowClient(server.url).get_run(run_id)
    assert (run.info.user_id, run.data.tags["mlflow.user"]) == ("ann", "ann")
    assert "seed" not in run.data.tags  # the refused batch wrote nothing


class Recorder(http.server.BaseHTTPRequestHandler):
    """A server without logins: 200 to anything, every request remembered."""

    seen: list[str] = []

    def answer(self) -> None:
        Recorder.seen.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PATCH = answer

    def log_message(self, *_: object) -> None:
        pass


def test_busy_port_is_refused(tmp_path: Path) -> None:
    """Something already listens on the port (`make ui` also takes 5000): the script refuses at
    once, naming the port, and sends nothing there (no users created on the other server)."""
    Recorder.seen.clear()
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    port = other.server_address[1]
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        passwords = {name: secrets.token_urlsafe(16) for name in ("admin", "ann")}
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--port", str(port), "--artifacts", str(tmp_path)],
            env=script_env(passwords, f"ann:{passwords['ann']}:EDIT"), capture_output=True,
            text=True, timeout=60)
    finally:
        other.shutdown()
        other.server_close()
    assert done.returncode != 0
    assert done.stderr.startswith("error:") and f"port {port}" in done.stderr, done.stderr
    assert "READY" not in done.stdout and Recorder.seen == []


def test_server_death_is_reported(tmp_path: Path) -> None:
    """The mlflow server dies (SIGKILL): the script stops its workers and PostgreSQL, and exits
    non-zero with an `error:` line."""
    if not postgres_installed():
        pytest.skip("PostgreSQL server binaries are absent (apt-get install postgresql)")
    passwords = {"admin": secrets.token_urlsafe(16)}
    with start_script(tmp_path, script_env(passwords, ""), "--workers", "1") as started:
        os.kill(int(started.info["server_pid"]), signal.SIGKILL)
        code = started.process.wait(60)
        output = started.log.read_text()
        assert code != 0
        assert "error: mlflow server" in output and "killed by SIGKILL" in output, output[-3000:]
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{started.info['url']}/health", timeout=5)  # its workers are gone
        assert gone(int(started.info["postgres_pid"]))


def gone(pid: int) -> bool:
    """No such process, or a zombie that init has not reaped yet."""
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (ProcessLookupError, FileNotFoundError):
        return True


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


@pytest.mark.parametrize("what", ["a file", "a folder not ours", "with --artifacts"])
def test_data_folder_that_is_not_ours_is_refused(tmp_path: Path, what: str) -> None:
    """--data refuses, before starting anything, a file, a folder of other files (it would fill
    it with a database cluster) and --artifacts beside it: one `error:` line, exit status 2."""
    target = tmp_path / "data"
    extra: list[str] = []
    if what == "a file":
        target.write_text("x")
    elif what == "a folder not ours":
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    else:
        extra = ["--artifacts", str(tmp_path / "a")]
    done = subprocess.run([sys.executable, str(SCRIPT), "--port", str(free_port()),
                           "--data", str(target), *extra],
                          env=script_env({"admin": secrets.token_urlsafe(16)}, ""),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: --data") and len(done.stderr.splitlines()) == 1
    assert not (target / "postgres").exists() if target.is_dir() else True


def test_kept_server_serves_the_same_runs_after_a_restart(tmp_path: Path) -> None:
    """--data DIR: stopped and started again, the server serves the same run, metric and
    artifact; the users in the environment get their new password and grant (ann EDIT -> READ,
    bob new and EDIT) instead of failing because they exist. Then the script is killed (SIGKILL:
    its PostgreSQL and mlflow server live on, postmaster.pid stays) and a third start on the
    folder stops those leftovers and serves the run again."""
    if not postgres_installed():
        pytest.skip("PostgreSQL server binaries are absent (apt-get install postgresql)")
    data = Path(tempfile.mkdtemp(prefix="kept-server-")) / "data"  # postgres reaches /tmp/...
    data.parent.chmod(0o711)
    left: dict[str, int] = {}
    try:
        restarts(tmp_path, data, left)
    finally:  # what the killed start left, should the third start not have stopped it
        if left.get("server_pid", 0) > 1:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(left["server_pid"], signal.SIGKILL)
        if left.get("postgres_pid", 0) > 1 and not gone(left["postgres_pid"]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(left["postgres_pid"], signal.SIGKILL)
        shutil.rmtree(data.parent, ignore_errors=True)


def restarts(tmp_path: Path, data: Path, left: dict[str, int]) -> None:
    passwords = {name: secrets.token_urlsafe(16) for name in ("admin", "ann", "bob")}
    first = script_env(passwords, f"ann:{passwords['ann']}:EDIT")
    with start_script(tmp_path, first, "--data", str(data), "--workers", "1") as started:
        server = Server(str(started.info["url"]), data / "artifacts", passwords)
        with credentials(server, "ann"):
            client = MlflowClient(server.url)
            run_id = client.create_run(client.create_experiment("kept")).info.run_id
            client.log_metric(run_id, "loss", 0.25, step=3)
            client.log_text(run_id, "kept across restarts", "note.txt")
            client.set_terminated(run_id)
    assert (data / "backprop-lab-server.json").is_file() and (data / "postgres" / "data").is_dir()
    old_ann, passwords["ann"] = passwords["ann"], secrets.token_urlsafe(16)
    second = script_env(passwords, f"ann:{passwords['ann']} bob:{passwords['bob']}:EDIT")
    with start_script(tmp_path, second, "--data", str(data), "--workers", "1") as started:
        server = Server(str(started.info["url"]), data / "artifacts", passwords)
        assert "initdb" not in started.log.read_text()
        with credentials(server, "ann"):
            client = MlflowClient(server.url)
            assert client.get_metric_history(run_id, "loss")[0].value == 0.25
            assert client.download_artifacts(run_id, "note.txt", str(tmp_path)) and (
                tmp_path / "note.txt").read_text() == "kept across restarts"
        assert post(server, "/api/2.0" + CREATE, {"name": "x"}, "ann", old_ann
                    ).status_code == 401
        assert post(server, "/api/2.0" + CREATE, {"name": "ann-2"}, "ann").status_code == 403
        assert post(server, "/api/2.0" + CREATE, {"name": "bob-2"}, "bob").status_code == 200
        started.process.send_signal(signal.SIGKILL)  # leaves its PostgreSQL and server running
        started.process.wait(30)
        left.update({key: int(started.info[key]) for key in ("server_pid", "postgres_pid")})
    assert not gone(left["postgres_pid"]) and (data / "postgres" / "data" / "postmaster.pid"
                                               ).is_file()
    with start_script(tmp_path, second, "--data", str(data), "--workers", "1") as started:
        output = started.log.read_text()
        assert "stopping the mlflow server" in output and "stopping the PostgreSQL" in output
        assert gone(left["server_pid"]) and gone(left["postgres_pid"])
        server = Server(str(started.info["url"]), data / "artifacts", passwords)
        with credentials(server, "bob"):
            assert MlflowClient(server.url).get_run(run_id).info.status == "FINISHED"
