"""The five stages as plain functions: load -> normalize -> build -> train -> evaluate.

No Hydra and no MLflow here: `experiments.run.job` runs the stages and tracking plugs in as an
epoch callback. One seeded Generator is split into independent streams (data split, weight init,
batch shuffling), so changing the number of epochs never changes the initial weights. With
`model.ensemble=N` the init and shuffle streams each give one child stream per member. The
networks of one job (members, folds, repeats) train as one stack (`train.stacked`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backprop_lab.data import splits
from backprop_lab.data.load import Dataset, load_dataset
from backprop_lab.data.metrics import regression_metrics
from backprop_lab.data.scaling import Scaler
from backprop_lab.errors import DataError, WeightsError
from backprop_lab.nn.diagnostics import Diagnostics
from backprop_lab.nn.ensemble import Ensemble, Model, member_rngs, members
from backprop_lab.nn.network import Network
from backprop_lab.nn.training import EpochCallback, History, TrainConfig, TrainData
from backprop_lab.nn.weights import load_network
from backprop_lab.pipeline import stacking
from backprop_lab.pipeline.checkpoints import Report, Watch
from backprop_lab.pipeline.config import (
    Config,
    DataConfig,
    ModelConfig,
    NormalizeConfig,
    hidden_layers,
)

SPLITS = ("train", "val", "test")


@dataclass
class Prepared:
    """A split with scalers fitted on its training part, and every part scaled."""

    split: splits.Split
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
    dataset: Dataset
    prepared: Prepared
    network: Model
    histories: list[History]  # one per ensemble member
    evaluation: Evaluation

    @property
    def history(self) -> History:
        """The history to report: the first diverged member's, else the first member's."""
        return self.histories[self.diverged_member or 0]

    @property
    def diverged_member(self) -> int | None:
        """The index of the first diverged member, None when none diverged."""
        return next((k for k, h in enumerate(self.histories) if h.diverged), None)


def streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for splitting, initialising and shuffling, all from one seed."""
    split_rng, init_rng, train_rng = np.random.default_rng(seed).spawn(3)
    return split_rng, init_rng, train_rng


def load(cfg: DataConfig) -> Dataset:
    """Stage 1: read and validate the dataset named by `data.name`."""
    return load_dataset(cfg.name, cfg.path, cfg.target, cfg.features, cfg.drop_b)


def check_fits(cfg: Config, ds: Dataset) -> None:
    """Refuse, before anything runs or is logged, a config the dataset cannot satisfy: a
    constant target (R² undefined, nothing to learn), a split or folds too small to train and
    score on, a `model.init_from` file that does not fit the data or the config's network."""
    if len(ds.y) < 2:
        raise DataError(f"{ds.source}: the data has {len(ds.y)} row(s); training, validating "
                        "and testing need many more")
    constant = [name for name, col in zip(ds.target_names, ds.y.T) if np.ptp(col) == 0]
    if constant:
        raise DataError(f"{ds.source}: target column(s) {constant} are constant "
                        f"({ds.y[0, ds.target_names.index(constant[0])]:g}): nothing to learn, "
                        "and R² is undefined")
    n, folds = ds.n_samples, cfg.eval.cv_folds
    if folds >= 2:
        if n < 2 * folds:
            raise DataError(f"eval.cv_folds: {folds} folds need at least {2 * folds} rows "
                            f"(2 test rows per fold, for R²); {ds.source} has {n}")
    else:
        parts = {"test": (cfg.data.test_fraction, 2), "val": (cfg.data.val_fraction, 1)}
        n_test, n_val = (round(n * cfg.data.test_fraction), round(n * cfg.data.val_fraction))
        for (part, (fraction, least)), rows in zip(parts.items(), (n_test, n_val)):
            if fraction > 0 and rows < least:
                raise DataError(f"data.{part}_fraction: {fraction:g} of {n} rows gives {rows} "
                                f"{part} row(s), {least} needed; use more data, a larger "
                                f"fraction or 0 (no {part} split)")
        if n - n_test - n_val < 1:
            raise DataError(f"{ds.source}: no training rows left ({n} rows, {n_val} val, "
                            f"{n_test} test): lower data.val_fraction or data.test_fraction")
    if cfg.model.init_from:
        build(cfg.model, ds.X.shape[1], ds.y.shape[1], np.random.default_rng(0))


def normalize(split: splits.Split, cfg: NormalizeConfig) -> Prepared:
    """Stage 2: fit the feature and target scalers on the training rows only."""
    return Prepared(
        split, Scaler.fit(cfg.features, split.X_train), Scaler.fit(cfg.target, split.y_train)
    )


def build(cfg: ModelConfig, n_inputs: int, n_outputs: int, rng: np.random.Generator) -> Model:
    """Stage 3: a fresh network (or `model.ensemble` of them) from `model.*`, or the one in
    `model.init_from`."""
    sizes = [n_inputs, *hidden_layers(cfg), n_outputs]
    if cfg.init_from:
        model = load_network(Path(cfg.init_from), cfg.activation, cfg.output_activation, cfg.dtype)
        if model.sizes != sizes:
            raise WeightsError(f"model.init_from: {cfg.init_from} has layer sizes {model.sizes}, "
                               f"the config asks for {sizes}")
        if len(members(model)) != cfg.ensemble:
            raise WeightsError(f"model.init_from: {cfg.init_from} holds {len(members(model))} "
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
    diagnostics: Diagnostics | None = None,
) -> list[History]:
    """Stage 4: backprop training on the scaled training rows, validating on the val rows."""
    return fit_many([(model, prepared, rng)], cfg, callbacks,
                    [diagnostics] if diagnostics is not None else None)[0]


