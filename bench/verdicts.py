"""Proof by simulation: the sweep verdicts (`statistics.verdicts`) against the old procedure,
on simulated sweeps whose ground truth is known.

    .venv/bin/python bench/verdicts.py [--sims 2000] [--sims-many 250] [--seed 0] [--workers 2]
                                       [--sd 0.10]

A simulated sweep has 15 cells per job (3 repeats x 5 folds, n_test/n_train = 0.25) and its
log test errors are

    log e[job, cell] = log 9 + shift[job] + c[cell] + x[job, cell]

- c: the cell's difficulty (its test rows), shared by every job, N(0, 0.36²): 0.36 is the SD of
  log test_mse over the 15 cells of the best job of the real 5-fold x 3-repeat `lr_depth` sweep
  (sqlite:////tmp/lrd/mlflow.db, 2026-12-05).
- x: the job's own noise, equicorrelated over the job's cells with rho = 0.2 (the correlation
  the Nadeau-Bengio correction assumes for n_test/n_train = 0.25: rho = r/(1 + r)), and again
  with rho = 0 (independent cells, where the correction is conservative). Its scale sigma is
  set so that the expected sample SD of the per-cell log ratio of two equal jobs is `--sd`,
  sigma = sd / sqrt(2 (1 - rho)); the default 0.10 is what the real sweep shows for pairs of
  similar good jobs (SD of log(test_mse_A / test_mse_B) over 15 cells: lr 0.01 vs 0.001 at
  depth 2: 0.098, at depth 3: 0.132; lr 0.01 depth 2 vs 3: 0.084; lr 0.001 depth 2 vs 3:
  0.087; lr 0.01 depth 1 vs 2: 0.088).
- Three distributions of x: `gaussian` (equicorrelated normal); `t2` (Student t with 2 degrees
  of freedom, scaled by sigma, dependent through a Gaussian copula with the same rho); `wild`
  (gaussian, but each (job, cell) independently, with probability 1/15, has its error x30).

Each simulated sweep is judged by both procedures on the same cells:

- old: the plain mean of raw MSE differences against the job with the smallest mean,
  `corrected_paired_p` (corrected resampled t-test), two-sided, Holm over the jobs; `worse` if
  the adjusted p <= 0.05, else indistinguishable (there is no `equivalent`). Own interval:
  `mean_ci(values, 0.25)`, whose target is the true mean error.
- new: `verdicts(cells, 0.25, "test_mse")`. Own interval: `summarise(values, 0.25,
  "test_mse")`, whose target is the true geometric centre: exp of the median of the cells' log
  error distribution (log 9 for gaussian and t2; a little above it for wild).

Reported per distribution, in % of simulated sweeps (numbers, not pass/fail; the goals from
issue 25 are in the row names):

  (a) family-wise false `worse`: all jobs equal (2, 5, 10 jobs), any job called worse
  (b) power: 2 jobs, one with 1.5x the other's error in every cell, called worse
  (e) the same 1.5x job's other verdicts: undecided, equivalent, or taken for the best
  (c) `equivalent`: 2 equal jobs, the non-best one called equivalent (within ±1%)
  (d) coverage of the job's own 95% interval, one job; in the sweep model above, and with the
      whole cell (difficulty included) equicorrelated at rho, which is the model behind the
      correction itself
It also counts the non-best jobs the new procedure found significantly *better* than the best
(left `undecided`). A second table gives the rate of `equivalent` for 2 equal jobs (gaussian,
rho = 0.2) against the noise, at 15 and 50 cells, and what `repeats_to_decide` says of the
undecided.

The entries with 5, 10 (or 20) jobs take `--sims-many` sweeps, the others `--sims`: with more
than 2 jobs a `verdicts()` call costs 30-80 ms (scipy integrates the studentized range's p
numerically), with 2 jobs about 1 ms. The defaults take 2-2.5 minutes on 2 cores (load average
about 3). `--distributions`, `--rhos` and `--scenarios` run a subset, e.g.
`--sims-many 1500 --distributions gaussian wild --rhos 0.2 --scenarios equal5 equal10` (about
6 minutes) for tighter figures on the rows that matter most; `--scenarios equal20` (not run by
default) adds 20 equal jobs, the size of the `lr_depth` grid.

Each (distribution, rho, scenario) draws from its own generator seeded with (seed, its indices),
so the tables do not depend on --workers and reproduce exactly for the same seed.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import date

import numpy as np
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests

from backprop_lab.experiments.run.cells import mean_ci, summarise
from backprop_lab.experiments.sweep.statistics import (
    BEST,
    EQUIVALENT,
    UNDECIDED,
    WORSE,
    corrected_paired_p,
    verdicts,
)

REPEATS, FOLDS = 3, 5
RATIO = 0.25  # n_test / n_train of 5-fold cross-validation
LEVEL = math.log(9.0)  # the best jobs' test MSE on Boston; the procedures are scale-free
SD_CELL = 0.36  # SD of a cell's difficulty on the log scale (measured, see the docstring)
GAP = 1.5  # the worse job's error ratio in (b)
WILD_P, WILD_X = 1 / 15, 30.0
DISTRIBUTIONS = ("gaussian", "t2", "wild")
RHOS = (0.2, 0.0)
SCENARIOS = ("equal5", "equal10", "equal2", "gap", "coverage", "equal20")  # equal20: on demand
NOISES = (0.10, 0.03, 0.01, 0.003)  # --sd values of the equivalence table
ALPHA = 0.05


def job_noise(rng: np.random.Generator, distribution: str, rho: float, jobs: int, cells: int,
              sigma: float) -> np.ndarray:
    """x[job, cell]: equicorrelated at rho within a job (a Gaussian copula for t2), scale
    sigma, and for `wild` log 30 added to a cell with probability 1/15."""
    shared = rng.standard_normal((jobs, 1))
    z = math.sqrt(rho) * shared + math.sqrt(1 - rho) * rng.standard_normal((jobs, cells))
    if distribution == "t2":  # the t(2) quantile of the normal's probability, tails kept
        z = np.sign(z) * stats.t.isf(stats.norm.sf(np.abs(z)), 2)
    x = sigma * z
    if distribution == "wild":
        x = x + math.log(WILD_X) * (rng.random(x.shape) < WILD_P)
    return x


def sweep(rng: np.random.Generator, distribution: str, rho: float, shifts: list[float],
          sd: float, repeats: int = REPEATS) -> np.ndarray:
    """Test MSE of each job (rows) in each cell (columns) of one simulated sweep."""
    cells = repeats * FOLDS
    sigma = sd / math.sqrt(2 * (1 - rho))
    difficulty = SD_CELL * rng.standard_normal(cells)
    x = job_noise(rng, distribution, rho, len(shifts), cells, sigma)
    return np.exp(LEVEL + np.asarray(shifts)[:, None] + difficulty[None, :] + x)


def new_verdicts(errors: np.ndarray) -> dict[str, object]:
    keys = [(r, f) for r in range(len(errors[0]) // FOLDS) for f in range(FOLDS)]
    cells = {f"j{j}": dict(zip(keys, map(float, row))) for j, row in enumerate(errors)}
    return verdicts(cells, RATIO, "test_mse")


def old_tiers(errors: np.ndarray) -> list[str]:
    """The procedure before issue 25: Holm over the jobs' corrected paired p on raw means."""
    best = int(np.argmin(errors.mean(axis=1)))
    others = [j for j in range(len(errors)) if j != best]
    p = [corrected_paired_p(errors[j] - errors[best], RATIO) for j in others]
    adjusted = multipletests(p, alpha=ALPHA, method="holm")[1] if len(p) > 1 else p
    tiers = [BEST] * len(errors)
    for j, q in zip(others, adjusted):
        tiers[j] = WORSE if q <= ALPHA else "indistinguishable"
    return tiers


