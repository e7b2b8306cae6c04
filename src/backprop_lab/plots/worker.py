"""A single run's plots, drawn in a second process while the run goes on.

Importing matplotlib (~0.4 s here) and drawing a run's three plots (~0.6 s cold) were most of
what a single run's start-up cost beyond its libraries (bench/README.md, "startup.py"), all on
the run's one thread. `start()` launches `python -m backprop_lab.plots.worker` as the command
starts: it imports matplotlib and draws throwaway figures (fonts, the mathtext parser of a log
axis's tick labels) on the other core while the run imports, composes its config, opens the
store and trains. The run hands it its plots (`Plots.draw`) and waits for every one of them
before it logs its artifacts: what is logged is what ran, byte for byte as drawn inline
(tests/plots/test_worker.py).

A single `pipelines.train` starts one (pipelines.cli), and so does the first job of a sweep
whose jobs run in the command's own process and end one after another (the basic and the
stacked launcher: each job's plots are drawn while it writes its other records, ~6% of the
`lr_depth` preset's wall here); jobs in a launcher's worker processes (joblib, Ray, SLURM) draw
inline, as do the library, reruns and tests, where no worker was started. A drawing
that fails in the worker raises `PlotFailed` with the worker's message; a worker that is gone
before it was handed anything (it could not start) leaves the run to draw inline, with a
warning; one that dies while drawing raises `PlotFailed` naming its exit status, never a hang.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from types import TracebackType
from typing import IO, Any

log = logging.getLogger(__name__)

# the drawings a worker may be asked for: functions of backprop_lab.plots.run_plots
DRAWINGS = ("learning_curve", "predicted_vs_actual", "gradient_flow")


class PlotFailed(RuntimeError):
    """A plot could not be drawn by the worker: its error, or the worker's exit."""


class Worker:
    """The worker process seen from the run: requests go down its stdin, one reply per request
    (its sequence number, and the error text or None) comes back up its stdout."""

    command = [sys.executable, "-m", "backprop_lab.plots.worker"]

    def __init__(self) -> None:
        self.owner = os.getpid()  # a forked child must not read its parent's replies
        self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE)
        self.sent = 0

    def alive(self) -> bool:
        return os.getpid() == self.owner and self.process.poll() is None

    def send(self, name: str, args: tuple[Any, ...]) -> int:
        """Hand the worker one drawing; returns its sequence number."""
        assert self.process.stdin is not None
        self.sent += 1
        pickle.dump((self.sent, name, args), self.process.stdin, pickle.HIGHEST_PROTOCOL)
        self.process.stdin.flush()
        return self.sent

    def receive(self, seq: int, what: str) -> None:
        """Wait for the reply to request `seq` (replies to requests of an earlier, failed
        drawing are read past); raise `PlotFailed` if it failed or the worker is gone."""
        assert self.process.stdout is not None
        while True:
            try:
                done, error = pickle.load(self.process.stdout)
            except (EOFError, pickle.UnpicklingError, OSError) as err:
                status = self.process.wait()
                raise PlotFailed(f"the plot worker (pid {self.process.pid}) exited with status "
                                 f"{status} before drawing {what}") from err
            if done == seq:
                break
        if error is not None:
            raise PlotFailed(f"{what}: {error} (drawn by the plot worker)")

    def close(self) -> None:
        """End the worker: it exits when its stdin closes; one that does not is killed."""
        if os.getpid() != self.owner:
            return
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):  # already gone: the pipe is broken
                self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


_worker: Worker | None = None


def start() -> None:
    """Start this process's plot worker (a single run's command, as early as it can)."""
    global _worker
    if _worker is None:
        _worker = Worker()
        atexit.register(stop)


def stop() -> None:
    """End this process's plot worker, if any: its plots are drawn inline from now on."""
    global _worker
    if _worker is not None:
        worker, _worker = _worker, None
        worker.close()


def running() -> bool:
    return _worker is not None and _worker.alive()


