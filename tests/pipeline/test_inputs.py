"""Inputs the config must agree with: weights files for model.init_from, data too small or
constant for what the config asks. All refused before a run, naming the key and the values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backprop_lab.data.load import Dataset, fingerprint, load_csv
from backprop_lab.errors import DataError, WeightsError
from backprop_lab.nn.network import Network
from backprop_lab.nn.weights import save_network
from backprop_lab.pipeline import stages
from backprop_lab.pipeline.config import Config, ModelConfig


def bare_file(path: Path, sizes: list[int], dtype: str = "float64") -> Path:
    """Only W0, b0, W1, b1, ...: what another tool would write."""
    rng = np.random.default_rng(0)
    arrays = {}
    for l, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        arrays[f"W{l}"] = rng.normal(size=(n_out, n_in)).astype(dtype)
        arrays[f"b{l}"] = rng.normal(size=n_out).astype(dtype)
    np.savez(path, **arrays)
    return path


def test_a_bare_weights_file_takes_the_configs_activations_and_dtype(tmp_path: Path) -> None:
    path = bare_file(tmp_path / "bare.npz", [13, 8, 1])
    cfg = ModelConfig(hidden=[8], activation="tanh", output_activation="linear",
                      dtype="float32", init_from=str(path))
    net = stages.build(cfg, 13, 1, np.random.default_rng(0))
    assert isinstance(net, Network)
    assert (net.activation, net.output_activation, str(net.dtype)) == ("tanh", "linear",
                                                                      "float32")
    with np.load(path) as raw:
        np.testing.assert_array_equal(net.weights[0], raw["W0"].astype(np.float32))


@pytest.mark.parametrize(("key", "value"), [("activation", "relu"), ("dtype", "float32"),
                                            ("output_activation", "sigmoid")])
def test_a_file_recording_other_activations_or_dtype_is_refused(key: str, value: str,
                                                                tmp_path: Path) -> None:
    net = Network.create([13, 8, 1], np.random.default_rng(0), "tanh", init="xavier")
    path = save_network(net, tmp_path / "tanh.npz")
    cfg = ModelConfig(hidden=[8], activation="tanh", init_from=str(path))
    setattr(cfg, key, value)
    recorded = {"activation": "tanh", "dtype": "float64", "output_activation": "linear"}[key]
    with pytest.raises(WeightsError, match=f"saved with {key} '{recorded}'.*model.{key}={value}"):
        stages.build(cfg, 13, 1, np.random.default_rng(0))


def test_a_bare_file_of_the_wrong_shape_names_both_shapes(tmp_path: Path) -> None:
    path = bare_file(tmp_path / "bare.npz", [13, 4, 1])
    cfg = ModelConfig(hidden=[8], init_from=str(path))
    with pytest.raises(WeightsError, match=r"\[13, 4, 1\].*\[13, 8, 1\]"):
        stages.build(cfg, 13, 1, np.random.default_rng(0))


def dataset(X: np.ndarray, y: np.ndarray) -> Dataset:
    feats, targets = [f"x{i}" for i in range(X.shape[1])], ["y"]
    return Dataset(X, y.reshape(len(y), -1), feats, targets, "table.csv",
                   fingerprint(X, y.reshape(len(y), -1), feats, targets))


def test_a_constant_target_is_refused() -> None:
    ds = dataset(np.arange(20.0).reshape(10, 2), np.full(10, 3.0))
    with pytest.raises(DataError, match="constant.*R² is undefined"):
        stages.check_fits(Config(), ds)


@pytest.mark.parametrize(("rows", "overrides", "match"), [
    (2, {}, "data.test_fraction: 0.15 of 2 rows gives 0 test row"),
    (8, {}, "data.val_fraction: 0.15 of 8 rows gives 1 val row|test row"),
    (506, {"cv_folds": 1000}, "eval.cv_folds: 1000 folds need at least 2000 rows"),
])
def test_data_too_small_for_the_split_or_folds_is_refused(rows: int, overrides: dict[str, int],
                                                          match: str) -> None:
    rng = np.random.default_rng(0)
    ds = dataset(rng.normal(size=(rows, 3)), rng.normal(size=rows))
    cfg = Config()
    for key, value in overrides.items():
        setattr(cfg.eval, key, value)
    with pytest.raises(DataError, match=match):
        stages.check_fits(cfg, ds)


def test_repeated_column_names_are_refused_with_their_positions(tmp_path: Path) -> None:
    path = tmp_path / "leak.csv"
    path.write_text("a,b,y,c,y\n1,2,3,4,5\n2,3,4,5,6\n3,4,5,6,8\n")
    with pytest.raises(DataError, match=r"repeated column names \('y' at columns 3, 5\)"):
        load_csv(path, "y")


def test_a_bad_cell_is_quoted_as_written_and_a_directory_is_not_a_file(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("a,y\n1,2\n1e400,3\n")
    with pytest.raises(DataError, match=r"column 'a', line 3 .*non-finite value '1e400'"):
        load_csv(path, "y")
    with pytest.raises(DataError, match="is a directory, not a data file"):
        load_csv(tmp_path, "y")
