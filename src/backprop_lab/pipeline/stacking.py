"""Which networks train together: the `Rendezvous` through which a launcher trains several jobs'
plans (pipeline.plan) as one stack.

A job (stages.fit_many) plans its networks (ensemble members x folds x repeats) and trains the
plan; inside a rendezvous (the `stacked` Hydra launcher, pipelines/stacked_launcher.py) it hands
the plan over instead and waits. Once every job of the launch has handed over its plan (or ended
without training), the launcher trains the plans whose networks can share a stack (the same
layer sizes, activations, dtype and training settings but `lr` and `weight_decay`) as one, and
gives each job its histories back, one job at a time. Every network ends bit for bit as trained
alone (nn.stacked), so each job records exactly what it would record on its own.

With `n_jobs` >= 2 (`hydra.launcher.n_jobs`; `cores(n)` outside a launch) the stacks train
`n_jobs` at a time, in forked processes or threads, large stacks cut into pieces
(pipeline.parallel).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

from backprop_lab.nn.training import History
from backprop_lab.pipeline.meter import StackMeter
from backprop_lab.pipeline.parallel import execute
from backprop_lab.pipeline.plan import Plan, merge

__all__ = ["Plan", "Rendezvous", "cores", "train_plan", "workers"]  # Plan: for stages


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
        self.meter: StackMeter | None = None  # set while `train` runs: the progress line reads it

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

    def train(self, n_jobs: int = 1, backend: str = "processes") -> None:
        """Train the plans handed over, those that can share a stack as one; the stacks
        `n_jobs` at a time in worker processes or threads (`execute`)."""
        groups: dict[tuple[object, ...], list[int]] = {}
        for job, plan in sorted(self.plans.items()):
            groups.setdefault(plan.key(), []).append(job)
        stacks = [merge([self.plans[j] for j in jobs]) for jobs in groups.values()]
        self.meter = StackMeter(sum(len(p.nets) for p in stacks),
                                max((p.configs[0].epochs for p in stacks), default=0))
        for stack in stacks:
            stack.observe = self.meter.observer
        try:
            outcomes = execute(stacks, n_jobs, backend=backend)
        except BaseException as err:
            self.fail_all(err)
            raise
        for jobs, outcome in zip(groups.values(), outcomes):
            i = 0
            for j in jobs:
                if isinstance(outcome, Exception):
                    self.results[j] = outcome
                    continue
                self.results[j] = outcome[i : i + len(self.plans[j].nets)]
                i += len(self.plans[j].nets)

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
THREADS: list[tuple[int, str]] = [(1, "processes")]  # (n_jobs, backend) outside a launch


@contextmanager
def cores(n_jobs: int, backend: str = "processes") -> Iterator[None]:
    """Inside, a plan trained outside a launch is cut into `n_jobs` pieces trained in as many
    processes or threads (`train_plan`)."""
    THREADS.append((n_jobs, backend))
    try:
        yield
    finally:
        THREADS.pop()


BLAS_THREADS = 1  # BLAS threads of every process that trains. A GEMM's bits can depend on how
# many threads compute it (a full batch of 300 rows through 13-64-64-1 did here, by an ulp), so
# training uses one everywhere: n_jobs, the launcher and stacking then never change a bit. The
# cores are used by the workers instead; a network's GEMMs here are small (13-64 wide).


def usable_cores() -> int:
    """The cores this process may run on (a SLURM job's allocation, a taskset), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def workers(n_jobs: int | None, in_sweep: bool) -> int:
    """`train.n_jobs` resolved: as set, else every usable core for a run on its own and 1 for a
    job of a sweep (its launcher shares the cores out: the stacked one splits the stacks
    itself, joblib and Ray run jobs side by side)."""
    if n_jobs is not None:
        return n_jobs
    return 1 if in_sweep else usable_cores()


def train_plan(plan: Plan) -> list[History]:
    """Train `plan` now, or, inside a launch's rendezvous, with the other jobs' plans. Under
    `cores(n)`, it is cut into n pieces trained at once. BLAS runs on `BLAS_THREADS`."""
    for rendezvous in ACTIVE:
        if rendezvous.job() is not None:
            return rendezvous.submit(plan)
    n_jobs, backend = THREADS[-1]
    with threadpool_limits(BLAS_THREADS, "blas"):
        if n_jobs <= 1:
            return plan.execute()
        outcome = execute([plan], n_jobs, backend=backend)[0]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome
