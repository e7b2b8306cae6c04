"""Which differences between the jobs of a sweep are real: CIs, paired tests, Holm, tiers.

A job's scores are cells (repeat, fold) on rows every job of the sweep shares, so two jobs are
compared on their per-cell differences d_j (job − best). Cross-validation cells share training
rows, which makes the plain paired t-test over-confident; the corrected resampled t-test
(Nadeau & Bengio 2003; Bouckaert & Frank 2004 for repeated k-fold) inflates the variance:

    t = mean(d) / sqrt((1/J + n_test/n_train) · var(d)),   J − 1 degrees of freedom

(n_test/n_train = 0 gives the plain paired t-test, right for independent cells). The p-value
is two-sided: the best job is chosen by its mean, so a one-sided test would double the false
alarms. p-values of all jobs against the best are adjusted by Holm's step-down method. A job is
`worse` when its adjusted p < 0.05, else `indistinguishable`; the CI of a mean uses the same
corrected variance. Distributions and Holm come from scipy and statsmodels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

from backprop_lab.experiments.run.cells import Interval, mean_ci

BEST, SAME, WORSE, DIVERGED = "best", "indistinguishable", "worse", "diverged"
NO_EVIDENCE = "n/a (one cell)"
ALPHA = 0.05
Cells = Mapping[tuple[int, int], float]  # (repeat, fold) -> score


def corrected_paired_p(d: np.ndarray, ratio: float = 0.0) -> float:
    """Two-sided p-value of mean(d) = 0 by the corrected resampled t-test (see the module)."""
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


@dataclass
class Verdict:
    tier: str
    p_vs_best: float  # Holm-adjusted; nan for the best, a diverged job or no evidence
    interval: Interval


def tiers(cells: Mapping[str, Cells], ratio: float = 0.0, higher_better: bool = False,
          failed: frozenset[str] = frozenset()) -> dict[str, Verdict]:
    """A tier for every job (`cells`: job -> its cell scores): the best mean is `best`; the
    others are tested against it on their shared cells and Holm-adjusted; `failed` jobs are
    `diverged`; without two shared cells there is no evidence and no tier."""
    verdicts: dict[str, Verdict] = {}
    means = {job: mean_ci(np.array(list(c.values())), ratio) for job, c in cells.items()}
    alive = [job for job in cells if job not in failed and not math.isnan(means[job].mean)]
    for job in cells:
        if job not in alive:
            verdicts[job] = Verdict(DIVERGED, math.nan, means[job])
    if not alive:
        return verdicts
    sign = -1.0 if higher_better else 1.0
    best = min(alive, key=lambda job: sign * means[job].mean)
    verdicts[best] = Verdict(BEST, math.nan, means[best])
    others, pvalues = [], []
    for job in alive:
        if job == best:
            continue
        shared = sorted(set(cells[job]) & set(cells[best]))
        d = np.array([cells[job][k] - cells[best][k] for k in shared])
        p = corrected_paired_p(d, ratio) if len(shared) >= 2 else math.nan
        if math.isnan(p):
            verdicts[job] = Verdict(NO_EVIDENCE, math.nan, means[job])
        else:
            others.append(job)
            pvalues.append(p)
    if len(others) > 1:  # statsmodels' Holm; for one p-value it is the identity
        adjusted = multipletests(pvalues, alpha=ALPHA, method="holm")[1]
    else:  # (and multipletests runs gc.collect, ~0.1 s in a large process)
        adjusted = np.array(pvalues)
    for job, p in zip(others, adjusted):
        verdicts[job] = Verdict(WORSE if p <= ALPHA else SAME, float(p), means[job])
    if len(verdicts) > 1 and all(v.tier in (BEST, NO_EVIDENCE, DIVERGED)
                                 for v in verdicts.values()):
        verdicts[best] = Verdict(NO_EVIDENCE, math.nan, means[best])  # no test, no "best" tier
    return verdicts
