"""Forked workers (pipeline.workers) that report as they train: a piece's observer and callbacks
are called in the parent while the workers run; a callback with `due` stops its network at the
same epoch, with the same bits, as in one thread; a worker that dies fails its piece only; an
interrupt leaves every network with the weights it had trained so far."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from backprop_lab.nn.network import Network
from backprop_lab.nn.training import StackTrainer, StopNetwork
from backprop_lab.pipeline import parallel, workers
from backprop_lab.pipeline.parallel import execute
from backprop_lab.pipeline.plan import Plan
from tests.conftest import ROOT
from tests.pipeline.test_stacking import Calls, alone, jobs, plan, recorder, same

pytestmark = pytest.mark.skipif(not parallel.FORK, reason="forked workers need fork")


class Pruner:
    """A checkpoint as a search's: called on every 5th epoch only, it stops its network at
    epoch `at`, and it looks at the network's weights (they must be that epoch's)."""

    def __init__(self, net: Network, at: int) -> None:
        self.net, self.at = net, at
        self.seen: list[tuple[int, float]] = []

    def due(self, epoch: int) -> bool:
        return (epoch + 1) % 5 == 0

    def __call__(self, epoch: int, values: dict[str, float]) -> None:
        self.seen.append((epoch, float(self.net.parameters[0].sum())))
        if epoch >= self.at:
            raise StopNetwork


def pruned_plans() -> tuple[list[Plan], list[Pruner]]:
    plans, _ = jobs()
    pruners = []
    for p in plans:
        for k in (0, 1):
            pruners.append(Pruner(p.nets[k], at=9 + 5 * k))
            p.callbacks.setdefault(k, []).append(pruners[-1])
    return plans, pruners


def test_a_due_callback_stops_its_network_as_in_one_thread() -> None:
    """Processes against threads: same histories, weights, and what each pruner saw."""
    reference, ref_pruners = pruned_plans()
    expected = execute(reference, 2, 1, "threads")
    plans, pruners = pruned_plans()
    got = execute(plans, 2, 1, "processes")
    for p, r, outcome, exp in zip(plans, reference, got, expected):
        assert isinstance(outcome, list) and isinstance(exp, list)
        same(outcome, p.nets, (exp, r.nets))
    assert any(h.stopped for h in got[0])  # type: ignore[union-attr]
    assert [p.seen for p in pruners] == [p.seen for p in ref_pruners]
    assert [len(p.seen) for p in pruners[:2]] == [2, 3]  # epochs 4, 9 and 4, 9, 14


def test_a_workers_epochs_reach_the_parent_while_it_trains(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The observer and the callbacks are called before the piece has returned."""
    monkeypatch.setattr(workers, "FLUSH_EVERY", 0.0)
    p = plan([6], [1e-2, 3e-3], 0, [])
    for c in p.configs:
        c.patience, c.epochs = None, 300
    seen: list[tuple[int, int, int]] = []
    calls: Calls = []
    p.callbacks[0] = [recorder(calls)]
    p.observe = lambda: lambda epoch, live, size: seen.append((epoch, live, size))
    returned = threading.Event()
    early: list[int] = []

    def watch() -> None:  # how many epochs the parent had seen before the workers returned
        while not returned.is_set():
            early.append(len(calls))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        outcome = execute([p], 2, 1, "processes")[0]
    finally:
        returned.set()
        watcher.join()
    assert isinstance(outcome, list)
    assert [e for e, _ in calls] == list(range(300))
    assert 0 < min(n for n in early if n) < 300  # epochs arrived before the end
    assert {size for _, _, size in seen} == {2} and len(seen) == 2 * 301  # two pieces of 2


def test_a_worker_that_dies_fails_its_piece_and_the_others_train_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    plans, _ = jobs()
    expected = alone(plans[0])
    original = StackTrainer.train_epoch

    def killed_at_epoch_3(self: StackTrainer, epoch: int, live: list[int]) -> None:
        if epoch == 3 and len(self.nets[0].sizes) == 4:  # plan 1: 4-5-5-1
            os.kill(os.getpid(), signal.SIGKILL)
        original(self, epoch, live)

    monkeypatch.setattr(StackTrainer, "train_epoch", killed_at_epoch_3)  # inherited by fork
    outcomes = execute(plans, 2, 1, "processes")
    assert isinstance(outcomes[1], RuntimeError)
    assert "killed by signal 9" in str(outcomes[1])
    assert isinstance(outcomes[0], list)
    same(outcomes[0], plans[0].nets, expected)


def test_an_interrupted_launch_keeps_the_weights_trained_so_far() -> None:
    """Ctrl-C in the parent (here: a callback raising KeyboardInterrupt at epoch 20): the
    networks hold weights trained past epoch 20, not their initial ones, and the interrupt
    propagates."""
    p = plan([6], [1e-2, 3e-3], 0, [])
    for c in p.configs:
        c.patience, c.epochs = None, 100_000
    initial = [net.copy() for net in p.nets]

    def interrupt(epoch: int, values: dict[str, float]) -> None:
        if epoch == 20:
            raise KeyboardInterrupt

    p.callbacks[0] = [interrupt]
    workers.FLUSH_EVERY, flush = 0.0, workers.FLUSH_EVERY
    try:
        with pytest.raises(KeyboardInterrupt):
            execute([p], 2, 1, "processes")
    finally:
        workers.FLUSH_EVERY = flush
    for net, before in zip(p.nets, initial):
        assert not np.array_equal(net.parameters[0], before.parameters[0])
    generators = plan([6], [1e-2, 3e-3], 0, []).rngs  # as they were before training
    for rng, before in zip(p.rngs, generators):  # the batch orders drawn so far came back too
        assert rng.bit_generator.state != before.bit_generator.state


ORPHAN_SCRIPT = """
import multiprocessing, sys, threading, time
from tests.pipeline.test_stacking import plan
from backprop_lab.pipeline.parallel import execute

p = plan([6], [1e-2, 3e-3], 0, [])
for c in p.configs:
    c.patience, c.epochs = None, 10_000_000

def report():
    while len(multiprocessing.active_children()) < 2:
        time.sleep(0.05)
    time.sleep(0.5)
    print(" ".join(str(c.pid) for c in multiprocessing.active_children()), flush=True)

threading.Thread(target=report, daemon=True).start()
execute([p], 2, 1, "processes")
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead: only its entry is left
        return stat.read().split(") ")[-1][0] != "Z"


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_workers_whose_parent_is_killed_stop(tmp_path: Path) -> None:
    """SIGKILL of the process that forked them (kill -9, the OOM killer): the workers do not
    train on as orphans; each stops within its next report."""
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN_SCRIPT], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pids = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in pids if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left
