"""Tests of the epoch loop and the optimisers: convergence, reproducibility, divergence,
early stopping, callbacks, weight decay."""

import math

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from backprop_lab.nn.network import Network, Workspace
from backprop_lab.nn.optim import (
    OPTIMIZERS,
    Adam,
    GradientDescent,
    Momentum,
    make_optimizer,
)
from backprop_lab.nn.training import History, TrainConfig, batches, train
from backprop_lab.paths import BOSTON_CSV

BOSTON = BOSTON_CSV


def boston_raw() -> tuple[np.ndarray, np.ndarray]:
    """Boston (X, y=MEDV) from the repository's CSV, or random data of the same shape."""
    if BOSTON.is_file():
        data = np.loadtxt(BOSTON, delimiter=",", skiprows=2)
        return data[:, :13], data[:, 13]
    rng = np.random.default_rng(506)  # pragma: no cover - the data file ships with the repo
    X = rng.normal(size=(506, 13)) * rng.uniform(0.1, 100, 13)
    return X, X @ rng.normal(size=13) / 50 + 22 + rng.normal(0, 4, 506)


def boston() -> tuple[np.ndarray, np.ndarray]:
    """Standardised features, raw MEDV."""
    X, y = boston_raw()
    return (X - X.mean(0)) / X.std(0), y


def params_of(net: Network) -> list[np.ndarray]:
    return [p.copy() for p in net.parameters]


