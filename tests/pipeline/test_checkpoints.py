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


def test_a_stopped_network_leaves_the_stack_and_the_others_keep_their_bits() -> None:
    from backprop_lab.nn.network import Network
    from backprop_lab.nn.training import StopNetwork, TrainConfig, TrainData, train_many

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 1))
    cfg = TrainConfig(optimizer="adam", lr=0.01, epochs=6, batch_size=8)

    def nets() -> list[Network]:
        return [Network.create([3, 4, 1], np.random.default_rng(k)) for k in range(3)]

    def stop(epoch: int, values: dict[str, float]) -> None:
        if epoch == 2:
            raise StopNetwork

    alone, stacked = nets(), nets()
    data = [TrainData(X, y)] * 3
    plain = train_many(alone, data, cfg, [np.random.default_rng(9 + k) for k in range(3)])
    found = train_many(stacked, data, cfg, [np.random.default_rng(9 + k) for k in range(3)],
                       {1: [stop]})
    assert found[1].stopped and found[1].epochs_run == 3 and "pruned" in found[1].stop_reason
    for k in (0, 2):
        assert found[k].train_cost == plain[k].train_cost
        for a, b in zip(stacked[k].weights, alone[k].weights):
            assert np.array_equal(a, b)
