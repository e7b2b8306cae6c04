"""Verdicts on a sweep's jobs against the best: worse, equivalent or undecided, with one
family-wise error rate over the sweep, robust to the few wild cells of a learning rate at the
edge of stability.

A job's scores are cells (repeat, fold) on rows every job of the sweep shares, so two jobs are
compared cell by cell. For an error metric (MSE, RMSE, MAE; R² through 1 − R², whose SST the
jobs share) the per-cell comparison is the log ratio

    d_c = log(error_job,c / error_best,c)

so that a factor of 2 is the same evidence at MSE 9 and at MSE 264 (other metrics: the plain
difference, signed so that d > 0 means worse). A log scale alone does not make a test robust:
one cell x30 still swamps a variance. So the centre of d is its 20%-trimmed mean and its
standard error the winsorised one (Yuen 1974; Tukey & McLaughlin 1963; statsmodels'
`TrimmedMean`), inflated for cells that share training rows as in the corrected resampled
t-test (Nadeau & Bengio 2003; Bouckaert & Frank 2004):

    t = trim_mean(d) / (SE_w(d) · sqrt(1 + J · n_test/n_train)),   h − 1 degrees of freedom

(J cells, h left after trimming). Per job two hypotheses are tested:

- `worse`: H0 "same centre as the best", two-sided, its p taken from the studentized range of
  the sweep's k jobs (Tukey 1953; Games & Howell 1976 for a per-pair variance). The best is the
  job with the smallest trimmed mean of log errors, picked from the same cells, so the job
  compared with it is, under "all equal", the range of k means: a per-pair t-test (even with
  Holm) called one of 5 equal jobs worse in 7% of simulated sweeps. For k = 2 it is the t-test.
- `equivalent`: H0 "|centre| >= log(1 + eq)" by two one-sided tests (TOST; Schuirmann 1987),
  eq = `eval.equivalence` (relative error, default 1%), Holm-adjusted over the jobs
  (statsmodels).

The two families share the 5% by Bonferroni (each at 2.5%: both p-values are shown doubled, so
either is read against 0.05), which bounds the family-wise error rate of the sweep's verdicts
at 5%. A job whose TOST rejects is `equivalent`; else one whose worse-test rejects is `worse`;
else it is `undecided`, with the repeats that would decide it at the variance observed (none,
when the correction's floor n_test/n_train keeps even infinitely many cells from deciding).
Diverged jobs are `diverged`; a sweep with one cell per job tests nothing (`n/a (one cell)`).
Simulated against known ground truth in tests/experiments/sweep/test_statistics.py and
bench/verdicts.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

from backprop_lab.experiments.run.cells import (
    TRIM,
    Interval,
    log_errors,
    mean_ci,
    summarise,
    trimmed,
)

BEST, EQUIVALENT, WORSE, UNDECIDED, DIVERGED = (
    "best", "equivalent", "worse", "undecided", "diverged")
NO_EVIDENCE = "n/a (one cell)"
TIERS = (BEST, EQUIVALENT, UNDECIDED, WORSE, DIVERGED, NO_EVIDENCE)  # the order a reader wants
ALPHA = 0.05
EQUIVALENCE = 0.01  # eval.equivalence's default: within ±1% of the best's error
MAX_REPEATS = 50  # beyond this, "more repeats" is not an answer
Cells = Mapping[tuple[int, int], float]  # (repeat, fold) -> score

__all__ = ["ALPHA", "BEST", "DIVERGED", "EQUIVALENT", "NO_EVIDENCE", "TIERS", "UNDECIDED",
           "WORSE", "Cells", "Interval", "Verdict", "corrected_paired_p", "mean_ci",
           "repeats_to_decide", "verdicts"]


@dataclass
class Verdict:
    tier: str
    p_vs_best: float  # Holm-adjusted, two-sided "no different"; nan for the best or untested
    interval: Interval  # the job's own centre and 95% interval on the metric's scale
    p_equivalent: float = math.nan  # Holm-adjusted TOST p
    ratio: float = math.nan  # the job's error / the best's, per cell (exp of the trimmed mean)
    ratio_low: float = math.nan  # its 95% interval (not adjusted)
    ratio_high: float = math.nan
    repeats_to_decide: float = math.nan  # undecided: more repeats that would decide; inf: none
    scale: str = "log"  # "log": ratios of errors; "difference": plain differences


def corrected_paired_p(d: np.ndarray, ratio: float = 0.0) -> float:
    """Two-sided p of mean(d) = 0 by the corrected resampled t-test on the plain mean (no
    trimming): the test the project used before the verdicts, kept for comparison."""
    d = np.asarray(d, dtype=np.float64)
    j = len(d)
    if j < 2:
        return math.nan
    var = float(d.var(ddof=1))
    mean = float(d.mean())
    if var == 0:
        return 1.0 if mean == 0 else 0.0
    t = mean / math.sqrt((1 / j + ratio) * var)
    return float(2 * stats.t.sf(abs(t), j - 1))


def worse_p(t: float, df: int, k: int) -> float:
    """Two-sided p of a pair's t among all pairs of `k` jobs: the studentized range (Tukey;
    Games & Howell for a per-pair variance), exactly the t-test for k = 2. The best is picked
    from the same cells, so the worst job against the best is the range of k equal jobs; a
    per-pair test even with Holm lets 7% of 5-job sweeps of equal jobs call one worse."""
    if k <= 2:
        return float(2 * stats.t.sf(abs(t), df))
    return float(stats.studentized_range.sf(math.sqrt(2) * abs(t), k, df))


Pair = tuple[float, float, float, int]  # a job against the best: centre, SE, p TOST, df


def compare_pair(d: np.ndarray, ratio: float, margin: float) -> Pair:
    """The trimmed centre of the per-cell differences `d`, its corrected SE, the TOST p of
    |centre| >= margin, and the degrees of freedom."""
    centre, se, df = trimmed(d, ratio)
    if se == 0 or math.isnan(se):  # every cell the same difference (bit-identical: 0)
        return centre, 0.0, float(abs(centre) >= margin), df
    p_low = float(stats.t.sf((centre + margin) / se, df))  # H0: centre <= -margin
    p_high = float(stats.t.cdf((centre - margin) / se, df))  # H0: centre >= margin
    return centre, se, max(p_low, p_high), df


def step_down(pairs: list[Pair], k: int, alpha: float) -> list[float]:
    """The worse-tests' p-values (doubled: the family's share of alpha is half), stepping down:
    a job shown worse cannot be the best, so the range is then taken over the k jobs still in
    the running, which is the closure of the many-to-one comparisons with the best (as in the
    step-down Dunnett procedure). A job keeps the p of the step that decided it."""
    decided: dict[int, float] = {}
    while True:
        found = {}
        for i, (centre, se, _, df) in enumerate(pairs):
            if i in decided:
                continue
            p = float(centre == 0) if se == 0 else worse_p(centre / se, df, k)
            found[i] = min(1.0, 2 * p)
        newly = {i: p for i, p in found.items() if p <= alpha and pairs[i][0] > 0}
        if not newly:
            return [decided.get(i, found.get(i, 1.0)) for i in range(len(pairs))]
        decided.update(newly)
        k -= len(newly)


def repeats_to_decide(d: np.ndarray, ratio: float, margin: float, per_repeat: int, k: int,
                      alpha: float, n_equivalence: int) -> float:
    """How many more repeats (each `per_repeat` cells) would decide a job at the centre and
    winsorised variance observed: `worse` at `alpha` among `k` jobs, or `equivalent` at
    `alpha` / `n_equivalence` (Holm's first step); inf when none up to `MAX_REPEATS` would (the
    n_test/n_train floor of the corrected variance can make that so)."""
    from statsmodels.stats.robust_compare import TrimmedMean

    centre, _, _ = trimmed(d, ratio)
    sw = math.sqrt(float(TrimmedMean(d, TRIM).var_winsorized))

    def decided(extra: int) -> bool:
        n = len(d) + extra * max(per_repeat, 1)
        h = n - 2 * int(TRIM * n)
        se = sw * math.sqrt(n) / h * math.sqrt(1.0 + n * ratio)
        if se == 0:
            return True
        equal = (margin - abs(centre)) / se > stats.t.ppf(1 - alpha / n_equivalence, h - 1)
        return equal or worse_p(centre / se, h - 1, k) <= alpha

    if not decided(MAX_REPEATS):
        return math.inf
    low, high = 0, MAX_REPEATS  # decided(high), not decided(low); the rule is monotone
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if decided(mid) else (mid, high)
    return float(high)


def verdicts(cells: Mapping[str, Cells], ratio: float = 0.0, metric: str = "val_mse",
             failed: frozenset[str] = frozenset(), equivalence: float = EQUIVALENCE,
             alpha: float = ALPHA) -> dict[str, Verdict]:
    """A verdict for every job (`cells`: job -> its cell scores on `metric`; `failed`: the jobs
    that diverged or failed); see the module docstring."""
    higher = metric.endswith("r2")
    scores = {job: np.array(list(c.values()), dtype=np.float64) for job, c in cells.items()}
    alive = [job for job in cells if job not in failed and len(scores[job])
             and np.isfinite(scores[job]).all()]
    log_scale = all(log_errors(metric, scores[job]) is not None for job in alive)
    own = {job: summarise(x, ratio, metric if log_scale else "") for job, x in scores.items()}
    out = {job: Verdict(DIVERGED, math.nan, own[job]) for job in cells if job not in alive}
    if not alive:
        return out

    def loss(job: str, key: tuple[int, int]) -> float:  # the compared scale: lower is better
        value = cells[job][key]
        if log_scale:
            return math.log(1 - value) if higher else math.log(value)
        return -value if higher else value

    def centre_of(job: str) -> float:
        return trimmed(np.array([loss(job, k) for k in cells[job]]), 0.0)[0]

    best = min(alive, key=centre_of)
    scale = "log" if log_scale else "difference"
    margin = math.log1p(equivalence) if log_scale else equivalence * abs(own[best].centre)
    out[best] = Verdict(BEST, math.nan, own[best], scale=scale, ratio=1.0 if log_scale else 0.0)
    tested: list[tuple[str, np.ndarray, Pair]] = []
    for job in alive:
        if job == best:
            continue
        shared = sorted(set(cells[job]) & set(cells[best]))
        if len(shared) < 2:
            out[job] = Verdict(NO_EVIDENCE, math.nan, own[job], scale=scale)
            continue
        d = np.array([loss(job, k) - loss(best, k) for k in shared])
        tested.append((job, d, compare_pair(d, ratio, margin)))
    if not tested:
        out[best] = Verdict(NO_EVIDENCE, math.nan, own[best], scale=scale)
        return out
    # Bonferroni between the two families (each at alpha / 2): p-values doubled, read at alpha
    p_worse = step_down([t[2] for t in tested], len(alive), alpha)
    tost = [t[2][2] for t in tested]
    holm = multipletests(tost, method="holm")[1] if len(tost) > 1 else np.array(tost)
    per_repeat = len({fold for _, fold in cells[best]})
    k_left = len(alive) - sum(p <= alpha and t[2][0] > 0 for p, t in zip(p_worse, tested))
    for i, (job, d, (centre, se, _, df)) in enumerate(tested):
        p_diff, p_eq = p_worse[i], min(1.0, 2 * float(holm[i]))
        if p_eq <= alpha:
            tier = EQUIVALENT
        elif p_diff <= alpha and centre > 0:
            tier = WORSE
        else:
            tier = UNDECIDED
        half = float(stats.t.ppf(0.975, df)) * se if df > 0 else math.nan
        grow = math.exp if log_scale else (lambda v: v)
        verdict = Verdict(tier, p_diff, own[job], p_eq, grow(centre), grow(centre - half),
                          grow(centre + half), scale=scale)
        if tier == UNDECIDED:
            verdict.repeats_to_decide = repeats_to_decide(
                d, ratio, margin, per_repeat, k_left, alpha / 2, len(tested))
        out[job] = verdict
    return out
