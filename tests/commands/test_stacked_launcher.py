"""`hydra/launcher=stacked`: a multirun's jobs train as one stack, each still its own child run,
recording exactly what the basic launcher's run of the same job records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli

SWEEP = ["-m", "train.lr=0.001,0.01,3", "model.ensemble=4", "eval.cv_folds=2",
         "model.hidden=[48]", "train.epochs=15", "train.patience=3", "tracking.log_model=false"]
SKIP = ("seconds_", "heartbeat", "sweep_id", "mlflow.", "launcher", "git_", "hydra")


def runs_by_name(uri: str) -> dict[str, object]:
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("backprop-lab").experiment_id])
    return {r.info.run_name: r for r in runs if r.data.tags.get("sweep_role") != "parent"}


@pytest.mark.slow
def test_stacked_launcher_records_what_the_basic_launcher_records(tmp_path: Path) -> None:
    """With one worker and with two (each stack cut in two, pipeline.parallel.execute)."""
    stores = {}
    variants = {"stacked-2": ["hydra/launcher=stacked", "hydra.launcher.n_jobs=2"],
                "stacked-1": ["hydra/launcher=stacked", "hydra.launcher.n_jobs=1"],
                "basic": ["hydra/launcher=basic"]}
    for variant, launcher in variants.items():
        uri = f"sqlite:///{tmp_path / variant / 'mlflow.db'}"
        (tmp_path / variant).mkdir()
        out = run_cli("pipelines.train", *SWEEP, *launcher,
                      f"tracking.uri={uri}", f"hydra.sweep.dir={tmp_path / variant / 'sweep'}",
                      cwd=tmp_path / variant, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        stores[variant] = uri
    basic = runs_by_name(stores["basic"])
    for variant in ("stacked-2", "stacked-1"):
        compare(runs_by_name(stores[variant]), basic, stores[variant], stores["basic"],
                tmp_path / f"{variant}-artifacts")


def compare(stacked: dict[str, Any], basic: dict[str, Any], stacked_uri: str,
            basic_uri: str, tmp_path: Path) -> None:
    """The same runs, metrics, params, tags (but timings and ids) and artifacts."""
    assert sorted(stacked) == sorted(basic) and len(stacked) == 3
    stores = {"stacked": stacked_uri, "basic": basic_uri}
    for name, run in stacked.items():
        other = basic[name]
        assert run.info.status == other.info.status
        assert run.data.metrics == other.data.metrics, name
        params = [{k: v for k, v in r.data.params.items() if k != "tracking.uri"}
                  for r in (run, other)]
        assert params[0] == params[1]
        tags = {k: v for k, v in run.data.tags.items()
                if not k.startswith(SKIP)}
        assert tags == {k: v for k, v in other.data.tags.items()
                        if not k.startswith(SKIP)}
        for artifact in ("scores.csv", "curves.csv"):  # every cell's scores and curve
            texts = [Path(MlflowClient(uri).download_artifacts(
                r.info.run_id, artifact, str(tmp_path / f"{side}-{name}"))).read_text()
                for uri, r, side in ((stores["stacked"], run, "s"), (stores["basic"], other, "b"))]
            assert texts[0] == texts[1], (name, artifact)
    assert {r.info.status for r in stacked.values()} == {"FINISHED", "FAILED"}  # lr=3 diverges


def test_threads_share_the_cores_out_between_stacks_and_blas() -> None:
    """n_jobs workers (null: every core), each with BLAS on one thread, whatever n_jobs (a GEMM's
    bits may depend on its threads); n_jobs < 1 is refused."""
    import os

    from hydra_plugins.backprop_lab_launcher.stacked_launcher import threads

    cores = os.cpu_count() or 1
    assert threads(None) == (cores, 1)
    for n in (1, 2, 3, 8):
        assert threads(n) == (n, 1)
    with pytest.raises(ValueError, match="n_jobs"):
        threads(0)


@pytest.mark.slow
def test_stacked_sweep_reports_from_inside_the_stack(tmp_path: Path) -> None:
    """While the stack trains, no job has ended: the progress line shows the stack's epoch and
    its networks (stderr is not a terminal here: a line every few seconds)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = run_cli("pipelines.train", "-m", "train.lr=0.001,0.01", "model.ensemble=20",
                  "eval.cv_folds=5", "model.hidden=[64,64]", "train.epochs=100",
                  "train.patience=null", "tracking.log_model=false", "hydra/launcher=stacked",
                  f"tracking.uri={uri}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                  cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    inside = [ln for ln in out.stderr.splitlines()
              if ln.startswith("progress: jobs 0/2 (2 running)") and "| stacks: epoch " in ln]
    assert inside, out.stderr[-3000:]
    assert "/100, " in inside[0] and "0 stopped" in inside[0]
    final = [ln for ln in out.stderr.splitlines() if ln.startswith("progress:")][-1]
    assert final.startswith("progress: jobs 2/2 (0 running) | 200 networks")
    assert out.stdout.count("parent run: http://") == 1  # the end table follows, once
