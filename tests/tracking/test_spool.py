"""The spool: writes a run makes while its server is away arrive later, in order, with their
original steps and timestamps; a server still away at the run's end leaves a spool that
`pipelines.sync` uploads once, however often it is run. Here the "server" is a real sqlite store
behind a client that can be switched off; tests/tracking/test_server_lost.py kills a real one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    PERMISSION_DENIED,
    TEMPORARILY_UNAVAILABLE,
)
from mlflow.tracking import MlflowClient

from backprop_lab.errors import TrackingLost
from backprop_lab.experiments.reproduce.sync import sync
from backprop_lab.pipeline.config import SyncCommand
from backprop_lab.tracking.spool import unreachable
from backprop_lab.tracking.store import Run, Store


class Switchable:
    """An MlflowClient whose every call fails as a refused connection while `down`."""

    def __init__(self, client: MlflowClient):
        self.client, self.down = client, False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise requests.ConnectionError("[Errno 111] Connection refused")
            return attr(*args, **kwargs)
        return call


@pytest.fixture
def served(store_uri: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Store, Switchable]:
    """A store that counts as a tracking server (only those are spooled) and its switch."""
    monkeypatch.setattr(Store, "remote", property(lambda self: True))
    monkeypatch.setattr("backprop_lab.tracking.store.check_server", lambda *a, **k: None)
    store = Store(store_uri, "spooled", spool_wait=5.0)
    switch = Switchable(store.client)
    store.client = switch  # type: ignore[assignment]
    return store, switch


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float, int]]:
    return sorted((m.step, m.value, m.timestamp) for m in client.get_metric_history(run_id, key))


def test_writes_made_while_the_server_is_away_arrive_in_order_when_it_is_back(
        served: tuple[Store, Switchable], tmp_path: Path) -> None:
    store, switch = served
    run = Run.start(store, "r", {}, output_dir=tmp_path)
    run.log_params({"lr": "0.1"})
    run.log_metrics({"train_loss": 3.0}, step=0)
    switch.down = True
    run.log_metrics({"train_loss": 2.0}, step=1)  # fails: spooled from here on
    assert run.spooling
    switch.down = False
    run.log_metrics({"train_loss": 1.0}, step=2)  # queued behind step 1, never before it
    run.set_tags({"phase": "first"})
    run.set_tags({"phase": "last"})
    art = tmp_path / "plots"
    art.mkdir()
    (art / "loss.txt").write_text("curve")
    run.log_artifacts(art)
    spool = run.spool
    assert spool is not None and spool.folder.parent == tmp_path / "mlflow-spool"
    written = [op["metrics"] for op in spool.ops() if op["op"] == "log_batch" and "metrics" in op]
    run.end("FINISHED")

    client = switch.client
    got = client.get_run(run.run_id)
    assert got.info.status == "FINISHED"
    assert [(s, v) for s, v, _ in history(client, run.run_id, "train_loss")] == [
        (0, 3.0), (1, 2.0), (2, 1.0)]
    stamps = {s: t for s, _, t in history(client, run.run_id, "train_loss")}
    assert [stamps[1], stamps[2]] == [int(w[0][2]) for w in written]  # the original timestamps
    assert got.data.tags["phase"] == "last"
    assert [a.path for a in client.list_artifacts(run.run_id)] == ["loss.txt"]
    assert not spool.folder.exists()  # delivered: nothing left for sync


def test_a_server_still_away_at_the_end_leaves_a_spool_that_sync_uploads_once(
        served: tuple[Store, Switchable], tmp_path: Path) -> None:
    store, switch = served
    store.spool_wait = 0.5
    run = Run.start(store, "r", {}, output_dir=tmp_path)
    switch.down = True
    for step in range(5):
        run.log_metrics({"train_loss": 10.0 - step}, step=step)
    run.log_params({"lr": "0.1"})
    with pytest.raises(TrackingLost, match=r"spool_wait=0 s.*7 write\(s\).*pipelines.sync path="
                       ) as lost:
        run.end("FINISHED")
    assert run.spool is not None
    folder = run.spool.folder
    assert str(folder) in str(lost.value)
    client = switch.client
    assert client.get_run(run.run_id).info.status == "RUNNING"

    switch.down = False  # the server is back; the run's process is long gone
    first = sync(SyncCommand(path=str(tmp_path)))
    second = sync(SyncCommand(path=str(tmp_path)))
    assert [(d.sent_now, d.total) for d in first] == [(7, 7)]
    assert [(d.sent_now, d.total) for d in second] == [(0, 7)]
    got = client.get_run(run.run_id)
    assert got.info.status == "FINISHED" and got.data.params == {"lr": "0.1"}
    assert [v for _, v, _ in history(client, run.run_id, "train_loss")] == [10, 9, 8, 7, 6]


def test_delivering_a_write_twice_changes_nothing(
        served: tuple[Store, Switchable], tmp_path: Path) -> None:
    """A crash between a delivery and the `sent` count re-sends the last writes: MLflow keeps
    one copy of a metric point with the same key, value, timestamp and step."""
    store, switch = served
    run = Run.start(store, "r", {}, output_dir=tmp_path)
    switch.down = True
    run.log_metrics({"train_loss": 1.0, "val_loss": 2.0}, step=3)
    run.set_tags({"a": "1"})
    switch.down = False
    spool = run.spool
    assert spool is not None
    spool.deliver(switch.client)
    spool.mark_sent(0)
    assert spool.deliver(switch.client) == 0
    assert len(history(switch.client, run.run_id, "train_loss")) == 1
    assert len(history(switch.client, run.run_id, "val_loss")) == 1


def test_a_write_the_server_refuses_is_an_error_not_a_spool(
        served: tuple[Store, Switchable], tmp_path: Path) -> None:
    store, _ = served
    run = Run.start(store, "r", {}, output_dir=tmp_path)
    run.log_params({"lr": "0.1"})
    with pytest.raises(MlflowException):
        run.log_params({"lr": "0.2"})  # a param cannot change: 400, the server is there
    assert run.spool is None and not (tmp_path / "mlflow-spool").exists()


def test_a_local_store_that_fails_is_an_error_naming_what_was_not_recorded(
        store_uri: str, tmp_path: Path) -> None:
    """Only a server is spooled: a sqlite store that stops working is a real failure."""
    store = Store(store_uri, "local")
    switch = Switchable(store.client)
    store.client = switch  # type: ignore[assignment]
    run = Run.start(store, "r", {}, output_dir=tmp_path)
    switch.down = True
    with pytest.raises(requests.ConnectionError) as err:
        run.log_metrics({"train_loss": 1.0}, step=7)
    assert run.spool is None
    assert "not recorded: 1 metric points (step 7)" in str(run.lost(err.value))


@pytest.mark.parametrize(("err", "away"), [
    (requests.ConnectionError("refused"), True),
    (requests.Timeout("read timed out"), True),
    (MlflowException("API request to http://h/api/2.0/mlflow/runs/log-batch failed with "
                     "exception HTTPConnectionPool(host='h'): Max retries exceeded"), True),
    (MlflowException("gateway", error_code=TEMPORARILY_UNAVAILABLE), True),
    (MlflowException("bad value", error_code=INVALID_PARAMETER_VALUE), False),
    (MlflowException("no", error_code=PERMISSION_DENIED), False),
    (ValueError("not a server problem"), False),
])
def test_unreachable_tells_a_server_away_from_a_refused_write(err: Exception, away: bool) -> None:
    assert unreachable(err) is away


def test_sync_names_a_folder_without_spools(tmp_path: Path) -> None:
    from backprop_lab.errors import NotFound

    with pytest.raises(NotFound, match="no spooled run"):
        sync(SyncCommand(path=str(tmp_path)))
    with pytest.raises(NotFound, match="no such folder"):
        sync(SyncCommand(path=str(tmp_path / "missing")))
