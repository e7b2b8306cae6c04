"""A network trained in a stack ends bit for bit where it ends trained alone.

Every optimiser and activation, float64 and float32; networks with their own rows (two folds of
different sizes, so their last batches differ and one has a batch more), learning rates, early
stopping, a diverging neighbour, diagnostics; full batch on shared and on separate rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from backprop_lab.nn.diagnostics import Diagnostics
from backprop_lab.nn.network import Network
from backprop_lab.nn.optim import OPTIMIZERS
from backprop_lab.nn.stacked import Stack
from backprop_lab.nn.training import History, TrainConfig, TrainData, train, train_many

ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "linear")


def folds(dtype: str = "float64") -> list[TrainData]:
    """Two folds of 129 and 128 rows (batch 32: 5 batches, the last of 1 row, against 4)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(257 + 80, 5))
    y = np.column_stack([X @ rng.normal(size=5), np.sin(X[:, 0])]) + 0.1 * rng.normal(size=(337, 2))
    return [TrainData(X[:129], y[:129], X[257:297], y[257:297]),
            TrainData(X[129:257], y[129:257], X[297:], y[297:])]


def nets(k: int, activation: str, dtype: str) -> list[Network]:
    return [Network.create([5, 8, 6, 2], np.random.default_rng(10 + i), activation, init="xavier",
                           dtype=dtype) for i in range(k)]


def same(a: Network, b: Network, ha: History, hb: History) -> None:
    for p, q in zip(a.parameters, b.parameters):
        np.testing.assert_array_equal(p, q)
    assert (ha.train_cost, ha.val_cost, ha.best_epoch, ha.best_cost, ha.diverged,
            ha.diverged_epoch, ha.stopped_early, ha.diag) == (
            hb.train_cost, hb.val_cost, hb.best_epoch, hb.best_cost, hb.diverged,
            hb.diverged_epoch, hb.stopped_early, hb.diag)


def check_against_alone(stacked: list[Network], data: list[TrainData],
                        configs: list[TrainConfig], diag: dict[int, int] | None = None,
                        dtype: str = "float64", activation: str = "tanh") -> list[History]:
    alone = [net.copy() for net in stacked]
    diag = diag or {}
    histories = train_many(stacked, data, configs,
                           [np.random.default_rng(100 + k) for k in range(len(stacked))],
                           diagnostics={k: Diagnostics(e) for k, e in diag.items()})
    for k, net in enumerate(alone):
        d = data[k]
        h = train(net, d.X, d.y, configs[k], np.random.default_rng(100 + k), d.X_val, d.y_val,
                  diagnostics=Diagnostics(diag[k]) if k in diag else None)
        same(stacked[k], net, histories[k], h)
    return histories


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_stacked_networks_end_where_they_end_alone(optimizer, activation, dtype):
    data = folds()
    lrs = [0.01, 0.03, 0.003, 0.01, 0.02, 0.005]
    configs = [TrainConfig(optimizer=optimizer, lr=lr, epochs=12, batch_size=32, patience=2,
                           weight_decay=0.01 * (k % 3)) for k, lr in enumerate(lrs)]
    check_against_alone(nets(6, activation, dtype), [data[k // 3] for k in range(6)], configs,
                        diag={0: 2, 4: 3}, dtype=dtype, activation=activation)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_a_diverging_network_is_frozen_and_its_nan_reaches_no_other(optimizer):
    data = folds()
    configs = [TrainConfig(optimizer=optimizer, lr=lr, epochs=15, batch_size=32)
               for lr in (0.01, 1e6, 0.02)]
    with np.errstate(all="ignore"):
        histories = check_against_alone(nets(3, "relu", "float64"), [data[0], data[0], data[1]],
                                        configs)
    assert [h.diverged for h in histories] == [False, True, False]
    assert histories[1].diverged_epoch is not None and histories[1].epochs_run < 15
    assert [h.epochs_run for h in (histories[0], histories[2])] == [15, 15]


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_full_batch_on_shared_and_on_separate_rows(optimizer):
    data = folds()
    configs = [TrainConfig(optimizer=optimizer, lr=0.05, epochs=20) for _ in range(4)]
    check_against_alone(nets(4, "tanh", "float64"), [data[0]] * 4, configs)  # one broadcast set
    same_size = [TrainData(d.X[:128], d.y[:128], d.X_val, d.y_val) for d in data]
    check_against_alone(nets(4, "tanh", "float64"), [same_size[0], same_size[1]] * 2,
                        configs)  # full batches of two sets in one pass
    no_val = [TrainData(d.X, d.y) for d in data]
    check_against_alone(nets(4, "relu", "float64"), [no_val[0], no_val[0], no_val[1], no_val[1]],
                        [TrainConfig(optimizer=optimizer, lr=0.05, epochs=20, patience=3)] * 4)


def test_unshuffled_batches_and_float32():
    data = folds()
    configs = [TrainConfig(optimizer="momentum", lr=0.01, epochs=8, batch_size=50, shuffle=False)
               ] * 4
    check_against_alone(nets(4, "sigmoid", "float32"), [data[0], data[1], data[1], data[0]],
                        configs)


def test_callbacks_see_each_networks_own_epochs():
    data = folds()
    seen: dict[int, list[float]] = {0: [], 2: []}
    stacked = nets(3, "tanh", "float64")
    histories = train_many(stacked, [data[0]] * 3,
                           TrainConfig(optimizer="adam", lr=0.01, epochs=5, batch_size=32),
                           [np.random.default_rng(k) for k in range(3)],
                           callbacks={k: [lambda e, v, k=k: seen[k].append(v["val_cost"])]
                                      for k in seen})
    assert seen == {0: histories[0].val_cost, 2: histories[2].val_cost}


def test_keys_that_cannot_differ_in_a_stack_are_refused():
    data = folds()
    with pytest.raises(ValueError, match="train.batch_size differs between stacked networks 0"):
        train_many(nets(2, "tanh", "float64"), [data[0]] * 2,
                   [TrainConfig(batch_size=32), TrainConfig(batch_size=16)],
                   [np.random.default_rng(0)] * 2)
    with pytest.raises(ValueError, match="cannot be stacked"):
        Stack.of([*nets(1, "tanh", "float64"), *nets(1, "relu", "float64")])


def test_an_interrupted_stack_leaves_the_weights_trained_so_far():
    data = folds()
    stacked = nets(2, "tanh", "float64")
    before = [net.copy() for net in stacked]

    def interrupt(epoch: int, values: dict[str, float]) -> None:
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_many(stacked, [data[0]] * 2, TrainConfig(optimizer="adam", lr=0.01, epochs=10),
                   [np.random.default_rng(0)] * 2, callbacks={1: [interrupt]})
    for net, old in zip(stacked, before):
        assert not np.array_equal(net.weights[0], old.weights[0])
