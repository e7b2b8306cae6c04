"""`hydra/sweeper=optuna` (sweep=optuna): real searches with tiny epochs. The study persists and
a second run continues it without retraining finished trials, a trial a killed search left
RUNNING is failed, its run marked KILLED and its parameters tried again; a pruner stops a bad
trial, which becomes a `pruned` child listed apart; bad input is one error line, exit 2."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from backprop_lab.experiments.sweep import resume, search, study
from tests.commands.test_errors import assert_one_error_line
from tests.conftest import run_cli

pytestmark = pytest.mark.slow
TINY = ["sweep=optuna", "train.epochs=4", "train.report_every=2", "model.ensemble=1"]
SPACE = {"model.depth": IntDistribution(0, 3), "train.lr": FloatDistribution(1e-4, 1, log=True)}


def store(tmp: Path, template_db: Path) -> str:
    db = tmp / "store" / "mlflow.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    if not db.exists():
        shutil.copy(template_db, db)
    return f"sqlite:///{db}"


def search_cli(tmp: Path, uri: str, name: str, *args: str) -> Any:
    return run_cli("pipelines.train", "-m", *TINY, *args, f"tracking.uri={uri}",
                   f"hydra.sweep.dir={tmp / name}", cwd=tmp)


def children(client: MlflowClient, sweep_dir: Path) -> list[Any]:
    import json

    parent = json.loads((sweep_dir / "sweep.json").read_text())["parent_run_id"]
    eid = client.get_run(parent).info.experiment_id
    return client.search_runs([eid], f"tags.`mlflow.parentRunId` = '{parent}'")


def load(tmp: Path) -> optuna.Study:
    return optuna.load_study(study_name="backprop-lab-optuna",
                             storage=f"sqlite:///{tmp / 'store' / 'optuna.db'}")


def test_a_killed_search_resumes_to_n_trials(template_db: Path, tmp_path: Path) -> None:
    uri = store(tmp_path, template_db)
    first = search_cli(tmp_path, uri, "a", "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=1",
                       "hydra.sweeper.pruner=none")
    assert first.returncode == 0, first.stderr[-3000:]
    assert (tmp_path / "store" / "optuna.db").is_file()  # beside mlflow.db
    client = MlflowClient(uri)
    done = {r.info.run_id for r in children(client, tmp_path / "a")}
    assert len(done) == 2
    # a search killed outright: its trial RUNNING in the study, its run RUNNING in MLflow
    left = load(tmp_path)
    orphan = left.ask(SPACE)
    eid = client.get_experiment_by_name("backprop-lab").experiment_id
    run = client.create_run(eid, run_name="killed trial")
    left._storage.set_trial_user_attr(orphan._trial_id, resume.RUN_ATTR, run.info.run_id)

    again = search_cli(tmp_path, uri, "b", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=1",
                       "hydra.sweeper.pruner=none")
    assert again.returncode == 0, again.stderr[-3000:]
    trials = load(tmp_path).get_trials()
    killed = trials[orphan.number]
    assert killed.state == TrialState.FAIL and killed.user_attrs[resume.KILLED_ATTR]
    retry = [t for t in trials if t.user_attrs.get(resume.RETRY_ATTR) == orphan.number]
    assert len(retry) == 1 and retry[0].params == killed.params
    assert retry[0].state == TrialState.COMPLETE
    assert sum(resume.counted(t) for t in trials) == 4 and len(trials) == 5
    dead = client.get_run(run.info.run_id)
    assert dead.info.status == "KILLED" and dead.data.tags["killed"] == "true"
    new = children(client, tmp_path / "b")  # the 2 finished trials were not trained again
    assert len(new) == 2 and not done & {r.info.run_id for r in new}
    assert {t.user_attrs[resume.RUN_ATTR] for t in trials if t.number < 2} == done


@pytest.mark.parametrize("launcher", [
    ["hydra.sweeper.n_jobs=1"],  # one trial after the other
    # one trial at a time, its networks cut over two worker processes (trials side by side in
    # workers report in the order the workers reach each epoch: which rung values the pruner
    # has seen first is then a race, as in any parallel search)
    ["hydra.sweeper.n_jobs=1", "hydra/launcher=stacked", "hydra.launcher.n_jobs=2"],
    ["hydra.sweeper.n_jobs=2", "hydra/launcher=stacked", "hydra.launcher.backend=threads",
     "hydra.launcher.n_jobs=1"],  # both in one stack: one leaves it
])
def test_a_pruned_trial_is_a_pruned_child_listed_apart(launcher: list[str], template_db: Path,
                                                       tmp_path: Path) -> None:
    uri = store(tmp_path, template_db)
    # the grid (seed 1) asks the good lr first, then one far too small: successive
    # halving stops it at its first rung
    out = search_cli(tmp_path, uri, "p", *launcher, "hydra.sweeper.sampler=grid", "model.depth=1",
                     "train.lr=choice(0.03,0.00001)", "hydra.sweeper.pruner=successive_halving",
                     "train.epochs=6", "hydra.sweeper.study_name=pruning", "hydra.sweeper.seed=1")
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(uri)
    runs = {float(r.data.params["train.lr"]): r for r in children(client, tmp_path / "p")}
    pruned, kept = runs[1e-5], runs[0.03]
    assert kept.info.status == "FINISHED" and "pruned" not in kept.data.tags
    assert pruned.info.status == "FAILED" and pruned.data.tags["pruned"] == "true"
    epoch = int(pruned.data.tags["pruned_epoch"])
    assert epoch in (1, 3) and "val_mse" not in pruned.data.metrics
    points = client.get_metric_history(pruned.info.run_id, "trial_value")
    assert [p.step for p in points] == list(range(1, epoch + 1, 2))
    assert len(client.get_metric_history(pruned.info.run_id, "train_loss")) == epoch + 1
    trials = optuna.load_study(study_name="pruning",
                               storage=f"sqlite:///{tmp_path / 'store' / 'optuna.db'}").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED]
    parent = client.get_run(kept.data.tags["mlflow.parentRunId"]).data.tags
    assert parent["n_pruned"] == "1" and parent["best_run_id"] == kept.info.run_id
    assert "Optuna study" in parent[search.SUMMARY_TAG]
    assert "PRUNED by the search after epoch" in parent["mlflow.note.content"]
    compared = run_cli("pipelines.compare", f"tracking.uri={uri}", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr[-2000:]
    rows = [line.split() for line in compared.stdout.splitlines() if line[:1].isdigit()]
    assert rows[0][2] != "pruned" and rows[1][2] == "pruned"  # ranked: only the finished one
    assert rows[1][-1] == "pruned" and "diverged" not in compared.stdout
    assert (tmp_path / "p" / "compare" / "optimization_history.png").is_file()


@pytest.mark.parametrize(("args", "needles"), [
    (["hydra.sweeper.pruner=nope"], ["hydra.sweeper.pruner", "median"]),
    (["hydra.sweeper.sampler=nope"], ["hydra.sweeper.sampler", "tpe"]),
    (["model.nokey=interval(0,1)"], ["model.nokey", "no such key"]),
    (["hydra.sweeper.storage=nosuchdb://x/y"], ["hydra.sweeper.storage", "nosuchdb"]),
    (["hydra.sweeper.sampler=grid"], ["grid", "train.lr"]),  # a log interval has no grid
])
def test_bad_search_input_is_one_error_line(args: list[str], needles: list[str],
                                            template_db: Path, tmp_path: Path) -> None:
    out = search_cli(tmp_path, store(tmp_path, template_db), "s", *args)
    assert_one_error_line(out, 2, *needles)


def test_a_study_reused_with_another_space_or_direction_is_refused(
    template_db: Path, tmp_path: Path
) -> None:
    uri = store(tmp_path, template_db)
    url = f"sqlite:///{tmp_path / 'store' / 'optuna.db'}"
    space = dict(SPACE)
    study.open_study(study.open_storage(url), "backprop-lab-optuna", "minimize", space,
                     optuna.samplers.RandomSampler(0), optuna.pruners.NopPruner())
    other = search_cli(tmp_path, uri, "s", "train.lr=interval(0.001,0.1)")
    assert_one_error_line(other, 2, "another search space", "choose another")
    turned = search_cli(tmp_path, uri, "t", "hydra.sweeper.direction=maximize")
    assert_one_error_line(turned, 2, "another direction")


def test_two_sweeps_on_one_study_cooperate_to_n_trials(template_db: Path, tmp_path: Path) -> None:
    """Two processes given the same study run n_trials between them, not n_trials each; the
    one that started second neither refuses nor takes the first one's trials for dead."""
    import subprocess
    import sys

    uri = store(tmp_path, template_db)
    MlflowClient(uri).search_experiments()
    args = ["hydra.sweeper.n_trials=6", "hydra.sweeper.n_jobs=1", "hydra.sweeper.pruner=none",
            "train.epochs=300"]
    both = [subprocess.Popen([sys.executable, "-m", "pipelines.train", "-m", *TINY, *args,
                              f"tracking.uri={uri}", f"hydra.sweep.dir={tmp_path / name}"],
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for name in ("a", "b")]
    outs = [p.communicate(timeout=600) for p in both]
    for p, (_, err) in zip(both, outs):
        assert p.returncode == 0, err[-3000:]
    assert any("joins it" in out + err for out, err in outs)
    trials = load(tmp_path).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert not any(t.user_attrs.get(resume.KILLED_ATTR) for t in trials)
    client = MlflowClient(uri)
    jobs = [len(children(client, tmp_path / name)) for name in ("a", "b")]
    assert sum(jobs) == 6 and min(jobs) >= 1, jobs


def test_a_study_on_postgresql_persists_and_resumes(template_db: Path, tmp_path: Path) -> None:
    """The server mode's study: a database of its own on PostgreSQL (not MLflow's schema)."""
    import json
    import shutil as sh

    from tests.procs import local_postgres

    folder, postgres = local_postgres()
    try:
        uri = store(tmp_path, template_db)
        url = postgres.url("optuna")
        args = ["hydra.sweeper.n_jobs=1", "hydra.sweeper.pruner=none",
                f"hydra.sweeper.storage={url}"]
        first = search_cli(tmp_path, uri, "a", "hydra.sweeper.n_trials=2", *args)
        assert first.returncode == 0, first.stderr[-3000:]
        second = search_cli(tmp_path, uri, "b", "hydra.sweeper.n_trials=3", *args)
        assert second.returncode == 0, second.stderr[-3000:]
        assert "jobs 1/1 " in second.stderr and "/3 " not in second.stderr  # what it lacked
        trials = optuna.load_study(study_name="backprop-lab-optuna", storage=url).get_trials()
        assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
        client = MlflowClient(uri)
        assert [len(children(client, tmp_path / n)) for n in ("a", "b")] == [2, 1]
        password = postgres.password_file.read_text().strip()
        assert password not in first.stdout + first.stderr
        for job in children(client, tmp_path / "a"):  # nor in what a run logs (.hydra/)
            folder_ = Path(client.download_artifacts(job.info.run_id, ".hydra", str(tmp_path)))
            hydra_yaml = (folder_ / "hydra.yaml").read_text()
            assert "optuna" in hydra_yaml and password not in hydra_yaml
        parent = json.loads((tmp_path / "a" / "sweep.json").read_text())["parent_run_id"]
        logged = Path(client.download_artifacts(parent, "multirun.yaml", str(tmp_path)))
        assert password not in logged.read_text() and ":***@" in logged.read_text()
        assert (tmp_path / "a" / "study.json").stat().st_mode & 0o077 == 0
        assert not (tmp_path / "store" / "optuna.db").exists()
    finally:
        postgres.stop()
        sh.rmtree(folder, ignore_errors=True)
