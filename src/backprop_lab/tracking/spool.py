"""A run's writes that the tracking server could not take, kept in order on disk and delivered
when it answers again: a server restarted for an upgrade, or crashed, or its PostgreSQL
restarting, loses nothing that a run trained meanwhile.

A spool is one folder (in the run's own output folder, `<hydra output>/mlflow-spool/<run id>`):

    spool.json   {"uri", "run_id", "run_name"}: where the writes go
    ops.jsonl    one write per line, in the order the run made them: a log_batch (params, tags,
                 metrics with their original timestamps and steps), log_artifacts (the files
                 copied into files/NNNN/), log_inputs (dataset inputs as MLflow's JSON protos),
                 set_terminated (status and the end time the run had)
    sent         how many lines of ops.jsonl the server has taken (rewritten after each one)

Delivering a line twice changes nothing (MLflow keeps one copy of a metric point with the same
key, value, timestamp and step; params and tags are set to the same value; artifacts overwrite
themselves), so a crash between a delivery and the `sent` update is harmless, and `sync` run
twice uploads once. Only an http(s) server is spooled: a local store that fails is a real error.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SPOOL_DIR = "mlflow-spool"
RETRY_SECONDS = 5.0


def unreachable(err: BaseException) -> bool:
    """Whether `err` means the server is away (refused or dropped connection, timeout, 5xx after
    MLflow's retries) rather than that it refused the write (4xx: bad value, no permission)."""
    import requests
    from mlflow.exceptions import MlflowException

    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, (requests.ConnectionError, requests.Timeout, ConnectionError,
                              TimeoutError)):
            return True
        if isinstance(cause, MlflowException):
            text = str(cause)
            if "failed with exception" in text and text.startswith("API request to"):
                return True  # rest_utils: requests gave up (connection, too many 5xx)
            if cause.get_http_status_code() in (500, 502, 503, 504):
                return True
        cause = cause.__cause__ or cause.__context__
    return False


class Spool:
    """The ordered, on-disk queue of one run's undelivered writes (see the module docstring)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.lock = threading.Lock()
        self._count = len(self.ops())  # lines in ops.jsonl: `pending` is asked on every write
        self.error: BaseException | None = None  # a write the server refused for good
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def create(cls, folder: Path, uri: str, run_id: str, run_name: str = "") -> Spool:
        folder.mkdir(parents=True, exist_ok=True)
        meta = folder / "spool.json"
        if not meta.exists():
            meta.write_text(json.dumps({"uri": uri, "run_id": run_id, "run_name": run_name}))
        return cls(folder)

    @property
    def meta(self) -> dict[str, str]:
        return dict(json.loads((self.folder / "spool.json").read_text()))

    def ops(self) -> list[dict[str, Any]]:
        path = self.folder / "ops.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    @property
    def sent(self) -> int:
        path = self.folder / "sent"
        return int(path.read_text()) if path.exists() else 0

    def mark_sent(self, n: int) -> None:
        tmp = self.folder / "sent.tmp"
        tmp.write_text(str(n))
        os.replace(tmp, self.folder / "sent")  # atomic: a crash leaves the old count or the new

    def pending(self) -> int:
        with self.lock:
            return self._count - self.sent

    def append(self, op: dict[str, Any]) -> None:
        """Add one write at the end; an artifacts folder is copied in at once (the run's
        temporary folder is gone by the time the server answers)."""
        with self.lock:
            if op["op"] == "log_artifacts":
                n = sum(1 for _ in (self.folder / "files").glob("*")) if (
                    self.folder / "files").is_dir() else 0
                target = self.folder / "files" / f"{n:04d}"
                shutil.copytree(op.pop("local_dir"), target)
                op["files"] = str(target.relative_to(self.folder))
            with open(self.folder / "ops.jsonl", "a") as out:
                out.write(json.dumps(op) + "\n")
                out.flush()
                os.fsync(out.fileno())
            self._count += 1

    def deliver(self, client: Any) -> int:
        """Send the pending writes in order through `client` until one fails; returns how many
        are still pending. A write the server refuses for good (4xx) raises."""
        run_id = self.meta["run_id"]
        while True:
            with self.lock:  # read once per pass, not once per write: a long outage has many
                ops, sent = self.ops(), self.sent
            if sent >= len(ops):
                return 0
            for op in ops[sent:]:
                try:
                    send(client, run_id, op, self.folder)
                except Exception as err:
                    if unreachable(err):
                        return self.pending()
                    raise
                sent += 1
                with self.lock:
                    self.mark_sent(sent)

    def retry_in_background(self, client: Any, every: float = RETRY_SECONDS) -> None:
        """Deliver from a daemon thread every `every` seconds (and at once when `wake`d) until
        `stop`: the run trains on while the server is away."""
        if self._thread is not None and self._thread.is_alive():
            return

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.deliver(client)
                except Exception as err:  # refused for good: kept for the run's end to report
                    self.error = err
                    return
                self._wake.wait(every)
                self._wake.clear()

        self._thread = threading.Thread(target=loop, name="mlflow-spool", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def drain(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for the background thread to deliver everything, then
        stop it; returns how many writes are still pending."""
        deadline = time.monotonic() + timeout
        while self.pending() and self.error is None and time.monotonic() < deadline:
            self.wake()
            time.sleep(0.2)
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return self.pending()

    def describe(self) -> str:
        """What is still pending, for the error line: '12 writes (metrics, artifacts, status)'."""
        ops = self.ops()[self.sent:]
        kinds = dict.fromkeys(KIND.get(op["op"], op["op"]) for op in ops)
        return f"{len(ops)} write(s) ({', '.join(kinds)})"


