"""Configs composed from `conf/` by Hydra, typed and range-checked.

The only module of the library that imports Hydra (lazily): the commands in `pipelines/` compose
through `@hydra.main`, `backprop_lab.run` through `compose` here. Both register the schemas of
`pipeline.config` under the names the YAML files of `conf/` use in their defaults lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from backprop_lab.paths import CONF_DIR
from backprop_lab.pipeline.config import (
    CleanupCommand,
    CompareCommand,
    Config,
    EvaluateCommand,
    RerunCommand,
    SyncCommand,
    check_tracking,
    validate,
)

SCHEMAS: dict[str, type] = {"base_config": Config, "compare_schema": CompareCommand,
                            "rerun_schema": RerunCommand, "evaluate_schema": EvaluateCommand,
                            "cleanup_schema": CleanupCommand, "sync_schema": SyncCommand}


def register_schemas() -> None:
    """Put every command's schema in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for name, node in SCHEMAS.items():
        store.store(name=name, node=node)


def compose(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """The config `python -m pipelines.train <overrides>` would run, without Hydra's app state."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_schemas()
    if GlobalHydra.instance().is_initialized():
        return hydra_compose(config_name=config_name, overrides=list(overrides))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def to_config(cfg: DictConfig) -> Config:
    """The typed, range-checked training config (a `ConfigError` names any bad key)."""
    config = OmegaConf.to_object(cfg)
    assert isinstance(config, Config)
    return validate(config)


def to_command(cfg: DictConfig, kind: type) -> Any:
    """A command's typed arguments (CompareCommand, RerunCommand, EvaluateCommand)."""
    command = OmegaConf.to_object(cfg)
    assert isinstance(command, kind)
    if "tracking" in vars(command):  # the shared tracking keys (sync reads each spool's URI)
        check_tracking(vars(command)["tracking"])
    return command
