"""Train one network, or a sweep with `-m`: python -m pipelines.train [overrides]."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from backprop_lab.config import ConfigError
from backprop_lab.data import DataError
from pipelines.job import Diverged, train_job


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Returns the validation MSE, which sweepers (Optuna) minimise."""
    try:
        return train_job(cfg).objective
    except (ConfigError, DataError, Diverged) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2 if isinstance(err, ConfigError) else 1)


if __name__ == "__main__":
    main()