def fit_many(
    jobs: Sequence[tuple[Model, Prepared, np.random.Generator]],
    cfg: TrainConfig,
    callbacks: Sequence[EpochCallback] = (),
    diagnostics: Sequence[Diagnostics] | None = None,
    report: Report | None = None,
) -> list[list[History]]:
    """Stage 4 for several (model, split, shuffle stream) at once: every network of every model
    (ensemble members, CV folds, repeats) in one stack (`train.stacked=true`, nn.training's
    `train_many`) or one after another (`false`); each ends bit for bit as trained alone.

    Member k of a model shuffles with `member_rngs(rng)[k]`. Only the first model's member 0
    reports its epochs to the callbacks: every logged point costs about 0.3 ms of MLflow time
    (bench/README.md), and the other curves are in the returned histories (one list per model,
    one history per member). `diagnostics[j]`, if given, follows member 0 of model j. A diverged
    network is frozen with its best weights; the others train on. Under the `stacked` launcher
    the plan joins the other jobs' (pipeline.stacking). With `report`, the job's score every
    `train.report_every` epochs goes to it (pipeline.checkpoints; it may raise to stop)."""
    plan = stacking.Plan()
    for j, (model, prepared, rng) in enumerate(jobs):
        if diagnostics is not None:
            plan.diagnostics[len(plan.nets)] = diagnostics[j]
        shared = TrainData(prepared.X("train"), prepared.y("train"), prepared.X("val"),
                           prepared.y("val"))
        for net, member_rng in zip(members(model), member_rngs(rng, len(members(model)))):
            plan.nets.append(net)
            plan.data.append(shared)
            plan.configs.append(cfg)
            plan.rngs.append(member_rng)
    bars = progress_bar(cfg.epochs, "train", cfg.progress)
    plan.callbacks[0] = [*callbacks, *bars]
    watch = None
    if report is not None:
        watch = Watch([(model, prepared) for model, prepared, _ in jobs], cfg.report_every, report)
        for k, checkpoint in watch.callbacks(plan.nets).items():
            plan.callbacks.setdefault(k, []).append(checkpoint)
    try:
        histories = stacking.train_plan(plan)
    finally:
        for b in bars:
            b.close()
    if watch is not None and watch.stopped is not None:
        raise watch.stopped  # the report stopped the job (a search pruned it)
    grouped, i = [], 0
    for model, _, _ in jobs:
        grouped.append(histories[i : i + len(members(model))])
        i += len(members(model))
    return grouped


class ProgressBar:
    """`train.progress=true`: a tqdm bar advanced by the epoch callback (the core draws none)."""

    def __init__(self, epochs: int, desc: str):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=epochs, desc=desc, unit="ep")

    def __call__(self, epoch: int, values: dict[str, float]) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def progress_bar(epochs: int, desc: str, show: bool) -> list[ProgressBar]:
    return [ProgressBar(epochs, desc)] if show else []


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


@dataclass
class Setup:
    """Stages 1-3 done: the data, its scaled split, the untrained network and the stream that
    will shuffle its batches. A tracked job keeps it so that an interrupted run can still save
    the weights trained so far."""

    dataset: Dataset
    prepared: Prepared
    network: Model
    train_rng: np.random.Generator


def set_up(cfg: Config, ds: Dataset) -> Setup:
    """Split `ds` with the config's split stream, then normalize and build (stages 2-3)."""
    split_rng, init_rng, train_rng = streams(cfg.seed)
    split = splits.split(ds, cfg.data.val_fraction, cfg.data.test_fraction, split_rng)
    return prepare(cfg, ds, split, init_rng, train_rng)


def prepare(cfg: Config, ds: Dataset, split: splits.Split, init_rng: np.random.Generator,
            train_rng: np.random.Generator) -> Setup:
    """Stages 2-3 on a given split."""
    prepared = normalize(split, cfg.normalize)
    network = build(cfg.model, ds.X.shape[1], ds.y.shape[1], init_rng)
    return Setup(ds, prepared, network, train_rng)


def complete(cfg: Config, setup: Setup, callbacks: Sequence[EpochCallback] = (),
             report: Report | None = None) -> Result:
    """Stages 4-5: train the set-up network in place, then evaluate it."""
    return complete_many(cfg, [setup], callbacks, report)[0]


def complete_many(cfg: Config, setups: Sequence[Setup],
                  callbacks: Sequence[EpochCallback] = (),
                  report: Report | None = None) -> list[Result]:
    """Stages 4-5 for several set-ups of one config (folds, repeats): trained as one stack;
    `report` gets their score every `train.report_every` epochs (see `fit_many`)."""
    diagnostics = ([Diagnostics(cfg.diag.every, cfg.diag.saturation) for _ in setups]
                   if cfg.diag.every else None)
    histories = fit_many([(s.network, s.prepared, s.train_rng) for s in setups], cfg.train,
                         callbacks, diagnostics, report)
    return [Result(s.dataset, s.prepared, s.network, h,
                   evaluate(s.network, s.prepared, s.dataset.target_names))
            for s, h in zip(setups, histories)]


def run(
    cfg: Config,
    callbacks: Sequence[EpochCallback] = (),
    dataset: Dataset | None = None,
) -> Result:
    """All five stages on one train/val/test split."""
    ds = dataset if dataset is not None else load(cfg.data)
    return complete(cfg, set_up(cfg, ds), callbacks)