KIND = {"log_batch": "params/tags/metrics", "log_artifacts": "artifacts",
        "log_inputs": "dataset inputs", "set_terminated": "the final status"}


def send(client: Any, run_id: str, op: dict[str, Any], folder: Path) -> None:
    """Deliver one spooled write through an MlflowClient."""
    from mlflow.entities import Metric, Param, RunTag

    kind = op["op"]
    if kind == "log_batch":
        client.log_batch(run_id, metrics=[Metric(k, float(v), int(t), int(s))
                                          for k, v, t, s in op.get("metrics", [])],
                         params=[Param(k, v) for k, v in op.get("params", [])],
                         tags=[RunTag(k, v) for k, v in op.get("tags", [])])
    elif kind == "log_artifacts":
        client.log_artifacts(run_id, str(folder / op["files"]), op.get("artifact_path"))
    elif kind == "log_inputs":
        client.log_inputs(run_id, [dataset_input(d) for d in op["datasets"]])
    elif kind == "set_terminated":
        tags = client.get_run(run_id).data.tags
        if tags.get("stale") == "true":  # marked dead while it could not reach the server
            for key in ("stale", "stale_reason"):
                client.delete_tag(run_id, key)
        client.set_terminated(run_id, op["status"], end_time=op["end_time"])
    else:
        raise ValueError(f"{folder / 'ops.jsonl'}: unknown spooled write {kind!r}")


def dataset_input_json(item: Any) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    return dict(MessageToDict(item.to_proto()))


def dataset_input(data: dict[str, Any]) -> Any:
    from google.protobuf.json_format import ParseDict
    from mlflow.entities import DatasetInput
    from mlflow.protos.service_pb2 import DatasetInput as DatasetInputProto

    return DatasetInput.from_proto(ParseDict(data, DatasetInputProto()))


def find_spools(roots: list[Path]) -> Iterator[Spool]:
    """Every spool folder under `roots` (a spool folder itself, a run's output folder, a sweep's
    multirun folder, or outputs/), in path order."""
    seen: set[Path] = set()
    for root in roots:
        metas = [root / "spool.json"] if (root / "spool.json").is_file() else sorted(
            root.rglob("spool.json"))
        for meta in metas:
            if meta.parent.resolve() not in seen:
                seen.add(meta.parent.resolve())
                yield Spool(meta.parent)
