"""Passwords in URLs never reach a logged file: the user stays, the password becomes ***."""

from __future__ import annotations

from pathlib import Path

import pytest

from backprop_lab.tracking.redact import hide_passwords, hide_passwords_in


@pytest.mark.parametrize(("text", "shown"), [
    ("postgresql+psycopg://ann:s3cr%40t@db:5432/optuna", "postgresql+psycopg://ann:***@db:5432/optuna"),
    ("- hydra.sweeper.storage=postgresql://ann:pw@h/o\n", "- hydra.sweeper.storage=postgresql://ann:***@h/o\n"),
    ("uri: 'http://bob:x:y@127.0.0.1:5000'", "uri: 'http://bob:***@127.0.0.1:5000'"),
    ("sqlite:////tmp/mlruns/mlflow.db", "sqlite:////tmp/mlruns/mlflow.db"),
    ("http://127.0.0.1:5000/#/experiments/1", "http://127.0.0.1:5000/#/experiments/1"),
    ("postgresql://ann@h/o (no password)", "postgresql://ann@h/o (no password)"),
])
def test_a_urls_password_is_hidden_and_nothing_else_changes(text: str, shown: str) -> None:
    assert hide_passwords(text) == shown


def test_every_text_file_of_a_folder_is_rewritten(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "hydra.yaml").write_text("storage: mysql://u:p@h/d\n")
    (tmp_path / "model.npz").write_bytes(b"\x93NUMPY\xff\xfe")
    hide_passwords_in(tmp_path)
    assert (tmp_path / "sub" / "hydra.yaml").read_text() == "storage: mysql://u:***@h/d\n"
    assert (tmp_path / "model.npz").read_bytes() == b"\x93NUMPY\xff\xfe"
