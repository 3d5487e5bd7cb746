"""Search expressions -> Optuna distributions, grids, and the sweeper's settings checks."""

from __future__ import annotations

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from lmlab.errors import ConfigError
from lmlab.tune.space import corners, grid, override, parse_expression
from lmlab.tune.sweep import make_sampler, settings


@pytest.mark.parametrize("expression,expected", [
    ("tag(log, interval(1e-4, 3e-2))", FloatDistribution(1e-4, 3e-2, log=True)),
    ("interval(0.0, 0.2)", FloatDistribution(0.0, 0.2)),
    ("int(interval(2, 6))", IntDistribution(2, 6)),
    ("range(8, 40, 8)", IntDistribution(8, 32, step=8)),  # the end excluded, as in Python
    ("range(0, 0.3, 0.1)", FloatDistribution(0.0, 0.2, step=0.1)),
    ("choice(cosine, wsd)", CategoricalDistribution(["cosine", "wsd"])),
    ("choice(16, 32)", CategoricalDistribution([16, 32])),
])
def test_expressions_become_optuna_distributions(expression, expected):
    got = parse_expression("k", expression)
    assert type(got) is type(expected)
    assert got._asdict() == pytest.approx(expected._asdict()) if not isinstance(got, CategoricalDistribution) \
        else got.choices == expected.choices


@pytest.mark.parametrize("expression,message", [
    ("0.01", "a single value, not a search expression"),
    ("interval(1, 1)", "an empty interval [1.0, 1.0]"),
    ("range(5, 1)", "holds no value"),
    ("tag(log, interval(-1.0, 1.0))", "must start above 0"),
    ("choice(a, b", "cannot parse"),
])
def test_bad_expressions_name_the_parameter(expression, message):
    with pytest.raises(ConfigError, match=r"hydra\.sweeper\.params\.optim\.lr=") as err:
        parse_expression("optim.lr", expression)
    assert message in str(err.value)


def test_a_grid_lists_every_value_and_refuses_continuous_ranges():
    space = {"a": parse_expression("a", "range(1, 7, 2)"), "b": parse_expression("b", "choice(x, y)"),
             "c": parse_expression("c", "range(0.1, 0.35, 0.1)")}
    assert grid(space) == {"a": [1, 3, 5], "b": ["x", "y"], "c": [0.1, 0.2, 0.3]}
    with pytest.raises(ConfigError, match="a grid search needs choice"):
        grid({"lr": parse_expression("lr", "interval(0.1, 0.2)")})


def test_corners_take_each_end_and_overrides_read_back_as_the_same_value():
    space = {"lr": parse_expression("lr", "tag(log, interval(1e-4, 1e-2))"), "s": parse_expression("s", "choice(a, b, c)")}
    assert corners(space) == [{"lr": 1e-4, "s": "a"}, {"lr": 1e-2, "s": "c"}]
    assert [override("x", v) for v in (1e-05, True, None, 16)] == ["x=1e-05", "x=true", "x=null", "x=16"]


BASE = {"sampler": {"_target_": "optuna.samplers.TPESampler"}, "pruner": None, "direction": "minimize",
        "study_name": "s", "storage": None, "n_trials": 4, "n_jobs": 1, "max_failure_rate": 0.25, "params": {}}


@pytest.mark.parametrize("change,message", [
    ({"n_trials": 0}, "hydra.sweeper.n_trials=0: expected a positive integer"),
    ({"n_jobs": 1.5}, "hydra.sweeper.n_jobs=1.5: expected a positive integer"),
    ({"max_failure_rate": 2}, "hydra.sweeper.max_failure_rate=2: expected a number in [0, 1]"),
    ({"direction": "down"}, "hydra.sweeper.direction='down': expected minimize or maximize"),
    ({"sampler": {"seed": 0}}, "hydra.sweeper.sampler={'seed': 0}: expected {_target_"),
])
def test_bad_sweeper_settings_name_the_key(change, message):
    with pytest.raises(ConfigError) as err:
        settings({**BASE, **change})
    assert message in str(err.value)


def test_an_unknown_sampler_is_one_line():
    with pytest.raises(ConfigError, match="hydra.sweeper.sampler: cannot build 'optuna.samplers.NoSuch'"):
        make_sampler({"_target_": "optuna.samplers.NoSuch"}, {})


@pytest.mark.parametrize("name", ["grid", "random", "tpe", "gp"])
def test_every_shipped_search_composes_and_builds_its_sampler_pruner_and_space(name):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from lmlab.config import CONF_DIR
    from lmlab.tune.study import pruner_from
    from lmlab.tune.sweep import split_arguments

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"hparams_search={name}"], return_hydra_config=True)
    assert cfg.hydra.sweeper._target_.endswith("LmlabOptunaSweeper")
    s = settings(OmegaConf.to_container(cfg.hydra.sweeper, resolve=True))
    space, fixed = split_arguments(s["params"], [])
    assert fixed == [] and {"optim.lr", "schedule"} <= set(space)
    sampler, pruner = make_sampler(s["sampler"], space), pruner_from(s["pruner"])
    assert type(sampler).__name__ == {"grid": "GridSampler", "random": "RandomSampler", "tpe": "TPESampler",
                                      "gp": "GPSampler"}[name]
    assert type(pruner).__name__ == {"grid": "NopPruner", "random": "SuccessiveHalvingPruner",
                                     "tpe": "MedianPruner", "gp": "MedianPruner"}[name]
    assert s["study_name"] == cfg.run.group == f"search-{name}"
