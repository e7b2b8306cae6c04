"""Search efficiency: network-epochs and wall time until a config within 2% of the grid's best
CV MSE is found, for grid, random, TPE and TPE + pruning on the lr x depth space.

    .venv/bin/python bench/optuna_search.py [--seeds 0 1 2 3 4] [--trials 30]
        [--pruners median successive_halving hyperband] [--within 0.02] [--tpe-startup 10]
        [--methods random tpe] [KEY=VALUE ...]

Every trial trains as the `lr_depth` preset's jobs (width 16, tanh, Glorot, Adam for 400
epochs, no early stopping) on Boston with 5-fold CV (`eval.cv_folds=5`, the held-out fold
scores: test_mse), with `model.ensemble=1` by default (a fifth of the preset's cost; pass
model.ensemble=5 for the preset's own). Per config seed (fold split and initial weights):

- grid: the preset's 20 points (lr 1e-4..1 x depth 0..3) in Hydra's order; its best CV MSE sets
  the target, 1.02 x best. Reported: the whole grid (what knowing its best costs) and the cost
  until its first point within the target, in that order;
- random, tpe and tpe+<pruner>: Optuna 5 samplers seeded with the config seed, asked on the
  search space of conf/sweep/optuna.yaml (lr log-uniform in [1e-4, 1], depth 0..3), one trial
  at a time, --trials of them; reported: the cost until the first finished trial within the
  target. A second table uses a harder target: within 2% of the best CV MSE any method found
  for that seed (the continuous space holds better configs than the grid's decades).

It calls the library as the sweeper's jobs do (crossval.run_cells with the pipeline's score
every train.report_every epochs, the pruners of experiments.sweep.study), without MLflow, so
the numbers measure the search, not the tracking. network-epochs = sum over trials of networks
(folds x members) x epochs trained (a pruned trial's up to its prune). Numbers, not pass/fail;
the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import FloatDistribution, IntDistribution

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
GRID_LR = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
GRID_DEPTH = (0, 1, 2, 3)
SPACE = {"train.lr": FloatDistribution(1e-4, 1.0, log=True), "model.depth": IntDistribution(0, 3)}


STARTUP = [10]  # TPE's random start-up trials (--tpe-startup)


class Stop(Exception):
    pass


def base_config(extra: list[str]) -> Any:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from backprop_lab.pipeline.compose import register_schemas, to_config

    register_schemas()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["sweep=lr_depth", "eval.cv_folds=5",
                                                       "model.ensemble=1", "model.depth=1",
                                                       *extra])
    return to_config(cfg)


def train(cfg: Any, ds: Any, lr: float, depth: int, trial: Any = None) -> tuple[float, int]:
    """(CV MSE or inf when a cell diverged or it was pruned, network-epochs trained)."""
    from backprop_lab.pipeline import crossval

    cfg = replace(cfg, train=replace(cfg.train, lr=lr), model=replace(cfg.model, depth=depth))
    networks = cfg.eval.cv_folds * cfg.model.ensemble
    reached = [cfg.train.epochs - 1]

    def report(epoch: int, value: float) -> None:
        if trial is None or not math.isfinite(value):
            return
        trial.report(value, epoch)
        if trial.should_prune():
            reached[0] = epoch
            raise Stop

    try:
        cells = crossval.run_cells(cfg, ds, report)
    except Stop:
        return math.inf, networks * (reached[0] + 1)
    if any(c.result.history.diverged for c in cells):
        return math.inf, networks * cfg.train.epochs
    return (statistics.fmean(c.result.evaluation.metrics["test_mse"] for c in cells),
            networks * cfg.train.epochs)


def grid(cfg: Any, ds: Any) -> list[tuple[int, float, float]]:
    """The 20 grid points in Hydra's order: (network-epochs so far, seconds so far, CV MSE)."""
    started, spent, trace = time.perf_counter(), 0, []
    for lr in GRID_LR:
        for depth in GRID_DEPTH:
            value, cost = train(cfg, ds, lr, depth)
            spent += cost
            trace.append((spent, time.perf_counter() - started, value))
    return trace


