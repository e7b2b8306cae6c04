"""`output=json`: rerun, evaluate and cleanup print one JSON document on stdout, for scripts;
any other value is refused with one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.mark.slow
def test_commands_print_one_json_document(store_uri: str, tmp_path: Path) -> None:
    trained = run_cli("pipelines.train", "train.epochs=5", "tracking.log_model=false",
                      f"tracking.uri={store_uri}", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    run_id = re.search(r"MLflow run ([0-9a-f]{32})", trained.stdout).group(1)  # type: ignore
    rerun = run_cli("pipelines.rerun", f"run_id={run_id}", f"tracking.uri={store_uri}",
                    "output=json", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert json.loads(rerun.stdout) == {"verdicts": {run_id: "identical"}, "exit_status": 0}
    evaluated = run_cli("pipelines.evaluate", f"run_id={run_id}", f"tracking.uri={store_uri}",
                        "output=json", cwd=tmp_path)
    found = json.loads(evaluated.stdout)
    assert found["of_run"] == run_id and found["split"] == "run" and "test_r2" in found["metrics"]
    cleaned = run_cli("pipelines.cleanup", f"tracking.uri={store_uri}", "output=json",
                      cwd=tmp_path)
    assert json.loads(cleaned.stdout) == {"marked_failed": []}
    bad = run_cli("pipelines.cleanup", f"tracking.uri={store_uri}", "output=yaml", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: output: must be text or json, got 'yaml'"
