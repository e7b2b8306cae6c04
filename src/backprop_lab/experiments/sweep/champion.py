"""A sweep's best job into the Model Registry (`tracking.register=NAME` with `-m`).

When the sweep has finished and its parent has ranked the jobs (`parent.SweepRun.finish`), the
best finished job's logged model (its `model_uri` tag; nothing is trained again) becomes a new
version of NAME, its description naming the sweep, the job and its tier, and its tags the
ranking metric and its value. Alias `champion` moves to it only when it is better on that metric
than the version the alias points at now (as that version's run logged it): rerunning a sweep
that does no better keeps the champion, and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from backprop_lab.errors import RegistrationFailed
from backprop_lab.experiments.sweep.readback import Summary, higher_is_better
from backprop_lab.tracking import registry


@dataclass
class Outcome:
    """What registering a sweep's best job did."""

    version: str
    champion: str  # the version alias `champion` points at afterwards
    moved: bool
    text: str


def tier_of(table: Any, run_id: str) -> str:
    """The best job's tier in the sweep's verdicts ('' when the table has none)."""
    if table is None or "tier" not in getattr(table, "columns", ()):
        return ""
    rows = table[table["run_id"].astype(str) == run_id]
    return str(rows["tier"].iloc[0]) if len(rows) else ""


def better(value: float, than: float | None, metric: str) -> bool:
    """Whether `value` beats `than` on `metric` (no comparable value to beat: it does)."""
    if than is None or math.isnan(than):
        return True
    return value > than if higher_is_better(metric) else value < than


def register_best(client: Any, name: str, summary: Summary, table: Any) -> Outcome:
    """Register the best job's model as a version of `name`; move `champion` when better."""
    if summary.best_run_id is None or summary.best_value is None:
        raise RegistrationFailed(f"tracking.register={name}: sweep {summary.sweep_id} has no "
                                 "finished job to register; the sweep is kept as it ended")
    best = client.get_run(summary.best_run_id)
    model_uri = best.data.tags.get("model_uri")
    if not model_uri:
        raise RegistrationFailed(
            f"tracking.register={name}: the best job {summary.best_name} (run "
            f"{summary.best_run_id}) logged no model (tracking.log_model=false?); nothing was "
            "registered, the sweep is kept as it ended")
    metric, value = summary.metric, float(summary.best_value)
    current = registry.champion(client, name)
    if current is not None and current.run_id == summary.best_run_id:
        return Outcome(str(current.version), str(current.version), False,
                       f"alias champion of {name!r} already is version {current.version}, the "
                       f"model of this sweep's best job {summary.best_name}: nothing registered")
    tier = tier_of(table, summary.best_run_id)
    description = (f"sweep {summary.sweep_id}: best job {summary.best_name} (run "
                   f"{summary.best_run_id}), tier {tier or 'none'}; {metric} {value:.6g}")
    tags = {"sweep_id": summary.sweep_id, "tier": tier, "metric": metric,
            "metric_value": f"{value:.17g}"}
    version = registry.register(client, name, model_uri, summary.best_run_id, description, tags)
    old_value = None
    if current is not None and current.run_id:
        old_value = client.get_run(current.run_id).data.metrics.get(metric)
    if current is None or better(value, old_value, metric):
        registry.point_champion(client, name, version)
        was = (f" (was version {current.version}, {metric} {old_value:.6g})"
               if current is not None and old_value is not None else "")
        return Outcome(version, version, True, f"registered {name!r} version {version}; alias "
                       f"champion -> version {version}, {metric} {value:.6g}{was}")
    shown = "none logged" if old_value is None else f"{old_value:.6g}"
    return Outcome(version, str(current.version), False,
                   f"registered {name!r} version {version} ({metric} {value:.6g}); alias "
                   f"champion stays on version {current.version} ({metric} {shown}): not beaten")
