"""The five stages as plain functions: scaling on training rows only, original units, init_from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backprop_lab.data.metrics import regression_metrics
from backprop_lab.nn.weights import save_network
from backprop_lab.pipeline import crossval, stages
from backprop_lab.pipeline.compose import to_config
from backprop_lab.pipeline.config import Config, ConfigError, ModelConfig


@pytest.fixture
def config(compose_config) -> Config:
    """The default with one network (the stages' single-network path) and 30 epochs."""
    return to_config(compose_config(["train.epochs=30", "model.ensemble=1"]))


def test_scalers_are_fitted_on_training_rows_only(config: Config) -> None:
    ds = stages.load(config.data)
    split_rng, _, _ = stages.streams(config.seed)
    split = stages.splits.split(ds, 0.15, 0.15, split_rng)
    prepared = stages.normalize(split, config.normalize)
    np.testing.assert_allclose(prepared.x_scaler.shift, split.X_train.mean(axis=0))
    np.testing.assert_allclose(prepared.X("train").mean(axis=0), 0, atol=1e-12)
    assert not np.allclose(prepared.X("test").mean(axis=0), 0, atol=1e-3)


def test_metrics_are_in_original_units(config: Config) -> None:
    result = stages.run(config)
    p, net = result.prepared, result.network
    y_pred = p.y_scaler.inverse_transform(net.predict(p.X("test")))
    expected = regression_metrics(p.split.y_test, y_pred)
    for name, value in expected.items():
        assert result.evaluation.metrics[f"test_{name}"] == pytest.approx(value, rel=1e-12)
    preds = result.evaluation.predictions
    np.testing.assert_array_equal(preds["actual_MEDV"], p.split.y_test[:, 0])
    assert 5 <= preds["actual_MEDV"].mean() <= 50  # dollars x 1000, not standardised units


def test_epochs_do_not_change_the_split_or_the_initial_weights(config: Config) -> None:
    ds = stages.load(config.data)
    _, init_a, _ = stages.streams(config.seed)
    _, init_b, _ = stages.streams(config.seed)
    net_a = stages.build(config.model, 13, 1, init_a)
    net_b = stages.build(config.model, 13, 1, init_b)
    for a, b in zip(net_a.parameters, net_b.parameters):
        np.testing.assert_array_equal(a, b)
    short, longer = stages.run(config, dataset=ds), None
    config.train.epochs = 31
    longer = stages.run(config, dataset=ds)
    np.testing.assert_array_equal(short.prepared.split.test_idx, longer.prepared.split.test_idx)


def test_init_from_starts_from_the_given_weights(config: Config, tmp_path: Path) -> None:
    ds = stages.load(config.data)
    _, init_rng, _ = stages.streams(99)
    start = stages.build(config.model, 13, 1, init_rng)
    path = save_network(start, tmp_path / "start.npz")
    config.model.init_from = str(path)
    built = stages.build(config.model, 13, 1, np.random.default_rng(0))
    for a, b in zip(built.parameters, start.parameters):
        np.testing.assert_array_equal(a, b)
    bad = ModelConfig(hidden=[8], init_from=str(path))
    with pytest.raises(ValueError, match="model.init_from"):
        stages.build(bad, ds.X.shape[1], 1, np.random.default_rng(0))


def test_drop_b_removes_the_column(compose_config) -> None:
    ds = stages.load(to_config(compose_config(["data.drop_b=true"])).data)
    assert "B" not in ds.feature_names and ds.X.shape == (506, 12)


@pytest.mark.parametrize(("overrides", "n_val"), [([], 76), (["eval.cv_val_fraction=0.1"], 51),
                                                  (["eval.cv_val_fraction=0"], 0)])
def test_cv_folds_set_aside_cv_val_fraction_or_data_val_fraction(
    compose_config, overrides: list[str], n_val: int
) -> None:
    config = to_config(compose_config(["eval.cv_folds=5", "train.epochs=2", "model.hidden=[4]",
                                       *overrides]))
    folds = crossval.run_folds(config, stages.load(config.data))
    tested = np.concatenate([f.prepared.split.test_idx for f in folds])
    np.testing.assert_array_equal(np.sort(tested), np.arange(506))  # each row tested once
    for fold in folds:
        split = fold.prepared.split
        assert len(split.val_idx) == n_val
        assert len(split.train_idx) + n_val + len(split.test_idx) == 506
        assert not set(split.train_idx) & set(split.test_idx)
        assert ("val_mse" in fold.evaluation.metrics) == (n_val > 0)


def test_cv_val_fraction_is_checked(compose_config) -> None:
    with pytest.raises(ConfigError, match=r"eval.cv_val_fraction: must be in \[0, 1\) or null"):
        to_config(compose_config(["eval.cv_val_fraction=1.0"]))
