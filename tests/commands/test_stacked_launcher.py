"""`hydra/launcher=stacked`: a multirun's jobs train as one stack, each still its own child run,
recording exactly what the basic launcher's run of the same job records."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli

SWEEP = ["-m", "train.lr=0.001,0.01,3", "model.ensemble=2", "eval.cv_folds=2",
         "model.hidden=[8]", "train.epochs=15", "train.patience=3", "tracking.log_model=false"]
SKIP = ("seconds_", "heartbeat", "sweep_id", "mlflow.", "launcher", "git_", "hydra")


def runs_by_name(uri: str) -> dict[str, object]:
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("backprop-lab").experiment_id])
    return {r.info.run_name: r for r in runs if r.data.tags.get("sweep_role") != "parent"}


@pytest.mark.slow
def test_stacked_launcher_records_what_the_basic_launcher_records(tmp_path: Path) -> None:
    stores = {}
    for launcher in ("stacked", "basic"):
        uri = f"sqlite:///{tmp_path / launcher / 'mlflow.db'}"
        (tmp_path / launcher).mkdir()
        out = run_cli("pipelines.train", *SWEEP, f"hydra/launcher={launcher}",
                      f"tracking.uri={uri}", f"hydra.sweep.dir={tmp_path / launcher / 'sweep'}",
                      cwd=tmp_path / launcher, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        stores[launcher] = uri
    stacked, basic = runs_by_name(stores["stacked"]), runs_by_name(stores["basic"])
    assert sorted(stacked) == sorted(basic) and len(stacked) == 3
    for name, run in stacked.items():
        other = basic[name]
        assert run.info.status == other.info.status  # type: ignore[attr-defined]
        assert run.data.metrics == other.data.metrics, name  # type: ignore[attr-defined]
        params = [{k: v for k, v in r.data.params.items() if k != "tracking.uri"}  # type: ignore
                  for r in (run, other)]
        assert params[0] == params[1]
        tags = {k: v for k, v in run.data.tags.items()  # type: ignore[attr-defined]
                if not k.startswith(SKIP)}
        assert tags == {k: v for k, v in other.data.tags.items()  # type: ignore[attr-defined]
                        if not k.startswith(SKIP)}
        for artifact in ("scores.csv", "curves.csv"):  # every cell's scores and curve
            texts = [Path(MlflowClient(uri).download_artifacts(
                r.info.run_id, artifact, str(tmp_path / f"{side}-{name}"))).read_text()
                for uri, r, side in ((stores["stacked"], run, "s"), (stores["basic"], other, "b"))]
            assert texts[0] == texts[1], (name, artifact)
    assert {r.info.status for r in stacked.values()} == {"FINISHED", "FAILED"}  # lr=3 diverges
