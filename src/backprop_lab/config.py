"""The run configuration as typed dataclasses, and the range checks types cannot express.

Hydra merges the YAML files of `conf/` into these dataclasses, which rejects a wrong type or an
unknown key with the key named; `validate` then checks values (lr > 0, widths >= 1, fractions in
range, known names) and raises a `ConfigError` naming the key and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backprop_lab.activations import NAMES as ACTIVATIONS
from backprop_lab.network import DTYPES, INITS
from backprop_lab.normalize import SCALERS
from backprop_lab.optim import OPTIMIZERS
from backprop_lab.train import TrainConfig

DATASETS = ("boston", "diabetes", "csv")


class ConfigError(ValueError):
    """A config value out of range; the message names the key and the allowed values."""


@dataclass
class DataConfig:
    name: str = "boston"
    path: str | None = None  # csv: the file; boston: defaults to data/boston_house_prices.csv
    target: str = "MEDV"
    features: list[str] | None = None  # None: every column but the target
    drop_b: bool = False  # boston: drop the ethically problematic B column (data/README.md)
    val_fraction: float = 0.15
    test_fraction: float = 0.15


@dataclass
class NormalizeConfig:
    features: str = "standard"
    target: str = "standard"


@dataclass
class ModelConfig:
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    depth: int | None = None  # shorthand for sweeps: depth=2, width=16 -> hidden=[16, 16]
    width: int | None = None
    activation: str = "relu"
    output_activation: str = "linear"
    init: str = "he"
    dtype: str = "float64"
    init_from: str | None = None  # a weights .npz to start from instead of `init`
    ensemble: int = 1  # N >= 2: train N networks (own init and batch order), predict their mean


@dataclass
class EvalConfig:
    cv_folds: int = 0  # K >= 2: K-fold cross-validation instead of one split
    cv_val_fraction: float | None = None  # validation rows per fold; None: data.val_fraction
    n_examples: int = 5  # rows of the predicted-vs-actual table


@dataclass
class TrackingConfig:
    uri: str | None = None  # None: sqlite:///<project root>/mlruns/mlflow.db
    experiment: str = "backprop-lab"
    run_name: str | None = None
    log_model: bool = True  # also log an MLflow pyfunc model (about 1-2 s per run)


@dataclass
class RerunConfig:
    force: bool = False  # multirun: train every job, even one a finished run already did


@dataclass
class Config:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    rerun: RerunConfig = field(default_factory=RerunConfig)


def hidden_layers(model: ModelConfig) -> list[int]:
    """The hidden widths, expanding the depth/width shorthand when it is set."""
    if model.depth is None and model.width is None:
        return list(model.hidden)
    if model.depth is None or model.width is None:
        raise ConfigError("model.depth and model.width go together: set both or neither")
    return [model.width] * model.depth


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not allowed; choose one of {', '.join(allowed)}")


def _check(key: str, ok: bool, rule: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key}: must be {rule}, got {value!r}")


def validate(cfg: Config) -> Config:
    """Check every value types cannot; return the config unchanged when it is valid."""
    d, m, t = cfg.data, cfg.model, cfg.train
    _check("seed", cfg.seed >= 0, ">= 0", cfg.seed)
    _choice("data.name", d.name, DATASETS)
    _check("data.path", d.name != "csv" or bool(d.path), "set for data=csv", d.path)
    for key in ("val_fraction", "test_fraction"):
        value = getattr(d, key)
        _check(f"data.{key}", 0 <= value < 1, "in [0, 1)", value)
    _check("data.val_fraction + data.test_fraction", d.val_fraction + d.test_fraction < 1,
           "< 1 to leave training data", d.val_fraction + d.test_fraction)
    _choice("normalize.features", cfg.normalize.features, SCALERS)
    _choice("normalize.target", cfg.normalize.target, SCALERS)
    for key in ("depth", "width"):
        value = getattr(m, key)
        minimum = 0 if key == "depth" else 1
        _check(f"model.{key}", value is None or value >= minimum, f">= {minimum}", value)
    hidden = hidden_layers(m)
    _check("model.hidden", all(w >= 1 for w in hidden), "a list of widths >= 1", hidden)
    _choice("model.activation", m.activation, ACTIVATIONS)
    _choice("model.output_activation", m.output_activation, ACTIVATIONS)
    _choice("model.init", m.init, INITS)
    _choice("model.dtype", m.dtype, DTYPES)
    _check("model.ensemble", m.ensemble >= 1, ">= 1", m.ensemble)
    _choice("train.optimizer", t.optimizer, OPTIMIZERS)
    _check("train.lr", t.lr > 0, "> 0", t.lr)
    _check("train.epochs", t.epochs >= 1, ">= 1", t.epochs)
    _check("train.batch_size", t.batch_size is None or t.batch_size >= 1, ">= 1 or null",
           t.batch_size)
    _check("train.momentum", 0 <= t.momentum < 1, "in [0, 1)", t.momentum)
    _check("train.weight_decay", t.weight_decay >= 0, ">= 0", t.weight_decay)
    _check("train.patience", t.patience is None or t.patience >= 0, ">= 0 or null", t.patience)
    _check("train.divergence_factor", t.divergence_factor > 1, "> 1", t.divergence_factor)
    _check("eval.cv_folds", cfg.eval.cv_folds == 0 or cfg.eval.cv_folds >= 2, "0 or >= 2",
           cfg.eval.cv_folds)
    cv_val = cfg.eval.cv_val_fraction
    _check("eval.cv_val_fraction", cv_val is None or 0 <= cv_val < 1, "in [0, 1) or null", cv_val)
    _check("eval.n_examples", cfg.eval.n_examples >= 0, ">= 0", cfg.eval.n_examples)
    return cfg
