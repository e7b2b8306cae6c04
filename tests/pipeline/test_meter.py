"""The stacked launcher's meter: how far a stack has got, without changing a bit of it."""

from __future__ import annotations

import numpy as np

from backprop_lab.nn.network import Network
from backprop_lab.nn.training import TrainConfig, TrainData, train_many
from backprop_lab.pipeline.meter import StackMeter


def stack(k: int) -> tuple[list[Network], list[TrainData]]:
    rng = np.random.default_rng(0)
    X, X_val = rng.normal(size=(40, 3)), rng.normal(size=(20, 3))
    y, y_val = X @ [[1.0], [-2.0], [0.5]], X_val @ [[1.0], [-2.0], [0.5]]
    nets = [Network.create([3, 4, 1], np.random.default_rng(i), "tanh") for i in range(k)]
    return nets, [TrainData(X, y, X_val, y_val)] * k


def test_the_observer_sees_networks_stop_and_changes_nothing() -> None:
    configs = [TrainConfig(lr=lr, epochs=60, batch_size=8, patience=2) for lr in (1e-4, 0.05, 0.5)]
    seen: list[tuple[int, int, int]] = []
    nets, data = stack(3)
    watched = train_many(nets, data, configs, [np.random.default_rng(i) for i in range(3)],
                         observer=lambda *a: seen.append(a))
    plain_nets, _ = stack(3)
    plain = train_many(plain_nets, data, configs, [np.random.default_rng(i) for i in range(3)])
    for a, b in zip(nets, plain_nets):
        for p, q in zip(a.parameters, b.parameters):
            np.testing.assert_array_equal(p, q)
    assert [h.train_cost for h in watched] == [h.train_cost for h in plain]
    live = [n for _, n, _ in seen]
    assert live[0] == 3 and live[-1] == 0 and live == sorted(live, reverse=True)
    assert all(size == 3 for *_, size in seen)
    ran = max(len(h.train_cost) for h in watched)
    assert seen[-1][0] == ran - 1  # the last word: the epoch the stack ended at, none training


def test_meter_text_counts_training_stopped_and_waiting() -> None:
    meter = StackMeter(networks=10, epochs=400)
    first, second = meter.observer(), meter.observer()
    assert meter.text() == "stacks: epoch 0/400, 0 training, 0 stopped, 10 waiting"
    first(99, 3, 4)
    assert meter.text() == "stacks: epoch 100/400, 3 training, 1 stopped, 6 waiting"
    second(19, 6, 6)
    assert meter.text() == "stacks: epoch 20/400, 9 training, 1 stopped, 0 waiting"
    first(399, 0, 4)
    second(399, 0, 6)
    assert meter.text() == "stacks: epoch 400/400, 0 training, 10 stopped, 0 waiting"
