"""Run a logged run again and check that it matches, bit for bit where it should.

    python -m pipelines.rerun run_id=<id> [tracking.uri=sqlite:///...] [force=true]
    python -m pipelines.rerun sweep_id=<id>          # every job of a sweep

See `backprop_lab.experiments.reproduce.rerun`. Exit status: 0 identical or within tolerance,
1 different, 2 refused (changed data, no logged config, an unknown run).
"""

from __future__ import annotations

import json
import sys

import hydra
from omegaconf import DictConfig

from backprop_lab.experiments.reproduce.rerun import exit_status, rerun
from backprop_lab.pipeline.compose import to_command
from backprop_lab.pipeline.config import RerunCommand
from pipelines.cli import machine_output, run_command, task


@hydra.main(version_base="1.3", config_path="../conf", config_name="rerun")
@task()
def main(cfg: DictConfig) -> None:
    cmd = to_command(cfg, RerunCommand)
    with machine_output(cmd.output) as as_json:
        verdicts = rerun(cmd)
    status = exit_status(verdicts)
    if as_json:
        print(json.dumps({"verdicts": verdicts, "exit_status": status}), flush=True)
    if status:
        sys.exit(status)


def cli() -> None:
    run_command(main)


if __name__ == "__main__":
    cli()
