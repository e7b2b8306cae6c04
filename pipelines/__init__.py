"""Hydra entry points that compose the stages of `backprop_lab`: train, compare, rerun."""

from hydra.core.config_store import ConfigStore

from backprop_lab.config import Config

# The typed schema every composed config is merged into (`- base_config` in conf/config.yaml).
ConfigStore.instance().store(name="base_config", node=Config)
