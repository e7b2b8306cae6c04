"""The score a pruned search judges a trial by (pipeline.checkpoints): taken every
`train.report_every` epochs, it is the job's final score when taken at the last epoch, and
watching changes no bit of training."""

from __future__ import annotations

import numpy as np
import pytest

from backprop_lab.errors import ConfigError
from backprop_lab.pipeline import crossval, stages
from backprop_lab.pipeline.compose import to_config

SMALL = ["model.hidden=[8]", "train.epochs=12", "train.batch_size=64", "model.ensemble=2",
         "train.patience=null"]  # early stopping would end on the best weights, not the last


@pytest.mark.parametrize("extra, metric", [([], "val_mse"),
                                           (["eval.cv_folds=3", "eval.cv_val_fraction=0"],
                                            "test_mse")])
def test_the_last_report_is_the_final_score(compose_config, extra: list[str],
                                            metric: str) -> None:
    config = to_config(compose_config([*SMALL, "train.report_every=4", *extra]))
    ds = stages.load(config.data)
    reported: list[tuple[int, float]] = []
    cells = crossval.run_cells(config, ds, lambda e, v: reported.append((e, v)))
    assert [e for e, _ in reported] == [3, 7, 11]
    final = np.mean([c.result.evaluation.metrics[metric] for c in cells])
    assert reported[-1][1] == pytest.approx(final, rel=1e-12)
    plain = crossval.run_cells(config, ds)  # watched or not: the same bits
    for a, b in zip(cells, plain):
        assert a.result.evaluation.metrics == b.result.evaluation.metrics


def test_a_report_that_raises_stops_training(compose_config) -> None:
    config = to_config(compose_config([*SMALL, "train.report_every=3"]))

    class Stop(Exception):
        pass

    def report(epoch: int, value: float) -> None:
        raise Stop(epoch)

    with pytest.raises(Stop, match="2"):
        crossval.run_cells(config, stages.load(config.data), report)


def test_report_every_is_checked(compose_config) -> None:
    with pytest.raises(ConfigError, match="train.report_every"):
        to_config(compose_config(["train.report_every=0"]))
