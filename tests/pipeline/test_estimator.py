"""MLPRegressor: scikit-learn's conformance suite, its tools, reproducibility, the Boston bar,
and that it trains our own network (bit-identical to running the steps by hand)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from backprop_lab.data import splits
from backprop_lab.data.load import Dataset, load_dataset
from backprop_lab.data.scaling import Scaler
from backprop_lab.nn.network import Network
from backprop_lab.nn.training import TrainConfig, train
from backprop_lab.pipeline import stages
from backprop_lab.pipeline.compose import to_config
from backprop_lab.pipeline.estimator import MLPRegressor

FAST = {"hidden": (16,), "epochs": 60, "patience": 10}


@pytest.fixture(scope="module")
def boston() -> Dataset:
    return load_dataset("boston")


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_regression(n_samples=120, n_features=5, noise=5.0, random_state=0)
    return X, y


@parametrize_with_checks([
    MLPRegressor(),  # the defaults: on the checks' small data they take about 4 s in all
    MLPRegressor(hidden=(16,), activation="tanh", optimizer="momentum", lr=1e-2, epochs=300,
                 batch_size=None, patience=None, val_fraction=0.0, dtype="float32",
                 normalize_features="minmax"),
    MLPRegressor(hidden=(), optimizer="sgd", lr=1e-2, epochs=100, batch_size=16, shuffle=False,
                 patience=5, normalize_target="none"),
])
def test_sklearn_conformance(estimator: MLPRegressor, check: Any) -> None:
    check(estimator)


def test_defaults_are_the_project_default_config(compose_config) -> None:
    cfg = to_config(compose_config())
    params = MLPRegressor().get_params()
    assert params["hidden"] == tuple(cfg.model.hidden)
    for key in ("activation", "output_activation", "init", "dtype"):
        assert params[key] == getattr(cfg.model, key), key
    for key in ("optimizer", "lr", "epochs", "batch_size", "shuffle", "momentum", "weight_decay",
                "patience"):
        assert params[key] == getattr(cfg.train, key), key
    assert params["normalize_features"] == cfg.normalize.features
    assert params["normalize_target"] == cfg.normalize.target
    assert params["val_fraction"] == cfg.data.val_fraction


def test_it_trains_our_network_bit_for_bit(boston: Dataset) -> None:
    """The estimator's weights equal those of the pipeline's steps run by hand on the same
    streams: the split of `splits.split`, scalers on the training rows, `Network.create` and
    `train`. So the estimator is our network, not something else."""
    seed, epochs = 3, 40
    est = MLPRegressor(epochs=epochs, random_state=seed).fit(boston.X, boston.y)

    split_rng, init_rng, shuffle_rng = stages.streams(seed)
    split = splits.split(boston, 0.15, 0.0, split_rng)
    x_scaler = Scaler.fit("standard", split.X_train)
    y_scaler = Scaler.fit("standard", split.y_train)
    net = Network.create([13, 64, 64, 1], init_rng, "relu", "linear", "he", "float64")
    config = TrainConfig(optimizer="adam", lr=3e-3, epochs=epochs, batch_size=64,
                         weight_decay=3e-3, patience=100)
    history = train(net, x_scaler.transform(split.X_train), y_scaler.transform(split.y_train),
                    config, shuffle_rng, x_scaler.transform(split.X_val),
                    y_scaler.transform(split.y_val))

    assert est.x_scaler_ == x_scaler and est.y_scaler_ == y_scaler
    assert est.network_.sizes == net.sizes
    for a, b in zip(est.network_.parameters, net.parameters):
        np.testing.assert_array_equal(a, b)
    assert est.history_.val_cost == history.val_cost
    expected = y_scaler.inverse_transform(net.predict(x_scaler.transform(boston.X)))
    np.testing.assert_array_equal(est.predict(boston.X), expected)


def test_same_random_state_same_predictions(small: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = small
    a = MLPRegressor(**FAST, random_state=7).fit(X, y).predict(X)
    b = MLPRegressor(**FAST, random_state=7).fit(X, y).predict(X)
    c = MLPRegressor(**FAST, random_state=8).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # a Generator seeded alike draws the same streams; a RandomState gives a seed drawn from it
    g = MLPRegressor(**FAST, random_state=np.random.default_rng(7)).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, g)
    rs = np.random.RandomState(0)
    est = MLPRegressor(**FAST, random_state=rs)
    first, second = est.fit(X, y).predict(X), est.fit(X, y).predict(X)
    assert not np.array_equal(first, second)  # the RandomState advanced, as sklearn expects


def test_boston_5_fold_r2(boston: Dataset) -> None:
    """Default params on the folds the pipeline uses (shuffled KFold, seed 0); ~2.5 s."""
    scores = cross_val_score(MLPRegressor(random_state=0), boston.X, boston.y.ravel(),
                             cv=KFold(5, shuffle=True, random_state=0))
    assert scores.mean() > 0.8, scores


def test_grid_search_over_lr(small: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = small
    search = GridSearchCV(MLPRegressor(**FAST, random_state=0), {"lr": [1e-3, 1e-2]}, cv=3)
    search.fit(X, y)
    assert search.best_params_["lr"] in (1e-3, 1e-2)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.lr == search.best_params_["lr"]
    assert search.predict(X).shape == (len(X),)


def test_cross_val_score_and_pipeline(small: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = small
    scores = cross_val_score(MLPRegressor(**FAST, random_state=0), X, y, cv=3)
    assert scores.shape == (3,) and (scores > 0.5).all(), scores
    pipe = make_pipeline(StandardScaler(), MLPRegressor(**FAST, normalize_features="none",
                                                       random_state=0))
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.8
    assert pipe[-1].x_scaler_.kind == "none"


@pytest.mark.parametrize("y_shape", [(120,), (120, 1), (120, 3)])
def test_prediction_shape_follows_y(small: tuple[np.ndarray, np.ndarray],
                                    y_shape: tuple[int, ...]) -> None:
    X, y = small
    Y = np.stack([y, 2 * y, -y], axis=1)[:, : (y_shape[1] if len(y_shape) > 1 else 1)]
    Y = Y.reshape(y_shape)
    est = MLPRegressor(**FAST, random_state=0).fit(X, Y)
    pred = est.predict(X)
    assert pred.shape == y_shape and pred.dtype == np.float64
    assert est.n_outputs_ == (y_shape[1] if len(y_shape) > 1 else 1)
    assert est.score(X, Y) > 0.8


def test_float32_network_predicts_float64(small: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = small
    est = MLPRegressor(**FAST, dtype="float32", random_state=0).fit(X, y)
    assert est.network_.dtype == np.float32
    assert est.predict(X).dtype == np.float64


def test_validation_rows_and_scalers(small: tuple[np.ndarray, np.ndarray]) -> None:
    """round(n * val_fraction) rows are held out and the scalers see the training rows only;
    with no room for a held-out row every row is trained on."""
    X, y = small
    held = MLPRegressor(**FAST, random_state=0).fit(X, y)
    assert held.history_.val_cost  # early stopping watched the held-out rows
    split_rng, _, _ = np.random.default_rng(0).spawn(3)
    train_idx = split_rng.permutation(len(X))[round(len(X) * 0.15):]
    np.testing.assert_array_equal(held.x_scaler_.shift, X[train_idx].mean(axis=0))
    for val_fraction, n in ((0.0, 120), (0.15, 3), (0.6, 1)):  # 0 rows, 0 rows, 1 row -> none
        est = MLPRegressor(**FAST, val_fraction=val_fraction, random_state=0)
        est.fit(X[:n], y[:n])
        assert est.history_.val_cost == []
        np.testing.assert_array_equal(est.x_scaler_.shift, X[:n].mean(axis=0))


def test_divergence_warns_and_keeps_the_best_weights(
    small: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = small
    est = MLPRegressor(hidden=(16,), optimizer="gd", lr=1e3, batch_size=None, epochs=50,
                       random_state=0)
    with pytest.warns(ConvergenceWarning, match="diverged at epoch"):
        est.fit(X, y)
    assert est.history_.diverged
    assert np.isfinite(est.predict(X)).all()


def test_no_warning_when_training_goes_well(small: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = small
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        MLPRegressor(**FAST, random_state=0).fit(X, y)


@pytest.mark.parametrize(("param", "value"), [
    ("hidden", (16, 0)), ("hidden", "64"), ("hidden", 64), ("hidden", (16.0,)),
    ("activation", "softmax"), ("output_activation", "softplus"), ("init", "zeros"),
    ("optimizer", "rmsprop"), ("lr", 0.0), ("lr", -1e-3), ("lr", float("nan")),
    ("lr", float("inf")), ("lr", "0.1"), ("epochs", 0), ("epochs", 2.5), ("batch_size", 0),
    ("batch_size", 8.0), ("shuffle", "yes"), ("momentum", 1.0), ("momentum", -0.1),
    ("weight_decay", -1e-3), ("weight_decay", float("inf")), ("patience", -1),
    ("patience", 1.5), ("val_fraction", 1.0), ("val_fraction", -0.1),
    ("normalize_features", "robust"), ("normalize_target", "log"), ("dtype", "float16"),
    ("random_state", -1), ("random_state", 1.5), ("random_state", "seed"),
])
def test_bad_params_raise_naming_the_param(small: tuple[np.ndarray, np.ndarray], param: str,
                                           value: Any) -> None:
    X, y = small
    est = MLPRegressor(**{param: value})  # sklearn rule: no check before fit
    clone(est).set_params(**{param: value})
    with pytest.raises(ValueError, match=rf"^{param}: "):
        est.fit(X, y)
    assert not hasattr(est, "n_features_in_")  # nothing fitted when a param is bad
