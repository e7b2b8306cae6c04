"""A shared MLflow tracking server with logins (basic auth) on PostgreSQL: `make server`.

    MLFLOW_AUTH_ADMIN_PASSWORD=... [BACKPROP_LAB_USERS="ann:pw1:EDIT bob:pw2"] \\
        python server/mlflow_server.py [--port 5000] [--host 127.0.0.1]
        [--data DIR | --artifacts DIR [--db-url postgresql://user:pw@host/db | --pg-dir DIR]]
        [mlflow server options]

Without --db-url it starts its own PostgreSQL on a free loopback port: a throwaway one in a temp
folder (removed at stop), or, with --data DIR (`make server DATA=DIR`), a server a team keeps:
its PostgreSQL cluster and its artifacts live in DIR, and stopping and starting again with the
same DIR serves the same runs (the cluster is reused, a PostgreSQL left behind by a killed start
is stopped first, the users from the environment get their password and grant anew).
--pg-dir keeps only the PostgreSQL data. Secrets come only from the environment, never from
files in the repository:
  MLFLOW_AUTH_ADMIN_PASSWORD  the admin's password (user MLFLOW_AUTH_ADMIN_USERNAME, or admin)
  BACKPROP_LAB_USERS          users to create at start, whitespace-separated `name:password[:PERM]`;
                              PERM is READ (the default: can see, not write), EDIT or MANAGE,
                              granted on every experiment
  BACKPROP_LAB_DB_URL         the same as --db-url; BACKPROP_LAB_AUTH_DB_URL for the user store
                              (default: the same database; MLflow keeps its tables apart)
The server runs `server/auth_app.py` (MLflow's basic-auth app, plus: only the admin and users with
EDIT or MANAGE on every experiment create experiments). The basic-auth ini and the database
password are written to a private runtime folder outside the repository. Basic auth sends
passwords in clear text: beyond localhost, put TLS in front.
It refuses a port something already listens on, and prints READY only once the server answering
there is the one it started (logins on: 401 without credentials, and this start's id). If that
server (or the PostgreSQL started here) dies, it stops the rest and exits 1 with an `error:` line.
Ctrl-C (or SIGTERM to this process) stops the server and the PostgreSQL it started.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO, NoReturn

ROOT = Path(__file__).resolve().parents[1]
PERMISSIONS = ("READ", "EDIT", "MANAGE")
APP_NAME = "backprop-lab-auth"  # `mlflow server --app-name`: server/auth_app.py's create_app
ID_HEADER = "X-Backprop-Lab-Server"  # set by auth_app on every answer: this start's id
ADMIN = ["admin"]  # the admin's name, for api()'s error message
MARKER = "backprop-lab-server.json"  # in a --data folder: made by this script; its layout


def bad_input(message: str) -> NoReturn:
    """A mistake in what the user passed: one `error:` line and exit status 2 (as argparse)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def data_folder(folder: Path) -> Path:
    """Check (and on first use lay out) a --data folder: new or empty, or one this script made
    (it has MARKER). Anything else is refused rather than filled with a database cluster."""
    folder = folder.expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        bad_input(f"--data {folder} is a file, not a folder")
    marker = folder / MARKER
    if folder.is_dir() and not marker.is_file() and any(folder.iterdir()):
        bad_input(f"--data {folder} holds files but no {MARKER}: it is not a server folder made "
                  "by server/mlflow_server.py; pass a new or empty folder, or the one an earlier "
                  "`--data` start made")
    if not marker.is_file():
        folder.mkdir(mode=0o711, parents=True, exist_ok=True)  # postgres (when root) passes through
        marker.write_text(json.dumps({"made_by": "server/mlflow_server.py", "layout": 1,
                                      "postgres": "postgres/", "artifacts": "artifacts/"}) + "\n")
    else:
        try:
            layout = json.loads(marker.read_text()).get("layout")
        except (ValueError, AttributeError):
            layout = None
        if layout != 1:
            bad_input(f"--data {folder}: {MARKER} is not one this script wrote (layout 1)")
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_port_free(host: str, port: int) -> None:
    """Refuse to start where something already listens (`make ui` also takes port 5000): the
    users would be created on, and runs sent to, that other server. Binds as uvicorn will."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise SystemExit(f"error: port {port} on {host} is already in use (another "
                                 "server; `make ui` also listens on 5000): stop it or pass --port"
                                 ) from err
            raise SystemExit(f"error: cannot listen on {host}:{port}: {err}") from err


def pg_bin(name: str) -> str:
    """A PostgreSQL server program: on PATH, or where Debian puts it (newest version first)."""
    found = shutil.which(name)
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if found:
        return found
    if candidates:
        return str(candidates[-1])
    raise SystemExit(f"error: PostgreSQL's {name} not found (apt-get install postgresql), or pass "
                     "--db-url for an existing PostgreSQL")


def as_db_owner(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def process_args(pid: int) -> list[str]:
    """A running process's command line ([] when gone or unreadable)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


