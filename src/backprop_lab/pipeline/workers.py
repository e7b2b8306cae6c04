"""Pieces of stacks trained in forked worker processes that report every epoch as it happens.

Threads gain little on a narrow stack: its step is mostly Python between ~100 short numpy calls,
under one GIL (1.2-1.4x on two cores, processes 1.7-2.0x: bench/README.md, "Parallel stacks").
So `in_processes` forks `n_jobs` workers; each inherits the pieces (nothing is pickled on the
way in), trains the piece it is given and streams back what the piece's epoch callbacks and
stack observer would have been told. The parent calls the real callbacks (MLflow's per-epoch
metrics, progress bars, the sweep's meter) with those values while the workers train on:

- Every ~0.2 s a worker sends its piece's epochs so far (`Relay`): a network's callbacks see
  the same (epoch, values) calls, in the same order, as trained in one thread.
- A callback with a `due(epoch)` method (a pruned search's checkpoint, which looks at the
  network's weights and may stop it: nn.training.StopNetwork) is a rendezvous: on its epochs
  the worker sends the network's weights and waits for the parent's answer, so a network stops
  at the same epoch, with the same bits, as in one thread. A callback without `due` runs on the
  parent's time: it may record, not stop its network (raising fails its piece).
- When the piece ends, the worker sends the networks' weights, histories and generator states,
  which the parent copies into the plan.
- Ctrl-C or SIGTERM in the parent (a KeyboardInterrupt here): each busy worker is told
  (SIGUSR1), stops at once and sends the weights trained so far, so an interrupted job keeps
  them as it would in one thread; a worker that does not answer within `GRACE` s is killed.
- A worker that dies (killed, out of memory) fails its piece with an error that says so; the
  others go on, and a new worker takes its place for the pieces left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from backprop_lab.nn.network import Network
from backprop_lab.nn.training import EpochCallback, History, StackObserver, StopNetwork
from backprop_lab.pipeline.plan import Plan

Array = np.ndarray
FLUSH_EVERY = 0.2  # seconds between a worker's reports of its epochs
GRACE = 10.0  # seconds an interrupted worker has to send back its weights
FORKED: list[Plan] = []  # the pieces a forked worker finds in its copy of this module
Result = list[History] | BaseException


class Interrupted(BaseException):
    """In a worker: the parent was interrupted (SIGUSR1); stop and send the weights so far."""


# ---------------------------------------------------------------------------------- worker side

def serve(conn: Connection, others: Sequence[Connection]) -> None:
    """A worker's life: train the pieces it is given (their index t in `FORKED`) until told to
    stop (None) or interrupted; see the module docstring for what it sends. `others` are the
    parent's ends of the workers forked before it, which it closes: the parent must be the only
    reader of each pipe, so that a worker whose parent died gets EPIPE rather than training on."""
    for other in others:
        other.close()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # `kill` ends it, not a launch's handler
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGUSR1, interrupted)
    while True:
        try:
            t = conn.recv()
        except (EOFError, Interrupted):
            return
        if t is None:
            return
        plan = FORKED[t]
        relay = Relay(conn, t, observed=plan.observe is not None)
        try:
            histories = Plan(plan.nets, plan.data, plan.configs, plan.rngs, relay.callbacks(plan),
                             plan.diagnostics, relay.observer).execute()
            relay.flush()
            send(conn, ("done", t, weights(plan), histories))
        except Interrupted:  # `train_many` has put the weights trained so far in plan.nets
            with contextlib.suppress(ConnectionError):
                relay.flush()
                send(conn, ("interrupted", t, weights(plan), None))
            return
        except ConnectionError:  # the pipe broke: the parent is gone, nobody to tell
            return
        except Exception as err:
            try:
                relay.flush()
                send_error(conn, t, err)
            except ConnectionError:
                return


def interrupted(signum: int, frame: Any) -> None:
    raise Interrupted


def weights(plan: Plan) -> tuple[list[Array], list[dict[str, Any]]]:
    """Each network's parameters as one flat row, and each generator's state."""
    return ([np.concatenate([p.ravel() for p in net.parameters]) for net in plan.nets],
            [dict(r.bit_generator.state) for r in plan.rngs])


def send(conn: Connection, message: tuple[Any, ...]) -> None:
    """Send a whole message: the interrupt (SIGUSR1) waits until it is written, so that the
    pipe never holds half of one."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        conn.send(message)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})


