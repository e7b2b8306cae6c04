"""A `Plan`: networks to train, as `train_many` takes them, and how plans merge and split.

A job (stages.fit_many) plans its networks (ensemble members x folds x repeats); the stacked
launcher merges plans that can share a stack (pipeline.stacking) and cuts a large one into pieces
for its workers (pipeline.parallel). A network's numbers never depend on the other networks of
its stack (nn.stacked), so neither merging nor cutting changes a bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from backprop_lab.nn.diagnostics import Diagnostics
from backprop_lab.nn.network import Network
from backprop_lab.nn.training import (
    PER_NETWORK,
    EpochCallback,
    History,
    StackObserver,
    TrainConfig,
    TrainData,
    train,
    train_many,
)


@dataclass
class Plan:
    """Networks to train, as `train_many` takes them: network k on data[k] with configs[k] and
    the batch order of rngs[k]; callbacks and diagnostics keyed by network index."""

    nets: list[Network] = field(default_factory=list)
    data: list[TrainData] = field(default_factory=list)
    configs: list[TrainConfig] = field(default_factory=list)
    rngs: list[np.random.Generator] = field(default_factory=list)
    callbacks: dict[int, list[EpochCallback]] = field(default_factory=dict)
    diagnostics: dict[int, Diagnostics] = field(default_factory=dict)
    observe: Callable[[], StackObserver] | None = None  # a new observer for each stack trained

    def key(self) -> tuple[object, ...]:
        """What plans must share to train in one stack."""
        net, cfg = self.nets[0], self.configs[0]
        settings = tuple(getattr(cfg, f.name) for f in fields(TrainConfig)
                         if f.name not in PER_NETWORK)
        return (tuple(net.sizes), tuple(net.activations), str(net.dtype), settings)

    def execute(self) -> list[History]:
        """Train every network: as one stack, or one by one with `train.stacked=false`."""
        if self.configs[0].stacked:
            return train_many(self.nets, self.data, self.configs, self.rngs, self.callbacks,
                              self.diagnostics, self.observe() if self.observe else None)
        return [train(net, d.X, d.y, c, r, d.X_val, d.y_val, self.callbacks.get(k, ()),
                      self.diagnostics.get(k))
                for k, (net, d, c, r) in enumerate(zip(self.nets, self.data, self.configs,
                                                       self.rngs))]


def merge(plans: Sequence[Plan]) -> Plan:
    """One plan of all the networks of `plans`, in order."""
    merged = Plan()
    for plan in plans:
        offset = len(merged.nets)
        merged.nets += plan.nets
        merged.data += plan.data
        merged.configs += plan.configs
        merged.rngs += plan.rngs
        merged.callbacks.update({offset + k: c for k, c in plan.callbacks.items()})
        merged.diagnostics.update({offset + k: d for k, d in plan.diagnostics.items()})
    return merged


def split(plan: Plan, parts: int) -> list[Plan]:
    """`plan` cut into at most `parts` plans of consecutive networks, their sizes differing by at
    most one; `merge` of the pieces is `plan` again (callbacks and diagnostics re-keyed)."""
    K = len(plan.nets)
    bounds = [K * i // parts for i in range(parts + 1)]
    pieces = []
    for a, b in zip(bounds, bounds[1:]):
        if a == b:
            continue
        pieces.append(Plan(plan.nets[a:b], plan.data[a:b], plan.configs[a:b], plan.rngs[a:b],
                           {k - a: c for k, c in plan.callbacks.items() if a <= k < b},
                           {k - a: d for k, d in plan.diagnostics.items() if a <= k < b},
                           plan.observe))
    return pieces
