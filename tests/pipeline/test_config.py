"""Every config in conf/ composes into the typed schema; bad values are rejected by key name."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import OmegaConfBaseException

from backprop_lab.paths import CONF_DIR
from backprop_lab.pipeline.compose import to_config
from backprop_lab.pipeline.config import Config, ConfigError, hidden_layers

CONF = CONF_DIR
GROUPS = ["data", "normalize", "model", "train", "eval", "tracking"]


def group_options() -> list[str]:
    overrides = []
    for group in GROUPS:
        for option in sorted((CONF / group).glob("*.yaml")):
            extra = ["data.path=/tmp/x.csv", "data.target=y"] if option.stem == "csv" else []
            overrides.append(" ".join([f"{group}={option.stem}", *extra]))
    return overrides


@pytest.mark.parametrize("override", group_options())
def test_every_group_option_composes(compose_config, override: str) -> None:
    config = to_config(compose_config(override.split()))
    assert isinstance(config, Config)


@pytest.mark.parametrize("preset", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_every_experiment_preset_composes(compose_config, preset: str) -> None:
    config = to_config(compose_config([f"experiment={preset}"]))
    assert isinstance(config, Config)


def test_tutorial_presets_match_the_tutorial(compose_config) -> None:
    one = to_config(compose_config(["experiment=tutorial_one_layer"]))
    assert (one.model.hidden, one.model.activation, one.model.output_activation) == (
        [], "linear", "linear")
    assert (one.model.init, one.normalize.features) == ("uniform", "none")
    assert one.train.optimizer == "gd"
    assert (one.train.lr, one.train.epochs, one.train.batch_size) == (8e-7, 200, None)
    three = to_config(compose_config(["experiment=tutorial_three_layer"]))
    assert (three.model.hidden, three.train.epochs, three.train.lr) == ([5, 3], 30, 8e-7)


def test_default_is_a_modern_net(compose_config) -> None:
    config = to_config(compose_config())
    assert config.normalize.features == "standard" and config.model.activation == "relu"
    assert config.train.patience is not None and config.data.val_fraction > 0


def test_depth_width_shorthand(compose_config) -> None:
    config = to_config(compose_config(["model.depth=3", "model.width=16"]))
    assert hidden_layers(config.model) == [16, 16, 16]
    assert hidden_layers(to_config(compose_config(["model.depth=0", "model.width=8"])).model) == []


@pytest.mark.parametrize(
    ("override", "key", "allowed"),
    [
        ("train.lr=-0.1", "train.lr", "> 0"),
        ("train.lr=0", "train.lr", "> 0"),
        ("train.epochs=0", "train.epochs", ">= 1"),
        ("model.hidden=[16,0]", "model.hidden", ">= 1"),
        ("data.val_fraction=1.5", "data.val_fraction", "[0, 1)"),
        ("data.test_fraction=-0.1", "data.test_fraction", "[0, 1)"),
        ("model.activation=swish", "model.activation", "relu"),
        ("model.output_activation=softmax", "model.output_activation", "sigmoid"),
        ("model.init=zeros", "model.init", "xavier"),
        ("model.dtype=float16", "model.dtype", "float32"),
        ("train.optimizer=lbfgs", "train.optimizer", "adam"),
        ("normalize.features=robust", "normalize.features", "minmax"),
        ("train.batch_size=0", "train.batch_size", ">= 1"),
        ("model.depth=2", "model.depth and model.width", "both"),
        ("data.name=mnist", "data.name", "boston"),
        ("train.beta1=1", "train.beta1", "[0, 1)"),
        ("train.beta2=-0.5", "train.beta2", "[0, 1)"),
        ("train.eps=0", "train.eps", "> 0"),
        ("train.optimizer=adamx", "train.optimizer", "adamw"),
    ],
)
def test_bad_values_name_the_key_and_allowed_values(compose_config, override, key, allowed):
    with pytest.raises(ConfigError) as err:
        to_config(compose_config([override]))
    assert key in str(err.value) and allowed in str(err.value)


@pytest.mark.parametrize(
    ("override", "key"),
    [("train.lrr=0.1", "lrr"), ("train.lr=fast", "lr"), ("model.hidden=abc", "hidden"),
     ("seed=x", "seed")],
)
def test_unknown_keys_and_wrong_types_are_rejected_by_name(compose_config, override, key):
    with pytest.raises((ConfigCompositionException, OmegaConfBaseException)) as err:
        to_config(compose_config([override]))
    assert key in str(err.value) or key in str(err.value.__cause__)


def test_adamw_preset_decouples_the_decay(compose_config) -> None:
    config = to_config(compose_config(["train=adamw"]))
    assert (config.train.optimizer, config.train.weight_decay) == ("adamw", 0.01)
    assert (config.train.beta1, config.train.beta2, config.train.eps) == (0.9, 0.999, 1e-8)
    assert config.train.stacked
