"""Reproducibility end to end: rerun, evaluate, and resuming a sweep (issue 5).

One small sweep (full-batch gd and shuffled mini-batch adam, 3 epochs, on a CSV copy of Boston)
is trained once for the module; the tests then rerun it, evaluate it, change its data, and
relaunch it after deleting a job. The relaunch test deletes a run, so it comes last.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from backprop_lab.data import load as data_mod
from backprop_lab.experiments.reproduce import comparison
from backprop_lab.experiments.run import identity
from tests.conftest import CONF, ROOT, compose_command, run_cli

JOBS = ["-m", "train=gd,adam", "train.epochs=3", "tracking.log_model=false"]


def sweep_args(csv: Path, uri: str, sweep_dir: Path) -> list[str]:
    return [*JOBS, "data=csv", f"data.path={csv}", "data.target=MEDV", f"tracking.uri={uri}",
            f"hydra.sweep.dir={sweep_dir}"]


def check(proc: Any) -> str:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return str(proc.stdout)


def test_config_hash_ignores_tracking_and_display_keys_only() -> None:
    cfg = {"seed": 0, "train": {"lr": 0.1, "progress": False}, "eval": {"n_examples": 5},
           "tracking": {"uri": "sqlite:///a.db"}, "rerun": {"force": False}}
    same = {**cfg, "train": {"lr": 0.1, "progress": True}, "eval": {"n_examples": 0},
            "tracking": {"uri": "sqlite:///b.db"}, "rerun": {"force": True}}
    base = identity.config_hash(cfg, "data", "commit", "")
    assert identity.config_hash(same, "data", "commit", "") == base
    assert identity.config_hash({**cfg, "seed": 1}, "data", "commit", "") != base
    assert identity.config_hash(cfg, "other data", "commit", "") != base
    assert identity.config_hash(cfg, "data", "other commit", "") != base
    assert identity.config_hash(cfg, "data", "commit", "diff --git a/x b/x") != base


def test_compare_gives_identical_within_tolerance_or_different() -> None:
    w = np.array([[0.5, -1.25]])
    same = comparison.compare("a", "b", ({"mse": 1.0}, {"mse": 1.0}), ({"W0": w}, {"W0": w.copy()}))
    assert same.verdict == comparison.IDENTICAL and same.largest("array") == 0.0
    close = comparison.compare("a", "b", ({"mse": 1.0}, {"mse": 1.0 + 1e-12}), ({}, {}))
    assert close.verdict == comparison.WITHIN
    assert close.items[0].max_abs == pytest.approx(1e-12, rel=1e-3)
    far = comparison.compare("a", "b", ({"mse": 1.0}, {"mse": 1.0}), ({"W0": w}, {"W0": w + 1e-3}))
    assert far.verdict == comparison.DIFFERENT
    assert far.items[-1].name == "W0" and far.items[-1].max_abs == pytest.approx(1e-3)
    f32 = comparison.compare("a", "b", ({}, {}), ({"W0": w}, {"W0": w.astype(np.float32)}))
    assert f32.verdict == comparison.WITHIN and "dtype" in f32.items[0].note  # same values
    missing = comparison.compare("a", "b", ({"mse": 1.0}, {}), ({}, {}))
    assert missing.verdict == comparison.DIFFERENT
    assert "rerun_verdict" in same.tags() and same.to_dict()["verdict"] == "identical"


def test_provenance_warnings_name_what_changed() -> None:
    logged = {"git_commit": "abc", "git_dirty": "false", "version.numpy": "2.0",
              "blas": "openblas A; openblas B", "platform": "Linux"}
    now = {"git_commit": "abc", "version.numpy": "2.0", "blas": "openblas B; openblas A",
           "platform": "Linux"}
    assert comparison.provenance_warnings(logged, now, None, "") == []
    changed = comparison.provenance_warnings(logged, {**now, "git_commit": "def",
                                                      "version.numpy": "2.1"}, None, "x")
    assert [w.split()[0] for w in changed] == ["git", "uncommitted", "version.numpy"]


@pytest.fixture(scope="module")
def sweep(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The trained sweep: store uri, work folder, csv path, sweep id and its two child runs."""
    work = tmp_path_factory.mktemp("rerun")
    db = work / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(template_db, db)
    uri = f"sqlite:///{db}"
    ds = data_mod.load_boston(ROOT / "data" / "boston_house_prices.csv")
    csv = work / "boston.csv"
    import pandas as pd

    frame = pd.DataFrame(ds.X, columns=ds.feature_names)
    frame["MEDV"] = ds.y[:, 0]
    frame.to_csv(csv, index=False)
    check(run_cli("pipelines.train", *sweep_args(csv, uri, work / "sweep1"), cwd=work))
    client = MlflowClient(uri)
    sweep_id = latest_sweep(client)
    children = {r.data.params["train.optimizer"]: r for r in jobs(client, sweep_id)}
    assert set(children) == {"gd", "adam"}
    return {"uri": uri, "work": work, "csv": csv, "sweep_id": sweep_id, "children": children}


