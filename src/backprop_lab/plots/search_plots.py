"""A search's optimisation history: every finished trial's score by trial number, the pruned
ones at their last reported score, and the best score so far as a step line (what Optuna's
`plot_optimization_history` shows, drawn with matplotlib so that it needs no Plotly export)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure


def optimization_history(trials: Sequence[Mapping[str, Any]], path: Path,
                         metric: str = "score") -> bool:
    """`trials`: dicts with `number`, `state` (complete, pruned, ...) and `value` (the final
    score, or a pruned trial's last report); draws nothing and returns False without a
    finished trial. The y axis is logarithmic (MSE spans decades in an lr search)."""
    done = [t for t in trials if t.get("value") is not None and t["state"] == "complete"]
    if not done:
        return False
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter([t["number"] for t in done], [t["value"] for t in done], s=18, color="#0072B2",
               label="finished trial")
    pruned = [t for t in trials if t["state"] == "pruned" and t.get("value") is not None]
    if pruned:
        ax.scatter([t["number"] for t in pruned], [t["value"] for t in pruned], marker="x",
                   s=22, color="#D55E00", label="pruned (last report)")
    best, xs, ys = float("inf"), [], []
    for t in sorted(done, key=lambda t: t["number"]):
        best = min(best, float(t["value"]))
        xs.append(t["number"])
        ys.append(best)
    ax.step(xs, ys, where="post", color="#009E73", label="best so far")
    ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.set_title("Optimisation history")
    ax.legend(loc="upper right", fontsize="small")
    fig.savefig(path, dpi=110)
    return True
