"""Train one network, or a sweep with `-m`: python -m pipelines.train [overrides].

Keys: see conf/config.yaml and docs/user-guide.md ("Configuration"); `--help` lists the groups.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from pipelines.cli import run_command, task
from pipelines.plugins import find_launcher

find_launcher()  # hydra/launcher=stacked


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
@task(on_error=float("nan"))
def main(cfg: DictConfig) -> float:
    """Returns the validation MSE, which sweepers (Optuna) minimise."""
    from pipelines.job import train_job  # imported by cli() once the plot worker started

    return train_job(cfg).objective


def cli() -> None:
    run_command(main, plots=True, imports=("pipelines.job",))


if __name__ == "__main__":
    cli()
