"""Divergence is data: the lr frontier a sweep finds sits on the right side of the known bound.

For a linear model (depth 0) trained by full-batch gradient descent on C = ½·mean‖y − a‖², the
Hessian is AᵀA/n with A = [X, 1]; gradient descent is stable for lr < 2/λ_max. On standardised
features the bias decouples, so λ_max = max(λ_max(XᵀX/n), 1) over the training rows.
"""

from __future__ import annotations

import numpy as np
from mlflow.tracking import MlflowClient

import backprop_lab
from backprop_lab.experiments.sweep import assess, readback
from backprop_lab.pipeline import stages
from backprop_lab.pipeline.compose import compose, to_config

JOB = ["model.hidden=[]", "train=gd", "train.batch_size=null", "train.epochs=300",
       "train.patience=null", "tracking.log_model=false", "tracking.experiment=frontier"]


def test_the_lr_frontier_brackets_gradient_descents_stability_bound(store_uri: str) -> None:
    config = to_config(compose([*JOB, f"tracking.uri={store_uri}"]))
    setup = stages.set_up(config, stages.load(config.data))
    X = setup.prepared.X("train")
    bound = 2 / max(float(np.linalg.eigvalsh(X.T @ X / len(X))[-1]), 1.0)
    assert 0.25 < bound < 0.45  # about 0.33 on all of Boston
    for factor in (0.5, 0.9, 1.1, 1.5):
        backprop_lab.run([*JOB, f"train.lr={factor * bound}", f"tracking.uri={store_uri}"])
    client = MlflowClient(store_uri)
    experiment = client.get_experiment_by_name("frontier")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    table = readback.jobs_table(runs)
    edge = assess.frontier(table)
    assert edge["lr_max_stable.depth_0"] < bound < edge["lr_min_diverged.depth_0"]
    assert edge["lr_max_stable.depth_0"] == 0.9 * bound
