"""Upload the writes runs spooled while the tracking server was away: python -m pipelines.sync

A run whose server stopped answering trained on, kept its writes in `mlflow-spool/<run id>/` in
its output folder, and, if the server was still away when it ended, said where (exit 1). This
sends every spool under `path` (default: outputs/ and multirun/) to the server it names, in order,
with the original timestamps and steps; twice uploads once.
Keys: path, output (text|json).
"""

from __future__ import annotations

import dataclasses
import json

import hydra
from omegaconf import DictConfig

from backprop_lab.experiments.reproduce.sync import sync
from backprop_lab.pipeline.compose import to_command
from backprop_lab.pipeline.config import SyncCommand
from pipelines.cli import machine_output, run_command, task


@hydra.main(version_base="1.3", config_path="../conf", config_name="sync")
@task()
def main(cfg: DictConfig) -> None:
    cmd = to_command(cfg, SyncCommand)
    with machine_output(cmd.output) as as_json:
        done = sync(cmd)
    if as_json:
        print(json.dumps({"spools": [dataclasses.asdict(d) for d in done]}))


def cli() -> None:
    run_command(main)


if __name__ == "__main__":
    cli()