def search(cfg: Any, ds: Any, method: str, seed: int,
           trials: int) -> list[tuple[int, float, float]]:
    """`trials` trials of `method` ("random", "tpe", "tpe+median", ...), one at a time:
    (network-epochs so far, seconds so far, CV MSE; inf for a pruned or diverged trial)."""
    from backprop_lab.experiments.sweep.study import make_pruner, make_sampler

    sampler_name, _, pruner_name = method.partition("+")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=make_sampler(sampler_name, seed, SPACE, STARTUP[0]),
                                pruner=make_pruner(pruner_name or "none", cfg.train.epochs,
                                                   cfg.train.report_every))
    full = cfg.eval.cv_folds * cfg.model.ensemble * cfg.train.epochs
    started, spent, trace = time.perf_counter(), 0, []
    for _ in range(trials):
        trial = study.ask(SPACE)
        value, cost = train(cfg, ds, trial.params["train.lr"], trial.params["model.depth"],
                            trial if pruner_name else None)
        spent += cost
        if cost < full:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif math.isfinite(value):
            study.tell(trial, value)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        trace.append((spent, time.perf_counter() - started, value))
    return trace


def first_hit(trace: list[tuple[int, float, float]], target: float) -> tuple[int, float, int]:
    """(network-epochs, seconds, trials) until the first value <= target; the whole trace's
    cost and -1 trials when none is."""
    for n, (spent, seconds, value) in enumerate(trace, start=1):
        if value <= target:
            return spent, seconds, n
    return trace[-1][0], trace[-1][1], -1


def table(rows: dict[str, list[tuple[int, float, int]]], grid_epochs: float) -> str:
    lines = ["| method | network-epochs (median) | x full grid | wall s (median) | trials "
             "(median) | found |", "|---|---|---|---|---|---|"]
    for method, found in rows.items():
        hits = [r for r in found if r[2] != -1]
        epochs = statistics.median(r[0] for r in found)
        trials = statistics.median(r[2] for r in hits) if hits else math.nan
        lines.append(f"| {method} | {epochs:,.0f} | {epochs / grid_epochs:.2f} | "
                     f"{statistics.median(r[1] for r in found):.1f} | {trials:g} | "
                     f"{len(hits)}/{len(found)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--trials", type=int, default=30, help="trials per search")
    parser.add_argument("--pruners", nargs="+", default=["median"])
    parser.add_argument("--within", type=float, nargs="+", default=[0.02],
                        help="targets: within this fraction of the grid's best, and of the "
                             "best any method found for the seed")
    parser.add_argument("--tpe-startup", type=int, default=10,
                        help="TPE's random start-up trials (hydra.sweeper.n_startup_trials)")
    parser.add_argument("--methods", nargs="+", default=["random", "tpe"],
                        help="searches besides tpe+<pruner>")
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE for every trial's config")
    args = parser.parse_args()
    STARTUP[0] = args.tpe_startup
    from backprop_lab.pipeline import stages

    cfg = base_config(args.overrides)
    ds = stages.load(cfg.data)
    methods = [*args.methods, *(f"tpe+{p}" for p in args.pruners)]
    print(f"load average before: {os.getloadavg()}", flush=True)
    traces: list[dict[str, Any]] = []
    for seed in args.seeds:
        seeded = replace(cfg, seed=seed)
        found = {"grid": grid(seeded, ds)}
        for method in methods:
            found[method] = search(seeded, ds, method, seed, args.trials)
        traces.append(found)
        best = min(v for _, _, v in found["grid"])
        print(f"seed {seed}: grid best {best:.3f}; " + "; ".join(
            f"{m} best {min(v for _, _, v in t):.3f} ({t[-1][0]:,} ep, {t[-1][1]:.0f} s)"
            for m, t in found.items()), f"| load {os.getloadavg()[0]:.2f}", flush=True)
    grid_epochs = statistics.median(t["grid"][-1][0] for t in traces)
    for within, reference in [(w, r) for r in ("grid", "all") for w in args.within]:
        rows: dict[str, list[tuple[int, float, int]]] = {"grid (whole)": [], "grid (first hit)": []}
        for found in traces:
            shown = found["grid"] if reference == "grid" else [p for t in found.values() for p in t]
            target = (1 + within) * min(v for _, _, v in shown)
            rows["grid (whole)"].append((found["grid"][-1][0], found["grid"][-1][1], 20))
            rows["grid (first hit)"].append(first_hit(found["grid"], target))
            for method in methods:
                rows.setdefault(method, []).append(first_hit(found[method], target))
        what = "the grid's best" if reference == "grid" else "the best any method found"
        print(f"\nuntil a config within {within:.1%} of {what} CV MSE "
              f"({len(traces)} seeds, up to {args.trials} trials per search):")
        print(table(rows, grid_epochs))
        print("per seed, network-epochs: " + "; ".join(
            f"{m}: {[r[0] if r[2] != -1 else 'none' for r in found]}"
            for m, found in rows.items()))
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