def true_centres(distribution: str, s: float) -> tuple[float, float]:
    """(true geometric centre, true mean) of exp(LEVEL + Gaussian(0, s²) part + t2/wild part):
    the median of the log error and the mean error. Only used for one job's cells."""
    if distribution == "t2":
        return math.exp(LEVEL), math.inf  # symmetric on the log scale; E exp(t2) is infinite
    if distribution == "gaussian":
        return math.exp(LEVEL), math.exp(LEVEL + s**2 / 2)
    w = math.log(WILD_X)

    def cdf(m: float) -> float:
        return (1 - WILD_P) * stats.norm.cdf(m / s) + WILD_P * stats.norm.cdf((m - w) / s) - 0.5

    median = optimize.brentq(cdf, -w, w)
    return math.exp(LEVEL + median), math.exp(LEVEL + s**2 / 2) * (1 - WILD_P + WILD_P * WILD_X)


def coverage(rng: np.random.Generator, distribution: str, rho: float, sd: float,
             sims: int) -> Counter:
    """One job's own 95% interval, old and new, in the sweep model and with the whole cell
    equicorrelated at rho."""
    out: Counter = Counter()
    sigma = sd / math.sqrt(2 * (1 - rho))
    total = math.sqrt(SD_CELL**2 + sigma**2)
    # the sweep model: c independent over cells, x equicorrelated. Its log error is
    # N(0, SD_CELL²) + sigma·(t2 or normal); for t2 the geometric centre is still LEVEL
    # (symmetric) and the mean is infinite, so `total` serves for both
    geometric, mean = true_centres(distribution, total)
    for _ in range(sims):
        for model in ("sweep", "whole"):
            if model == "sweep":
                values = sweep(rng, distribution, rho, [0.0], sd)[0]
            else:
                values = np.exp(LEVEL + job_noise(rng, distribution, rho, 1, REPEATS * FOLDS,
                                                  total)[0])
            new = summarise(values, RATIO, "test_mse")
            old = mean_ci(values, RATIO)
            out[f"new {model}"] += new.low <= geometric <= new.high
            out[f"old {model}"] += old.low <= mean <= old.high
    return out


