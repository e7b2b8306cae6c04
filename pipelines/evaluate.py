"""Evaluate a logged model on a dataset, without retraining, as a new run linked to the original.

    python -m pipelines.evaluate run_id=<id>                       # the run's own data and split
    python -m pipelines.evaluate run_id=<id> data=csv data.path=/abs/new.csv data.target=MEDV

See `backprop_lab.experiments.reproduce.evaluation`; split=auto|run|all.
"""

from __future__ import annotations

import dataclasses
import json

import hydra
from omegaconf import DictConfig

from backprop_lab.experiments.reproduce.evaluation import evaluate
from backprop_lab.pipeline.compose import to_command
from backprop_lab.pipeline.config import EvaluateCommand
from pipelines.cli import machine_output, run_command, task


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
@task()
def main(cfg: DictConfig) -> None:
    cmd = to_command(cfg, EvaluateCommand)
    with machine_output(cmd.output) as as_json:
        done = evaluate(cmd)
    if as_json:
        print(json.dumps(dataclasses.asdict(done)))


def cli() -> None:
    run_command(main)


if __name__ == "__main__":
    cli()
