"""Train one network, or a sweep with `-m`: python -m pipelines.train [overrides]."""

from __future__ import annotations

import os
import sys

# hydra/launcher=ray_*: Ray reports no usage stats, and a driver joining a cluster sends its token
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "token")

import hydra
from omegaconf import DictConfig

from backprop_lab.config import ConfigError
from backprop_lab.data import DataError
from backprop_lab.tracking import TrackingUnavailable
from pipelines.job import Diverged, train_job


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Returns the validation MSE, which sweepers (Optuna) minimise."""
    try:
        return train_job(cfg).objective
    except (ConfigError, DataError, Diverged, TrackingUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2 if isinstance(err, ConfigError) else 1)


if __name__ == "__main__":
    main()
