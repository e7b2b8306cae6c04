"""Stacks trained in parallel (pipeline.parallel, pipeline.stacking) end bit for bit as trained
alone: every network's weights and history, every epoch callback's calls, with 1, 2 and 3
workers, forked processes or threads, through `execute`, `train_plan` under `cores` and a
launch's `Rendezvous`."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest

from backprop_lab.nn.network import Network
from backprop_lab.nn.training import EpochCallback, History, TrainConfig, TrainData, train
from backprop_lab.pipeline import parallel, stacking
from backprop_lab.pipeline.parallel import execute
from backprop_lab.pipeline.plan import Plan, merge, split

Calls = list[tuple[int, dict[str, float]]]


def data() -> list[TrainData]:
    """Two folds of different sizes (their last batches differ), with validation rows."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X @ rng.normal(size=4) + np.tanh(X[:, 0]) + 0.1 * rng.normal(size=300))[:, None]
    return [TrainData(X[:121], y[:121], X[240:270], y[240:270]),
            TrainData(X[121:240], y[121:240], X[270:], y[270:])]


def plan(hidden: list[int], lrs: list[float], seed: int, calls: Calls) -> Plan:
    """A job's plan: one network per lr and fold, early stopping (lr=1e3 diverges); its network 0
    reports its epochs to `calls`."""
    folds, p = data(), Plan()
    for j, lr in enumerate(lrs):
        for f, d in enumerate(folds):
            p.nets.append(Network.create([4, *hidden, 1], np.random.default_rng(seed + 10 * j + f),
                                         "tanh", init="xavier"))
            p.data.append(d)
            p.configs.append(TrainConfig(optimizer="adam", lr=lr, epochs=60, batch_size=32,
                                         patience=3))
            p.rngs.append(np.random.default_rng(100 + seed + 10 * j + f))
    p.callbacks[0] = [recorder(calls)]
    return p


def recorder(calls: Calls) -> EpochCallback:
    def record(epoch: int, values: dict[str, float]) -> None:
        calls.append((epoch, dict(values)))
    return record


def jobs() -> tuple[list[Plan], list[Calls]]:
    """Three jobs, two of one shape (they share a stack) and one of another."""
    calls: list[Calls] = [[], [], []]
    return [plan([6], [1e-2, 1e3], 0, calls[0]), plan([5, 5], [3e-2], 1, calls[1]),
            plan([6], [3e-3, 1e-1], 2, calls[2])], calls


def alone(p: Plan) -> tuple[list[History], list[Network]]:
    """Every network of `p` trained by itself, as `train` does."""
    nets = [net.copy() for net in p.nets]
    return [train(net, d.X, d.y, c, copy.deepcopy(r), d.X_val, d.y_val)
            for net, d, c, r in zip(nets, p.data, p.configs, p.rngs)], nets


def same(got: list[History], nets: list[Network], expected: tuple[list[History], list[Network]]
         ) -> None:
    histories, others = expected
    assert repr(got) == repr(histories)  # every cost, epoch and stop reason, NaN included
    for a, b in zip(nets, others):
        for p, q in zip(a.parameters, b.parameters):
            np.testing.assert_array_equal(p, q)


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="backend"):
        execute(jobs()[0], 2, backend="gpu")


def test_small_stacks_are_not_cut() -> None:
    """Pieces of fewer than MIN_PIECE networks × widest layer would not run faster."""
    p = merge(jobs()[0])  # 10 networks, widest layer 6 (the inputs: 4)
    assert parallel.pieces_of(p, 2, parallel.MIN_PIECE) == 1
    assert parallel.pieces_of(p, 2, 30) == 2 and parallel.pieces_of(p, 8, 30) == 2
    assert parallel.pieces_of(p, 1, 1) == 1


def test_split_cuts_a_plan_into_consecutive_pieces_that_merge_back() -> None:
    p = merge(jobs()[0])
    pieces = split(p, 3)
    assert [len(x.nets) for x in pieces] == [3, 3, 4]
    back = merge(pieces)
    assert back.nets == p.nets and back.rngs == p.rngs and back.callbacks == p.callbacks
    assert set(pieces[1].callbacks) == {1} and set(pieces[2].callbacks) == {0}
    assert [len(x.nets) for x in split(Plan(p.nets[:2], p.data[:2], p.configs[:2],
                                            p.rngs[:2]), 4)] == [1, 1]


@pytest.mark.parametrize("backend", parallel.BACKENDS)
@pytest.mark.parametrize("n_jobs", [1, 2, 3])
def test_workers_train_every_network_bit_for_bit_as_alone(n_jobs: int, backend: str) -> None:
    plans, calls = jobs()
    expected = [alone(p) for p in plans]
    reference: list[Calls] = [[], [], []]
    for p, mine in zip(plans, reference):  # the callbacks' calls when trained one by one
        net, d, c = p.nets[0].copy(), p.data[0], p.configs[0]
        train(net, d.X, d.y, c, copy.deepcopy(p.rngs[0]), d.X_val, d.y_val, [recorder(mine)])
    outcomes = execute(plans, n_jobs, 1, backend)  # every plan cut, however small
    for p, outcome, exp in zip(plans, outcomes, expected):
        assert isinstance(outcome, list)
        same(outcome, p.nets, exp)
    first = outcomes[0]
    assert isinstance(first, list)
    assert any(h.diverged for h in first) and any(h.stopped_early for h in first)
    assert repr(calls) == repr(reference)


def test_train_plan_under_cores_splits_one_stack_across_threads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "MIN_PIECE", 1)
    p = jobs()[0][0]
    expected = alone(p)
    with stacking.cores(2):
        assert stacking.THREADS[-1] == (2, "processes")
        got = stacking.train_plan(p)
    assert stacking.THREADS == [(1, "processes")]
    same(got, p.nets, expected)


@pytest.mark.parametrize("backend", parallel.BACKENDS)
def test_a_failing_stack_fails_its_own_jobs_only(backend: str) -> None:
    plans, _ = jobs()

    def boom(epoch: int, values: dict[str, float]) -> None:
        raise ValueError("callback failed")

    plans[1].callbacks[0] = [boom]
    expected = alone(plans[0])
    outcomes = execute(plans, 2, 1, backend)
    assert isinstance(outcomes[1], ValueError)
    assert isinstance(outcomes[0], list)
    same(outcomes[0], plans[0].nets, expected)


@pytest.mark.parametrize(("n_jobs", "backend"), [(1, "processes"), (2, "processes"),
                                                 (2, "threads")])
def test_a_rendezvous_trains_the_jobs_plans_in_parallel(n_jobs: int, backend: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The launcher's protocol: each job's thread submits its plan and waits; the launching
    thread trains them all and releases each job with its own histories."""
    plans, _ = jobs()
    expected = [alone(p) for p in plans]
    rendezvous = stacking.Rendezvous()
    got: list[list[History]] = [[] for _ in plans]

    def job(i: int) -> None:
        with rendezvous.joined(i):
            got[i] = rendezvous.submit(plans[i])

    threads = [threading.Thread(target=job, args=(i,)) for i in range(len(plans))]
    for i, thread in enumerate(threads):
        thread.start()
        rendezvous.wait_for(i)
    monkeypatch.setattr(parallel, "MIN_PIECE", 1)
    rendezvous.train(n_jobs, backend)
    for i, thread in enumerate(threads):
        rendezvous.release(i)
        thread.join()
    for p, histories, exp in zip(plans, got, expected):
        same(histories, p.nets, exp)