def latest_sweep(client: MlflowClient) -> str:
    experiments = [e.experiment_id for e in client.search_experiments()]
    parents = client.search_runs(experiments, "tags.sweep_role = 'parent'",
                                 order_by=["attributes.start_time DESC"], max_results=1)
    return str(parents[0].data.tags["sweep_id"])


def jobs(client: MlflowClient, sweep_id: str) -> list[Any]:
    """The runs a sweep trained (not its parent)."""
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              f"tags.sweep_id = '{sweep_id}'")
    return [r for r in runs if r.data.tags.get("sweep_role") != "parent"]


def model_arrays(client: MlflowClient, run_id: str, dst: Path) -> dict[str, np.ndarray]:
    path = client.download_artifacts(run_id, "model.npz", str(dst / run_id))
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.slow
def test_rerun_of_a_sweep_is_bit_identical_and_ignores_edited_conf(sweep: dict[str, Any],
                                                                   tmp_path: Path) -> None:
    # an edited copy of conf/ as the rerun's config folder: were the rerun to compose its
    # config from conf/, it would train with lr 0.5 and seed 7
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    for name in ("gd", "adam"):
        text = (conf / "train" / f"{name}.yaml").read_text()
        (conf / "train" / f"{name}.yaml").write_text(re.sub(r"(?m)^lr: .*$", "lr: 0.5", text))
    (conf / "config.yaml").write_text((conf / "config.yaml").read_text().replace(
        "seed: 0", "seed: 7"))
    out = check(run_cli("pipelines.rerun", f"sweep_id={sweep['sweep_id']}",
                        f"tracking.uri={sweep['uri']}", f"--config-path={conf}",
                        cwd=sweep["work"]))
    assert out.count("verdict: identical") == 2, out
    client = MlflowClient(sweep["uri"])
    for original in sweep["children"].values():
        old_id = original.info.run_id
        [rerun] = client.search_runs([original.info.experiment_id], f"tags.rerun_of = '{old_id}'")
        assert rerun.data.tags["rerun_verdict"] == "identical"
        assert rerun.data.tags["rerun_of_sweep"] == sweep["sweep_id"]
        assert rerun.data.params["train.lr"] == original.data.params["train.lr"] != "0.5"
        assert rerun.data.params["seed"] == "0"
        assert rerun.data.metrics == original.data.metrics  # every final metric, exactly
        before = model_arrays(client, old_id, tmp_path)
        after = model_arrays(client, rerun.info.run_id, tmp_path)
        assert before.keys() == after.keys()
        for key, value in before.items():
            assert value.dtype == after[key].dtype and value.tobytes() == after[key].tobytes()
    minibatch = sweep["children"]["adam"].data.params
    assert minibatch["train.batch_size"] != "None" and minibatch["train.shuffle"] == "True"


