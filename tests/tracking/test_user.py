"""Whose run it is on a local store: the OS user (MlflowClient.create_run alone records
"unknown"). On the tracking server the login is the user: tests/commands/test_server.py."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from backprop_lab.tracking import store as tracking
from backprop_lab.tracking.user import USER_TAG, os_user, with_user


def test_a_local_run_belongs_to_the_os_user(tmp_path: Path) -> None:
    store = tracking.Store(f"sqlite:///{tmp_path / 'mlflow.db'}", "users")
    parent = tracking.Run.start(store, "parent", {})
    child = tracking.Run.start(store, "child", {"seed": "1"}, parent_id=parent.run_id)
    for run in (parent, child):
        found = store.client.get_run(run.run_id)
        assert found.info.user_id == getpass.getuser() != "unknown"
        assert found.data.tags[USER_TAG] == getpass.getuser()


def test_a_user_named_in_the_tags_is_kept() -> None:
    assert with_user({USER_TAG: "ann", "seed": "1"}) == {USER_TAG: "ann", "seed": "1"}


def test_no_user_in_the_password_database_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_user() -> str:
        raise KeyError("getpwuid(): uid not found: 12345")

    monkeypatch.setattr(getpass, "getuser", no_user)
    assert os_user() == "unknown"
