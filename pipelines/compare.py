"""Compare the jobs of a sweep: python -m pipelines.compare [sweep_id=<id or prefix>] [key=value...]

Writes jobs.csv, jobs.md and the plots of the sweep (the latest unless `sweep_id` is given) to
`out` and logs them to the sweep's parent run under compare/ (see
`backprop_lab.experiments.sweep.compare`). Keys: sweep_id, out, metric, log_artifacts,
tracking.uri, tracking.experiment (the experiment searched; default: all).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from backprop_lab.experiments.sweep.compare import compare
from backprop_lab.pipeline.compose import to_command
from backprop_lab.pipeline.config import CompareCommand
from pipelines.cli import run_command, task


@hydra.main(version_base="1.3", config_path="../conf", config_name="compare")
@task()
def main(cfg: DictConfig) -> None:
    compare(to_command(cfg, CompareCommand))


def cli() -> None:
    run_command(main)


if __name__ == "__main__":
    cli()
