"""What a search found, readable: the best trial, the pruned ones apart, which parameter
mattered (Optuna's importances) and the best value trial after trial.

`summary` is one short Markdown paragraph; the sweeper sets it as the parent run's tag
`search_summary`, which the parent's description (experiments.sweep.description) and
`compare` show, and writes the numbers to `<sweep dir>/optimization_results.yaml` (logged on
the parent with the sweep's other records). Importances need finished trials that differ: with
fewer than `MIN_TRIALS` (or when Optuna cannot fit them) the summary says so instead.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from backprop_lab.experiments.sweep.resume import PRUNED_ATTR, RUN_ATTR

SUMMARY_TAG = "search_summary"
RESULTS_FILE = "optimization_results.yaml"  # JSON, which YAML reads too
MIN_TRIALS = 4  # finished trials before importances are worth computing


def importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's parameter importances (PED-ANOVA in Optuna 5); {} when there are too few
    finished trials or Optuna cannot compute them."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}
    return {k: float(v) for k, v in found.items() if math.isfinite(v)}


def history(study: optuna.Study) -> list[tuple[int, float]]:
    """(trial number, best value so far) after every finished trial."""
    best: float | None = None
    points = []
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        value = trial.value
        if value is None:
            continue
        if best is None or sign * value < sign * best:
            best = value
        points.append((trial.number, best))
    return points


def counts(study: optuna.Study) -> dict[str, int]:
    found: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        found[trial.state.name.lower()] = found.get(trial.state.name.lower(), 0) + 1
    return found


def summary(study: optuna.Study) -> str:
    """One paragraph: the study, its trials by state, the best trial, the pruned ones, the
    importances and the best value's history."""
    states = ", ".join(f"{n} {s}" for s, n in sorted(counts(study).items()))
    parts = [f"**Optuna study** `{study.study_name}` ({study.direction.name.lower()}): "
             f"{states or 'no trials'}."]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if complete:
        best = study.best_trial
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in best.params.items())
        parts.append(f"Best trial {best.number}: {params}, value {best.value:.4g}.")
    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    if pruned:
        listed = "; ".join(f"#{t.number} at epoch {t.user_attrs.get(PRUNED_ATTR, '?')}"
                           for t in pruned[:20])
        more = f" and {len(pruned) - 20} more" if len(pruned) > 20 else ""
        parts.append(f"Pruned (not ranked): {listed}{more}.")
    found = importances(study)
    if found:
        parts.append("Parameter importances (Optuna): " +
                     ", ".join(f"{k} {v:.0%}" for k, v in found.items()) + ".")
    else:
        parts.append(f"Parameter importances: need at least {MIN_TRIALS} finished trials that "
                     "differ.")
    points = history(study)
    if points:
        steps = [points[0], *[p for a, p in zip(points, points[1:]) if p[1] != a[1]]]
        parts.append("Best value by trial: " +
                     ", ".join(f"#{n} {v:.4g}" for n, v in steps[-12:]) + ".")
    return " ".join(parts)


def results(study: optuna.Study) -> dict[str, Any]:
    """The numbers behind `summary`, for optimization_results.yaml."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = study.best_trial if complete else None
    return {
        "study_name": study.study_name, "direction": study.direction.name.lower(),
        "counts": counts(study),
        "best": None if best is None else {"number": best.number, "value": best.value,
                                           "params": best.params,
                                           "run_id": best.user_attrs.get(RUN_ATTR)},
        "pruned": [{"number": t.number, "epoch": t.user_attrs.get(PRUNED_ATTR),
                    "run_id": t.user_attrs.get(RUN_ATTR)}
                   for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))],
        "importances": importances(study),
        "history": [{"trial": n, "best": v} for n, v in history(study)],
        "trials": [{"number": t.number, "state": t.state.name.lower(), "params": t.params,
                    "value": t.value if t.value is not None else last_report(t)}
                   for t in study.get_trials(deepcopy=False)],
    }


def last_report(trial: Any) -> float | None:
    """A trial's last reported score (a pruned trial's), None without one."""
    steps = trial.intermediate_values
    return float(steps[max(steps)]) if steps else None


def record(client: Any, parent_run_id: str | None, sweep_dir: Path, study: optuna.Study,
           text: str, storage: str) -> None:
    """Write optimization_results.yaml; tag the parent with the summary, the study's name and
    its storage (`storage`: the URL as it may be shown, without a password)."""
    (sweep_dir / RESULTS_FILE).write_text(json.dumps(results(study), indent=2, default=str))
    if parent_run_id:
        client.set_tag(parent_run_id, SUMMARY_TAG, text[:7900])
        client.set_tag(parent_run_id, "study_name", study.study_name)
        client.set_tag(parent_run_id, "study_storage", storage)
