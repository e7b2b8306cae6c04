"""The quality bar on Boston, 5-fold CV R² (KFold with shuffling, seed 0), as README.md reports it.

Peers on the same folds: linear regression 0.709, gradient boosting 0.852, scikit-learn's
MLPRegressor 0.79-0.87. The bars: the default config >= 0.86, the best job of the shipped
`lr_depth` sweep >= 0.88 (its best jobs are lr=0.01 at depth 2 and 3).
"""

from __future__ import annotations

import pytest

from backprop_lab.pipeline import crossval, stages
from backprop_lab.pipeline.compose import to_config


def cv_r2(compose_config, overrides: list[str]) -> float:
    config = to_config(compose_config(["eval.cv_folds=5", *overrides]))
    folds = crossval.run_folds(config, stages.load(config.data))
    assert [f.prepared.split.test_idx.size for f in folds] == [102, 101, 101, 101, 101]
    return sum(f.evaluation.metrics["test_r2"] for f in folds) / len(folds)


@pytest.mark.slow
def test_default_config_reaches_0_86(compose_config) -> None:
    assert cv_r2(compose_config, []) >= 0.86


@pytest.mark.slow
def test_best_lr_depth_job_reaches_0_88(compose_config) -> None:
    assert cv_r2(compose_config, ["sweep=lr_depth", "train.lr=0.01", "model.depth=2"]) >= 0.88
