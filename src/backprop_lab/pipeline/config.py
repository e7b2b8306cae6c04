"""Every command's configuration as typed dataclasses, and the range checks types cannot express.

Hydra merges the YAML files of `conf/` into these dataclasses (`pipeline.compose` registers
them), which rejects a wrong type or an unknown key with the key named; `validate` then checks
values (lr > 0, widths >= 1, fractions in range, known names) and raises a `ConfigError` naming
the key and what is allowed. `Config` is a training run; `CompareCommand`, `RerunCommand` and
`EvaluateCommand` are the other commands, which share `TrackingConfig` with it so that
`tracking.uri` and `tracking.experiment` mean the same in all four.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from backprop_lab.data.load import DATASETS
from backprop_lab.data.scaling import SCALERS
from backprop_lab.errors import ConfigError
from backprop_lab.nn.activations import NAMES as ACTIVATIONS
from backprop_lab.nn.network import DTYPES, INITS
from backprop_lab.nn.optim import OPTIMIZERS
from backprop_lab.nn.training import TrainConfig

__all__ = ["Config", "ConfigError", "TrainConfig", "validate", "hidden_layers"]
SPLIT_MODES = ("auto", "run", "all")


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
    # K >= 2: train under K seeds derived from `seed` (the same K for every job of a sweep);
    # each (repeat, fold) is one score cell, compared across jobs by compare's paired tests
    repeats: int = 1
    first_repeat: int = 0  # the repeats trained are first_repeat .. first_repeat + repeats - 1
    # a job whose error is within ±equivalence (relative) of the best's is practically equal
    # to it: compare's `equivalent` verdict (docs/statistics.md says why 1%)
    equivalence: float = 0.01
    # with repeats K >= 2 in a multirun: repeats in rounds, each job stopping once decided
    race: bool = False
    # score linear regression, ridge and scikit-learn's MLP on the run's own cells as well
    baselines: bool = False


@dataclass
class DiagConfig:
    """Gradient-flow diagnostics (nn.diagnostics): every N epochs, 0 = off."""

    every: int = 10
    saturation: float = 0.05  # |f'(z)| below this counts a tanh/sigmoid unit as saturated


@dataclass
class TrackingConfig:
    """Where runs are logged and read, the same keys in every command."""

    uri: str | None = None  # None: sqlite:///<project root>/mlruns/mlflow.db
    # train: the experiment runs go to; compare: the one searched (None: all); rerun and
    # evaluate: the one the new run goes to (None: the original run's)
    experiment: str | None = "backprop-lab"
    run_name: str | None = None  # train only
    log_model: bool = True  # train only: also log an MLflow pyfunc model (about 1-2 s per run)
    # train only: register the logged model as a version of this registered model (a sweep: its
    # best job's, and alias `champion` moved to it when better); None: no registry
    register: str | None = None
    # a RUNNING run whose heartbeat is older than this many seconds is dead: marked FAILED,
    # stale=true, when a run or sweep starts in its experiment and by pipelines.cleanup
    stale_after: float = 300.0
    # a tracking server that stops answering mid-run: the run trains on and spools its writes
    # (in its output folder, mlflow-spool/); at its end it waits this many seconds for the
    # server, then exits 1 naming the spool (`python -m pipelines.sync` uploads it). A sweep's
    # job also waits this long for a server that is away when the job starts.
    spool_wait: float = 60.0
    # set by hydra/sweeper=optuna, never by hand: the number of the Optuna trial this job is;
    # the job reports to it through the study's storage (<sweep dir>/study.json says where)
    trial: int | None = None


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
    diag: DiagConfig = field(default_factory=DiagConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    rerun: RerunConfig = field(default_factory=RerunConfig)


@dataclass
class CompareCommand:
    """python -m pipelines.compare: the table, plots and summary of one sweep."""

    sweep_id: str | None = None  # an id or a prefix; None: the latest sweep
    out: str | None = None  # None: <sweep dir>/compare, else ./sweep-<id>-compare
    metric: str | None = None  # None: val_mse, else test_mse; `*r2` ranks highest first
    log_artifacts: bool = True  # also log the files to the parent run, under compare/
    equivalence: float | None = None  # None: the jobs' eval.equivalence (default 1%)
    output: str = "text"  # text: the ranked table; json: one JSON document, for scripts
    tracking: TrackingConfig = field(default_factory=lambda: TrackingConfig(experiment=None))


@dataclass
class CleanupCommand:
    """python -m pipelines.cleanup: mark the runs whose process died (see tracking.liveness)."""

    output: str = "text"  # text for people; json: one JSON document, for scripts
    tracking: TrackingConfig = field(default_factory=lambda: TrackingConfig(experiment=None))


@dataclass
class SyncCommand:
    """python -m pipelines.sync: upload the writes runs spooled while the server was away."""

    path: str | None = None  # a spool, a run's or sweep's output folder; None: outputs/, multirun/
    output: str = "text"  # text for people; json: one JSON document, for scripts


@dataclass
class RerunCommand:
    """python -m pipelines.rerun: train a logged run again and compare the two."""

    run_id: str | None = None
    sweep_id: str | None = None  # every job of this sweep (a prefix of the id is enough)
    force: bool = False  # rerun even when the data's sha256 differs from the logged one
    rtol: float = 1e-6  # "within tolerance": |a - b| <= atol + rtol * |a| everywhere
    atol: float = 1e-9
    output: str = "text"  # text for people; json: one JSON document, for scripts
    tracking: TrackingConfig = field(default_factory=lambda: TrackingConfig(experiment=None))


@dataclass
class EvaluateCommand:
    """python -m pipelines.evaluate: score a logged model on a dataset without retraining."""

    run_id: str | None = None
    data: DataConfig | None = None  # None: the data the run trained on
    split: str = "auto"  # auto | run (the run's own split) | all (every row)
    output: str = "text"  # text for people; json: one JSON document, for scripts
    tracking: TrackingConfig = field(default_factory=lambda: TrackingConfig(experiment=None))


def hidden_layers(model: ModelConfig) -> list[int]:
    """The hidden widths, expanding the depth/width shorthand when it is set."""
    if model.depth is None and model.width is None:
        return list(model.hidden)
    if model.depth is None or model.width is None:
        raise ConfigError("model.depth and model.width go together: set both or neither")
    return [model.width] * model.depth


def check_choice(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    """Raise a ConfigError naming `key` unless `value` is one of `allowed`."""
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not allowed; choose one of {', '.join(allowed)}")


def check_rule(key: str, ok: bool, rule: str, value: Any) -> None:
    """Raise a ConfigError naming `key`, the `rule` and the value unless `ok`."""
    if not ok:
        raise ConfigError(f"{key}: must be {rule}, got {value!r}")


def check_tracking(t: TrackingConfig) -> TrackingConfig:
    """The tracking keys every command shares."""
    check_rule("tracking.stale_after", math.isfinite(t.stale_after) and t.stale_after >= 90,
               ">= 90 (three heartbeats of 30 s)", t.stale_after)
    check_rule("tracking.spool_wait", math.isfinite(t.spool_wait) and t.spool_wait >= 0,
               "a number of seconds >= 0", t.spool_wait)
    if t.register is not None:
        check_register_name(t.register)
    return t


def check_register_name(name: str) -> None:
    """A registered model's name as MLflow takes it (no '/' or ':', not blank, not '.' or
    '..'), and no '@', which `models:/NAME@alias` splits on."""
    check_rule("tracking.register", name.strip() == name != "" and not set("/:@") & set(name)
               and name not in (".", ".."),
               "null or a registered model name without '/', ':', '@' or outer spaces", name)


def scored_on_cells(cfg: Config) -> bool:
    """Whether a run is scored on cells (folds, repeats, baselines) rather than one split."""
    e = cfg.eval
    return e.cv_folds >= 2 or e.repeats > 1 or e.first_repeat > 0 or e.baselines


def validate_train(t: TrainConfig, prefix: str = "train.") -> TrainConfig:
    """The ranges of the training keys; `prefix` is how the caller names them (the estimator's
    parameters have none)."""
    check_choice(f"{prefix}optimizer", t.optimizer, OPTIMIZERS)
    check_rule(f"{prefix}lr", math.isfinite(t.lr) and t.lr > 0, "finite and > 0", t.lr)
    check_rule(f"{prefix}epochs", t.epochs >= 1, ">= 1", t.epochs)
    check_rule(f"{prefix}batch_size", t.batch_size is None or t.batch_size >= 1, ">= 1 or null",
               t.batch_size)
    check_rule(f"{prefix}momentum", 0 <= t.momentum < 1, "in [0, 1)", t.momentum)
    check_rule(f"{prefix}weight_decay", math.isfinite(t.weight_decay) and t.weight_decay >= 0,
               "finite and >= 0", t.weight_decay)
    for key, beta in (("beta1", t.beta1), ("beta2", t.beta2)):
        check_rule(f"{prefix}{key}", 0 <= beta < 1, "in [0, 1)", beta)
    check_rule(f"{prefix}eps", math.isfinite(t.eps) and t.eps > 0, "finite and > 0", t.eps)
    check_rule(f"{prefix}patience", t.patience is None or t.patience >= 0, ">= 0 or null",
               t.patience)
    check_rule(f"{prefix}divergence_factor", t.divergence_factor > 1, "> 1", t.divergence_factor)
    check_rule(f"{prefix}report_every", t.report_every >= 1, ">= 1", t.report_every)
    check_rule(f"{prefix}n_jobs", t.n_jobs is None or t.n_jobs >= 1, ">= 1 or null", t.n_jobs)
    return t


def validate(cfg: Config) -> Config:
    """Check every value types cannot; return the config unchanged when it is valid."""
    d, m, t = cfg.data, cfg.model, cfg.train
    check_rule("seed", cfg.seed >= 0, ">= 0", cfg.seed)
    check_choice("data.name", d.name, DATASETS)
    check_rule("data.path", d.name != "csv" or bool(d.path), "set for data=csv", d.path)
    for key in ("val_fraction", "test_fraction"):
        value = getattr(d, key)
        check_rule(f"data.{key}", 0 <= value < 1, "in [0, 1)", value)
    check_rule("data.val_fraction + data.test_fraction", d.val_fraction + d.test_fraction < 1,
           "< 1 to leave training data", d.val_fraction + d.test_fraction)
    check_choice("normalize.features", cfg.normalize.features, SCALERS)
    check_choice("normalize.target", cfg.normalize.target, SCALERS)
    for key in ("depth", "width"):
        value = getattr(m, key)
        minimum = 0 if key == "depth" else 1
        check_rule(f"model.{key}", value is None or value >= minimum, f">= {minimum}", value)
    hidden = hidden_layers(m)
    check_rule("model.hidden", all(w >= 1 for w in hidden), "a list of widths >= 1", hidden)
    check_choice("model.activation", m.activation, ACTIVATIONS)
    check_choice("model.output_activation", m.output_activation, ACTIVATIONS)
    check_choice("model.init", m.init, INITS)
    check_choice("model.dtype", m.dtype, DTYPES)
    check_rule("model.ensemble", m.ensemble >= 1, ">= 1", m.ensemble)
    validate_train(t)
    check_rule("eval.cv_folds", cfg.eval.cv_folds == 0 or cfg.eval.cv_folds >= 2, "0 or >= 2",
           cfg.eval.cv_folds)
    cv_val = cfg.eval.cv_val_fraction
    check_rule("eval.cv_val_fraction", cv_val is None or 0 <= cv_val < 1, "in [0, 1) or null",
               cv_val)
    check_rule("eval.n_examples", cfg.eval.n_examples >= 0, ">= 0", cfg.eval.n_examples)
    check_rule("eval.repeats", cfg.eval.repeats >= 1, ">= 1", cfg.eval.repeats)
    check_rule("eval.first_repeat", cfg.eval.first_repeat >= 0, ">= 0", cfg.eval.first_repeat)
    check_rule("eval.equivalence", 0 < cfg.eval.equivalence < 1, "in (0, 1)",
               cfg.eval.equivalence)
    check_rule("diag.every", cfg.diag.every >= 0, ">= 0 (0: off)", cfg.diag.every)
    check_rule("diag.saturation", 0 < cfg.diag.saturation < 1, "in (0, 1)", cfg.diag.saturation)
    check_rule("tracking.experiment", bool(cfg.tracking.experiment), "a name",
               cfg.tracking.experiment)
    check_tracking(cfg.tracking)
    check_register_fits(cfg.tracking.register, cfg.tracking.log_model, scored_on_cells(cfg))
    return cfg


def check_register_fits(register: str | None, log_model: bool, cells: bool) -> None:
    """`tracking.register` needs a logged model: one split, `tracking.log_model=true`."""
    check_rule("tracking.register", register is None or (log_model and not cells),
               "null unless the run logs a model (tracking.log_model=true, one split: runs "
               "scored on cells log none)", register)
