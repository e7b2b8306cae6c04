"""Racing: a sweep's repeats spent where they decide something (F-race, Birattari et al. 2002;
irace, López-Ibáñez et al. 2016).

With `eval.race=true eval.repeats=K`, the sweeper (`hydra/sweeper=racing`, the default of
`pipelines.train`) runs the repeats in rounds: round r trains repeat r of every job still in the
race (`eval.repeats=1 eval.first_repeat=r`: the same cells a full run trains, so a round's run is
reusable by its config hash and a resumed race retrains nothing it finished). After each round
the jobs are judged on all their cells so far (`statistics.verdicts`); those already decided,
`worse` or `equivalent`, stop, diverged ones are out, and the undecided and the best get the
next repeat, until none is undecided or K rounds are run. Looking after every round is
sequential testing, which the per-round verdicts do not correct for (nor do F-race and irace):
the final verdicts are `compare`'s, on every cell trained.

At the end every job becomes one child run of the sweep, as without racing: its rounds' cells
(scores.csv, curves.csv) and their summaries, the params of what ran (`eval.repeats` = its
rounds), tags `race_rounds` and `race_stopped`; its round runs are nested under it. The parent
gets `race_summary`: the networks trained against the full grid.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from backprop_lab.experiments.run.cells import cell_metrics
from backprop_lab.experiments.run.identity import RANKING_METRICS, REUSE_TAG
from backprop_lab.experiments.run.report import DESCRIPTION
from backprop_lab.experiments.sweep import readback, statistics
from backprop_lab.experiments.sweep.assess import job_cells
from backprop_lab.tracking.store import Run, Store, open_client

RACE_KEYS = ("eval.repeats", "eval.first_repeat")
STAYS = (statistics.BEST, statistics.UNDECIDED)  # verdicts that earn another repeat
NOT_METRICS = ("repeat", "fold", "n_train", "n_val", "n_test", "diverged")


def job_key(overrides: Sequence[str]) -> str:
    """A job's identity across rounds: its overrides without the round's own keys."""
    return " ".join(o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in RACE_KEYS)


def round_overrides(job: Sequence[str], repeat: int) -> list[str]:
    """The overrides of a job's round `repeat`: one repeat, numbered `repeat`."""
    return [*(o for o in job if o.split("=", 1)[0].lstrip("+~") not in RACE_KEYS),
            "eval.repeats=1", f"eval.first_repeat={repeat}"]