def send_error(conn: Connection, t: int, err: Exception) -> None:
    try:
        send(conn, ("error", t, err, None))
    except Exception:  # it does not pickle: its type and message do
        send(conn, ("error", t, RuntimeError(f"{type(err).__name__}: {err}"), None))


class Relay:
    """In a worker: piece t's epoch callbacks and observer, sent to the parent in batches."""

    def __init__(self, conn: Connection, t: int, observed: bool) -> None:
        self.conn, self.t, self.observed = conn, t, observed
        self.parent = os.getppid()
        self.events: list[tuple[Any, ...]] = []  # ("epoch", k, epoch, values) | ("observe", ...)
        self.sent = time.monotonic()

    def callbacks(self, plan: Plan) -> dict[int, list[EpochCallback]]:
        return {k: [Proxy(self, k, cs, plan.nets[k])] for k, cs in plan.callbacks.items() if cs}

    def observer(self) -> StackObserver:
        """Called after every epoch: the parent's observer's events, and the time to report."""
        def seen(epoch: int, live: int, size: int) -> None:
            if self.observed:
                self.events.append(("observe", epoch, live, size))
            self.soon()
        return seen

    def soon(self) -> None:
        if time.monotonic() - self.sent >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if os.getppid() != self.parent:  # the parent died (SIGKILL): nobody will read this
            os._exit(1)
        if self.events:
            events, self.events = self.events, []
            send(self.conn, ("events", self.t, events, None))
        self.sent = time.monotonic()

    def ask(self, k: int, epoch: int, values: dict[str, float], net: Network) -> bool:
        """Network k's due callbacks, run by the parent on this epoch's weights: stop it?"""
        self.flush()
        flat = np.concatenate([p.ravel() for p in net.parameters])
        send(self.conn, ("due", self.t, (k, epoch, values, flat), None))
        answer = self.conn.recv()
        if answer == "fail":  # the parent holds the error; the piece ends
            raise RuntimeError("an epoch callback failed in the parent")
        return bool(answer == "stop")


class Proxy:
    """In a worker: network k's callbacks, called when they would be (see `due`)."""

    def __init__(self, relay: Relay, k: int, callbacks: Sequence[EpochCallback],
                 net: Network) -> None:
        self.relay, self.k, self.net = relay, k, net
        self.timed = [c for c in callbacks if hasattr(c, "due")]  # they ask for their epochs
        self.every_epoch = len(self.timed) < len(callbacks)

    def due(self, epoch: int) -> bool:
        return self.every_epoch or self.asks(epoch)

    def asks(self, epoch: int) -> bool:
        return any(c.due(epoch) for c in self.timed)

    def __call__(self, epoch: int, values: dict[str, float]) -> None:
        if self.asks(epoch):  # the network's weights are this epoch's (nn.training)
            if self.relay.ask(self.k, epoch, values, self.net):
                raise StopNetwork
            return
        self.relay.events.append(("epoch", self.k, epoch, values))
        self.relay.soon()


# ---------------------------------------------------------------------------------- parent side

@dataclass
class Piece:
    """The parent's side of piece t: where its epochs go."""

    plan: Plan
    observe: StackObserver | None = None  # made when the piece reports its first epoch
    error: Exception | None = None  # a callback failed: the piece's outcome

    def call(self, k: int, epoch: int, values: dict[str, float],
             which: Callable[[Any], bool]) -> bool:
        """Network k's callbacks that `which` selects, in order: did one stop the network?"""
        if self.error is not None:
            return False
        try:
            for callback in self.plan.callbacks.get(k, ()):
                if which(callback):
                    callback(epoch, values)
        except StopNetwork:
            return True
        except Exception as err:
            self.error = err
        return False

    def events(self, events: list[tuple[Any, ...]]) -> None:
        for event in events:
            if event[0] == "observe":
                if self.observe is None and self.plan.observe is not None:
                    self.observe = self.plan.observe()
                if self.observe is not None:
                    self.observe(*event[1:])
            else:  # a callback without `due` cannot stop its network from here
                _, k, epoch, values = event
                self.call(k, epoch, values, lambda c: not hasattr(c, "due"))

    def due(self, k: int, epoch: int, values: dict[str, float], flat: Array) -> str:
        """Network k's callbacks of a due epoch, on its weights of that epoch: the answer."""
        restore(self.plan.nets[k], flat)
        stop = self.call(k, epoch, values, lambda c: not hasattr(c, "due") or c.due(epoch))
        return "fail" if self.error is not None else "stop" if stop else "go"

    def finish(self, state: tuple[list[Array], list[dict[str, Any]]] | None) -> None:
        if state is not None:
            flat, generators = state
            for net, row, rng, s in zip(self.plan.nets, flat, self.plan.rngs, generators):
                restore(net, row)
                rng.bit_generator.state = s


