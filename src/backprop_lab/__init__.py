"""backprop-lab: neural networks and their backprop, written from scratch in numpy.

The public API, for notebooks and scripts::

    from backprop_lab import Network, TrainConfig, load_dataset, train
    ds = load_dataset("boston")
    net = Network.create([13, 16, 1], rng=np.random.default_rng(0), activation="tanh")
    history = train(net, X, y, TrainConfig(optimizer="adam", lr=1e-3, epochs=200), rng)

    # many networks of one shape at once, each bit for bit as trained alone (nn.stacked)
    histories = train_many(nets, [TrainData(X, y, X_val, y_val)] * len(nets), config, rngs)

    from backprop_lab import MLPRegressor          # the same network as a scikit-learn estimator
    from backprop_lab import run                   # the tracked pipeline: run(["train.lr=1e-3"])

Names load on first use (PEP 562), so `import backprop_lab` imports neither MLflow nor Hydra,
nor anything heavier than the name asked for.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = [
    "BackpropLabError",
    "Dataset",
    "Ensemble",
    "History",
    "MLPRegressor",
    "Network",
    "RunResult",
    "Scaler",
    "TrainConfig",
    "TrainData",
    "Workspace",
    "kfold",
    "load_dataset",
    "load_network",
    "regression_metrics",
    "run",
    "save_network",
    "split",
    "train",
    "train_many",
]

_WHERE = {
    "BackpropLabError": "backprop_lab.errors",
    "Dataset": "backprop_lab.data.load",
    "Ensemble": "backprop_lab.nn.ensemble",
    "History": "backprop_lab.nn.training",
    "MLPRegressor": "backprop_lab.pipeline.estimator",
    "Network": "backprop_lab.nn.network",
    "RunResult": "backprop_lab.experiments.run.api",
    "Scaler": "backprop_lab.data.scaling",
    "TrainConfig": "backprop_lab.nn.training",
    "TrainData": "backprop_lab.nn.training",
    "Workspace": "backprop_lab.nn.network",
    "kfold": "backprop_lab.data.splits",
    "load_dataset": "backprop_lab.data.load",
    "load_network": "backprop_lab.nn.weights",
    "regression_metrics": "backprop_lab.data.metrics",
    "run": "backprop_lab.experiments.run.api",
    "save_network": "backprop_lab.nn.weights",
    "split": "backprop_lab.data.splits",
    "train": "backprop_lab.nn.training",
    "train_many": "backprop_lab.nn.training",
}

if TYPE_CHECKING:
    from backprop_lab.data.load import Dataset, load_dataset
    from backprop_lab.data.metrics import regression_metrics
    from backprop_lab.data.scaling import Scaler
    from backprop_lab.data.splits import kfold, split
    from backprop_lab.errors import BackpropLabError
    from backprop_lab.experiments.run.api import RunResult, run
    from backprop_lab.nn.ensemble import Ensemble
    from backprop_lab.nn.network import Network, Workspace
    from backprop_lab.nn.training import History, TrainConfig, TrainData, train, train_many
    from backprop_lab.nn.weights import load_network, save_network
    from backprop_lab.pipeline.estimator import MLPRegressor


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'backprop_lab' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
