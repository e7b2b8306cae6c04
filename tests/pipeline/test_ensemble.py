"""Ensembles: the mean of independently trained members, saved and loaded, seeded per member."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from backprop_lab.nn.ensemble import Ensemble, member_rngs, members
from backprop_lab.nn.network import Network
from backprop_lab.nn.weights import load_arrays, load_network, save_network
from backprop_lab.pipeline import crossval, stages
from backprop_lab.pipeline.compose import to_config
from backprop_lab.pipeline.config import ConfigError, ModelConfig
from backprop_lab.tracking.served_model import NetworkModel


def nets(n: int, sizes: list[int], seed: int = 0) -> list[Network]:
    return [Network.create(sizes, r, "tanh", init="xavier")
            for r in member_rngs(np.random.default_rng(seed), n)]


def test_prediction_is_the_members_mean_and_its_cost_at_most_theirs() -> None:
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(50, 4)), rng.normal(size=(50, 2))
    ensemble = Ensemble(nets(3, [4, 6, 2]))
    expected = np.mean([net.predict(X) for net in ensemble.members], axis=0)
    np.testing.assert_allclose(ensemble.predict(X), expected, rtol=1e-14)
    err = expected - y
    assert ensemble.cost(X, y) == pytest.approx(0.5 * np.sum(err**2) / len(X), rel=1e-14)
    # squared error is convex: the mean's cost never exceeds the members' mean cost
    assert ensemble.cost(X, y) <= np.mean([net.cost(X, y) for net in ensemble.members])


def test_members_draw_from_independent_streams_and_the_first_from_the_run_stream() -> None:
    first, second = nets(2, [3, 5, 1])
    alone = Network.create([3, 5, 1], np.random.default_rng(0), "tanh", init="xavier")
    np.testing.assert_array_equal(first.weights[0], alone.weights[0])
    assert not np.allclose(first.weights[0], second.weights[0])
    assert member_rngs(np.random.default_rng(0), 1)[0].random() == np.random.default_rng(0).random()


def test_members_of_different_architectures_are_refused() -> None:
    with pytest.raises(ValueError, match="member 1 has layers"):
        Ensemble([*nets(1, [3, 5, 1]), *nets(1, [3, 4, 1])])
    with pytest.raises(ValueError, match="at least 2 members"):
        Ensemble(nets(1, [3, 5, 1]))


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    ensemble = Ensemble(nets(3, [4, 6, 6, 1]))
    path = save_network(ensemble, tmp_path / "model.npz", {"x_shift": np.zeros(4)})
    arrays = load_arrays(path)
    assert int(arrays["ensemble_size"]) == 3 and "m2.W2" in arrays and "W0" not in arrays
    loaded = load_network(path)
    assert isinstance(loaded, Ensemble) and len(loaded.members) == 3
    X = np.random.default_rng(0).normal(size=(7, 4))
    np.testing.assert_array_equal(loaded.predict(X), ensemble.predict(X))


def test_a_single_network_file_is_unchanged(tmp_path: Path) -> None:
    path = save_network(nets(1, [4, 3, 1])[0], tmp_path / "one.npz")
    assert "ensemble_size" not in load_arrays(path)
    assert isinstance(load_network(path), Network)


def test_a_missing_member_array_names_the_member(tmp_path: Path) -> None:
    path = save_network(Ensemble(nets(2, [4, 3, 1])), tmp_path / "model.npz")
    arrays = {k: v for k, v in load_arrays(path).items() if k != "m1.b1"}
    np.savez(tmp_path / "broken.npz", **arrays)
    with pytest.raises(ValueError, match=r"broken.npz \(ensemble member 1\)"):
        load_network(tmp_path / "broken.npz")


@pytest.fixture
def config(compose_config):
    return to_config(compose_config(["model.ensemble=3", "model.depth=1", "model.width=8",
                                     "train.epochs=20", "train.patience=null"]))


def test_run_trains_every_member_reproducibly(config) -> None:
    seen: list[tuple[int, tuple[str, ...]]] = []
    diagnosed: list[int] = []

    def report(epoch: int, values: dict[str, float]) -> None:
        seen.append((epoch, tuple(k for k in values if not k.startswith("diag."))))
        if any(k.startswith("diag.") for k in values):
            diagnosed.append(epoch)

    result = stages.run(config, [report])
    model = result.network
    assert isinstance(model, Ensemble) and len(result.histories) == 3
    assert all(h.epochs_run == 20 for h in result.histories)
    assert seen == [(epoch, ("train_cost", "val_cost")) for epoch in range(20)]  # member 0's
    assert diagnosed == [0, 10]  # gradient flow every diag.every=10 epochs, member 0's
    assert result.histories[1].train_cost != result.histories[0].train_cost
    again = stages.run(config).network
    for a, b in zip(members(model), members(again)):
        np.testing.assert_array_equal(a.weights[0], b.weights[0])
    p = result.prepared
    y_pred = p.y_scaler.inverse_transform(model.predict(p.X("test")))
    r2 = 1 - np.sum((p.split.y_test - y_pred) ** 2) / np.sum(
        (p.split.y_test - p.split.y_test.mean()) ** 2)
    assert result.evaluation.metrics["test_r2"] == pytest.approx(r2, rel=1e-12)


def test_one_member_is_exactly_the_single_network(compose_config) -> None:
    base = ["model.depth=1", "model.width=8", "train.epochs=10", "model.ensemble=1"]
    single = stages.run(to_config(compose_config([*base, "train.stacked=false"])))
    one = stages.run(to_config(compose_config(base)))
    assert isinstance(one.network, Network)
    assert single.evaluation.metrics == one.evaluation.metrics


def test_a_diverged_member_is_frozen_and_reported(compose_config) -> None:
    config = to_config(compose_config(["model.ensemble=3", "train=gd", "train.lr=50",
                                       "train.epochs=30", "model.depth=1", "model.width=8"]))
    result = stages.run(config)
    assert len(result.histories) == 3 and result.history.diverged
    assert result.diverged_member == next(k for k, h in enumerate(result.histories) if h.diverged)
    assert all(h.epochs_run < 30 for h in result.histories if h.diverged)


def test_init_from_must_hold_as_many_networks(config, tmp_path: Path) -> None:
    path = save_network(nets(1, [13, 8, 1])[0], tmp_path / "one.npz")
    model: ModelConfig = config.model
    model.init_from, model.activation = str(path), "tanh"
    with pytest.raises(ValueError, match="holds 1 network.*model.ensemble asks for 3"):
        stages.build(model, 13, 1, np.random.default_rng(0))


def test_ensemble_size_is_checked(compose_config) -> None:
    with pytest.raises(ConfigError, match="model.ensemble: must be >= 1"):
        to_config(compose_config(["model.ensemble=0"]))


def test_pyfunc_model_serves_the_ensemble(config, tmp_path: Path) -> None:
    result = stages.run(config)
    p = result.prepared
    arrays = {**p.x_scaler.to_arrays("x_"), **p.y_scaler.to_arrays("y_"),
              "feature_names": np.array(result.dataset.feature_names),
              "target_names": np.array(result.dataset.target_names)}
    path = save_network(result.network, tmp_path / "model.npz", arrays)
    served = NetworkModel()
    served.load_context(SimpleNamespace(artifacts={"model": str(path)}))
    frame = pd.DataFrame(p.split.X_test, columns=result.dataset.feature_names)
    predicted = served.predict(None, frame)["MEDV"].to_numpy()
    np.testing.assert_allclose(predicted, result.evaluation.predictions["predicted_MEDV"],
                               rtol=1e-12)


def test_a_stacked_job_scores_exactly_as_one_by_one(compose_config) -> None:
    """Members x folds x repeats in one stack: every cell's weights, histories and scores are
    those of training each network alone (`train.stacked=false`)."""
    base = ["model.ensemble=2", "eval.cv_folds=3", "eval.repeats=2", "model.depth=1",
            "model.width=8", "train.epochs=15", "train.patience=3", "diag.every=4"]
    ds = stages.load(to_config(compose_config(base)).data)
    stacked = crossval.run_cells(to_config(compose_config(base)), ds)
    alone = crossval.run_cells(to_config(compose_config([*base, "train.stacked=false"])), ds)
    assert len(stacked) == 6
    for a, b in zip(stacked, alone):
        assert a.result.evaluation.metrics == b.result.evaluation.metrics
        for net_a, net_b in zip(members(a.result.network), members(b.result.network)):
            for p, q in zip(net_a.parameters, net_b.parameters):
                np.testing.assert_array_equal(p, q)
        assert [h.val_cost for h in a.result.histories] == [h.val_cost for h in b.result.histories]
        assert a.result.histories[0].diag == b.result.histories[0].diag
    pd.testing.assert_frame_equal(crossval.scores_table(stacked), crossval.scores_table(alone))