def scenario(task: tuple[int, int, int, int, float, int]) -> tuple[tuple[str, float, str],
                                                                   Counter]:
    """Counts of the outcomes of one (distribution, rho, scenario) over `sims` sweeps."""
    seed, d, r, s, sd, sims = task
    distribution, rho, name = DISTRIBUTIONS[d], RHOS[r], SCENARIOS[s]
    rng = np.random.default_rng([seed, d, r, s])
    if name == "coverage":
        return (distribution, rho, name), coverage(rng, distribution, rho, sd, sims)
    jobs = {"equal5": 5, "equal10": 10, "equal20": 20, "equal2": 2, "gap": 2}[name]
    shifts = [0.0] * jobs if name != "gap" else [0.0, math.log(GAP)]
    out: Counter = Counter()
    for _ in range(sims):
        errors = sweep(rng, distribution, rho, shifts, sd)
        old, new = old_tiers(errors), new_verdicts(errors)
        new_tiers = [new[f"j{j}"].tier for j in range(jobs)]
        out["old worse"] += WORSE in old
        out["new worse"] += WORSE in new_tiers
        # a job significantly *better* than the chosen best gets no verdict but `undecided`
        out["new better than best"] += sum(
            v.tier == UNDECIDED and v.p_vs_best <= ALPHA and v.ratio < 1 for v in new.values())
        if name == "equal2":
            out["new equivalent"] += EQUIVALENT in new_tiers
        if name == "gap":  # the 1.5x job's verdict
            out[f"old {old[1]} 1.5x"] += 1
            out[f"new {new_tiers[1]} 1.5x"] += 1
    return (distribution, rho, name), out


