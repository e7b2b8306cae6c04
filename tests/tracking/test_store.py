"""The store: simultaneous first runs on a new sqlite store, damaged and unreadable stores."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from backprop_lab.errors import TrackingUnavailable
from backprop_lab.tracking.store import Store
from tests.conftest import run_cli


def test_a_store_left_damaged_by_a_migration_is_refused_with_the_repair(
        template_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    shutil.copy(template_db, db)
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE _alembic_tmp_metrics (x INTEGER)")
    with pytest.raises(TrackingUnavailable, match="interrupted migration.*_alembic_tmp_metrics"):
        Store(f"sqlite:///{db}", "e")


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_text("not a database")
    with pytest.raises(TrackingUnavailable, match="not a readable SQLite database"):
        Store(f"sqlite:///{db}", "e")


def test_a_store_folder_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(TrackingUnavailable, match="cannot create the store folder"):
        Store(f"sqlite:///{tmp_path / 'file' / 'sub' / 'mlflow.db'}", "e")


@pytest.mark.slow
@pytest.mark.parametrize("attempt", [1, 2])
def test_simultaneous_first_runs_on_a_new_store_all_land(attempt: int, tmp_path: Path) -> None:
    """Four `pipelines.train` started at once on a store that does not exist yet (without the
    lock, 0-1 of 4 landed and the store was left broken)."""
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "pipelines.train", "train.epochs=1", "tracking.log_model=false",
         f"tracking.uri={uri}", f"seed={k}"], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for k in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err[-1500:] for _, err in outs]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("backprop-lab")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["seed"] for r in runs) == ["0", "1", "2", "3"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert client.search_runs(["0"]) == []  # nothing in Default
    out = run_cli("pipelines.train", "train.epochs=1", "tracking.log_model=false",
                  f"tracking.uri={uri}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]


def test_a_signal_during_a_store_write_waits_for_the_write() -> None:
    """Ctrl-C inside an MLflow call lands after it, so the session is never left half-flushed."""
    import os
    import signal

    from backprop_lab.tracking.store import signals_deferred

    done = []
    with pytest.raises(KeyboardInterrupt), signals_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("the write finished")
    assert done == ["the write finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
