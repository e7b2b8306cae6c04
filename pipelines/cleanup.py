"""Mark the runs whose process died without ending them: python -m pipelines.cleanup

A RUNNING run whose heartbeat is older than `tracking.stale_after` seconds (default 300) is
ended FAILED with tags `stale=true` and `stale_reason` (see `backprop_lab.tracking.liveness`).
Keys: tracking.uri, tracking.experiment (default: every experiment), tracking.stale_after.
Training runs and sweeps do the same in their own experiment whenever they start.
"""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig

from backprop_lab.experiments.reproduce.cleanup import cleanup
from backprop_lab.pipeline.compose import to_command
from backprop_lab.pipeline.config import CleanupCommand
from pipelines.cli import machine_output, run_command, task


@hydra.main(version_base="1.3", config_path="../conf", config_name="cleanup")
@task()
def main(cfg: DictConfig) -> None:
    cmd = to_command(cfg, CleanupCommand)
    with machine_output(cmd.output) as as_json:
        marked = cleanup(cmd)
    if as_json:
        print(json.dumps({"marked_failed": marked}))


def cli() -> None:
    run_command(main)


if __name__ == "__main__":
    cli()
