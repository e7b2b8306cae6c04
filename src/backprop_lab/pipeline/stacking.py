"""Which networks train together: a job's `Plan`, and the `Rendezvous` through which a launcher
trains several jobs' plans as one stack.

A job (stages.fit_many) plans its networks (ensemble members x folds x repeats) and trains the
plan; inside a rendezvous (the `stacked` Hydra launcher, pipelines/stacked_launcher.py) it hands
the plan over instead and waits. Once every job of the launch has handed over its plan (or ended
without training), the launcher trains the plans whose networks can share a stack (the same
layer sizes, activations, dtype and training settings but `lr` and `weight_decay`) as one, and
gives each job its histories back, one job at a time. Every network ends bit for bit as trained
alone (nn.stacked), so each job records exactly what it would record on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields

import numpy as np

from backprop_lab.nn.diagnostics import Diagnostics
from backprop_lab.nn.network import Network
from backprop_lab.nn.training import (
    PER_NETWORK,
    EpochCallback,
    History,
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
                              self.diagnostics)
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


class Rendezvous:
    """Collects the plans of a launch's jobs, each running in its own thread; see the module
    docstring. Job threads call `submit`; the launching thread `wait_for`, `train`, `release`."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.arrived: set[int] = set()
        self.plans: dict[int, Plan] = {}
        self.results: dict[int, list[History] | BaseException] = {}
        self.released: set[int] = set()
        self.local = threading.local()

    @contextmanager
    def joined(self, job: int) -> Iterator[None]:
        """Inside, in job `job`'s thread, `submit` hands plans to this rendezvous."""
        self.local.job = job
        try:
            yield
        finally:
            with self.cond:
                self.arrived.add(job)
                self.cond.notify_all()

    def job(self) -> int | None:
        return getattr(self.local, "job", None)

    def submit(self, plan: Plan) -> list[History]:
        """Hand over this thread's job's plan; block until the launcher releases its result."""
        job = self.job()
        assert job is not None, "submit outside a joined job thread"
        with self.cond:
            self.plans[job] = plan
            self.arrived.add(job)
            self.cond.notify_all()
            self.cond.wait_for(lambda: job in self.released)
            result = self.results[job]
        if isinstance(result, BaseException):
            raise result
        return result

    def wait_for(self, job: int) -> None:
        """Block until job `job` has handed over its plan or ended."""
        with self.cond:
            self.cond.wait_for(lambda: job in self.arrived)

    def train(self) -> None:
        """Train the plans handed over, those that can share a stack as one."""
        groups: dict[tuple[object, ...], list[int]] = {}
        for job, plan in sorted(self.plans.items()):
            groups.setdefault(plan.key(), []).append(job)
        for jobs in groups.values():
            plans = [self.plans[j] for j in jobs]
            try:
                histories = merge(plans).execute()
            except BaseException as err:
                for j in jobs:
                    self.results[j] = err
                if not isinstance(err, Exception):
                    self.fail_all(err)
                    raise
                continue
            i = 0
            for j, plan in zip(jobs, plans):
                self.results[j] = histories[i : i + len(plan.nets)]
                i += len(plan.nets)

    def fail_all(self, err: BaseException) -> None:
        for job in self.plans:
            self.results.setdefault(job, err)

    def release(self, job: int) -> None:
        """Let job `job` go on with its result (or the error that stopped training)."""
        with self.cond:
            if job in self.plans and job not in self.results:
                self.results[job] = RuntimeError("the stacked launcher did not train this job")
            self.released.add(job)
            self.cond.notify_all()


ACTIVE: list[Rendezvous] = []  # the rendezvous of the launch in progress, if any


def train_plan(plan: Plan) -> list[History]:
    """Train `plan` now, or, inside a launch's rendezvous, with the other jobs' plans."""
    for rendezvous in ACTIVE:
        if rendezvous.job() is not None:
            return rendezvous.submit(plan)
    return plan.execute()
