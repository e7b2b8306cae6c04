"""Runs that died without a word: heartbeats, and marking the runs whose heartbeat stopped.

A process killed by SIGKILL, the OOM killer or a lost machine cannot end its run, which would
stay RUNNING forever. So while a run is open, a daemon thread sets its tag `heartbeat` (unix
seconds) every `HEARTBEAT_SECONDS`, whatever the training is doing (an ensemble member, a CV
fold, logging the model). A RUNNING run whose last heartbeat (or, lacking one, its start) is
older than `tracking.stale_after` seconds is dead: `mark_stale` ends it FAILED with tags
`stale=true` and `stale_reason`. Every training run and sweep does so in its experiment when it
starts, and `python -m pipelines.cleanup` does so on demand. A live run is never marked: its
heartbeat is at most `HEARTBEAT_SECONDS` old, and `stale_after` must be well above that.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backprop_lab.tracking.store import Run

log = logging.getLogger(__name__)
HEARTBEAT_TAG = "heartbeat"
HEARTBEAT_SECONDS = 30.0
MIN_STALE_AFTER = 3 * HEARTBEAT_SECONDS


@dataclass
class Heartbeat:
    """`with Heartbeat(run):` tags the run with the time now, then every `interval` seconds."""

    run: Run
    interval: float = HEARTBEAT_SECONDS
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread = threading.Thread(target=self._loop, name="mlflow-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def beat(self) -> None:
        if self.run.spooling:  # the server is away; the spool's delivery ends the silence
            return
        self.run.client.set_tag(self.run.run_id, HEARTBEAT_TAG, f"{time.time():.0f}")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception as err:  # a lost server: the run's own calls will report it
                log.warning("heartbeat of run %s not recorded: %s", self.run.run_id, err)


def last_sign_of_life(run: Any) -> float:
    """Unix seconds of the run's last heartbeat, or of its start when it has none."""
    beat = run.data.tags.get(HEARTBEAT_TAG)
    try:
        return float(beat) if beat is not None else run.info.start_time / 1000.0
    except ValueError:
        return run.info.start_time / 1000.0


def mark_stale(client: Any, experiment_ids: list[str], stale_after: float,
               now: float | None = None) -> list[str]:
    """End FAILED, tagged `stale=true`, every RUNNING run of `experiment_ids` whose last sign
    of life is older than `stale_after` seconds; returns their ids."""
    stale_after = max(float(stale_after), MIN_STALE_AFTER)
    now = time.time() if now is None else now
    marked = []
    runs = client.search_runs(experiment_ids, "attributes.status = 'RUNNING'", max_results=1000)
    for run in runs:
        last = last_sign_of_life(run)
        if now - last <= stale_after:
            continue
        when = datetime.fromtimestamp(last, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        reason = (f"no heartbeat since {when} ({now - last:.0f} s > tracking.stale_after "
                  f"{stale_after:.0f} s): its process died without ending it")
        client.set_tag(run.info.run_id, "stale", "true")
        client.set_tag(run.info.run_id, "stale_reason", reason)
        client.set_terminated(run.info.run_id, "FAILED", end_time=int(last * 1000))
        log.warning("run %s (%s) marked FAILED: %s", run.info.run_id, run.info.run_name, reason)
        marked.append(run.info.run_id)
    return marked
