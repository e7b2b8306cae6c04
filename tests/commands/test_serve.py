"""Serving tested for real (issue 24, part 4): a sweep registers its best job's model as
`champion`; `mlflow models serve -m models:/NAME@champion --env-manager local` runs as a real
process; rows of the data file posted as JSON come back as predictions in the target's units,
the numbers the pipeline's own evaluation predicted for them (`predictions_test.csv`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.tracking import MlflowClient

from backprop_lab.paths import BOSTON_CSV
from tests.conftest import run_cli
from tests.procs import free_port, stop_group, wait_for

pytestmark = pytest.mark.slow


def answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/ping", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def test_the_champion_serves_predictions_in_the_targets_units(store_uri: str,
                                                              tmp_path: Path) -> None:
    out = run_cli("pipelines.train", "-m", "train.lr=0.003,0.01", "train.epochs=40",
                  "diag.every=0", "tracking.experiment=serve", "tracking.register=served",
                  f"tracking.uri={store_uri}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(store_uri)
    champion = client.get_model_version_by_alias("served", "champion")
    expected = pd.read_csv(client.download_artifacts(champion.run_id, "predictions_test.csv",
                                                     str(tmp_path)))
    rows = pd.read_csv(BOSTON_CSV, skiprows=1).drop(columns="MEDV").iloc[expected["row"]]
    assert rows["CHAS"].dtype == np.int64  # sent as the file has it: integers stay integers

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri, "MLFLOW_DISABLE_TELEMETRY": "true",
           # it execs `uvicorn` from PATH: the venv's, as in an activated venv
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/served@champion",
             "--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)],
            env=env, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: answers(url) or server.poll() is not None, 120, "mlflow models serve")
        assert server.poll() is None, log.read_text()[-3000:]
        split = rows.to_dict(orient="split")
        body = {"dataframe_split": {"columns": split["columns"], "data": split["data"]}}
        answer = requests.post(f"{url}/invocations", json=body, timeout=60)
        assert answer.status_code == 200, answer.text[:2000]
    finally:
        stop_group(server)
    served = np.array([p["MEDV"] for p in answer.json()["predictions"]])
    np.testing.assert_allclose(served, expected["predicted_MEDV"], rtol=1e-9, atol=1e-9)
    assert served.min() > 0 and served.max() < 80  # $1000s, as MEDV: not standardised units
    assert np.corrcoef(served, expected["actual_MEDV"])[0, 1] > 0.5
