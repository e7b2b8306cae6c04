"""Shared fixtures: a migrated MLflow store copied per test, and Hydra config composition."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from backprop_lab.pipeline.compose import register_schemas, to_command

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
register_schemas()

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow sqlite database migrated once (migrations take seconds) and copied per test."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store_uri(template_db: Path, tmp_path: Path) -> str:
    """A fresh, already migrated store under tmp_path (artifacts go to tmp_path/artifacts)."""
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(template_db, db)
    return f"sqlite:///{db}"


@pytest.fixture
def compose_config() -> Iterator:
    """compose_config(overrides) -> DictConfig, composed from conf/ as Hydra would."""

    def _compose(overrides: list[str] | None = None) -> DictConfig:
        return compose(config_name="config", overrides=overrides or [])

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield _compose
    GlobalHydra.instance().clear()


def run_cli(module: str, *args: str, cwd: Path | None = None, timeout: int = 300
            ) -> subprocess.CompletedProcess[str]:
    """Run `python -m <module> <args>` as a user would, from `cwd` (default: a temp folder)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )


def compose_command(config_name: str, overrides: list[str], kind: type) -> Any:
    """A command's typed arguments, composed from conf/<config_name>.yaml as Hydra would."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return to_command(compose(config_name=config_name, overrides=overrides), kind)
    finally:
        GlobalHydra.instance().clear()