@dataclass
class Race:
    """The rounds of one racing sweep, read back from its parent run."""

    uri: str
    parent_run_id: str
    equivalence: float = statistics.EQUIVALENCE
    stopped: dict[str, str] = field(default_factory=dict)  # job key -> why it left the race
    client: Any = None

    def __post_init__(self) -> None:
        self.client = open_client(self.uri)

    def rounds(self) -> dict[str, list[Any]]:
        """Job key -> its round runs (this sweep's and the ones it reused), oldest first."""
        parent = self.client.get_run(self.parent_run_id)
        reused = {k.removeprefix(REUSE_TAG): v for k, v in parent.data.tags.items()
                  if k.startswith(REUSE_TAG)}
        found: dict[str, list[Any]] = {}
        for run in readback.children(self.client, self.parent_run_id):
            overrides = reused.get(run.info.run_id, run.data.tags.get("hydra_overrides", ""))
            found.setdefault(job_key(overrides.split()), []).append(run)
        return found

    def judge(self, keys: Sequence[str]) -> list[str]:
        """The jobs of `keys` that stay in the race after this round (see the module)."""
        rounds = self.rounds()
        cells: dict[str, dict[tuple[int, int], float]] = {}
        ratios: list[float] = []
        failed: set[str] = set()
        metric = self.metric(rounds)
        with tempfile.TemporaryDirectory(prefix="backprop-race-") as tmp:
            for key in keys:
                cells[key] = {}
                for run in rounds.get(key, []):
                    found = job_cells(self.client, run, metric, Path(tmp) / run.info.run_id)
                    cells[key].update(found.cells)
                    ratios.append(found.ratio)
                    if readback.job_status(run) != "FINISHED":
                        failed.add(key)
        ratio = sum(ratios) / len(ratios) if ratios else 0.0
        verdicts = statistics.verdicts(cells, ratio, metric, frozenset(failed), self.equivalence)
        staying = [key for key in keys if verdicts[key].tier in STAYS]
        for key in keys:
            if key not in staying:
                self.stopped[key] = verdicts[key].tier
        return staying

    @staticmethod
    def metric(rounds: dict[str, list[Any]]) -> str:
        logged = {m for runs in rounds.values() for r in runs for m in r.data.metrics}
        return next((m for m in RANKING_METRICS if m in logged), RANKING_METRICS[-1])

    def finish(self, keys: Sequence[str], repeats: int, folds: int) -> str:
        """One child run per job from its rounds; the parent's `race_summary`."""
        rounds = self.rounds()
        parent = self.client.get_run(self.parent_run_id)
        experiment = self.client.get_experiment(parent.info.experiment_id).name
        store = Store(self.uri, experiment)
        trained = 0
        for key in keys:
            runs = rounds.get(key, [])
            if runs:
                trained += len(runs)
                self.merge(store, key, runs, parent.data.tags["sweep_id"])
        full = len(keys) * repeats
        cells = max(folds, 1)
        members = _ensemble(rounds)
        text = (f"racing: {trained} of {full} repeats of the grid trained "
                f"({trained * cells * members:,} of {full * cells * members:,} networks, "
                f"{1 - trained / max(full, 1):.0%} saved); "
                f"{sum(1 for k in keys if k in self.stopped)} of {len(keys)} jobs stopped before "
                "the last round")
        self.client.set_tag(self.parent_run_id, "race_summary", text)
        return text

    def merge(self, store: Store, key: str, runs: list[Any], sweep_id: str) -> None:
        """The job's child run: every round's cells, summarised as one run would be."""
        first = runs[0]
        with tempfile.TemporaryDirectory(prefix="backprop-race-") as tmp:
            folder = Path(tmp)
            scores = _concat(self.client, runs, "scores.csv", folder)
            curves = _concat(self.client, runs, "curves.csv", folder)
            failed = [r for r in runs if readback.job_status(r) != "FINISHED"]
            tags = {"sweep_id": sweep_id, "hydra_overrides": key, "race_rounds": str(len(runs)),
                    "race_stopped": self.stopped.get(key, "ran every round"),
                    "race_round_runs": " ".join(r.info.run_id for r in runs),
                    "race_rounds_reused": str(sum(r.data.tags.get("mlflow.parentRunId") !=
                                                  self.parent_run_id for r in runs)),
                    "n_cells": str(len(scores))}
            if failed:
                tags.update(diverged=str(any(r.data.tags.get("diverged") == "true"
                                             for r in failed)).lower())
            run = Run.start(store, first.info.run_name, tags, parent_id=self.parent_run_id)
            params = {k: v for k, v in first.data.params.items() if k not in RACE_KEYS}
            run.log_params({**params, "eval.repeats": str(len(runs)), "eval.first_repeat": "0"})
            metrics: dict[str, float] = {}
            if not failed and len(scores):
                ratio = float((scores["n_test"] / scores["n_train"]).mean())
                for name in (c for c in scores.columns if c not in NOT_METRICS):
                    values = pd.to_numeric(scores[name], errors="coerce").dropna()
                    if len(values):
                        metrics.update(cell_metrics(name, values.to_numpy(), ratio))
            run.log_metrics(metrics)
            seconds = sum(float(r.data.tags.get("seconds_training", 0)) for r in runs)
            rounds_text = (f"{len(runs)} round{'s' if len(runs) > 1 else ''}, {len(scores)} "
                           f"cells; {tags['race_stopped']}")
            run.set_tags({"seconds_training": f"{seconds:.3f}", DESCRIPTION: (
                f"**{'FAILED' if failed else 'FINISHED'}** (racing: {rounds_text}). "
                f"Its round runs are nested under it.")})
            out = folder / "merged"
            out.mkdir()
            scores.to_csv(out / "scores.csv", index=False)
            if len(curves):
                curves.to_csv(out / "curves.csv", index=False)
            run.log_artifacts(out)
            run.end("FAILED" if failed else "FINISHED")
        for r in runs:  # the rounds nest under their job, so the sweep lists each job once
            if r.data.tags.get("mlflow.parentRunId") == self.parent_run_id:
                self.client.set_tag(r.info.run_id, "mlflow.parentRunId", run.run_id)
            else:  # a round a resumed race reused: another sweep's run, listed by the job
                self.client.delete_tag(self.parent_run_id, f"{REUSE_TAG}{r.info.run_id}")


def _concat(client: Any, runs: list[Any], name: str, folder: Path) -> pd.DataFrame:
    frames = []
    for run in runs:
        if any(a.path == name for a in client.list_artifacts(run.info.run_id)):
            path = client.download_artifacts(run.info.run_id, name,
                                             str(folder / run.info.run_id))
            frames.append(pd.read_csv(path))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _ensemble(rounds: dict[str, list[Any]]) -> int:
    sizes = [int(r.data.params.get("model.ensemble", 1)) for runs in rounds.values()
             for r in runs]
    return max(sizes, default=1)
