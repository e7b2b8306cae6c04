"""A sweep's parent run: created once before any job, ended with a summary of its children.

`SweepRun.start` (in the launching process, before any job): create the store and the
experiment, create the parent run tagged `sweep_id` with the sweep's config as params (the swept
keys with their values as a list string, e.g. `train.lr` = `[0.001, 0.01]`), and write
`<sweep dir>/sweep.json`, which every job reads to become a child of the parent in the same
experiment; no job ever creates the database or the experiment, so parallel workers cannot
race. `finish` tags the parent with a summary of its children and a description that compares
them (`description`), logs the sweep's records and ends it. No Hydra here:
`pipelines.callbacks.SweepTracking` passes the values it reads from Hydra's config.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backprop_lab.errors import TrackingUnavailable
from backprop_lab.experiments.sweep import assess, champion, description, readback
from backprop_lab.pipeline.config import check_register_name
from backprop_lab.tracking import registry
from backprop_lab.tracking.liveness import Heartbeat, mark_stale
from backprop_lab.tracking.redact import hide_passwords_in
from backprop_lab.tracking.store import Run, Store, check_server, resolve_uri

log = logging.getLogger(__name__)
SWEEP_FILE = "sweep.json"
SWEEP_RECORDS = (SWEEP_FILE, "multirun.yaml", "optimization_results.yaml")


def read_marker(sweep_dir: Path) -> dict[str, Any]:
    """What a job needs to join its sweep (parent run, sweep id, experiment id, swept keys)."""
    marker = sweep_dir / SWEEP_FILE
    return dict(json.loads(marker.read_text())) if marker.is_file() else {}


@dataclass
class SweepRun:
    """The parent run, beating while the sweep runs (so that its jobs never mark it stale)."""

    parent: Run
    sweep_id: str
    sweep_dir: Path
    heartbeat: Heartbeat
    preset: str = ""
    swept: list[str] = field(default_factory=list)  # the keys the sweep varies
    table: Any = None  # the jobs ranked with their verdicts, once `finish` has run
    register: str | None = None  # tracking.register: the registered model the best job joins
    summary: readback.Summary | None = None  # once `finish` has run

    @classmethod
    def start(cls, uri: str | None, experiment: str, sweep_dir: Path, preset: str,
              swept: list[str], tags: Mapping[str, str], stale_after: float = 300.0,
              register: str | None = None, params: Mapping[str, str] | None = None,
              spool_wait: float = 60.0) -> SweepRun:
        uri = resolve_uri(uri)
        if register is not None:
            check_register_name(register)
        store = Store(uri, experiment, spool_wait=spool_wait)  # migrations happen here, once
        if register:  # before any job: a store without a registry trains nothing
            registry.check(store.client, uri, register)
        mark_stale(store.client, [store.experiment_id], stale_after)  # a dead earlier sweep
        sweep_id = uuid.uuid4().hex
        all_tags = {"sweep_id": sweep_id, "sweep_role": "parent", "sweep_preset": preset,
                    "sweep_dir": str(sweep_dir), "swept": ",".join(swept), **tags}
        parent = Run.start(store, f"sweep-{preset}-{sweep_id[:8]}", all_tags,
                           output_dir=sweep_dir)
        if params:  # the fixed config and the swept values: the runs table filters sweeps
            parent.log_params(params)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        marker = {"parent_run_id": parent.run_id, "sweep_id": sweep_id,
                  "experiment_id": store.experiment_id, "swept": swept}
        (sweep_dir / SWEEP_FILE).write_text(json.dumps(marker, indent=2))
        log.info("sweep %s: parent MLflow run %s in experiment %r (%s) at %s", sweep_id,
                 parent.run_id, store.experiment, store.experiment_id, uri)
        return cls(parent, sweep_id, sweep_dir, Heartbeat(parent).__enter__(), preset, swept,
                   register=register)

    def finish(self, status: str) -> readback.Summary:
        """Tag the parent with its children's summary, log the sweep's records, end it."""
        parent = self.parent
        self.heartbeat.__exit__(None, None, None)
        if parent.store.remote:  # a server restarting as the last job ended: wait as a job would
            with contextlib.suppress(TrackingUnavailable):  # still away: the reads below say so
                check_server(parent.store.uri, wait=parent.store.spool_wait)
        try:
            children = readback.children(parent.client, parent.run_id)
            summary = readback.summarize(children, self.sweep_id, parent_run_id=parent.run_id)
            failed = {r.info.run_id for r in children if readback.job_status(r) != "FINISHED"}
            assessment = assess.assess(parent.client, children, summary.metric, failed,
                                       swept=self.swept)
            table = assessment.columns(readback.jobs_table(children, metric=summary.metric))
            summary.adopt_best(table)
            self.table = table
            parent.set_tags(summary.tags())
            edge = assess.frontier(table)
            assess.record(parent.client, parent.run_id, children, assessment, edge)
            tags = parent.client.get_run(parent.run_id).data.tags
            race, search = tags.get("race_summary", ""), tags.get("search_summary", "")
            description.record(parent.client, parent.run_id, description.describe(
                table, children, summary, assessment, edge, parent.store.experiment_id,
                parent.run_id, self.preset, race=race, search=search))
            if race:
                summary.notes.append(race)
            if search:  # Markdown for the UI; plain words on the terminal
                summary.notes.append(search.replace("**", "").replace("`", ""))
            names = {r.info.run_id: str(r.info.run_name) for r in children}
            summary.notes.append(assessment.text(names))
            if summary.best_value is not None:
                parent.log_metrics({f"sweep_best.{summary.metric}": summary.best_value})
            with tempfile.TemporaryDirectory() as tmp:
                records = Path(tmp)
                for path in (self.sweep_dir / n for n in SWEEP_RECORDS):
                    if path.is_file():  # the marker, Hydra's sweep config, the search's results
                        shutil.copy(path, records / path.name)
                hide_passwords_in(records)  # e.g. hydra.sweeper.storage in multirun.yaml
                parent.log_artifacts(records)
        finally:
            parent.end(status)
        self.summary = summary
        return summary

    def register_best(self) -> champion.Outcome:
        """After `finish`: the best job's model into the registry (`champion`); the outcome is
        tagged on the parent (`registered_version`, `champion_version`)."""
        assert self.register and self.summary is not None
        outcome = champion.register_best(self.parent.client, self.register, self.summary,
                                         self.table)
        self.parent.set_tags({"registered_model": self.register,
                              "registered_version": outcome.version,
                              "champion_version": outcome.champion})
        return outcome
