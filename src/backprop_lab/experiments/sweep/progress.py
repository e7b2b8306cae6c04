"""A sweep's live progress, read from the store while it runs, whatever launches the jobs.

The launching process polls the sweep's child runs (one `search_runs` every `every` seconds)
and shows jobs done of the total, the networks they trained, finished / diverged / failed so
far, the elapsed time and an ETA (elapsed / done x left). Reading the store rather than hooking
a launcher makes it the same for the basic, joblib, stacked and Ray launchers and for a search
sampler: every job, in whatever process or machine, is a child run of the parent. On a terminal
it is one line that updates (on stderr, as tqdm does); elsewhere (CI logs, `| tee`) a line
whenever something changed, at most every `every_plain` seconds.

With the stacked launcher no job ends until its stack has trained, so the line also shows the
stacks of the launch in progress in this process (`pipeline.meter`): their epoch and how many
networks are still training, have stopped (early stopping, divergence) or wait for a core.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class Counts:
    """What the sweep's children say so far."""

    running: int = 0
    finished: int = 0
    diverged: int = 0
    failed: int = 0  # failed for another reason, or killed
    pruned: int = 0  # stopped by a search's pruner
    networks: int = 0  # networks the finished and diverged jobs trained (cells x members)

    @property
    def done(self) -> int:
        return self.finished + self.diverged + self.failed + self.pruned


def count(runs: list[Any]) -> Counts:
    """Tally child runs by how they ended (a run still RUNNING counts as running)."""
    out = Counts()
    for run in runs:
        status, tags = run.info.status, run.data.tags
        if status == "RUNNING":
            out.running += 1
            continue
        if status == "FINISHED":
            out.finished += 1
        elif tags.get("diverged") == "true":
            out.diverged += 1
        elif tags.get("pruned") == "true":
            out.pruned += 1
        else:
            out.failed += 1
        cells = int(tags.get("n_cells", 1) or 1)
        out.networks += cells * int(run.data.params.get("model.ensemble", 1) or 1)
    return out


def line(c: Counts, total: int | None, elapsed: float) -> str:
    """"jobs 7/20 (2 running) | 175 networks | 6 finished, 1 diverged, 0 failed | 0:21 <
    0:39"."""
    of = f"/{total}" if total else ""
    eta = ""
    if total and c.done:
        eta = f" < {clock(elapsed / c.done * max(total - c.done, 0))}"
    return (f"jobs {c.done}{of} ({c.running} running) | {c.networks:,} networks | "
            f"{c.finished} finished, {c.diverged} diverged, {c.failed} failed"
            f"{f', {c.pruned} pruned' if c.pruned else ''} | "
            f"{clock(elapsed)}{eta}")


def stacks_text() -> str:
    """The stacked launcher's meter, while a launch in this process trains; else ""."""
    from backprop_lab.pipeline import stacking

    meters = [r.meter for r in list(stacking.ACTIVE) if r.meter is not None]
    return " | " + meters[-1].text() if meters else ""


def clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


ACTIVE: SweepProgress | None = None  # the sweep this process shows (one per command)


def expect(total: int) -> None:
    """Correct the running sweep's count of jobs, once its sweeper knows better than the config
    (a resumed Optuna study runs only the trials it still lacks)."""
    if ACTIVE is not None:
        ACTIVE.total = total


@dataclass
class SweepProgress:
    """A daemon thread showing the sweep's progress until `stop`."""

    client: Any
    experiment_id: str
    parent_run_id: str
    total: int | None = None  # jobs expected (None: unknown, e.g. racing rounds)
    every: float = 1.0
    every_plain: float = 5.0
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _shown: str = ""

    def start(self) -> SweepProgress:
        global ACTIVE
        ACTIVE = self
        self.started = time.perf_counter()
        self._thread = threading.Thread(target=self._loop, name="sweep-progress", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._show(final=True)

    def poll(self) -> Counts:
        where = f"tags.`mlflow.parentRunId` = '{self.parent_run_id}'"
        runs = self.client.search_runs([self.experiment_id], where, max_results=5000)
        return count(list(runs))

    def _loop(self) -> None:
        last_plain = 0.0
        while not self._stop.wait(self.every):
            now = time.perf_counter()
            if (self._tty() or now - last_plain >= self.every_plain) and self._show():
                last_plain = now

    def _tty(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def _show(self, final: bool = False) -> bool:
        """Write the line if it changed; True when written."""
        try:
            text = line(self.poll(), self.total, time.perf_counter() - self.started)
            text += "" if final else stacks_text()
        except Exception:  # a store busy or gone for a moment: skip this tick, never the sweep
            return False
        if text == self._shown and not final:
            return False
        self._shown = text
        if self._tty():  # one line that fits: a wrapped line cannot be rewritten in place
            width = shutil.get_terminal_size().columns - 1
            text = text if len(text) <= width else text[: width - 1] + "…"
            self.stream.write(f"\r\033[K{text}" + ("\n" if final else ""))
        else:
            self.stream.write(f"progress: {text}\n")
        self.stream.flush()
        return True