def assert_identical(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for pa, pb in zip(a, b):
        assert pa.dtype == pb.dtype
        np.testing.assert_array_equal(pa, pb)


# ---------------------------------------------------------------- least squares


def test_linear_network_converges_to_least_squares():
    X, y = boston()
    ls = LinearRegression().fit(X, y)
    mse_ls = float(np.mean((ls.predict(X) - y) ** 2))

    net = Network.create([13, 1], np.random.default_rng(0), output_activation="linear")
    history = train(net, X, y, TrainConfig(optimizer="gd", lr=0.2, epochs=2000),
                    np.random.default_rng(1))

    mse = float(np.mean((net.predict(X).ravel() - y) ** 2))
    assert history.stop_reason == "completed" and history.epochs_run == 2000
    assert mse == pytest.approx(mse_ls, rel=1e-6)
    # the recorded cost is C = ½ MSE of the weights at the start of the last epoch
    assert history.train_cost[-1] == pytest.approx(mse_ls / 2, rel=1e-6)
    assert 2 * net.cost(X, y) == pytest.approx(mse_ls, rel=1e-6)
    # and the parameters themselves are the least-squares ones
    np.testing.assert_allclose(net.weights[0].ravel(), ls.coef_, rtol=1e-4, atol=1e-4)
    assert net.biases[0][0] == pytest.approx(ls.intercept_, rel=1e-8)
    # full-batch GD on a convex quadratic with a small step never increases the cost
    assert np.all(np.diff(history.train_cost) <= 1e-12 * history.train_cost[0])


def test_train_cost_is_start_of_epoch_full_batch_cost():
    X, y = boston()
    net = Network.create([13, 4, 1], np.random.default_rng(0))
    costs = []
    for _ in range(3):
        costs.append(net.cost(X, y))
        train(net, X, y, TrainConfig(lr=0.01, epochs=1), np.random.default_rng(0))
    net2 = Network.create([13, 4, 1], np.random.default_rng(0))
    history = train(net2, X, y, TrainConfig(lr=0.01, epochs=3), np.random.default_rng(0))
    np.testing.assert_allclose(history.train_cost, costs, rtol=1e-12)
    assert_identical(params_of(net), params_of(net2))


# ---------------------------------------------------------------- reproducibility

REPRO_CONFIGS = {
    "gd-full": TrainConfig(optimizer="gd", lr=0.01, epochs=20),
    "sgd-shuffle": TrainConfig(optimizer="sgd", lr=0.005, epochs=5, batch_size=32),
    "momentum-shuffle": TrainConfig(optimizer="momentum", lr=0.002, epochs=5, batch_size=50,
                                    weight_decay=1e-3),
    "adam-shuffle": TrainConfig(optimizer="adam", lr=0.01, epochs=5, batch_size=64),
    "adam-full": TrainConfig(optimizer="adam", lr=0.01, epochs=20),
    "momentum-full": TrainConfig(optimizer="momentum", lr=0.002, epochs=20),
}


def run(config: TrainConfig, init_seed: int, train_seed: int, dtype: str = "float64"):
    X, y = boston()
    net = Network.create([13, 6, 1], np.random.default_rng(init_seed), dtype=dtype)
    history = train(net, X, y, config, np.random.default_rng(train_seed), X[:40], y[:40])
    return params_of(net), history


@pytest.mark.parametrize("name", list(REPRO_CONFIGS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_same_seed_bit_identical(name, dtype):
    config = REPRO_CONFIGS[name]
    p1, h1 = run(config, 7, 8, dtype)
    p2, h2 = run(config, 7, 8, dtype)
    assert_identical(p1, p2)
    assert h1.train_cost == h2.train_cost and h1.val_cost == h2.val_cost
    assert np.all(np.isfinite(h1.train_cost))
    assert h1.train_cost[-1] < h1.train_cost[0]  # it did train


@pytest.mark.parametrize("name", list(REPRO_CONFIGS))
def test_different_seed_different_weights(name):
    config = REPRO_CONFIGS[name]
    p1, _ = run(config, 7, 8)
    p2, _ = run(config, 9, 8)  # different initial weights
    assert not np.array_equal(p1[0], p2[0])
    p3, _ = run(config, 7, 10)  # same initial weights, different training rng
    if config.batch_size is None:
        assert_identical(p1, p3)  # full batch: nothing is random once the weights are drawn
    else:
        assert not np.array_equal(p1[0], p3[0])  # a different shuffle


def test_batches():
    rng = np.random.default_rng(0)
    full = batches(10, None, True, rng)
    assert len(full) == 1 and np.array_equal(full[0], np.arange(10))
    assert np.array_equal(batches(10, 50, True, rng)[0], np.arange(10))
    plain = batches(10, 4, False, rng)
    assert [b.tolist() for b in plain] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    shuffled = batches(10, 4, True, np.random.default_rng(3))
    assert [len(b) for b in shuffled] == [4, 4, 2]
    assert sorted(np.concatenate(shuffled).tolist()) == list(range(10))
    assert [b.tolist() for b in shuffled] == [
        b.tolist() for b in batches(10, 4, True, np.random.default_rng(3))
    ]


def test_minibatch_epoch_equals_manual_sgd_steps():
    """One epoch of mini-batch SGD (no shuffle) is the same as GD steps on the batches in order."""
    X, y = boston()
    net = Network.create([13, 5, 1], np.random.default_rng(0))
    manual = net.copy()
    train(net, X, y, TrainConfig(optimizer="sgd", lr=0.01, epochs=1, batch_size=100,
                                 shuffle=False), np.random.default_rng(0))
    opt = GradientDescent(0.01)
    for start in range(0, len(X), 100):
        xb, yb = X[start:start + 100], y[start:start + 100, None]
        ws = Workspace.for_network(manual, len(xb))
        manual.backprop(xb, yb, ws)
        opt.step(manual.parameters, ws.grads)
    for got, want in zip(net.parameters, manual.parameters):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------- divergence


def assert_diverged(history: History, net: Network, epochs: int) -> None:
    assert history.diverged
    assert history.diverged_epoch is not None and history.diverged_epoch < epochs
    assert history.epochs_run == history.diverged_epoch + 1 < epochs
    assert history.last_finite_cost is not None and math.isfinite(history.last_finite_cost)
    assert "diverged" in history.stop_reason
    assert all(np.isfinite(p).all() for p in net.parameters)


@pytest.mark.parametrize("sizes", [[13, 1], [13, 5, 1]])
def test_divergence_detected_and_best_weights_returned(sizes):
    X, y = boston()
    net = Network.create(sizes, np.random.default_rng(0))
    initial = params_of(net)
    history = train(net, X, y, TrainConfig(optimizer="gd", lr=10, epochs=100),
                    np.random.default_rng(0))
    assert_diverged(history, net, 100)
    assert history.train_cost[-1] > 1e3 * history.train_cost[0] or not math.isfinite(
        history.train_cost[-1])
    # without a validation set the kept weights are those whose full-batch cost was recorded
    assert net.cost(X, y) == pytest.approx(history.best_cost, rel=1e-12)
    assert history.best_cost == min(history.train_cost[: history.diverged_epoch])
    if history.best_epoch == 0:
        assert_identical(params_of(net), initial)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_divergence_to_overflow_detected(dtype):
    """With the growth test off, the cost runs to inf/nan and that is caught instead."""
    X, y = boston()
    net = Network.create([13, 5, 1], np.random.default_rng(0), dtype=dtype)
    epochs = 2000
    with np.errstate(over="ignore", invalid="ignore"):
        history = train(net, X, y, TrainConfig(optimizer="gd", lr=10, epochs=epochs,
                                               divergence_factor=math.inf),
                        np.random.default_rng(0))
    assert_diverged(history, net, epochs)
    assert history.diverged_epoch > 1
    assert not math.isfinite(history.train_cost[-1])
    assert history.last_finite_cost == history.train_cost[-2]
    assert all(p.dtype == np.dtype(dtype) for p in net.parameters)
    assert np.isfinite(net.predict(X)).all()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_divergence_inside_first_minibatch_epoch(dtype):
    """Mini-batches can overflow before any epoch ends: the initial weights come back."""
    X, y = boston()
    net = Network.create([13, 5, 1], np.random.default_rng(0), dtype=dtype)
    initial = params_of(net)
    with np.errstate(over="ignore", invalid="ignore"):
        history = train(net, X, y, TrainConfig(optimizer="sgd", lr=10, epochs=50, batch_size=64),
                        np.random.default_rng(0))
    assert history.diverged and history.diverged_epoch == 0
    assert "diverged" in history.stop_reason
    assert not math.isfinite(history.train_cost[0])
    assert_identical(params_of(net), initial)
    # no epoch finished with a finite cost: the last finite one is the untrained network's, on
    # its first batch (no validation rows: nn.training's reference for divergence)
    first = batches(len(X), 64, True, np.random.default_rng(0))[0]
    assert history.last_finite_cost == net.cost(X[first], y[first])


def test_divergence_in_the_first_epoch_of_adam_is_caught():
    """A huge lr can wreck the weights within epoch 0; the untrained cost is the reference."""
    X, y = boston()
    y = (y - y.mean()) / y.std()  # as the pipeline trains it: a standardised target
    net = Network.create([13, 16, 16, 1], np.random.default_rng(0))
    initial = net.cost(X[:100], y[:100])
    history = train(net, X[100:], y[100:],
                    TrainConfig(optimizer="adam", lr=100, epochs=20, batch_size=32),
                    np.random.default_rng(0), X[:100], y[:100])
    assert history.diverged and history.diverged_epoch == 0
    assert history.best_cost == history.last_finite_cost == initial
    assert net.cost(X[:100], y[:100]) == initial


def test_divergence_with_validation_set():
    X, y = boston()
    net = Network.create([13, 5, 1], np.random.default_rng(0))
    history = train(net, X[100:], y[100:], TrainConfig(lr=10, epochs=50),
                    np.random.default_rng(0), X[:100], y[:100])
    assert_diverged(history, net, 50)
    assert net.cost(X[:100], y[:100]) == history.best_cost


def test_no_false_divergence_on_sensible_lr():
    X, y = boston()
    net = Network.create([13, 5, 1], np.random.default_rng(0))
    history = train(net, X, y, TrainConfig(lr=0.01, epochs=50), np.random.default_rng(0))
    assert not history.diverged and history.diverged_epoch is None
    assert history.stop_reason == "completed"
    assert history.epochs_run == 50
    assert history.last_finite_cost == history.train_cost[-1]


# ---------------------------------------------------------------- early stopping, callbacks


def test_early_stopping_restores_best_validation_weights():
    X, y = boston()
    X_tr, y_tr, X_val, y_val = X[:30], y[:30], X[30:], y[30:]  # tiny train set: overfits
    net = Network.create([13, 32, 1], np.random.default_rng(0))
    patience, epochs = 10, 3000
    snapshots: dict[int, list[np.ndarray]] = {}
    calls: list[tuple[int, dict[str, float]]] = []

    def remember(epoch: int, logs: dict[str, float]) -> None:
        calls.append((epoch, dict(logs)))
        snapshots[epoch] = params_of(net)

    history = train(net, X_tr, y_tr, TrainConfig(optimizer="adam", lr=0.01, epochs=epochs,
                                                 patience=patience),
                    np.random.default_rng(1), X_val, y_val, callbacks=[remember])

    assert history.stopped_early and not history.diverged
    assert "early stopping" in history.stop_reason
    assert history.epochs_run < epochs
    assert history.epochs_run == history.best_epoch + patience + 2
    assert history.best_cost == min(history.val_cost) == history.val_cost[history.best_epoch]
    # the returned network is the best one, bit for bit, not the last one
    assert net.cost(X_val, y_val) == history.best_cost
    assert_identical(params_of(net), snapshots[history.best_epoch])
    assert not np.array_equal(net.weights[0], snapshots[history.epochs_run - 1][0])
    # the callback: once per epoch, in order, with both costs
    assert [e for e, _ in calls] == list(range(history.epochs_run))
    assert all(set(logs) == {"train_cost", "val_cost"} for _, logs in calls)
    assert [logs["train_cost"] for _, logs in calls] == history.train_cost
    assert [logs["val_cost"] for _, logs in calls] == history.val_cost


@pytest.mark.parametrize("patience", [0, 3])
def test_early_stopping_triggers_after_patience(patience):
    """Validating against -y makes every step worse, so the best epoch is the first."""
    X, y = boston()
    net = Network.create([13, 1], np.random.default_rng(0))
    history = train(net, X, y, TrainConfig(lr=0.05, epochs=100, patience=patience),
                    np.random.default_rng(0), X, -y)
    assert history.stopped_early
    assert history.best_epoch == 0
    assert history.epochs_run == patience + 2
    assert np.all(np.diff(history.val_cost) > 0)
    assert net.cost(X, -y) == history.best_cost == history.val_cost[0]


def test_patience_without_validation_keeps_best_start_of_epoch_weights():
    X, y = boston()
    net = Network.create([13, 5, 1], np.random.default_rng(0))
    calls: list[tuple[int, dict[str, float]]] = []
    history = train(net, X, y, TrainConfig(lr=0.01, epochs=30, patience=5),
                    np.random.default_rng(0),
                    callbacks=[lambda e, logs: calls.append((e, dict(logs)))])
    assert not history.diverged
    assert history.best_cost == min(history.train_cost)
    assert net.cost(X, y) == pytest.approx(history.best_cost, rel=1e-12)
    assert [e for e, _ in calls] == list(range(history.epochs_run))
    assert all(set(logs) == {"train_cost"} for _, logs in calls)
    assert [logs["train_cost"] for _, logs in calls] == history.train_cost
    assert history.val_cost == []


def test_several_callbacks_all_called():
    X, y = boston()
    net = Network.create([13, 1], np.random.default_rng(0))
    seen_a: list[int] = []
    seen_b: list[int] = []
    train(net, X, y, TrainConfig(lr=0.01, epochs=7), np.random.default_rng(0),
          callbacks=[lambda e, _: seen_a.append(e), lambda e, _: seen_b.append(e)])
    assert seen_a == seen_b == list(range(7))


# ---------------------------------------------------------------- optimisers


def test_weight_decay_shrinks_weights():
    X, y = boston()
    norms = {}
    for wd in (0.0, 0.1, 1.0):
        net = Network.create([13, 8, 1], np.random.default_rng(0))
        train(net, X, y, TrainConfig(optimizer="gd", lr=0.01, epochs=200, weight_decay=wd),
              np.random.default_rng(0))
        norms[wd] = sum(float(np.sum(W * W)) for W in net.weights)
    assert norms[1.0] < norms[0.1] < norms[0.0]


@pytest.mark.parametrize("name", ["gd", "momentum", "adam"])
def test_weight_decay_step_alone(name):
    """With a zero loss gradient, a step with decay moves W towards 0 and leaves b alone."""
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(3, 4)), rng.normal(size=3)
    W0, b0 = W.copy(), b.copy()
    opt = make_optimizer(name, lr=0.1, weight_decay=0.5)
    opt.step([W, b], [np.zeros_like(W), np.zeros_like(b)])
    np.testing.assert_array_equal(b, b0)
    if name == "adam":  # a normalised step: about lr, towards 0, whatever the gradient's size
        np.testing.assert_allclose(W - W0, -0.1 * np.sign(W0), rtol=1e-4)
    else:  # the first momentum step is a plain gradient step
        np.testing.assert_allclose(W, W0 * (1 - 0.1 * 0.5), rtol=1e-15)


def test_gd_step_exact():
    p = np.array([[1.0, -2.0]])
    g = np.array([[0.5, 0.25]])
    GradientDescent(0.1).step([p], [g.copy()])
    np.testing.assert_allclose(p, [[0.95, -2.025]], rtol=1e-15)


def test_momentum_steps_exact():
    p = np.array([1.0, -1.0])
    g = np.array([0.5, 2.0])
    opt = Momentum(lr=0.1, momentum=0.9)
    opt.step([p], [g.copy()])
    np.testing.assert_allclose(p, [1 - 0.05, -1 - 0.2], rtol=1e-15)
    opt.step([p], [g.copy()])  # v = 0.9 * v - lr g
    np.testing.assert_allclose(p, [0.95 - 0.045 - 0.05, -1.2 - 0.18 - 0.2], rtol=1e-14)


def test_adam_steps_exact():
    rng = np.random.default_rng(0)
    p = rng.normal(size=5)
    p_ref = p.copy()
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    m = np.zeros(5)
    v = np.zeros(5)
    opt = Adam(lr)
    for t in range(1, 4):
        g = rng.normal(size=5)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        p_ref = p_ref - lr * m_hat / (np.sqrt(v_hat) + eps)
        opt.step([p], [g.copy()])
        np.testing.assert_allclose(p, p_ref, rtol=1e-6, atol=1e-10)
    assert opt.t == 3


@pytest.mark.parametrize(
    ("name", "lr", "batch_size"),
    [("momentum", 0.005, None), ("adam", 0.05, None), ("momentum", 0.001, 32), ("adam", 0.01, 32),
     ("sgd", 0.005, 32)],
)
def test_optimisers_reduce_cost(name, lr, batch_size):
    X, y = boston()
    net = Network.create([13, 8, 1], np.random.default_rng(0))
    start = net.cost(X, y)
    history = train(net, X, y, TrainConfig(optimizer=name, lr=lr, epochs=100,
                                           batch_size=batch_size), np.random.default_rng(0))
    assert not history.diverged
    end = net.cost(X, y)
    assert end < 0.1 * start
    assert end < 20  # ½ MSE of ~40 or better; predicting the mean gives ~42


def test_momentum_faster_than_gd_same_lr():
    X, y = boston()
    costs = {}
    for name in ("gd", "momentum"):
        net = Network.create([13, 1], np.random.default_rng(0))
        train(net, X, y, TrainConfig(optimizer=name, lr=0.002, epochs=100),
              np.random.default_rng(0))
        costs[name] = net.cost(X, y)
    assert costs["momentum"] < 0.5 * costs["gd"]


def test_unknown_optimizer_lists_valid_names():
    with pytest.raises(ValueError, match="rmsprop") as exc:
        make_optimizer("rmsprop", lr=0.1)
    for name in OPTIMIZERS:
        assert name in str(exc.value)
    net = Network.create([3, 1], np.random.default_rng(0))
    before = params_of(net)
    with pytest.raises(ValueError, match="gd, sgd, momentum, adam"):
        train(net, np.ones((4, 3)), np.ones(4), TrainConfig(optimizer="lbfgs"),
              np.random.default_rng(0))
    assert_identical(params_of(net), before)


def test_make_optimizer_kinds():
    assert isinstance(make_optimizer("gd", 0.1), GradientDescent)
    assert isinstance(make_optimizer("sgd", 0.1), GradientDescent)
    m = make_optimizer("momentum", 0.1, momentum=0.5, weight_decay=0.2)
    assert isinstance(m, Momentum) and m.momentum == 0.5 and m.weight_decay == 0.2
    a = make_optimizer("adam", 0.1, weight_decay=0.3)
    assert isinstance(a, Adam) and a.lr == 0.1 and a.weight_decay == 0.3


def test_train_accepts_1d_and_2d_targets_equally():
    X, y = boston()
    a = Network.create([13, 4, 1], np.random.default_rng(0))
    b = a.copy()
    ha = train(a, X, y, TrainConfig(lr=0.01, epochs=5), np.random.default_rng(0))
    hb = train(b, X, y[:, None], TrainConfig(lr=0.01, epochs=5), np.random.default_rng(0))
    assert ha.train_cost == hb.train_cost
    assert_identical(params_of(a), params_of(b))