class LocalPostgres:
    """A PostgreSQL cluster in `folder`, listening on 127.0.0.1:`port` only.

    A kept cluster (--data, --pg-dir) is started again as it is, never initdb'd twice; the
    folder is locked while a start uses it, so two starts cannot share one cluster."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port, self.data = folder, port, folder / "data"
        self.password_file = folder / "password"
        self.lock_file: IO[str] | None = None
        self.started = False  # by this start (stop() stops only that one)

    def lock(self) -> None:
        """Hold `folder/lock` while this start runs; it also records the server's pid, so a
        later start can stop what a killed one left behind."""
        if self.lock_file is not None:
            return  # held already: this object starts its own cluster again (a restart)
        path = self.folder / "lock"
        lock = path.open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "?"
            lock.close()
            bad_input(f"{self.folder} is in use by another server/mlflow_server.py ({owner}); "
                      "stop it first, or pass another folder")
        self.lock_file = lock
        lock.seek(0)
        try:
            left = json.loads(lock.read() or "{}")
        except ValueError:
            left = {}  # a lock file cut short: nothing recorded to stop
        server_pid = int(left.get("server_pid") or 0)
        if server_pid and "server" in process_args(server_pid) and any(
                "mlflow" in arg for arg in process_args(server_pid)):
            print(f"stopping the mlflow server (pid {server_pid}) left running by a killed start",
                  flush=True)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(server_pid, signal.SIGKILL)
        self.record(os.getpid(), None)

    def record(self, pid: int, server_pid: int | None) -> None:
        if self.lock_file is not None:
            self.lock_file.seek(0)
            self.lock_file.truncate()
            self.lock_file.write(json.dumps({"pid": pid, "server_pid": server_pid}))
            self.lock_file.flush()

    def clear_stale_pid(self) -> None:
        """postmaster.pid after a kill: a PostgreSQL of this cluster still running (its start
        was killed, it was not) is stopped; a pid file naming another process or none is
        removed, since PostgreSQL refuses to start when that pid has been reused."""
        pid_file = self.data / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        args = process_args(pid)
        if args and "postgres" in os.path.basename(args[0]) and str(self.data) in args:
            print(f"stopping the PostgreSQL (pid {pid}) left running by a killed start",
                  flush=True)
            self.stop()
        else:
            print(f"removing a stale {pid_file} (pid {pid} is not its PostgreSQL)", flush=True)
        pid_file.unlink(missing_ok=True)

    def start(self) -> None:
        fresh = not (self.data / "PG_VERSION").is_file()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lock()
        if not fresh and not self.password_file.is_file():
            bad_input(f"{self.data} holds a PostgreSQL cluster without its password file "
                      f"{self.password_file}: not one this script made")
        if fresh:
            self.password_file.write_text(secrets.token_urlsafe(24))
        else:
            self.clear_stale_pid()
        self.password_file.chmod(0o600)
        if os.geteuid() == 0:
            if subprocess.run(as_db_owner(["test", "-x", str(self.folder)])).returncode != 0:
                bad_input(f"the postgres user cannot reach {self.folder} (PostgreSQL does not run "
                          "as root; a folder under /root or another private folder is closed to "
                          "it): pick a folder elsewhere, or let others pass through its parents "
                          "(chmod o+x)")
            shutil.chown(self.folder, "postgres", "postgres")
            shutil.chown(self.password_file, "postgres", "postgres")
            self.folder.chmod(0o700)
        if fresh:
            shutil.rmtree(self.data, ignore_errors=True)  # an initdb killed half-way
            subprocess.run(as_db_owner([
                pg_bin("initdb"), "-D", str(self.data), "-U", "mlflow", "--auth=scram-sha-256",
                f"--pwfile={self.password_file}", "-E", "UTF8", "--no-instructions",
            ]), check=True, stdout=subprocess.DEVNULL)
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder}"
        subprocess.run(as_db_owner([
            pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "postgres.log"),
            "-o", options, "-w", "-t", "60", "start",
        ]), check=True, stdout=subprocess.DEVNULL)
        self.started = True
        import psycopg  # each time: a start killed after initdb may have left them missing

        with psycopg.connect(self.url("postgres", "postgresql"), autocommit=True) as conn:
            for name in ("mlflow", "mlflow_auth"):
                if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                    (name,)).fetchone():
                    conn.execute(f"CREATE DATABASE {name}")

    def url(self, database: str, scheme: str = "postgresql+psycopg") -> str:
        password = self.password_file.read_text().strip()
        return f"{scheme}://mlflow:{password}@127.0.0.1:{self.port}/{database}"

    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def alive(self) -> bool:
        """The postmaster runs (a zombie that init has not reaped yet does not count)."""
        try:
            pid = self.pid()
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return False
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True  # no /proc to ask
        return state not in ("Z", "X")

    def stop(self) -> None:
        subprocess.run(as_db_owner([pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast",
                                    "-w", "stop"]), stdout=subprocess.DEVNULL, check=False)


def parse_users(spec: str) -> list[tuple[str, str, str]]:
    """`ann:pw1:EDIT bob:pw2` -> [("ann", "pw1", "EDIT"), ("bob", "pw2", "READ")]."""
    users = []
    for entry in spec.split():
        name, _, rest = entry.partition(":")
        password, _, permission = rest.rpartition(":")
        if permission.upper() not in PERMISSIONS:
            password, permission = rest, "READ"
        if not name or not password:
            raise SystemExit(f"error: BACKPROP_LAB_USERS entry for {name!r} needs name:password")
        users.append((name, password, permission.upper()))
    return users


def write_auth_config(folder: Path, auth_db_url: str, admin: str) -> Path:
    """The basic-auth ini (private): new users READ, credential checks cached for 60 s."""
    path = folder / "basic_auth.ini"
    path.touch(mode=0o600)
    path.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = {auth_db_url}\nadmin_username = {admin}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
        "auth_cache_ttl_seconds = 60\n")
    return path


def register_app(folder: Path) -> Path:
    """A folder to put on the server's PYTHONPATH: server/auth_app.py's create_app as the
    `mlflow.app` entry point APP_NAME, declared the way an installed package declares it."""
    info = folder / "site" / "backprop_lab_server-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: backprop-lab-server\n"
                                   "Version: 0\n")
    (info / "entry_points.txt").write_text(f"[mlflow.app]\n{APP_NAME} = auth_app:create_app\n")
    return info.parent


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"error: mlflow server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"error: mlflow server at {url} not healthy after {timeout:.0f} s")


def check_ours(url: str, process: subprocess.Popen[bytes], server_id: str) -> None:
    """The server answering at `url` is the one started here, with logins: an API request
    without credentials gets 401 (a server without logins answers 200) carrying this start's id,
    and our process still runs."""
    import urllib.error

    request = urllib.request.Request(f"{url}/api/2.0/mlflow/experiments/search?max_results=1")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status, answered_id = int(answer.status), answer.headers.get(ID_HEADER)
    except urllib.error.HTTPError as err:
        status, answered_id = int(err.code), err.headers.get(ID_HEADER)
    except OSError as err:
        raise SystemExit(f"error: {url} stopped answering after its health check: {err}") from err
    if process.poll() is not None:
        raise SystemExit(f"error: mlflow server exited with {process.returncode}; something else "
                         f"answers at {url}")
    if status != 401 or answered_id != server_id:
        raise SystemExit(f"error: the server answering at {url} is not the one started here (a "
                         f"request without credentials got {status}, not 401 from "
                         "server/auth_app.py): is something else listening on that port?")


def api(url: str, endpoint: str, body: dict[str, str], user: str, password: str,
        method: str = "POST") -> int:
    """POST `body` as JSON with basic auth; the HTTP status (400/404/409 included: the user or
    grant exists already, or not at all); anything worse ends the start with an `error:`."""
    import base64
    import urllib.error

    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(
        f"{url}{endpoint}", data=json.dumps(body).encode(), method=method,
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as err:
        if err.code == 401 and user == ADMIN[0]:
            bad_input(f"the server refused the admin {user!r}: its user store was created with "
                      "another MLFLOW_AUTH_ADMIN_PASSWORD (read only when the store is first "
                      "created; change it through MLflow's update-password API)")
        if err.code >= 500 or err.code in (401, 403):
            detail = err.read()[:300].decode(errors="replace")
            raise SystemExit(f"error: {endpoint} answered {err.code}: {detail}") from err
        return int(err.code)


def create_users(url: str, admin: str, admin_password: str,
                 users: list[tuple[str, str, str]]) -> None:
    """Make each user as BACKPROP_LAB_USERS says, also on a kept server where it exists from an
    earlier start: created (or given this password), EDIT/MANAGE granted on every experiment
    (a grant is an upsert), a READ user's grant on every experiment revoked (READ users rely
    on default_permission)."""
    ADMIN[0] = admin
    for name, password, permission in users:
        body = {"username": name, "password": password}
        if api(url, "/api/2.0/mlflow/users/create", body, admin, admin_password) != 200:
            updated = api(url, "/api/2.0/mlflow/users/update-password", body, admin,
                          admin_password, method="PATCH")  # MLflow's method for it
            if updated != 200:
                raise SystemExit(f"error: user {name!r} could neither be created nor get its "
                                 f"password (update-password answered {updated})")
        grant = {"username": name, "resource_type": "experiment", "resource_id": "*"}
        if permission != "READ":
            api(url, "/api/3.0/mlflow/users/permissions/grant",
                {**grant, "permission": permission}, admin, admin_password)
        else:  # 404 when there is no grant, as on a fresh server
            api(url, "/api/3.0/mlflow/users/permissions/revoke", grant, admin, admin_password)
        print(f"user {name}: {permission}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=os.environ.get("BACKPROP_LAB_SERVER_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("BACKPROP_LAB_SERVER_PORT",
                                                                       "5000")))
    parser.add_argument("--data", type=Path, default=os.environ.get("BACKPROP_LAB_SERVER_DATA")
                        or None, help="keep the PostgreSQL cluster and the artifacts here")
    parser.add_argument("--artifacts", type=Path)
    parser.add_argument("--db-url", default=os.environ.get("BACKPROP_LAB_DB_URL"))
    parser.add_argument("--pg-dir", type=Path, help="keep the local PostgreSQL's data here")
    parser.add_argument("--workers", type=int, default=2)
    args, passed_on = parser.parse_known_args()  # the rest goes to `mlflow server`
    if args.data is not None:
        given = {"--artifacts": args.artifacts, "--pg-dir": args.pg_dir,
                 "--db-url (or BACKPROP_LAB_DB_URL)": args.db_url}
        clash = [name for name, value in given.items() if value]
        if clash:
            bad_input(f"--data keeps the database and the artifacts together; it cannot be "
                      f"combined with {', '.join(clash)}")
        args.data = data_folder(args.data)
        args.artifacts, args.pg_dir = args.data / "artifacts", args.data / "postgres"
    elif args.artifacts is None:
        args.artifacts = Path(os.environ.get("BACKPROP_LAB_SERVER_ARTIFACTS",
                                             ROOT / "mlruns" / "server-artifacts"))
    if args.artifacts.exists() and not args.artifacts.is_dir():
        bad_input(f"--artifacts {args.artifacts} is a file, not a folder")
    if args.pg_dir is not None and args.pg_dir.exists() and not args.pg_dir.is_dir():
        bad_input(f"--pg-dir {args.pg_dir} is a file, not a folder")
    admin = os.environ.get("MLFLOW_AUTH_ADMIN_USERNAME", "admin")
    admin_password = os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD")
    if not admin_password or len(admin_password) < 12 or admin_password == "password1234":
        raise SystemExit("error: set MLFLOW_AUTH_ADMIN_PASSWORD to the admin's password "
                         "(MLflow requires 12 characters or more, and not its old default)")
    users = parse_users(os.environ.get("BACKPROP_LAB_USERS", ""))
    check_port_free(args.host, args.port)
    runtime = Path(tempfile.mkdtemp(prefix="backprop-lab-server-"))
    runtime.chmod(0o711)  # postgres (when root) may pass through to its own folder
    postgres = None
    if not args.db_url:
        postgres = LocalPostgres(args.pg_dir.resolve() if args.pg_dir else runtime / "pg",
                                 free_port())
    server: subprocess.Popen[bytes] | None = None

    def on_signal(*_: object) -> None:
        raise SystemExit(0)  # unwinds to the `finally` below

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if postgres is not None:
            postgres.start()
            db_url, auth_db_url = postgres.url("mlflow"), postgres.url("mlflow_auth")
        else:
            db_url = args.db_url
            auth_db_url = os.environ.get("BACKPROP_LAB_AUTH_DB_URL", db_url)
        args.artifacts.mkdir(parents=True, exist_ok=True)
        server_id = secrets.token_hex(8)
        python_path = [str(register_app(runtime)), str(ROOT / "server"),
                       *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": db_url,
               "PYTHONPATH": os.pathsep.join(python_path), "BACKPROP_LAB_SERVER_ID": server_id,
               "MLFLOW_AUTH_CONFIG_PATH": str(write_auth_config(runtime, auth_db_url, admin)),
               "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
               # signs the UI's CSRF tokens; the same for every worker
               "MLFLOW_FLASK_SERVER_SECRET_KEY": os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY")
               or secrets.token_hex(32)}
        url = f"http://{args.host}:{args.port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--app-name", APP_NAME,
             "--host", args.host, "--port", str(args.port), "--workers", str(args.workers),
             "--artifacts-destination", str(args.artifacts.resolve()), *passed_on],
            env=env, cwd=runtime, start_new_session=True)
        if postgres is not None:
            postgres.record(os.getpid(), server.pid)
        wait_healthy(url, server)
        check_ours(url, server, server_id)
        create_users(url, admin, admin_password, users)
        report(url, server.pid, postgres, args, db_url)
        watch(server, postgres)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop(server, postgres, runtime)


def watch(server: subprocess.Popen[bytes], postgres: LocalPostgres | None) -> None:
    """Until a signal: an error (exit 1, the rest then stopped) when the server or the PostgreSQL
    started here is gone."""
    while True:
        try:
            code = server.wait(1)
        except subprocess.TimeoutExpired:
            if postgres is not None and not postgres.alive():
                raise SystemExit(f"error: the PostgreSQL on 127.0.0.1:{postgres.port} has "
                                 "stopped; stopping the server") from None
            continue
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
        raise SystemExit(f"error: mlflow server (pid {server.pid}) {how}; stopping the rest")


def stop(server: subprocess.Popen[bytes] | None, postgres: LocalPostgres | None,
         runtime: Path) -> None:
    """The server's process group (its workers too, should its leader be gone), then PostgreSQL,
    then the runtime folder."""
    if server is not None:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(20)  # `mlflow server` waits for uvicorn, which waits for its workers
            os.killpg(server.pid, signal.SIGKILL)  # what is left, as when the leader died first
        except ProcessLookupError:
            pass
    if postgres is not None and postgres.started and postgres.alive():
        postgres.stop()  # not one this start found running: a refused start stops nothing
    if postgres is not None:
        postgres.record(os.getpid(), None)  # stopped cleanly: nothing for the next start to stop
    shutil.rmtree(runtime, ignore_errors=True)


def report(url: str, server_pid: int, postgres: LocalPostgres | None, args: argparse.Namespace,
           db_url: str) -> None:
    if postgres and not args.pg_dir:
        where = f"throwaway PostgreSQL on 127.0.0.1:{postgres.port} (gone at stop)"
    elif postgres:
        where = f"PostgreSQL on 127.0.0.1:{postgres.port} (user mlflow), kept in {postgres.data}"
    else:
        where = "PostgreSQL at " + db_url.split("@")[-1]
    print(json.dumps({"url": url, "pid": os.getpid(), "server_pid": server_pid,
                      "postgres_pid": postgres.pid() if postgres else None}), flush=True)
    print(f"READY {url}: runs in {where}, artifacts in {args.artifacts}\n  log to it with: "
          f"MLFLOW_TRACKING_USERNAME=... MLFLOW_TRACKING_PASSWORD=... python -m pipelines.train "
          f"tracking=server tracking.uri={url}\n  Ctrl-C stops it.", flush=True)


if __name__ == "__main__":
    main()
