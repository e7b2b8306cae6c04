"""The MLflow store and its runs: the tracking URI, the experiment, runs and their status,
batched params, tags and metrics. The numerical core never imports this; training reaches it
through an epoch callback (`MetricBuffer`). The served model is in `served_model`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from filelock import FileLock, Timeout
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from backprop_lab.errors import TrackingLost, TrackingUnavailable
from backprop_lab.paths import PROJECT_ROOT, STORE_DIR
from backprop_lab.tracking.spool import SPOOL_DIR, Spool, dataset_input_json, unreachable
from backprop_lab.tracking.user import with_user

log = logging.getLogger(__name__)
BATCH = 100  # MLflow accepts at most 100 params and 1000 metrics per log_batch call
PARENT_TAG = "mlflow.parentRunId"
# What the commands set before MLflow is imported (never at import of this module): no telemetry,
# no progress bars in run output, and a lost server fails in ~15 s instead of ~4 min of retries.
MLFLOW_ENVIRONMENT = {"MLFLOW_DISABLE_TELEMETRY": "true",
                      "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                      "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3"}


def quiet_mlflow_environment() -> None:
    """Set `MLFLOW_ENVIRONMENT` where the user has not set those variables."""
    for key, value in MLFLOW_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def default_uri() -> str:
    """The embedded store: one sqlite file under the project, whatever the current directory."""
    return f"sqlite:///{STORE_DIR / 'mlflow.db'}"


def resolve_uri(uri: str | None) -> str:
    """`tracking.uri` as given, or the embedded store when it is null."""
    return uri or default_uri()


def is_local(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def local_root(uri: str) -> Path:
    """The folder of a local store (the sqlite file's folder): artifacts go under it."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :]).parent
    return Path(uri.removeprefix("file://")) if uri.startswith("file:") else Path(uri)


@dataclass
class Store:
    """A tracking URI and an experiment, created once before any job logs to it.

    `wait`: seconds to wait for a server that does not answer yet (a sweep's later jobs: the
    server answered its first ones and may be restarting); 0 fails at once. `spool_wait`:
    seconds a run that spooled its writes (tracking.spool) waits at its end for the server."""

    uri: str
    experiment: str
    experiment_id: str = ""
    wait: float = 0.0
    spool_wait: float = 60.0
    client: MlflowClient = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.remote:
            check_server(self.uri, wait=self.wait)
        self.client = open_client(self.uri)
        mlflow.set_tracking_uri(self.uri)
        if not self.experiment_id:
            self.experiment_id = ensure_experiment(self.client, self.uri, self.experiment)

    @property
    def remote(self) -> bool:
        """A tracking server (whose writes are spooled while it is away), not a local store."""
        return self.uri.startswith(("http://", "https://"))


def sqlite_file(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (None for any other store)."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def open_client(uri: str, lock_timeout: float = 600.0) -> MlflowClient:
    """A client of the store at `uri`, the store created or migrated first if need be.

    MLflow creates and migrates a sqlite store when a client first opens it, and processes that
    do so at once corrupt it (`table _alembic_tmp_metrics already exists`). Here that happens
    under an inter-process lock beside the database file, so any number of processes may start
    together on a new store; the check for a store an interrupted migration damaged runs under
    the same lock, before MLflow touches it."""
    if is_local(uri):
        root = local_root(uri)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise TrackingUnavailable(f"tracking.uri: cannot create the store folder {root}: "
                                      f"{err.strerror or err}") from err
    db = sqlite_file(uri)
    if db is None:
        return MlflowClient(uri)
    for path in (db.parent, db) if db.exists() else (db.parent,):
        if not os.access(path, os.W_OK):
            raise TrackingUnavailable(f"tracking.uri: the MLflow store {path} is not writable")
    try:
        with FileLock(f"{db}.lock", timeout=lock_timeout):
            check_sqlite_store(db)
            client = MlflowClient(uri)
            client.search_experiments(max_results=1)  # opens (and migrates) the store
    except Timeout as err:
        raise TrackingUnavailable(f"tracking.uri: waited {lock_timeout:.0f} s for the lock "
                                  f"{db}.lock held by another process creating the store") from err
    except (TrackingUnavailable, KeyboardInterrupt):
        raise
    except Exception as err:
        raise TrackingUnavailable(f"tracking.uri: cannot open the MLflow store {db}: "
                                  f"{type(err).__name__}: {str(err).splitlines()[0]}") from err
    return client


def check_sqlite_store(db: Path) -> None:
    """Refuse a file that is not an SQLite database, or a store holding the `_alembic_tmp_*`
    tables a migration leaves when it is interrupted (every later run would fail on them)."""
    if not db.exists():
        return
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            tables = [row[0] for row in con.execute("SELECT name FROM sqlite_master")]
        names = [name for name in tables if name.startswith("_alembic_tmp_")]
    except sqlite3.DatabaseError as err:
        raise TrackingUnavailable(f"tracking.uri: {db} is not a readable SQLite database "
                                  f"({err}); move it away to start a new store") from err
    if names:
        raise TrackingUnavailable(
            f"tracking.uri: the MLflow store {db} was damaged by an interrupted migration (left "
            f"tables {', '.join(names)}); repair it as docs/reliability.md says (drop those "
            f"tables, then `mlflow db upgrade sqlite:///{db}`), or move it away to start anew")


def check_server(uri: str, timeout: float = 10.0, wait: float = 0.0) -> None:
    """One request, without retries, before anything is logged: an unreachable server or refused
    credentials (MLFLOW_TRACKING_USERNAME/PASSWORD) fail at once, naming the URL and the cause.
    With `wait` > 0 an unreachable (not a refusing) server is asked again every 2 s until then."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    creds = get_default_host_creds(uri)
    deadline = time.monotonic() + wait
    while True:
        try:
            answer = http_request(creds, "/api/2.0/mlflow/experiments/search", "POST",
                                  max_retries=0, timeout=timeout, raise_on_status=False,
                                  json={"max_results": 1})
        except Exception as err:
            if time.monotonic() < deadline:
                time.sleep(2.0)
                continue
            cause: BaseException = err
            while cause.__cause__ or cause.__context__:
                cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
            waited = f" (waited {wait:.0f} s)" if wait else ""
            raise TrackingUnavailable(f"MLflow tracking server {uri} is unreachable{waited}: "
                                      f"{type(cause).__name__}: {cause}") from err
        if answer.status_code in (502, 503, 504) and time.monotonic() < deadline:
            time.sleep(2.0)  # a proxy in front of a restarting server
            continue
        break
    if answer.status_code == 401:
        who = (f"user {creds.username!r} (MLFLOW_TRACKING_USERNAME/PASSWORD)" if creds.username
               else "a request without credentials: set MLFLOW_TRACKING_USERNAME and "
               "MLFLOW_TRACKING_PASSWORD")
        raise TrackingUnavailable(f"MLflow tracking server {uri} refused {who} (401 Unauthorized)")
    if answer.status_code >= 400:
        raise TrackingUnavailable(f"MLflow tracking server {uri} answered {answer.status_code}: "
                                  f"{answer.text[:300]}")


def ensure_experiment(client: MlflowClient, uri: str, name: str) -> str:
    """The id of experiment `name`, creating it with artifacts in an `artifacts/` folder beside a
    local store's database (so artifacts never depend on the current directory)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = (local_root(uri) / "artifacts" / name).as_uri() if is_local(uri) else None
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except mlflow.exceptions.MlflowException as err:
        found = client.get_experiment_by_name(name)  # created meanwhile by another process
        if found is not None:
            return str(found.experiment_id)
        if err.get_http_status_code() == 403 or "403" in str(err):
            raise TrackingUnavailable(
                f"tracking.experiment: {uri} refused to create experiment {name!r} (403: this "
                "user may browse, not write); ask the server's admin for EDIT, or use an "
                "experiment you may write to") from err
        raise


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted keys for every leaf: {"train": {"lr": 0.1}} -> {"train.lr": "0.1"}."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)[:6000]
    return flat


def chunks(items: list[Any], size: int = BATCH) -> Iterable[list[Any]]:
    return (items[i : i + size] for i in range(0, len(items), size))


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Inside, Ctrl-C and SIGTERM wait until the block ends, then act as they would have.

    A store write cut by KeyboardInterrupt leaves MLflow's SQLAlchemy session half-flushed, and
    the writes that end the run KILLED then fail too (seen in CI: a signal landing inside a
    metric flush). Only the main thread receives signals; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[int, Any]] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: caught.append((signum, frame)))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum, frame in caught[:1]:
            handler = previous[signal.Signals(signum)]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


