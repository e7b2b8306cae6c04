"""The comparison's statistics against ground truth, by simulation on synthetic scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from backprop_lab.experiments.sweep.statistics import (
    BEST,
    DIVERGED,
    NO_EVIDENCE,
    SAME,
    WORSE,
    corrected_paired_p,
    mean_ci,
    tiers,
)

SIMULATIONS = 200


def cells(values: np.ndarray) -> dict[tuple[int, int], float]:
    return {(0, k): float(v) for k, v in enumerate(values)}


def test_equal_configurations_are_indistinguishable_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(0)
    same = 0
    for _ in range(SIMULATIONS):
        shared = rng.normal(0, 1, 10)  # the cells' common part (same rows, same seeds)
        a, b = shared + rng.normal(0, 1, 10), shared + rng.normal(0, 1, 10)
        verdicts = tiers({"a": cells(a), "b": cells(b)})
        same += {v.tier for v in verdicts.values()} == {BEST, SAME}
    assert same >= 0.93 * SIMULATIONS, same


def test_a_gap_of_two_standard_deviations_is_found_worse_with_ten_cells() -> None:
    rng = np.random.default_rng(1)
    found = 0
    for _ in range(SIMULATIONS):
        a, b = rng.normal(0, 1, 10), rng.normal(2, 1, 10)
        found += tiers({"a": cells(a), "b": cells(b)})["b"].tier == WORSE
    assert found >= 0.80 * SIMULATIONS, found


def test_the_95_percent_interval_covers_the_true_mean() -> None:
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(SIMULATIONS):
        ci = mean_ci(rng.normal(3.0, 2.0, 8))
        covered += ci.low <= 3.0 <= ci.high
    assert covered >= 0.93 * SIMULATIONS, covered


def test_without_correction_it_is_scipys_paired_t_test() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 12), rng.normal(0.5, 1, 12)
    assert corrected_paired_p(b - a, 0.0) == pytest.approx(stats.ttest_rel(b, a).pvalue)
    # the correction for shared training rows only ever widens: a larger p
    assert corrected_paired_p(b - a, 0.25) > corrected_paired_p(b - a, 0.0)


def test_holm_adjusts_across_jobs_and_no_tier_without_evidence() -> None:
    rng = np.random.default_rng(4)
    jobs = {name: cells(rng.normal(mu, 1, 10)) for name, mu in
            (("a", 0.0), ("b", 0.1), ("c", 5.0))}
    verdicts = tiers({**jobs, "d": {}}, failed=frozenset({"d"}))
    assert verdicts["a"].tier == BEST and verdicts["c"].tier == WORSE
    assert verdicts["d"].tier == DIVERGED
    raw = corrected_paired_p(np.array(list(jobs["c"].values())) - list(jobs["a"].values()))
    assert verdicts["c"].p_vs_best >= raw  # Holm never lowers a p-value
    single = tiers({"a": cells(np.array([1.0])), "b": cells(np.array([2.0]))})
    assert {v.tier for v in single.values()} == {NO_EVIDENCE}
    assert all(math.isnan(v.p_vs_best) for v in single.values())


def test_r2_ranks_highest_first() -> None:
    verdicts = tiers({"a": cells(np.full(5, 0.8) + np.arange(5) * 0.01),
                      "b": cells(np.full(5, 0.5) + np.arange(5) * 0.011)}, higher_better=True)
    assert verdicts["a"].tier == BEST
