"""The epoch loop: batching, early stopping, divergence detection and a per-epoch callback.

The recorded train cost of an epoch is the mean of its batch costs, each computed in the forward
pass before that batch's update (as in the tutorial and scikit-learn): for full-batch gradient
descent it is exactly the cost of the weights at the start of the epoch, and those are the weights
kept as "best" when no validation set is given. With a validation set, the validation cost after
the epoch is monitored and the weights after the epoch are kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from backprop_lab.nn.diagnostics import Diagnostics, Record
from backprop_lab.nn.network import Network, Workspace
from backprop_lab.nn.optim import make_optimizer

Array = np.ndarray
EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class TrainConfig:
    """How to train; `batch_size=None` means full batch, `patience=None` no early stopping."""

    optimizer: str = "gd"
    lr: float = 1e-2
    epochs: int = 100
    batch_size: int | None = None
    shuffle: bool = True
    momentum: float = 0.9
    weight_decay: float = 0.0
    patience: int | None = None
    divergence_factor: float = 1e3
    progress: bool = False  # a progress bar: drawn by the pipeline through a callback


@dataclass
class History:
    """What happened: per-epoch costs, where it stopped and why."""

    train_cost: list[float] = field(default_factory=list)
    val_cost: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_cost: float = math.inf
    diverged: bool = False
    diverged_epoch: int | None = None
    last_finite_cost: float | None = None
    stopped_early: bool = False
    diag: dict[int, Record] = field(default_factory=dict)  # epoch -> gradient-flow record

    @property
    def epochs_run(self) -> int:
        return len(self.train_cost)

    @property
    def stop_reason(self) -> str:
        if self.diverged:
            last = self.last_finite_cost
            return f"diverged at epoch {self.diverged_epoch} (last finite cost {last})"
        if self.stopped_early:
            return f"early stopping: best epoch {self.best_epoch}"
        return "completed"


def batches(n: int, batch_size: int | None, shuffle: bool, rng: np.random.Generator) -> list[Array]:
    """Index arrays of one epoch's batches; a seeded permutation when shuffling mini-batches."""
    if batch_size is None or batch_size >= n:
        return [np.arange(n)]
    order = rng.permutation(n) if shuffle else np.arange(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def train(
    net: Network,
    X: Array,
    y: Array,
    config: TrainConfig,
    rng: np.random.Generator,
    X_val: Array | None = None,
    y_val: Array | None = None,
    callbacks: Sequence[EpochCallback] = (),
    diagnostics: Diagnostics | None = None,
) -> History:
    """Train `net` in place; on divergence or early stopping it ends with the best weights.

    With `diagnostics`, every `diagnostics.every` epochs the gradient flow of the epoch is
    recorded in `History.diag` and passed to the callbacks with the costs (`diag.*` keys).

    X: (n_samples, n_inputs), y: (n_samples, n_outputs) or (n_samples,). Inputs are cast once to
    the network's dtype; the weights never change dtype.
    """
    dt = net.dtype
    X = np.ascontiguousarray(X, dtype=dt)
    y = np.ascontiguousarray(y, dtype=dt).reshape(len(X), -1)
    has_val = X_val is not None and y_val is not None and len(X_val) > 0
    if has_val:
        X_val = np.ascontiguousarray(X_val, dtype=dt)
        y_val = np.ascontiguousarray(y_val, dtype=dt).reshape(len(X_val), -1)
    opt = make_optimizer(config.optimizer, config.lr, config.momentum, config.weight_decay)
    workspaces: dict[int, tuple[Workspace, list[Array]]] = {}  # batch size -> (buffers, grads)
    xb_buffers: dict[int, tuple[Array, Array]] = {}
    full_batch = config.batch_size is None or config.batch_size >= len(X)
    X_full = np.asfortranarray(X) if full_batch else X  # backprop reads Xᵀ, one row per input
    params = net.parameters
    best = [p.copy() for p in params]
    start = [p.copy() for p in params]
    history = History()
    # Divergence is measured against the untrained network's cost, so a first epoch that
    # already blows up (Adam at a huge lr) is caught too.
    initial = net.cost(X_val, y_val) if has_val else net.cost(X, y)  # type: ignore[arg-type]
    limit = config.divergence_factor * max(initial, float(np.finfo(dt).eps))
    history.last_finite_cost = initial if math.isfinite(initial) else None
    since_best = 0

    for epoch in range(config.epochs):
        if not has_val:
            for s, p in zip(start, params):
                np.copyto(s, p)
        diagnosing = diagnostics is not None and diagnostics.due(epoch)
        if diagnosing:
            diagnostics.start(net)  # type: ignore[union-attr]
        total = 0.0
        order = [None] if full_batch else batches(len(X), config.batch_size, config.shuffle, rng)
        for idx in order:
            if idx is None:
                n, xb, yb = len(X), X_full, y
            elif not config.shuffle:  # a batch in order is a slice: no copy
                n, i = len(idx), int(idx[0])
                xb, yb = X[i : i + n], y[i : i + n]
            else:
                n = len(idx)
                if n not in xb_buffers:
                    xb_buffers[n] = (np.empty((n, X.shape[1]), dt), np.empty((n, y.shape[1]), dt))
                xb, yb = xb_buffers[n]
                np.take(X, idx, axis=0, out=xb, mode="clip")  # "clip": no bounds-check copy
                np.take(y, idx, axis=0, out=yb, mode="clip")
            if n not in workspaces:
                ws = Workspace.for_network(net, n)
                workspaces[n] = ws, ws.grads
            ws, grads = workspaces[n]
            cost = net.backprop(xb, yb, ws)
            if diagnosing:
                diagnostics.observe(net, ws)  # type: ignore[union-attr]
            total += cost * n
            if not math.isfinite(cost):
                break
            opt.step(params, grads)
        train_cost = total / len(X)
        history.train_cost.append(train_cost)
        monitored = train_cost
        if has_val:
            monitored = net.cost(X_val, y_val)  # type: ignore[arg-type]
            history.val_cost.append(monitored)
        if diagnosing:
            history.diag[epoch] = diagnostics.finish(net)  # type: ignore[union-attr]
        if not (math.isfinite(train_cost) and math.isfinite(monitored)) or monitored > limit:
            history.diverged, history.diverged_epoch = True, epoch
            if history.best_epoch < 0:  # blew up in the first epoch: back to the initial weights
                history.best_cost = initial
            break
        history.last_finite_cost = monitored
        if monitored < history.best_cost:
            history.best_cost, history.best_epoch, since_best = monitored, epoch, 0
            if has_val:
                for b, p in zip(best, params):
                    np.copyto(b, p)
            else:  # this cost is that of the weights in `start`: keep them, reuse the old buffers
                best, start = start, best
        else:
            since_best += 1
        for callback in callbacks:
            values = {"train_cost": train_cost}
            if has_val:
                values["val_cost"] = monitored
            values.update(history.diag.get(epoch, {}))
            callback(epoch, values)
        if config.patience is not None and since_best > config.patience:
            history.stopped_early = True
            break

    if history.diverged or config.patience is not None:
        for p, b in zip(params, best):
            np.copyto(p, b)
    return history
