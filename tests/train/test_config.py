"""Every shipped training config composes; a misspelt key, a wrong type or value fails at compose time."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from lmlab.errors import ConfigError
from tests.conftest import CONF, compose

GROUPS = ["model", "data", "optim", "schedule", "budget", "trainer", "logger", "cluster"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes(group, option):
    cfg = compose([f"{group}={option}"])
    assert cfg.model.size and cfg.trainer.global_batch_size > 0
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves


@pytest.mark.parametrize("group", ["experiment", "debug"])
def test_every_experiment_and_debug_config_composes(group):
    for option in options(group):
        cfg = compose([f"{group}={option}"])
        OmegaConf.to_container(cfg, resolve=True)


def test_groups_land_in_the_schema():
    cfg = compose(["model=llama", "schedule=wsd", "budget=chinchilla"])
    assert cfg.model.norm.value == "rmsnorm" and cfg.model.pos.value == "rope"
    assert cfg.schedule.decay_frac == 0.2
    assert cfg.budget.chinchilla_multiple == 1.0 and cfg.budget.tokens is None


def test_misspelt_key_names_the_key_in_one_line():
    with pytest.raises(ConfigError) as err:
        compose(["model.n_layr=3"])
    assert str(err.value) == "Could not override 'model.n_layr': Key 'n_layr' not in 'ModelConfig'"


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError) as err:
        compose(["trainer.global_batch_size=many"])
    message = str(err.value)
    assert "global_batch_size" in message and "many" in message and "\n" not in message


def test_value_outside_a_choice_names_the_choices():
    with pytest.raises(ConfigError) as err:
        compose(["model.norm=batchnorm"])
    message = str(err.value)
    assert "batchnorm" in message and "rmsnorm" in message and "\n" not in message


def test_unknown_group_option_is_refused():
    with pytest.raises(Exception) as err:
        compose(["schedule=linear"])
    assert "linear" in str(err.value)
