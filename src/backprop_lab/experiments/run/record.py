"""What one training run records for a reader of the MLflow UI, so that every number means what
it says:

- **the network that trained**: config.yaml has `model.hidden` resolved (the `model.depth` /
  `model.width` shorthand expanded), and the params name the architecture once: `hidden`
  (e.g. "[16, 16]"), `depth` and `width` (the widest hidden layer, 0 without one) instead of
  `model.hidden`, `model.depth` and `model.width`;
- `train.log10_lr`: the UI's parallel-coordinates chart has linear axes only;
- `best_val_loss` only where the best weights were kept: early stopping (`train.patience` set)
  restores them, a fixed-epoch run keeps its last weights;
- a diverged run logs the blown-up epoch's cost on its learning curve (`DIVERGED_COST` where the
  cost is not finite) and none of its scores: the weights it kept are not what the config
  trains to, and a FAILED run must not sort among the finished ones by `val_mse`;
- the final metrics are logged at the step of the weights kept, which is the step whose metrics
  MLflow links to a model logged with `log_model(step=...)`.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from backprop_lab.data.load import Dataset
from backprop_lab.nn.ensemble import Model
from backprop_lab.nn.training import History
from backprop_lab.pipeline.config import Config
from backprop_lab.tracking.store import flatten

# the cost logged for an epoch whose cost is inf or NaN (MLflow stores no inf and draws no NaN);
# finite costs above it are logged as it too, so every blown-up point sits at the same height
DIVERGED_COST = 1e30
ARCHITECTURE_KEYS = ("model.hidden", "model.depth", "model.width")



@dataclass
class JobOutcome:
    """What a tracked job returns to whatever launched it."""

    run_id: str
    status: str  # FINISHED or FAILED (diverged)
    metrics: dict[str, float]
    objective: float  # what a sweeper minimises (`identity.objective`)
    network: Model | None = None  # the trained network (None for a reused run or CV)
    model_uri: str | None = None  # the logged model, `models:/<model_id>` (None: none logged)

def with_hidden(cfg: DictConfig, hidden: Sequence[int]) -> DictConfig:
    """A copy of `cfg` whose `model.hidden` is `hidden`, the widths that train."""
    resolved = copy.deepcopy(cfg)
    OmegaConf.update(resolved, "model.hidden", list(hidden), merge=False)
    return resolved


def run_params(resolved: Mapping[str, Any], hidden: Sequence[int]) -> dict[str, str]:
    """Every leaf of the resolved config under its dotted key, the architecture once (`hidden`,
    `depth`, `width`) and `train.log10_lr`."""
    params = flatten(resolved)
    for key in ARCHITECTURE_KEYS:
        params.pop(key, None)
    params.update({"hidden": str(list(hidden)), "depth": str(len(hidden)),
                   "width": str(max(hidden, default=0))})
    lr = float(resolved["train"]["lr"])
    params["train.log10_lr"] = f"{math.log10(lr):.6g}"
    return params


def best_kept(patience: int | None, history: History) -> bool:
    """Whether the network holds the weights of `history.best_epoch`: early stopping restores
    them, and so does a divergence (unless it came before any epoch ended)."""
    return (patience is not None or history.diverged) and history.best_epoch >= 0


def final_step(patience: int | None, history: History) -> int:
    """The epoch whose weights the network holds: the best one when kept, else the last."""
    if best_kept(patience, history):
        return history.best_epoch
    return max(history.epochs_run - 1, 0)


def curve_value(cost: float) -> float:
    """A per-epoch cost as logged: as is, or `DIVERGED_COST` when not finite or above it."""
    return cost if math.isfinite(cost) and cost < DIVERGED_COST else DIVERGED_COST


def diverged_point(history: History) -> dict[str, float]:
    """The blown-up epoch's costs (`train_loss`, `val_loss`), which the epoch loop does not
    report to its callbacks; empty unless `history` diverged."""
    epoch = history.diverged_epoch
    if not history.diverged or epoch is None:
        return {}
    point = {}
    for key, costs in (("train_loss", history.train_cost), ("val_loss", history.val_cost)):
        if epoch < len(costs):
            point[key] = curve_value(costs[epoch])
    return point


def final_metrics(scores: Mapping[str, float], patience: int | None,
                  history: History) -> dict[str, float]:
    """What a single-split run logs at its end: the test/val/train scores, `epochs_run` and,
    where the best weights were kept, `best_val_loss`; a diverged run only `epochs_run`."""
    metrics: dict[str, float] = {"epochs_run": float(history.epochs_run)}
    if history.diverged:
        return metrics
    metrics.update(scores)
    if history.val_cost and best_kept(patience, history):
        metrics["best_val_loss"] = history.best_cost
    return metrics


def watched_cost(history: History) -> str:
    """The cost early stopping watched: the validation rows', or, with none
    (`data.val_fraction=0`), the training rows' own."""
    if history.val_cost:
        return "validation cost"
    return "training cost (no validation rows: data.val_fraction=0)"


def how_it_stopped(patience: int | None, history: History) -> str:
    """How training ended, in full, and which weights the network holds."""
    if history.diverged:
        kept = (f"the weights of epoch {history.best_epoch} (the best before it) were kept"
                if history.best_epoch >= 0 else "the initial weights were kept")
        blown = [curve_value(c) for c in (history.train_cost[-1:] + history.val_cost[-1:])]
        reached = f"; the cost reached {max(blown):.3g}" if blown else ""
        if blown and max(blown) >= DIVERGED_COST:
            reached = f"; the cost overflowed (logged as {DIVERGED_COST:.0e})"
        return f"{history.stop_reason}{reached}; {kept}"
    if history.stopped_early:
        return (f"{history.stop_reason} (no better {watched_cost(history)} in the {patience} "
                f"epochs after it, of {history.epochs_run} run); the weights of epoch "
                f"{history.best_epoch} were kept")
    if best_kept(patience, history):
        return (f"completed all {history.epochs_run} epochs; the weights of the best epoch, "
                f"{history.best_epoch}, were kept")
    return (f"completed all {history.epochs_run} epochs (fixed, train.patience=null); the last "
            "epoch's weights were kept")


def network_text(config: Config, ds: Dataset, hidden: list[int]) -> str:
    """"13-16-16-1, tanh, mean of 5 networks": the layer sizes, the activation, the ensemble."""
    sizes = "-".join(str(n) for n in (ds.X.shape[1], *hidden, ds.y.shape[1]))
    text = f"{sizes}, {config.model.activation}" if hidden else f"{sizes} (no hidden layer)"
    if config.model.ensemble > 1:
        text += f", mean of {config.model.ensemble} networks"
    return text + f"; {config.train.optimizer} at train.lr {config.train.lr:g}"


def model_name(run_name: str) -> str:
    """The logged model's name: the run's, without the characters MLflow refuses in a model
    name (/ : . % " ') or that a `runs:/` URI would mangle: `lr=0.01,depth=2` ->
    `lr=0_01,depth=2`."""
    return re.sub(r"[^\w=,+\-]", "_", run_name)[:200] or "model"


def scores_text(outcome: JobOutcome) -> str:
    """"val_mse 10.2, test_rmse 3.41, test_r2 0.85": what a registered version's description
    says of the run that made it."""
    shown = [f"{k} {outcome.metrics[k]:.4g}" for k in ("val_mse", "test_rmse", "test_r2")
             if k in outcome.metrics]
    return ", ".join(shown) or outcome.status.lower()
