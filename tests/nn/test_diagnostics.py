"""Gradient flow: the logged norms are the true gradients' norms, the flags fire where they
should and only there, and diagnosing changes no bit of training."""

from __future__ import annotations

import numpy as np
import pytest

from backprop_lab.nn.diagnostics import Diagnostics, flags
from backprop_lab.nn.network import Network, Workspace
from backprop_lab.nn.training import TrainConfig, train
from backprop_lab.pipeline import stages
from backprop_lab.pipeline.compose import compose, to_config
from tests.nn.test_network import numeric_gradients

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # dead units overflow on purpose


def data(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    return X, (X @ rng.normal(size=5) + 0.1 * rng.normal(size=n)).reshape(-1, 1)


def test_logged_gradient_norms_equal_finite_difference_norms() -> None:
    X, y = data()
    net = Network.create([5, 7, 4, 1], np.random.default_rng(1), "tanh", init="xavier")
    diag = Diagnostics(every=1)
    diag.start(net)
    ws = Workspace.for_network(net, len(X))
    net.backprop(X, y, ws)
    diag.observe(net, ws)
    record = diag.finish(net)
    fd = numeric_gradients(net, X, y, 1e-6)[0::2]  # [dW_0, db_0, dW_1, ...]: the W's
    for l, grad_W in enumerate(fd):
        assert record[f"diag.grad_norm.l{l}"] == pytest.approx(np.linalg.norm(grad_W), rel=1e-6)


def test_diagnosing_changes_no_bit_of_the_trained_weights() -> None:
    X, y = data()
    config = TrainConfig(optimizer="adam", lr=1e-2, epochs=30, batch_size=32)
    plain = Network.create([5, 8, 1], np.random.default_rng(2), "relu")
    watched = plain.copy()
    h1 = train(plain, X, y, config, np.random.default_rng(3))
    h2 = train(watched, X, y, config, np.random.default_rng(3), diagnostics=Diagnostics(1))
    for a, b in zip(plain.parameters, watched.parameters):
        assert a.tobytes() == b.tobytes()
    assert h1.train_cost == h2.train_cost and len(h2.diag) == 30 and not h1.diag


def test_deep_sigmoid_with_uniform_init_vanishes() -> None:
    """Boston, 8 sigmoid layers of 8 with U[-1, 1] weights: the first layer's gradient is
    about 3e-5 of the last one's."""
    config = to_config(compose(["model.depth=8", "model.width=8", "model.activation=sigmoid",
                                "model.init=uniform", "diag.every=1", "train.epochs=20"]))
    assert "vanishing" in flags(stages.run(config).histories[0].diag)


def test_relu_at_a_learning_rate_that_kills_units_is_flagged_dead() -> None:
    X, y = data()
    for seed in (6, 8):  # both lose most units of a layer within 2 epochs
        net = Network.create([5, 32, 32, 1], np.random.default_rng(seed), "relu")
        history = train(net, X, y * 10, TrainConfig(optimizer="sgd", lr=0.06, epochs=20,
                                                     batch_size=16, divergence_factor=1e12),
                        np.random.default_rng(7), diagnostics=Diagnostics(1))
        assert "dead_units" in flags(history.diag)
    healthy = Network.create([5, 32, 32, 1], np.random.default_rng(6), "relu")
    history = train(healthy, X, y * 10, TrainConfig(optimizer="sgd", lr=0.01, epochs=20,
                                                    batch_size=16), np.random.default_rng(7),
                    diagnostics=Diagnostics(1))
    assert flags(history.diag) == {}


@pytest.mark.parametrize(("overrides", "expected"), [
    (["experiment=tutorial_three_layer"], {"stalled"}),
    ([], set()),
])
def test_the_tutorial_stalls_and_the_default_is_healthy(overrides: list[str],
                                                       expected: set[str]) -> None:
    config = to_config(compose([*overrides, "diag.every=1", "train.epochs=150"]
                               if not overrides else [*overrides, "diag.every=1"]))
    result = stages.run(config)
    assert set(flags(result.histories[0].diag)) == expected
