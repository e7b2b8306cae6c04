"""Which knob matters: the share of the cells' log-error variation each swept key explains.

A two-way (or n-way) ANOVA on the score cells of the finished jobs (statsmodels' OLS and
`anova_lm`, type II sums of squares): the response is log(error) of every cell (R² through
1 − R²; the plain score for other metrics), the factors are the swept keys as categories, their
pairwise interactions, and the cell itself (which fold and seed: some test rows are harder for
every job); the residual is the cells' noise. Each term's share is its sum of squares over the
total. It is descriptive, stated as such: cells that share training rows are not independent,
so no p-value is given.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from backprop_lab.experiments.run.cells import log_errors
from backprop_lab.experiments.sweep.statistics import Cells

CELLS, NOISE = "cells (fold and seed)", "noise (residual)"


def shares(cells: Mapping[str, Cells], values: Mapping[str, Mapping[str, Any]],
           keys: Sequence[str], metric: str) -> dict[str, float]:
    """Term -> share of the total sum of squares (`cells`: job -> its cells; `values`: job ->
    its swept key -> value). Empty when fewer than one key varies or too few cells."""
    rows = []
    for job, found in cells.items():
        scores = np.array(list(found.values()), dtype=np.float64)
        logs = log_errors(metric, scores)
        y = logs if logs is not None else scores
        for (repeat, fold), v in zip(found, y):
            rows.append({"y": v, "cell": f"{repeat}.{fold}",
                         **{f"k{i}": str(values[job].get(k)) for i, k in enumerate(keys)}})
    frame = pd.DataFrame(rows)
    varying = [i for i, _ in enumerate(keys) if f"k{i}" in frame and frame[f"k{i}"].nunique() > 1]
    if not varying or frame.empty or not np.isfinite(frame["y"]).all():
        return {}
    main = [f"C(k{i})" for i in varying]
    terms = list(main)
    for a, b in itertools.combinations(varying, 2):  # an interaction needs every combination
        pairs = frame[[f"k{a}", f"k{b}"]].drop_duplicates()
        if len(pairs) == frame[f"k{a}"].nunique() * frame[f"k{b}"].nunique():
            terms.append(f"C(k{a}):C(k{b})")
    if frame["cell"].nunique() > 1:
        terms.append("C(cell)")
    n_params = 1 + sum(frame[f"k{i}"].nunique() - 1 for i in varying) + frame["cell"].nunique()
    if len(frame) <= n_params + len(terms):
        return {}
    return _anova(frame, terms, {f"C(k{i})": keys[i] for i in varying})


def _anova(frame: pd.DataFrame, terms: list[str], names: dict[str, str]) -> dict[str, float]:
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    with warnings.catch_warnings():  # a rank-deficient design warns; its shares are dropped
        warnings.simplefilter("ignore")
        fit = smf.ols("y ~ " + " + ".join(terms), data=frame).fit()
        table = sm.stats.anova_lm(fit, typ=2)
    total = float(((frame["y"] - frame["y"].mean()) ** 2).sum())
    if total == 0:
        return {}
    out: dict[str, float] = {}
    for term, row in table.iterrows():
        label = str(term)
        for code, key in names.items():
            label = label.replace(code, key)
        label = {"C(cell)": CELLS, "Residual": NOISE}.get(label, label.replace(":", " × "))
        share = float(row["sum_sq"]) / total
        if not math.isfinite(share) or share > 1 + 1e-9:
            # a term the design cannot separate (e.g. an Optuna search's lr, one value per
            # job, nests depth): no shares rather than wrong ones
            return {}
        out[label] = share
    return out


def text(found: Mapping[str, float]) -> str:
    """"train.lr 61%, depth 22%, train.lr × depth 9%, cells 5%, noise 3%" (descriptive)."""
    if not found:
        return ""
    parts = ", ".join(f"{term} {share:.0%}" for term, share in found.items())
    return (f"share of the cells' log-error variation (ANOVA on the cells, type II sums of "
            f"squares; descriptive, no test): {parts}")