class Plots:
    """One run's plots: `draw` hands each to the worker when one is running (else draws it at
    once), and leaving the `with` block waits for all of them, so the files exist, or the
    drawing's error is raised, before the run logs its artifacts."""

    def __init__(self) -> None:
        self.worker = _worker if _worker is not None and os.getpid() == _worker.owner else None
        self.pending: list[tuple[int, str]] = []

    def __enter__(self) -> Plots:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self.wait()

    def draw(self, name: str, *args: Any) -> None:
        """Draw `run_plots.<name>(*args)`, in the worker if one is running."""
        if name not in DRAWINGS:
            raise ValueError(f"not a run plot: {name!r}; one of {', '.join(DRAWINGS)}")
        what = next((arg.name for arg in args if isinstance(arg, Path)), name)  # the file
        if self.worker is not None and not self.worker.alive() and not self.pending:
            log.warning("the plot worker exited (status %s) before this run's plots: drawing "
                        "them here", self.worker.process.poll())
            self.worker = None
        if self.worker is None:
            draw(name, args)
            return
        try:
            self.pending.append((self.worker.send(name, args), what))
        except OSError as err:  # the pipe broke: the worker died since
            raise PlotFailed(f"the plot worker (pid {self.worker.process.pid}) exited with "
                             f"status {self.worker.process.wait()} before drawing {what}"
                             ) from err

    def wait(self) -> None:
        """Wait until every plot handed to the worker is drawn; `PlotFailed` if one failed."""
        pending, self.pending = self.pending, []
        for seq, what in pending:
            assert self.worker is not None
            self.worker.receive(seq, what)


def draw(name: str, args: tuple[Any, ...]) -> None:
    """Draw one plot in this process (matplotlib is imported here, on first use)."""
    from backprop_lab.plots import run_plots

    getattr(run_plots, name)(*args)


def warm_up(requests: IO[bytes] | None = None) -> None:
    """Draw one of each plot to a throwaway folder: matplotlib's fonts, the mathtext parser
    (a log axis's tick labels are mathtext) and its caches are ready before a run's plots come
    (they then take ~0.3 s instead of ~0.6 s here). Caches only: the run's files are the same
    bytes as drawn cold. Stops as soon as the run's first request waits on `requests`: on a
    busy machine the warm-up may not be done before the run needs its plots."""
    import select

    import numpy as np

    from backprop_lab.nn.training import History

    history = History(train_cost=[2.0, 1.0], val_cost=[3.0, 1.5], best_epoch=1)
    diag = {0: {"diag.grad_norm.l1": 1.0, "diag.update_ratio.l1": 0.1}}
    with tempfile.TemporaryDirectory(prefix="backprop-lab-plots-") as tmp:
        folder = Path(tmp)
        for name, args in (
                ("learning_curve", ([history], folder / "a.png", True)),
                ("gradient_flow", (diag, folder / "c.png", {"flag": "layer 1"})),
                ("predicted_vs_actual", (np.arange(3.0), np.arange(3.0), "y", folder / "b.png"))):
            if requests is not None and select.select([requests], [], [], 0)[0]:
                return
            draw(name, args)


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """Draw each request until the run closes `requests`; one reply per request."""
    while True:
        try:
            seq, name, args = pickle.load(requests)
        except EOFError:
            return
        error: str | None = None
        try:
            if name not in DRAWINGS:
                raise ValueError(f"not a run plot: {name!r}")
            draw(name, args)
        except Exception as err:  # the run raises it: PlotFailed
            error = "".join(traceback.format_exception_only(err)).strip()
        pickle.dump((seq, error), replies, pickle.HIGHEST_PROTOCOL)
        replies.flush()


def main() -> None:
    """The worker: Ctrl-C is the run's to handle (the worker ends when the run closes its
    stdin); anything printed goes to stderr, stdout carries only the replies."""
    import gc

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        warm_up(sys.stdin.buffer)
    except Exception:  # the run's own drawings will say what is wrong
        log.debug("plot worker warm-up failed", exc_info=True)
    gc.freeze()  # matplotlib's import graph is never garbage: collections skip it
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
