"""The epoch loop: batching, early stopping, divergence detection and a per-epoch callback.

`train_many` trains K networks of one shape at once as a stack (`nn.stacked`): each with its own
rows, batch order, random stream, learning rate and weight decay, its own early stopping (a network
that stops is frozen with its best weights) and its own divergence (a diverged network is frozen
and reported; its NaN never reaches the others). Each ends with exactly the weights and history it
would have had trained alone; `train` is the one-network case.

The recorded train cost of an epoch is the mean of its batch costs, each computed in the forward
pass before that batch's update (as in the tutorial and scikit-learn): for full-batch gradient
descent it is exactly the cost of the weights at the start of the epoch, and those are the weights
kept as "best" when no validation set is given. With a validation set, the validation cost after
the epoch is monitored and the weights after the epoch are kept.

Divergence is a monitored cost above `divergence_factor` times the untrained network's: its
validation cost, or without validation rows its cost on the first batch, computed by the first
forward pass anyway (for full batch, exactly the cost on all rows; for mini-batches an unbiased
estimate of it). A separate pass over every training row would cost a third of an epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

import numpy as np

from backprop_lab.nn.diagnostics import Diagnostics, Record
from backprop_lab.nn.network import Network
from backprop_lab.nn.optim import make_optimizer
from backprop_lab.nn.stacked import Stack, StackWorkspace

Array = np.ndarray
EpochCallback = Callable[[int, dict[str, float]], None]
# After each epoch of a stack: (epoch, networks still training, networks in the stack); what a
# sweep's progress line shows of a stack while it trains (pipeline.meter)
StackObserver = Callable[[int, int, int], None]


class StopNetwork(Exception):
    """Raised by an epoch callback to stop its network now (a search pruned its job): the
    network is frozen with its weights of that epoch and its history says `stopped`; the
    other networks of the stack train on, their bits unchanged."""


@dataclass
class TrainConfig:
    """How to train; `batch_size=None` means full batch, `patience=None` no early stopping."""

    optimizer: str = "gd"
    lr: float = 1e-2
    epochs: int = 100
    batch_size: int | None = None
    shuffle: bool = True
    momentum: float = 0.9
    weight_decay: float = 0.0  # on the weights W_l, not the biases (nn.optim)
    beta1: float = 0.9  # Adam's β1, β2 and ε, as in torch.optim.Adam
    beta2: float = 0.999
    eps: float = 1e-8
    patience: int | None = None
    divergence_factor: float = 1e3
    progress: bool = False  # a progress bar: drawn by the pipeline through a callback
    stacked: bool = True  # the pipeline trains a job's networks as one stack (false: one by one)
    report_every: int = 10  # a pruned search: the pipeline scores the job every N epochs
    n_jobs: int | None = None  # worker processes for a job's stack (pipeline.stacking.workers)


PER_NETWORK = ("lr", "weight_decay", "progress", "stacked", "report_every", "n_jobs")  # may differ


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
    stopped: bool = False  # stopped by a callback (StopNetwork)
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
        if self.stopped:
            return f"stopped after epoch {self.epochs_run - 1} (pruned)"
        return "completed"


def batches(n: int, batch_size: int | None, shuffle: bool, rng: np.random.Generator) -> list[Array]:
    """Index arrays of one epoch's batches; a seeded permutation when shuffling mini-batches."""
    if batch_size is None or batch_size >= n:
        return [np.arange(n)]
    order = rng.permutation(n) if shuffle else np.arange(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


@dataclass
class TrainData:
    """One network's training rows (X (n, n_inputs), y (n, n_outputs)) and optional validation
    rows. Networks given the same `TrainData` object share its batches' gathering."""

    X: Array
    y: Array
    X_val: Array | None = None
    y_val: Array | None = None

    def cast(self, dt: np.dtype) -> TrainData:
        """Contiguous arrays of the networks' dtype, 2-D targets; cast once, before training."""
        X = np.ascontiguousarray(self.X, dtype=dt)
        y = np.ascontiguousarray(self.y, dtype=dt).reshape(len(X), -1)
        if self.X_val is None or self.y_val is None or len(self.X_val) == 0:
            return TrainData(X, y)
        X_val = np.ascontiguousarray(self.X_val, dtype=dt)
        return TrainData(X, y, X_val,
                         np.ascontiguousarray(self.y_val, dtype=dt).reshape(len(X_val), -1))

    @property
    def has_val(self) -> bool:
        return self.X_val is not None

    @cached_property
    def XT(self) -> Array:
        """Xᵀ (n_inputs, n), C-ordered: what a full-batch pass reads (made once, on demand)."""
        return np.ascontiguousarray(self.X.T)


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
    return train_many([net], [TrainData(X, y, X_val, y_val)], config, [rng], {0: callbacks},
                      {0: diagnostics} if diagnostics is not None else {})[0]


def shared_config(configs: Sequence[TrainConfig]) -> TrainConfig:
    """The settings a stack shares: every key but `PER_NETWORK` must agree."""
    first = configs[0]
    for k, c in enumerate(configs):
        for f in fields(TrainConfig):
            if f.name not in PER_NETWORK and getattr(c, f.name) != getattr(first, f.name):
                raise ValueError(f"train.{f.name} differs between stacked networks 0 and {k} "
                                 f"({getattr(first, f.name)!r}, {getattr(c, f.name)!r}): "
                                 "train them in separate stacks")
    return first


def runs(slots: Sequence[int], key: Callable[[int], object]) -> Iterator[tuple[int, int]]:
    """Maximal ranges [start, stop) of consecutive slots with equal `key`."""
    i = 0
    while i < len(slots):
        j = i
        while (j + 1 < len(slots) and slots[j + 1] == slots[j] + 1
               and key(slots[j + 1]) == key(slots[i])):
            j += 1
        yield slots[i], slots[j] + 1
        i = j + 1


@dataclass
class Member:
    """One network of a stack: what it trains on and how far it has got."""

    index: int  # its position in the caller's list
    data: TrainData
    rng: np.random.Generator
    full_batch: bool
    callbacks: Sequence[EpochCallback] = ()
    diagnostics: Diagnostics | None = None
    history: History = field(default_factory=History)
    initial: float = math.nan  # the untrained network's monitored cost (see the module doc)
    since_best: int = 0
    live: bool = True  # false once stopped early or diverged: frozen
    order: list[Any] = field(default_factory=list)  # this epoch's batches (None: all rows)
    total: float = 0.0  # this epoch's Σ batch cost × batch size
    stepping: bool = True  # false after a non-finite batch cost, until the epoch ends

    @property
    def n(self) -> int:
        return len(self.data.X)

    def set_initial(self, cost: float) -> None:
        self.initial = cost
        self.history.last_finite_cost = cost if math.isfinite(cost) else None

    def batch_size(self, i: int) -> int:
        return self.n if self.full_batch else len(self.order[i])


class StackTrainer:
    """The epoch loop over a stack. Slot s of every stacked array (parameters, kept weights,
    optimiser state) belongs to `slots[s]`; live networks are kept in the first slots, in their
    original order, so that one pass covers them all however many have stopped."""

    def __init__(self, nets: Sequence[Network], data: Sequence[TrainData], cfg: TrainConfig,
                 configs: Sequence[TrainConfig], rngs: Sequence[np.random.Generator],
                 callbacks: Mapping[int, Sequence[EpochCallback]],
                 diagnostics: Mapping[int, Diagnostics], observer: StackObserver | None = None):
        self.nets, self.cfg, self.observer = nets, cfg, observer
        self.stack = Stack.of(nets)
        dt = self.stack.dtype
        cast: dict[int, TrainData] = {}  # id(data) -> its cast copy: shared data stays shared
        for d in data:
            cast.setdefault(id(d), d.cast(dt))
        self.slots = [Member(k, cast[id(d)], rngs[k],
                             cfg.batch_size is None or cfg.batch_size >= len(d.X),
                             callbacks.get(k, ()), diagnostics.get(k))
                      for k, d in enumerate(data)]
        self.opt = make_optimizer(cfg.optimizer, [c.lr for c in configs], cfg.momentum,
                                  [c.weight_decay for c in configs], cfg.beta1, cfg.beta2,
                                  cfg.eps)
        self.flat = self.stack.flat  # slot s's parameters: one row
        self.best = self.flat.copy()  # the weights each network will end with if it stops
        self.start = self.flat.copy()  # the weights at the start of the epoch (no validation)
        self.workspaces: dict[int, StackWorkspace] = {}
        self.buffers: dict[int, tuple[Array, Array]] = {}
        self.broadcasts: dict[tuple[int, int], tuple[Array, Array]] = {}
        self.eps = float(np.finfo(dt).eps)
        self.frozen = False  # a network stopped this epoch: `compact` has work to do

    def run(self) -> list[History]:
        cfg = self.cfg
        # Divergence is measured against the untrained network's cost, so a first epoch that
        # already blows up (Adam at a huge lr) is caught too; without validation rows, `step`
        # takes it from the first batch.
        validated = [s for s, m in enumerate(self.slots) if m.data.has_val]
        for s, cost in zip(validated, self.costs(validated)):
            self.slots[s].set_initial(cost)
        try:
            for epoch in range(cfg.epochs):
                live = [s for s, m in enumerate(self.slots) if m.live]
                if not live:
                    break
                self.train_epoch(epoch, live)
                self.end_epoch(epoch, live)
                self.compact()
                if self.observer is not None:
                    self.observer(epoch, sum(m.live for m in self.slots), len(self.slots))
            if self.observer is not None:  # the epochs are spent: none trains any more
                ran = max(len(m.history.train_cost) for m in self.slots)
                self.observer(ran - 1, 0, len(self.slots))
            for s, m in enumerate(self.slots):
                if m.history.diverged or cfg.patience is not None:
                    np.copyto(self.flat[s], self.best[s])
        finally:  # interrupted too: the networks hold the weights trained so far
            for s, m in enumerate(self.slots):
                self.stack.get(s, self.nets[m.index])
        return [m.history for m in sorted(self.slots, key=lambda m: m.index)]

    def costs(self, slots: Sequence[int]) -> list[float]:
        """Each slot's monitored cost: on its validation rows, or its training rows without."""
        found = []
        for a, b in runs(slots, lambda s: id(self.slots[s].data)):
            d = self.slots[a].data
            X, y = (d.X_val, d.y_val) if d.has_val else (d.X, d.y)
            found += self.stack.costs(X, y, slice(a, b))  # type: ignore[arg-type]
        return found

    def train_epoch(self, epoch: int, live: list[int]) -> None:
        """One epoch of every live network; each batch size's networks in one pass per step."""
        cfg, members = self.cfg, [self.slots[s] for s in live]
        keep = [m.live and not m.data.has_val for m in self.slots]
        if all(keep):
            np.copyto(self.start, self.flat)
        elif any(keep):
            np.copyto(self.start, self.flat, where=np.array(keep)[:, None])
        for s, m in zip(live, members):
            if m.diagnostics is not None and m.diagnostics.due(epoch):
                m.diagnostics.start(self.stack.member(s))
            m.order = [None] if m.full_batch else batches(m.n, cfg.batch_size, cfg.shuffle, m.rng)
            m.total, m.stepping = 0.0, True
        for i in range(max(len(m.order) for m in members)):
            at_step = [s for s in live if self.slots[s].stepping and i < len(self.slots[s].order)]
            kind = {s: (self.slots[s].batch_size(i), self.slots[s].full_batch) for s in at_step}
            for a, b in runs(at_step, kind.__getitem__):
                self.step(epoch, a, b, i)

    def step(self, epoch: int, a: int, b: int, i: int) -> None:
        """Batch i of slots a..b-1 (all of one batch size): backprop, then the update of every
        network whose cost is finite."""
        n = self.slots[a].batch_size(i)
        if n not in self.workspaces:
            self.workspaces[n] = StackWorkspace.for_stack(self.stack, n)
        ws = self.workspaces[n]
        xT, y = self.batch(a, b, i)
        costs = self.stack.backprop(slice(a, b), xT, y, ws)
        finite = []
        for s, cost in zip(range(a, b), costs):
            m = self.slots[s]
            if m.diagnostics is not None and m.diagnostics.due(epoch):
                m.diagnostics.observe(self.stack.member(s), ws.member(s - a))
            m.total += cost * n
            if epoch == 0 and i == 0 and not m.data.has_val:
                m.set_initial(cost)
            if math.isfinite(cost):
                finite.append(s)
            else:  # its epoch ends here, as it would alone
                m.stepping = False
        if len(finite) == b - a:  # the common case: every network of the pass steps
            v = ws.views(self.stack, slice(a, b))
            self.opt.step([self.flat], [v.grad], slice(a, b), v.decay)
            return
        for fa, fb in runs(finite, lambda s: 0):
            self.opt.step([self.flat], [ws.grad[fa - a : fb - a]], slice(fa, fb),
                          [(W, gW[fa - a : fb - a]) for W, gW in zip(self.stack.weights,
                                                                     ws.grad_W)])

    def batch(self, a: int, b: int, i: int) -> tuple[Array, Array]:
        """Batch i of slots a..b-1: xT (m, n_inputs, n), y (m, n, n_outputs)."""
        first = self.slots[a]
        if first.full_batch and all(self.slots[s].data is first.data for s in range(a, b)):
            key = (id(first.data), b - a)  # one full-batch set: a broadcast view, no copy
            if key not in self.broadcasts:
                d = first.data
                self.broadcasts[key] = (np.broadcast_to(d.XT, (b - a, *d.XT.shape)),
                                        np.broadcast_to(d.y, (b - a, *d.y.shape)))
            return self.broadcasts[key]
        n = first.batch_size(i)
        if n not in self.buffers:
            K, dt = len(self.slots), self.stack.dtype
            self.buffers[n] = (np.empty((K, n, first.data.X.shape[1]), dt),
                               np.empty((K, n, first.data.y.shape[1]), dt))
        xb, yb = self.buffers[n]
        for ga, gb in runs(range(a, b), lambda s: id(self.slots[s].data)):
            d = self.slots[ga].data
            idx = (np.broadcast_to(np.arange(n), (gb - ga, n)) if first.full_batch
                   else np.stack([self.slots[s].order[i] for s in range(ga, gb)]))
            np.take(d.X, idx, axis=0, out=xb[ga - a : gb - a], mode="clip")
            np.take(d.y, idx, axis=0, out=yb[ga - a : gb - a], mode="clip")
        if first.full_batch:  # a full batch is read as Xᵀ, one row per input (as `d.XT`)
            return np.ascontiguousarray(xb[: b - a].swapaxes(1, 2)), yb[: b - a]
        return xb[: b - a].swapaxes(1, 2), yb[: b - a]

    def end_epoch(self, epoch: int, live: list[int]) -> None:
        """Record each live network's epoch; freeze those that diverged or stopped early."""
        cfg = self.cfg
        validated = [s for s in live if self.slots[s].data.has_val]
        val = dict(zip(validated, self.costs(validated)))
        for s in live:
            m, h = self.slots[s], self.slots[s].history
            train_cost = m.total / m.n
            monitored = val.get(s, train_cost)
            h.train_cost.append(train_cost)
            if s in val:
                h.val_cost.append(monitored)
            if m.diagnostics is not None and m.diagnostics.due(epoch):
                h.diag[epoch] = m.diagnostics.finish(self.stack.member(s))
            limit = cfg.divergence_factor * max(m.initial, self.eps)
            if not (math.isfinite(train_cost) and math.isfinite(monitored)) or monitored > limit:
                h.diverged, h.diverged_epoch, m.live, self.frozen = True, epoch, False, True
                if h.best_epoch < 0:  # blew up in the first epoch: back to the initial weights
                    h.best_cost = m.initial
                continue
            h.last_finite_cost = monitored
            if monitored < h.best_cost:
                h.best_cost, h.best_epoch, m.since_best = monitored, epoch, 0
                # with validation, the weights after the epoch; without, the cost is that of
                # the weights at its start
                np.copyto(self.best[s], self.flat[s] if s in val else self.start[s])
            else:
                m.since_best += 1
            values = {"train_cost": train_cost}
            if s in val:
                values["val_cost"] = monitored
            values.update(h.diag.get(epoch, {}))
            # a callback with a `due(epoch)` method is called only on the epochs it asks for
            due = [c for c in m.callbacks if not hasattr(c, "due") or c.due(epoch)]
            if due:  # they may look at the network: give it this epoch's weights
                self.stack.get(s, self.nets[m.index])
            try:
                for callback in due:
                    callback(epoch, values)
            except StopNetwork:
                h.stopped, m.live, self.frozen = True, False, True
                continue
            if cfg.patience is not None and m.since_best > cfg.patience:
                h.stopped_early, m.live, self.frozen = True, False, True

    def compact(self) -> None:
        """Move the frozen networks behind the live ones, keeping each group's order; every
        stacked array is permuted alike, so no bit changes."""
        if not self.frozen:
            return
        self.frozen = False
        perm = ([s for s, m in enumerate(self.slots) if m.live]
                + [s for s, m in enumerate(self.slots) if not m.live])
        if perm == sorted(perm):
            return
        for arrays in (self.flat, self.best, self.start):
            arrays[:] = arrays[perm]
        self.opt.permute(perm)
        self.slots = [self.slots[s] for s in perm]


def train_many(
    nets: Sequence[Network],
    data: Sequence[TrainData],
    config: TrainConfig | Sequence[TrainConfig],
    rngs: Sequence[np.random.Generator],
    callbacks: Mapping[int, Sequence[EpochCallback]] | None = None,
    diagnostics: Mapping[int, Diagnostics] | None = None,
    observer: StackObserver | None = None,
) -> list[History]:
    """Train K networks of one shape in place, as one stack; network k on `data[k]` with the
    batch order of `rngs[k]`, its callbacks `callbacks[k]` and its `diagnostics[k]`; `observer`
    is told after every epoch how many networks are still training.

    `config` is one `TrainConfig` for all or one per network; only `lr` and `weight_decay` may
    differ. Networks whose batches have the same size at a step go through one stacked pass;
    a network whose fold ran out of batches, or that stopped, sits the step out.
    """
    K = len(nets)
    configs = [config] * K if isinstance(config, TrainConfig) else list(config)
    if not (len(configs) == len(data) == len(rngs) == K):
        raise ValueError(f"{K} networks need {K} data sets, configs and generators, got "
                         f"{len(data)}, {len(configs)} and {len(rngs)}")
    diagnosed = {k: d for k, d in (diagnostics or {}).items() if d is not None}
    return StackTrainer(nets, data, shared_config(configs), configs, rngs, callbacks or {},
                        diagnosed, observer).run()
