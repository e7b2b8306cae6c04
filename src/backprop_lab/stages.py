"""The five stages as plain functions: load -> normalize -> build -> train -> evaluate.

No Hydra and no MLflow here: `pipelines/train.py` composes the stages and tracking plugs in as an
epoch callback. One seeded Generator is split into independent streams (data split, weight init,
batch shuffling), so changing the number of epochs never changes the initial weights. With
`model.ensemble=N` the init and shuffle streams each give one child stream per member.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backprop_lab import data as data_mod
from backprop_lab.config import Config, DataConfig, ModelConfig, NormalizeConfig, hidden_layers
from backprop_lab.ensemble import Ensemble, Model, member_rngs, members
from backprop_lab.metrics import regression_metrics
from backprop_lab.network import Network
from backprop_lab.normalize import Scaler
from backprop_lab.provenance import PROJECT_ROOT
from backprop_lab.train import EpochCallback, History, TrainConfig, train
from backprop_lab.weights import load_network

BOSTON_CSV = PROJECT_ROOT / "data" / "boston_house_prices.csv"
SPLITS = ("train", "val", "test")


@dataclass
class Prepared:
    """A split with scalers fitted on its training part, and every part scaled."""

    split: data_mod.Split
    x_scaler: Scaler
    y_scaler: Scaler

    def X(self, part: str) -> np.ndarray:
        return self.x_scaler.transform(getattr(self.split, f"X_{part}"))

    def y(self, part: str) -> np.ndarray:
        return self.y_scaler.transform(getattr(self.split, f"y_{part}"))


@dataclass
class Evaluation:
    metrics: dict[str, float]  # "{split}_{metric}", e.g. test_r2, in original units
    predictions: pd.DataFrame  # the test split: row index, actual and predicted targets


@dataclass
class Result:
    dataset: data_mod.Dataset
    prepared: Prepared
    network: Model
    histories: list[History]  # one per ensemble member trained (training stops at a divergence)
    evaluation: Evaluation

    @property
    def history(self) -> History:
        """The history to report: the first diverged member's, else the first member's."""
        return next((h for h in self.histories if h.diverged), self.histories[0])


def streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for splitting, initialising and shuffling, all from one seed."""
    split_rng, init_rng, train_rng = np.random.default_rng(seed).spawn(3)
    return split_rng, init_rng, train_rng


def load(cfg: DataConfig) -> data_mod.Dataset:
    """Stage 1: read and validate the dataset named by `data.name`."""
    if cfg.name == "boston":
        return data_mod.load_boston(cfg.path or BOSTON_CSV, drop_b=cfg.drop_b)
    if cfg.name == "csv":
        return data_mod.load_csv(str(cfg.path), cfg.target, cfg.features)
    return data_mod.load_sklearn(cfg.name)


def split_by_index(
    ds: data_mod.Dataset, train_idx: np.ndarray, val_idx: np.ndarray, test_idx: np.ndarray
) -> data_mod.Split:
    parts = [(ds.X[i], ds.y[i]) for i in (train_idx, val_idx, test_idx)]
    return data_mod.Split(*parts[0], *parts[1], *parts[2], train_idx, val_idx, test_idx)


def normalize(split: data_mod.Split, cfg: NormalizeConfig) -> Prepared:
    """Stage 2: fit the feature and target scalers on the training rows only."""
    return Prepared(
        split, Scaler.fit(cfg.features, split.X_train), Scaler.fit(cfg.target, split.y_train)
    )


def build(cfg: ModelConfig, n_inputs: int, n_outputs: int, rng: np.random.Generator) -> Model:
    """Stage 3: a fresh network (or `model.ensemble` of them) from `model.*`, or the one in
    `model.init_from`."""
    sizes = [n_inputs, *hidden_layers(cfg), n_outputs]
    if cfg.init_from:
        model = load_network(Path(cfg.init_from))
        if model.sizes != sizes:
            raise ValueError(f"model.init_from: {cfg.init_from} has layer sizes {model.sizes}, "
                             f"the config asks for {sizes}")
        if len(members(model)) != cfg.ensemble:
            raise ValueError(f"model.init_from: {cfg.init_from} holds {len(members(model))} "
                             f"network(s), model.ensemble asks for {cfg.ensemble}")
        return model
    nets = [Network.create(sizes, r, cfg.activation, cfg.output_activation, cfg.init, cfg.dtype)
            for r in member_rngs(rng, cfg.ensemble)]
    return nets[0] if len(nets) == 1 else Ensemble(nets)


