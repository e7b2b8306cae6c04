"""`hydra/launcher=stacked`: the jobs of a multirun train their networks as one stack.

    python -m pipelines.train -m train.lr=1e-3,3e-3,1e-2 seed=0,1 hydra/launcher=stacked

Each job runs as with the basic launcher (its own Hydra output folder, log file and MLflow child
run, the same config_hash, reuse and records), in its own thread, up to the point where it would
train. There it hands its networks to the launcher (backprop_lab.pipeline.stacking) and waits; jobs
start one after another, so each reads its own Hydra context. When every job of the batch has
arrived, the launcher trains the networks that can share a stack (same layer sizes, activations,
dtype and training settings except `train.lr` and `train.weight_decay`: e.g. a learning-rate or
seed sweep) as one, then lets the jobs finish one at a time. Every network ends bit for bit as
trained alone, so each run records what it would record under the basic launcher; its
`seconds_training` is the shared stack's wall time.

All cores: `hydra.launcher.n_jobs` workers (default null: os.cpu_count()) train the stacks, each
large stack cut into n_jobs pieces (pipeline.parallel.execute); `hydra.launcher.backend` says
whether they are forked processes (the default) or threads. Processes are faster (1.7-2.0x on
two cores against 1.2-1.4x for threads: numpy holds the GIL for much of a narrow stack's step);
they report every epoch as they train (pipeline.workers), so MLflow's per-epoch metrics, the
progress line and a search's pruner see what they would see with threads. Threads are the
fallback where `fork` does not exist. BLAS runs on one thread meanwhile (threadpoolctl, here
and, through fork, in the workers; pipeline.stacking.BLAS_THREADS): a GEMM's bits can depend on
its thread count, so one everywhere keeps every n_jobs bit for bit the same. `n_jobs=1` trains
in the launching thread.

A plugin must live in the `hydra_plugins` package for Hydra to accept it; Hydra executes it
outside `sys.modules` while scanning, so no `from __future__ import annotations` here (the
dataclass would not resolve its string annotations).
"""

import contextlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict
from threadpoolctl import threadpool_limits

from backprop_lab.errors import ConfigError
from hydra_plugins.backprop_lab_launcher.job_logs import JobLogs, routed

log = logging.getLogger(__name__)


@dataclass
class StackedLauncherConf:
    _target_: str = "hydra_plugins.backprop_lab_launcher.stacked_launcher.StackedLauncher"
    n_jobs: int | None = None  # workers training the stacks; None: os.cpu_count()
    backend: str = "processes"  # or threads (numpy releases the GIL too little: slower)


ConfigStore.instance().store(group="hydra/launcher", name="stacked", node=StackedLauncherConf,
                             provider="backprop-lab")


def threads(n_jobs: int | None) -> tuple[int, int]:
    """(workers training stacks, BLAS threads each): n_jobs (None: every core), and BLAS on
    pipeline.stacking.BLAS_THREADS (one: so that no n_jobs changes a bit)."""
    from backprop_lab.pipeline.stacking import BLAS_THREADS

    cores = os.cpu_count() or 1
    if n_jobs is not None and n_jobs < 1:
        raise ConfigError(f"hydra.launcher.n_jobs: must be >= 1 or null, got {n_jobs}")
    return n_jobs or cores, BLAS_THREADS


class StackedLauncher(Launcher):
    def __init__(self, n_jobs: int | None = None, backend: str = "processes") -> None:
        from backprop_lab.pipeline.parallel import BACKENDS

        if backend not in BACKENDS:
            raise ConfigError(f"hydra.launcher.backend: must be one of {', '.join(BACKENDS)}, "
                              f"got {backend!r}")
        self.n_jobs, self.blas_threads = threads(n_jobs)
        self.backend = backend
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None
        self.logs = JobLogs()  # each job's log file, by its thread (job_logs)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        from backprop_lab.experiments.run.job import sigterm_as_interrupt
        from backprop_lab.pipeline import stacking

        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs as stacks: {self.n_jobs} "
                 f"{self.backend}, {self.blas_threads} BLAS thread(s) each")
        rendezvous = stacking.Rendezvous()
        returns: list[Any] = [None] * len(job_overrides)
        threads: list[threading.Thread] = []
        stacking.ACTIVE.append(rendezvous)
        self.logs = JobLogs()
        try:
            for i, overrides in enumerate(job_overrides):
                idx = initial_job_idx + i
                log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
                sweep_config = self.hydra_context.config_loader.load_sweep_config(
                    self.config, list(overrides))
                with open_dict(sweep_config):
                    sweep_config.hydra.job.id = idx
                    sweep_config.hydra.job.num = idx
                thread = threading.Thread(target=self.job, name=f"job-{idx}",
                                          args=(rendezvous, i, sweep_config, returns))
                thread.start()
                threads.append(thread)
                rendezvous.wait_for(i)  # it trains or has ended: the next may set up
            try:
                started = time.perf_counter()
                with sigterm_as_interrupt(), threadpool_limits(self.blas_threads, "blas"):
                    # the jobs' threads wait: an interrupt stops here, as it would a job
                    rendezvous.train(self.n_jobs, self.backend)
                log.info(f"Trained {len(rendezvous.plans)} jobs' networks in "
                         f"{time.perf_counter() - started:.2f} s")
            finally:
                for i, thread in enumerate(threads):
                    rendezvous.release(i)
                    thread.join()
        finally:
            stacking.ACTIVE.remove(rendezvous)
            self.logs.close()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return returns

    def job(self, rendezvous: Any, i: int, config: DictConfig, returns: list[Any]) -> None:
        assert self.hydra_context is not None and self.task_function is not None
        with rendezvous.joined(i), contextlib.suppress(KeyboardInterrupt):
            # an interrupt reaches a job through its plan; the job ends its run KILLED and
            # the launcher, which was interrupted first, raises it once
            returns[i] = run_job(hydra_context=self.hydra_context,
                                 task_function=routed(self.task_function, self.logs),
                                 config=config,
                                 job_dir_key="hydra.sweep.dir",
                                 job_subdir_key="hydra.sweep.subdir")