def equivalence_row(task: tuple[int, int, float, int]) -> tuple[float, Counter]:
    """2 equal gaussian jobs, rho = 0.2, at noise sd: equivalent at 15 and 50 cells."""
    seed, i, sd, sims = task
    rng = np.random.default_rng([seed, 99, i])
    out: Counter = Counter()
    waits = []
    for _ in range(sims):
        for repeats in (REPEATS, 10):
            verdict = new_verdicts(sweep(rng, "gaussian", 0.2, [0.0, 0.0], sd, repeats))
            tiers = {v.tier for v in verdict.values()}
            out[f"equivalent {repeats}"] += EQUIVALENT in tiers
            if repeats == REPEATS:
                waits += [v.repeats_to_decide for v in verdict.values() if v.tier == UNDECIDED]
    finite = [w for w in waits if math.isfinite(w)]
    out["undecided"] = len(waits)
    out["undecided, inf"] = len(waits) - len(finite)
    out["median wait x2"] = int(2 * np.median(finite)) if finite else -1
    return sd, out


def start_worker() -> None:
    gc.freeze()  # multipletests calls gc.collect(): cheap once the imports are frozen


def pct(count: float, sims: int) -> str:
    return f"{100 * count / sims:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=2000,
                        help="simulated sweeps per entry with 2 jobs or one (coverage)")
    parser.add_argument("--sims-many", type=int, default=250,
                        help="simulated sweeps per entry with 5, 10 or 20 jobs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sd", type=float, default=0.10,
                        help="SD of the per-cell log ratio of two equal jobs")
    parser.add_argument("--distributions", nargs="+", choices=DISTRIBUTIONS,
                        default=list(DISTRIBUTIONS))
    parser.add_argument("--rhos", nargs="+", type=float, choices=RHOS, default=list(RHOS))
    parser.add_argument("--scenarios", nargs="+", choices=[*SCENARIOS, "noise"],
                        default=[*SCENARIOS[:-1], "noise"],
                        help="noise: the equivalence table; equal20 (20 equal jobs, the "
                        "lr_depth grid's size; ~0.3 s a sweep) only when named")
    args = parser.parse_args()
    started = time.perf_counter()
    load_before = loadavg()
    many = {"equal5", "equal10", "equal20"}
    sims = {name: args.sims_many if name in many else args.sims for name in SCENARIOS}
    # the seeds hang on the indices in the full lists: a subset reproduces its entries
    tasks = [(args.seed, d, r, s, args.sd, sims[name])
             for d, distribution in enumerate(DISTRIBUTIONS) if distribution in args.distributions
             for r, rho in enumerate(RHOS) if rho in args.rhos
             for s, name in enumerate(SCENARIOS) if name in args.scenarios]
    tasks.sort(key=lambda t: SCENARIOS[t[3]] not in many)  # the slow ones first
    with ProcessPoolExecutor(args.workers, initializer=start_worker) as pool:
        futures = [pool.submit(scenario, t) for t in tasks]
        eq_futures = [pool.submit(equivalence_row, (args.seed, i, sd, args.sims))
                      for i, sd in enumerate(NOISES) if "noise" in args.scenarios]
        results = dict(f.result() for f in futures)
        noise = dict(f.result() for f in eq_futures)
    n, m = args.sims, args.sims_many
    print(f"`.venv/bin/python bench/verdicts.py {' '.join(sys.argv[1:])}`".replace(" `", "`"))
    print(f"\nSeed {args.seed}; {m} simulated sweeps per entry with 5-20 jobs, {n} per other "
          f"entry; noise SD {args.sd} (per-cell log ratio of equal jobs); 15 cells = "
          f"{REPEATS} repeats x {FOLDS} folds; n_test/n_train = {RATIO}. Entries are % of "
          f"sweeps; Monte Carlo SE at 5%: {100 * math.sqrt(0.05 * 0.95 / m):.1f} points "
          f"({m} sweeps), {100 * math.sqrt(0.05 * 0.95 / n):.1f} ({n}); at 90%: "
          f"{100 * math.sqrt(0.1 * 0.9 / n):.1f}.")
    for rho in [rho for rho in RHOS if rho in args.rhos]:
        what = ("cells equicorrelated at rho = 0.2, as the correction assumes" if rho else
                "independent cells (rho = 0): the correction is conservative")
        print(f"\n**{what}**\n")
        shown = [d for d in DISTRIBUTIONS if d in args.distributions]
        print("| | " + " | ".join(f"{d} old | {d} new" for d in shown) + " |")
        print("|---" * (1 + 2 * len(shown)) + "|")

        def row(label: str, name: str, key: str, old: str | None = "", rho: float = rho,
                shown: list[str] = shown) -> None:
            if name not in args.scenarios:
                return
            cells = []  # old: the old procedure's key when not the new one's; None: none
            for d in shown:
                got, total = results[(d, rho, name)], sims[name]
                cells.append("—" if old is None else pct(got[f"old {old or key}"], total))
                cells.append(pct(got[f"new {key}"], total))
            print(f"| {label} | " + " | ".join(cells) + " |")

        row("(a) false `worse`, 5 equal jobs (goal ≤ 5)", "equal5", "worse")
        row("(a) false `worse`, 10 equal jobs (goal ≤ 5)", "equal10", "worse")
        row("(a) false `worse`, 20 equal jobs (goal ≤ 5)", "equal20", "worse")
        row("(a) false `worse`, 2 equal jobs (goal ≤ 5)", "equal2", "worse")
        row(f"(b) {GAP}x job called `worse` (goal ≥ 90)", "gap", "worse 1.5x")
        row(f"(e) {GAP}x job `undecided` (old: indistinguishable)", "gap", "undecided 1.5x",
            old="indistinguishable 1.5x")
        row(f"(e) {GAP}x job `equivalent`", "gap", "equivalent 1.5x", old=None)
        row(f"(e) {GAP}x job taken for the best", "gap", "best 1.5x")
        row("(c) equal job `equivalent` (2 jobs)", "equal2", "equivalent", old=None)
        for model, label in (("sweep", "sweep model"), ("whole", "whole cell at rho")):
            if "coverage" not in args.scenarios:
                break
            cells = []
            for d in shown:
                got = results[(d, rho, "coverage")]
                cells.append("— (mean ∞)" if d == "t2" else pct(got[f"old {model}"], n))
                cells.append(pct(got[f"new {model}"], n))
            print(f"| (d) own 95% interval covers the truth, {label} (goal ≥ 93) | "
                  + " | ".join(cells) + " |")
    better = sum(c["new better than best"] for c in results.values())
    print(f"\nNon-best jobs significantly *better* than the chosen best (new; left `undecided`): "
          f"{better} in all the sweeps above.")
    if "noise" not in args.scenarios:
        return finish(started, args.workers, load_before)
    print("\n**`equivalent` for 2 equal jobs against the noise** (gaussian, rho = 0.2, "
          f"{n} sweeps each)\n")
    print("| SD of per-cell log ratio | `equivalent`, 15 cells | `equivalent`, 50 cells | "
          "`undecided` at 15 cells that no number of repeats decides | median "
          "`repeats_to_decide` of the others |")
    print("|---|---|---|---|---|")
    for sd in NOISES:
        got = noise[sd]
        undecided = got["undecided"]
        wait = got["median wait x2"] / 2 if got["median wait x2"] >= 0 else math.nan
        print(f"| {sd} | {pct(got[f'equivalent {REPEATS}'], n)} | {pct(got['equivalent 10'], n)}"
              f" | {pct(got['undecided, inf'], undecided) if undecided else '—'} | "
              f"{'—' if math.isnan(wait) else f'{wait:g}'} |")
    finish(started, args.workers, load_before)


def finish(started: float, workers: int, load_before: str) -> None:
    print(f"\n{time.perf_counter() - started:.0f} s with {workers} workers on {date.today()}; "
          f"load average {load_before} before, {loadavg()} after.")


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


if __name__ == "__main__":
    main()