def restore(net: Network, row: Array) -> None:
    """Copy a flat row of parameters into `net`'s arrays (in place)."""
    offset = 0
    for p in net.parameters:
        np.copyto(p, row[offset : offset + p.size].reshape(p.shape))
        offset += p.size


@dataclass
class Worker:
    process: Any
    conn: Connection
    piece: int | None = None  # what it trains now

    @classmethod
    def start(cls, others: Sequence[Worker]) -> Worker:
        ctx = get_context("fork")
        mine, theirs = ctx.Pipe()
        process = ctx.Process(target=serve, args=(theirs, [w.conn for w in others]), daemon=True)
        process.start()
        theirs.close()
        return cls(process, mine)

    def give(self, t: int) -> None:
        self.piece = t
        self.conn.send(t)

    def died(self) -> str:
        self.process.join(1)
        code = self.process.exitcode
        how = (f"was killed by signal {-code}" if code is not None and code < 0
               else f"exited with status {code}")
        return f"the worker process training piece {self.piece} {how}"


@dataclass
class Launch:
    """The parent's loop over its workers (see `in_processes`)."""

    pieces: list[Piece]
    queue: list[int]  # pieces not yet given out, the costliest first
    n_jobs: int
    results: dict[int, Result] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)

    def run(self) -> None:
        for _ in range(min(self.n_jobs, len(self.queue))):
            self.workers.append(Worker.start(self.workers))
        for worker in self.workers:
            worker.give(self.queue.pop(0))
        while busy := [w for w in self.workers if w.piece is not None]:
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
            for worker in busy:
                if worker.conn in ready or worker.process.sentinel in ready:
                    self.receive(worker)

    def receive(self, worker: Worker) -> None:
        """Handle what `worker` sent (or its death)."""
        t = worker.piece
        assert t is not None
        try:
            kind, _, body, extra = worker.conn.recv()
        except (EOFError, OSError):
            self.results[t] = RuntimeError(worker.died())
            self.workers.remove(worker)
            if self.queue:
                self.workers.append(replacement := Worker.start(self.workers))
                replacement.give(self.queue.pop(0))
            return
        piece = self.pieces[t]
        if kind == "events":
            piece.events(body)
        elif kind == "due":
            worker.conn.send(piece.due(*body))
        else:
            if kind == "error":
                self.results[t] = piece.error or body
            else:
                piece.finish(body)
                self.results[t] = piece.error or extra
            worker.piece = None
            if self.queue:
                worker.give(self.queue.pop(0))

    def interrupt(self) -> None:
        """Ask the busy workers for their weights so far (SIGUSR1) and copy them in; the
        epochs they had not yet reported are lost with the interrupted run's last seconds."""
        busy = [w for w in self.workers if w.piece is not None]
        for worker in busy:
            os.kill(worker.process.pid, signal.SIGUSR1)
        deadline = time.monotonic() + GRACE
        while busy and (left := deadline - time.monotonic()) > 0:
            for conn in wait([w.conn for w in busy], left):
                worker = next(w for w in busy if w.conn is conn)
                try:
                    kind, t, body, _ = worker.conn.recv()
                except (EOFError, OSError):
                    busy.remove(worker)
                    continue
                if kind == "events":
                    self.pieces[t].events(body)
                    continue
                if kind in ("interrupted", "done"):
                    self.pieces[t].finish(body)
                busy.remove(worker)

    def stop(self) -> None:
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join()
            worker.conn.close()


def in_processes(plans: Sequence[Plan], costs: Sequence[int], n_jobs: int) -> list[Result]:
    """Train `plans` in `n_jobs` forked worker processes, the costliest first; each one's
    histories or exception. Their epoch callbacks and observers are called here, as the
    workers report (see the module docstring)."""
    FORKED[:] = plans
    launch = Launch([Piece(plan) for plan in plans],
                    sorted(range(len(plans)), key=lambda t: -costs[t]), n_jobs)
    try:
        launch.run()
    except BaseException:  # Ctrl-C, SIGTERM as an exception, or a failure of our own
        launch.interrupt()
        raise
    finally:
        launch.stop()
        FORKED.clear()
    return [launch.results[t] for t in range(len(plans))]
