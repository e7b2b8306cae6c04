"""A job's score while it trains: what a pruned search (hydra.sweeper.pruner) judges a trial by.

Every `train.report_every` epochs, `Watch` scores the job's networks as they are at that
epoch, the way its final score will be taken: each set-up (a fold, a repeat, or the one split)
predicts with the mean of its ensemble members, in the target's original units, on its
validation rows, or on its held-out rows when it has none (CV with `eval.cv_val_fraction=0`,
where the held-out fold is what the job is ranked by), and the value is the mean MSE over the
set-ups: `val_mse` or `test_mse` as the job will log it. It hands (epoch, value) to `report`,
which may raise to stop training (the search's pruner). With early stopping
(`train.patience`) a job ends on its best weights, so its final score can be better than its
last report.

It rides on the epoch callbacks of every network of the job's stack (`due` limits them to the
report epochs, so the loop hands over weights only then). An epoch is scored once every network
has reported it: a network that diverged stops reporting, and the job (failed anyway) is then
no longer scored. Networks trained one by one (`train.stacked=false`) reach an epoch one after
another, so the score of an epoch comes only when the last one does.

When `report` raises, the job's networks leave the stack (`nn.training.StopNetwork`: each at
its next epoch end, so the other jobs trained in the same stack by `hydra/launcher=stacked`
train on, bit for bit as before), and `fit_many` raises the report's error once training
returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from backprop_lab.nn.ensemble import members
from backprop_lab.nn.network import Network
from backprop_lab.nn.training import StopNetwork

Report = Callable[[int, float], None]


class Watch:
    """Scores a job's (model, prepared split) pairs every `every` epochs, the networks in the
    order the job plans them (members of each model in turn); see the module doc."""

    def __init__(self, jobs: Sequence[tuple[Any, Any]], every: int, report: Report) -> None:
        self.every, self.report = every, report
        self.targets: list[tuple[np.ndarray, np.ndarray, Any]] = []  # per network
        self.groups: list[list[int]] = []  # the networks of each model
        for model, prepared in jobs:
            part = "val" if len(prepared.split.X_val) else "test"
            X, y = prepared.X(part), getattr(prepared.split, f"y_{part}")
            first = len(self.targets)
            for _ in members(model):
                self.targets.append((X, y, prepared.y_scaler))
            self.groups.append(list(range(first, len(self.targets))))
        self.outputs: dict[int, dict[int, np.ndarray]] = {}  # epoch -> network -> prediction
        self.values: dict[int, float] = {}  # epoch -> the score reported
        self.stopped: Exception | None = None  # what `report` raised: the job stops

    def callbacks(self, nets: Sequence[Network]) -> dict[int, Callable[..., None]]:
        """Network index -> its epoch callback (the index as in the job's plan)."""
        return {k: Checkpoint(self, k, net) for k, net in enumerate(nets)}

    def due(self, epoch: int) -> bool:
        return self.stopped is not None or (epoch + 1) % self.every == 0

    def observe(self, k: int, epoch: int, net: Network) -> None:
        if self.stopped is not None:
            raise StopNetwork
        X = self.targets[k][0]
        found = self.outputs.setdefault(epoch, {})
        found[k] = net.predict(X) if len(X) else np.empty((0, 1))
        if len(found) == len(self.targets):
            del self.outputs[epoch]
            value = self.score(found)
            self.values[epoch] = value
            try:
                self.report(epoch, value)
            except Exception as err:
                self.stopped = err
                raise StopNetwork from err

    def score(self, outputs: dict[int, np.ndarray]) -> float:
        """The mean over set-ups of the ensemble's MSE in original units."""
        mses = []
        for group in self.groups:
            _, y, scaler = self.targets[group[0]]
            if len(y) == 0:
                continue
            mean = sum(outputs[k] for k in group) / len(group)
            pred = scaler.inverse_transform(mean)
            mses.append(float(np.mean((np.asarray(y) - pred) ** 2)))
        return float(np.mean(mses)) if mses else float("nan")


class Checkpoint:
    """Network k's epoch callback: hands its weights of a report epoch to the watch."""

    def __init__(self, watch: Watch, k: int, net: Network) -> None:
        self.watch, self.k, self.net = watch, k, net

    def due(self, epoch: int) -> bool:
        return self.watch.due(epoch)

    def __call__(self, epoch: int, values: dict[str, float]) -> None:
        self.watch.observe(self.k, epoch, self.net)