@pytest.mark.slow
def test_evaluate_reproduces_the_logged_test_metrics(sweep: dict[str, Any], capsys: Any) -> None:
    """`python -m pipelines.evaluate run_id=<id> data=csv ...`, composed from conf/evaluate.yaml
    as Hydra would and run in this process (a subprocess would add seconds of imports)."""
    from backprop_lab.experiments.reproduce.evaluation import evaluate
    from backprop_lab.pipeline.config import EvaluateCommand

    original = sweep["children"]["adam"]
    overrides = [f"run_id={original.info.run_id}", f"tracking.uri={sweep['uri']}", "data=csv",
                 f"data.path={sweep['csv']}", "data.target=MEDV"]
    cmd = compose_command("evaluate", overrides, EvaluateCommand)
    assert cmd.data is not None
    evaluate(cmd)
    out = capsys.readouterr().out
    run_id = re.search(r"evaluation run ([0-9a-f]{32})", out).group(1)  # type: ignore[union-attr]
    evaluation = MlflowClient(sweep["uri"]).get_run(run_id)
    assert evaluation.data.tags["evaluation_of"] == original.info.run_id
    assert evaluation.data.tags["eval_split"] == "run"
    assert evaluation.data.tags["matches_logged_test_metrics"] == "true"
    logged = {k: v for k, v in original.data.metrics.items() if k.startswith("test_")}
    assert len(logged) >= 5
    assert {k: evaluation.data.metrics[k] for k in logged} == logged


@pytest.mark.slow
def test_rerun_refuses_when_the_data_changed(sweep: dict[str, Any], capsys: Any) -> None:
    from backprop_lab.errors import RerunRefused
    from backprop_lab.experiments.reproduce.rerun import rerun
    from backprop_lab.pipeline.config import RerunCommand, TrackingConfig

    csv: Path = sweep["csv"]
    run_id = sweep["children"]["gd"].info.run_id
    client = MlflowClient(sweep["uri"])
    experiment = [sweep["children"]["gd"].info.experiment_id]
    reruns = len(client.search_runs(experiment, f"tags.rerun_of = '{run_id}'"))
    saved = csv.read_bytes()
    lines = saved.decode().splitlines()
    first = lines[1].split(",")
    first[0] = str(float(first[0]) + 1.0)  # one value of one row
    try:
        csv.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
        with pytest.raises(RerunRefused) as refused:
            rerun(RerunCommand(run_id=run_id, tracking=TrackingConfig(sweep["uri"], None)))
    finally:
        csv.write_bytes(saved)
    assert refused.value.exit_status == 2
    err = str(refused.value)
    assert f"the data changed since run {run_id}" in err and "force=true" in err
    assert len(client.search_runs(experiment, f"tags.rerun_of = '{run_id}'")) == reruns


@pytest.mark.slow
def test_relaunched_sweep_runs_only_the_deleted_job(sweep: dict[str, Any]) -> None:
    client = MlflowClient(sweep["uri"])
    deleted, kept = sweep["children"]["gd"], sweep["children"]["adam"]
    client.delete_run(deleted.info.run_id)  # soft delete: lifecycle_stage "deleted"
    out = check(run_cli("pipelines.train", *sweep_args(sweep["csv"], sweep["uri"],
                                                       sweep["work"] / "sweep2"),
                        cwd=sweep["work"]))
    assert f"reused run {kept.info.run_id}" in out
    assert f"reused run {deleted.info.run_id}" not in out
    new_sweep = latest_sweep(client)
    assert new_sweep != sweep["sweep_id"]
    experiment = [kept.info.experiment_id]
    parent = client.search_runs(experiment, f"tags.sweep_id = '{new_sweep}' and "
                                            "tags.sweep_role = 'parent'")[0]
    assert parent.data.tags[f"{identity.REUSE_TAG}{kept.info.run_id}"]
    trained = jobs(client, new_sweep)
    assert [r.data.params["train.optimizer"] for r in trained] == ["gd"]
    assert trained[0].data.tags["config_hash"] == deleted.data.tags["config_hash"]
    assert trained[0].data.metrics == deleted.data.metrics