def spool_folder(output_dir: Path | None, run_id: str) -> Path:
    """Where a run spools the writes a server could not take: its own output folder (Hydra's, for
    a command), else the project's outputs/ folder; `pipelines.sync` looks in both."""
    return (output_dir or PROJECT_ROOT / "outputs") / SPOOL_DIR / run_id


class Run:
    """One MLflow run, addressed by id; every write is a batch.

    On a tracking server, a write that finds the server away (connection refused or dropped, 5xx
    after MLflow's retries) does not stop the run: it and every later write go in order to a
    `Spool` in `output_dir`, which a background thread delivers once the server answers again;
    `end` waits up to `store.spool_wait` seconds for that, else raises `TrackingLost` naming the
    spool that `python -m pipelines.sync` uploads later."""

    def __init__(self, store: Store, run_id: str, output_dir: Path | None = None):
        self.store, self.run_id, self.client = store, run_id, store.client
        self.output_dir = output_dir
        self.seconds_in_mlflow = 0.0
        self.unrecorded: list[str] = []  # what failed to reach the store, for the error
        self.spool: Spool | None = None
        self.name = ""

    @classmethod
    def start(cls, store: Store, name: str | None, tags: Mapping[str, str],
              parent_id: str | None = None, output_dir: Path | None = None) -> Run:
        t = time.perf_counter()
        all_tags = with_user(dict(tags, **({PARENT_TAG: parent_id} if parent_id else {})))
        info = store.client.create_run(store.experiment_id, run_name=name, tags=all_tags).info
        run = cls(store, info.run_id, output_dir)
        run.name = info.run_name or ""
        run.seconds_in_mlflow += time.perf_counter() - t
        return run

    @property
    def spooling(self) -> bool:
        """Writes are waiting for the server: new ones queue behind them."""
        return self.spool is not None and self.spool.pending() > 0

    def _write(self, op: dict[str, Any], fn: Any, *args: Any, what: str, **kwargs: Any) -> None:
        """Call the store (`_timed`), or spool `op` (the same write as data) when the server
        is away or earlier writes still wait for it."""
        if self.spooling:
            assert self.spool is not None
            self.spool.append(op)
            return
        try:
            self._timed(fn, *args, what=what, **kwargs)
        except Exception as err:
            if not (self.store.remote and unreachable(err)):
                raise
            self.unrecorded.pop()  # not lost: spooled
            self._start_spooling(err).append(op)

    def _start_spooling(self, err: BaseException) -> Spool:
        if self.spool is None:
            folder = spool_folder(self.output_dir, self.run_id)
            self.spool = Spool.create(folder, self.store.uri, self.run_id, self.name)
            cause = " ".join(str(err).split())[:160]
            log.warning("MLflow server %s is not answering (%s): run %s trains on; its writes "
                        "are spooled in %s and sent when the server is back", self.store.uri,
                        cause, self.run_id, folder)
        self.spool.retry_in_background(self.client)
        return self.spool

    def _timed(self, fn: Any, *args: Any, what: str = "", **kwargs: Any) -> Any:
        """Call the store, timing it; on failure remember `what` was not recorded. MLflow
        itself retries a request to a server a bounded number of times first
        (MLFLOW_HTTP_REQUEST_MAX_RETRIES, 3 for the commands: about 15 s)."""
        t = time.perf_counter()
        try:
            with signals_deferred():
                return fn(*args, **kwargs)
        except Exception:
            self.unrecorded.append(what or getattr(fn, "__name__", "a write"))
            raise
        finally:
            self.seconds_in_mlflow += time.perf_counter() - t

    def lost(self, err: BaseException) -> TrackingLost:
        """The error to report when the store stopped answering during this run: the URL, the
        cause, and what it never received."""
        cause = " ".join(str(err).split())[:200]
        lost = "; ".join(dict.fromkeys(self.unrecorded)) or "nothing"
        return TrackingLost(
            f"the MLflow store {self.store.uri} stopped answering during run {self.run_id} "
            f"({type(err).__name__}: {cause}); not recorded: {lost}. The run stays RUNNING "
            "until a later run or `python -m pipelines.cleanup` marks it stale")

    def log_params(self, params: Mapping[str, str]) -> None:
        for part in chunks([Param(k, str(v)) for k, v in sorted(params.items())]):
            self._write({"op": "log_batch", "params": [[p.key, p.value] for p in part]},
                        self.client.log_batch, self.run_id, params=part,
                        what=f"{len(part)} params")

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for part in chunks([RunTag(k, str(v)[:5000]) for k, v in sorted(tags.items())]):
            self._write({"op": "log_batch", "tags": [[t.key, t.value] for t in part]},
                        self.client.log_batch, self.run_id, tags=part,
                        what="tags: " + ", ".join(t.key for t in part))

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in sorted(metrics.items())]
        self.log_metric_objects(batch)

    def log_metric_objects(self, metrics: list[Metric]) -> None:
        for part in chunks(metrics, 1000):
            steps = sorted({m.step for m in part})
            span = f"steps {steps[0]}-{steps[-1]}" if len(steps) > 1 else f"step {steps[0]}"
            points = [[m.key, m.value, m.timestamp, m.step] for m in part]
            self._write({"op": "log_batch", "metrics": points}, self.client.log_batch,
                        self.run_id, metrics=part, what=f"{len(part)} metric points ({span})")

    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None:
        self._write({"op": "log_artifacts", "local_dir": str(folder),
                     "artifact_path": artifact_path},
                    self.client.log_artifacts, self.run_id, str(folder), artifact_path,
                    what="artifacts: " + ", ".join(sorted(p.name for p in folder.iterdir())))

    def log_inputs(self, inputs: list[Any], what: str) -> None:
        """Dataset inputs (`mlflow.entities.DatasetInput`)."""
        self._write({"op": "log_inputs", "datasets": [dataset_input_json(d) for d in inputs]},
                    self.client.log_inputs, self.run_id, inputs, what=what)

    def end(self, status: str) -> None:
        """FINISHED, FAILED or KILLED: the run's status tells the truth about how it ended. A
        run that spooled waits for the server to take everything (`store.spool_wait` s)."""
        end_time = int(time.time() * 1000)
        self._write({"op": "set_terminated", "status": status, "end_time": end_time},
                    self.client.set_terminated, self.run_id, status, end_time=end_time,
                    what=f"the status {status}")
        if self.spool is None:
            return
        if self.spooling:
            log.warning("run %s ended %s; waiting up to %.0f s for %s to take its %s", self.run_id,
                        status, self.store.spool_wait, self.store.uri, self.spool.describe())
        left = self.spool.drain(self.store.spool_wait)
        if self.spool.error is not None:
            raise TrackingLost(f"the MLflow server {self.store.uri} refused a spooled write of "
                               f"run {self.run_id}: {self.spool.error}; the rest is kept in "
                               f"{self.spool.folder}") from self.spool.error
        if left:
            raise TrackingLost(
                f"the MLflow server {self.store.uri} did not come back within "
                f"tracking.spool_wait={self.store.spool_wait:.0f} s: run {self.run_id} ended "
                f"{status}, {self.spool.describe()} are spooled in {self.spool.folder}; upload "
                f"them with `python -m pipelines.sync path={self.spool.folder}`")
        log.info("the MLflow server %s is back: run %s's spooled writes are delivered",
                 self.store.uri, self.run_id)
        shutil.rmtree(self.spool.folder, ignore_errors=True)  # nothing left for sync to do


class MetricBuffer:
    """Epoch callback that collects per-epoch metrics and writes them in batches.

    The training costs arrive as train_cost/val_cost and are logged as `train_loss`/`val_loss`
    (in the units the network trains in), apart from the final `{split}_cost` metrics, which are
    in the target's original units.
    """

    def __init__(self, run: Run, every: int = 500):
        self.run, self.every = run, every
        self.pending: list[Metric] = []

    def __call__(self, epoch: int, values: Mapping[str, float]) -> None:
        now = int(time.time() * 1000)
        self.pending.extend(
            Metric(k.replace("_cost", "_loss"), float(v), now, epoch) for k, v in values.items()
        )
        if len(self.pending) >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.run.log_metric_objects(self.pending)
            self.pending = []