def fit(
    model: Model,
    prepared: Prepared,
    cfg: TrainConfig,
    rng: np.random.Generator,
    callbacks: Sequence[EpochCallback] = (),
) -> list[History]:
    """Stage 4: backprop training on the scaled training rows, validating on the val rows.

    Ensemble members train one after another, each on its own shuffle stream. Only member 0
    reports its epochs to the callbacks: every logged point costs about 0.3 ms of MLflow time
    (bench/README.md), and the other members' curves are in the returned histories. A diverged
    member ends the fit: the run has failed, so the others are not trained."""
    nets = members(model)
    histories = []
    for k, (net, member_rng) in enumerate(zip(nets, member_rngs(rng, len(nets)))):
        history = train(net, prepared.X("train"), prepared.y("train"), cfg, member_rng,
                        prepared.X("val"), prepared.y("val"), callbacks if k == 0 else ())
        histories.append(history)
        if history.diverged:
            break
    return histories


def evaluate(net: Model, prepared: Prepared, target_names: list[str]) -> Evaluation:
    """Stage 5: metrics per split and test predictions, all in the target's original units."""
    metrics: dict[str, float] = {}
    for part in SPLITS:
        X = getattr(prepared.split, f"X_{part}")
        if len(X) == 0:
            continue
        y_pred = prepared.y_scaler.inverse_transform(net.predict(prepared.x_scaler.transform(X)))
        y_true = getattr(prepared.split, f"y_{part}")
        for name, value in regression_metrics(y_true, y_pred).items():
            metrics[f"{part}_{name}"] = value
        if part == "test":
            predictions = pd.DataFrame({"row": prepared.split.test_idx})
            for k, name in enumerate(target_names):
                predictions[f"actual_{name}"] = y_true[:, k]
                predictions[f"predicted_{name}"] = np.asarray(y_pred[:, k], dtype=np.float64)
    if len(prepared.split.X_test) == 0:
        predictions = pd.DataFrame({"row": np.array([], dtype=int)})
    return Evaluation(metrics, predictions)


def run(
    cfg: Config,
    callbacks: Sequence[EpochCallback] = (),
    dataset: data_mod.Dataset | None = None,
) -> Result:
    """All five stages on one train/val/test split."""
    ds = dataset if dataset is not None else load(cfg.data)
    split_rng, init_rng, train_rng = streams(cfg.seed)
    split = data_mod.split(ds, cfg.data.val_fraction, cfg.data.test_fraction, split_rng)
    return train_and_evaluate(cfg, ds, split, init_rng, train_rng, callbacks)


def run_folds(cfg: Config, ds: data_mod.Dataset) -> list[Result]:
    """K-fold cross-validation: each fold is once the test set; a fraction of the other rows,
    drawn with the fold's own stream, is its validation set: `eval.cv_val_fraction`, or
    `data.val_fraction` when that is null. With 0 a fold trains on all the other rows, which
    suits a fixed epoch budget: the held-out fold is then the only validation."""
    results = []
    val_fraction = cfg.eval.cv_val_fraction
    val_fraction = cfg.data.val_fraction if val_fraction is None else val_fraction
    for fold, (train_val, test_idx) in enumerate(data_mod.kfold(len(ds.X), cfg.eval.cv_folds,
                                                                 cfg.seed)):
        split_rng, init_rng, train_rng = np.random.default_rng([cfg.seed, fold]).spawn(3)
        shuffled = split_rng.permutation(train_val)
        n_val = round(len(ds.X) * val_fraction)
        split = split_by_index(ds, shuffled[n_val:], shuffled[:n_val], test_idx)
        results.append(train_and_evaluate(cfg, ds, split, init_rng, train_rng))
    return results


def train_and_evaluate(
    cfg: Config,
    ds: data_mod.Dataset,
    split: data_mod.Split,
    init_rng: np.random.Generator,
    train_rng: np.random.Generator,
    callbacks: Sequence[EpochCallback] = (),
) -> Result:
    """Stages 2-5 on a given split."""
    prepared = normalize(split, cfg.normalize)
    net = build(cfg.model, ds.X.shape[1], ds.y.shape[1], init_rng)
    histories = fit(net, prepared, cfg.train, train_rng, callbacks)
    return Result(ds, prepared, net, histories, evaluate(net, prepared, ds.target_names))
