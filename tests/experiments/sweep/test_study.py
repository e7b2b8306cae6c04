"""The study behind `hydra/sweeper=optuna`, in process: where it is stored, what it refuses,
how a resumed study is seeded, which trials count, what a dead search leaves, the summary."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from backprop_lab.errors import ConfigError, InputError
from backprop_lab.experiments.sweep import resume, search, study

SPACE = {"train.lr": FloatDistribution(1e-4, 1.0, log=True), "model.depth": IntDistribution(0, 3)}


def new_study(tmp_path: Path, space: dict | None = None, direction: str = "minimize",
              name: str = "s") -> optuna.Study:
    storage = study.open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    return study.open_study(storage, name, direction, space or SPACE,
                            optuna.samplers.RandomSampler(0), optuna.pruners.NopPruner())


def test_storage_sits_beside_a_sqlite_store_and_a_server_needs_its_own() -> None:
    assert study.storage_url(None, "sqlite:////data/mlruns/mlflow.db") == \
        "sqlite:////data/mlruns/optuna.db"
    assert study.storage_url("postgresql://u@h/optuna", "http://h:5000") == \
        "postgresql://u@h/optuna"
    with pytest.raises(ConfigError, match="hydra.sweeper.storage"):
        study.storage_url(None, "http://127.0.0.1:5000")
    assert study.shown_url("postgresql://ann:secret@db:5432/optuna") == \
        "postgresql://ann:***@db:5432/optuna"


def test_names_are_checked() -> None:
    with pytest.raises(ConfigError, match="hydra.sweeper.sampler"):
        study.make_sampler("cmaes", 0, SPACE)
    with pytest.raises(ConfigError, match="hydra.sweeper.pruner"):
        study.make_pruner("patient", 400, 10)
    with pytest.raises(ConfigError, match="grid sampler needs"):
        study.make_sampler("grid", 0, SPACE)
    grid = {"a": CategoricalDistribution([1, 2]), "b": IntDistribution(0, 4, step=2)}
    assert study.grid_values(grid) == {"a": [1, 2], "b": [0, 2, 4]}
    assert study.grid_size(grid) == 6


def test_a_study_keeps_its_space_and_direction(tmp_path: Path) -> None:
    first = new_study(tmp_path)
    again = new_study(tmp_path)
    assert again._study_id == first._study_id
    with pytest.raises(InputError, match="another search space.*train.lr float 0.0001..1 "
                                         r"\(log\)"):
        new_study(tmp_path, {**SPACE, "model.depth": IntDistribution(0, 5)})
    with pytest.raises(InputError, match="another direction"):
        new_study(tmp_path, direction="maximize")
    with pytest.raises(ConfigError, match="hydra.sweeper.direction"):
        new_study(tmp_path, direction="down")


def test_an_unopenable_storage_is_an_input_error() -> None:
    with pytest.raises(InputError, match="cannot open nosuchdb://x"):
        study.open_storage("nosuchdb://x")


def test_a_resumed_study_is_seeded_anew_but_reproducibly() -> None:
    assert study.sampler_seed(3, 0) == 3
    assert study.sampler_seed(3, 8) == study.sampler_seed(3, 8) != study.sampler_seed(3, 9)


def test_killed_trials_are_failed_retried_and_not_counted(tmp_path: Path) -> None:
    s = new_study(tmp_path)
    done = s.ask(SPACE)
    s.tell(done, 1.0)
    orphan = s.ask(SPACE)
    assert resume.revive(s, client=None, exclusive=True, stale_after=300) == [orphan.number]
    trials = s.get_trials()
    assert trials[orphan.number].state == TrialState.FAIL
    assert [resume.counted(t) for t in trials[:2]] == [True, False]  # then the retry, waiting
    retry = s.ask(SPACE)
    assert retry.params == orphan.params
    assert retry.user_attrs[resume.RETRY_ATTR] == orphan.number
    s.tell(retry, 1.5)
    assert resume.revive(s, client=None, exclusive=True, stale_after=300) == []  # retried once
    interrupted = s.ask(SPACE)  # a sweep interrupted by Ctrl-C fails its own trials
    resume.kill(s, interrupted._trial_id, "the sweep was interrupted while it ran")
    assert resume.revive(s, client=None, exclusive=True, stale_after=300) == [interrupted.number]


def test_without_the_lock_a_trial_is_dead_only_when_stale(tmp_path: Path) -> None:
    s = new_study(tmp_path)
    s.ask(SPACE)
    running = s.get_trials()[0]
    assert not resume.dead(running, None, exclusive=False, stale_after=300)
    assert resume.dead(running, None, exclusive=False, stale_after=-1)


def test_the_summary_names_the_best_the_pruned_and_the_importances(tmp_path: Path) -> None:
    s = new_study(tmp_path)
    t = s.ask(SPACE)
    s.tell(t, 2.0)
    text = search.summary(s)
    assert "1 complete" in text and "Best trial 0" in text and "need at least 4" in text
    for value in (1.0, 3.0, 0.5, 4.0):
        trial = s.ask(SPACE)
        s.tell(trial, value * trial.params["train.lr"])
    pruned = s.ask(SPACE)
    s._storage.set_trial_user_attr(pruned._trial_id, resume.PRUNED_ATTR, 9)
    s.tell(pruned, state=TrialState.PRUNED)
    text = search.summary(s)
    assert "5 complete, 1 pruned" in text and "Pruned (not ranked): #5 at epoch 9" in text
    assert "Parameter importances (Optuna): " in text
    history = search.history(s)
    assert all(b <= a for (_, a), (_, b) in zip(history, history[1:]))
    assert math.isclose(history[-1][1], s.best_value)
