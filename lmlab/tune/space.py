"""The search space: Hydra's sweep expressions (hydra.sweeper.params) as Optuna distributions.

    optim.lr: tag(log, interval(1e-4, 3e-2))    a float, sampled uniformly in log space
    model.dropout: interval(0.0, 0.2)            a float
    model.n_layer: int(interval(2, 6))           an integer, both ends included
    trainer.global_batch_size: choice(8, 16, 32) one of the values (categorical)
    schedule.warmup_frac: range(0, 0.3, 0.1)     a stepped number, end excluded as in Python (and Hydra)
    schedule: choice(cosine, wsd)                a config group's options

Every problem with an expression is a ConfigError naming the parameter, found before a trial starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from lmlab.errors import ConfigError

EXPECTED = "choice(...), range(start, stop[, step]), interval(low, high), int(interval(...)) or tag(log, interval(...))"


def parse_expression(key: str, expression: str) -> BaseDistribution:
    """One `key: expression` of the search space as an Optuna distribution."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from hydra.errors import HydraException

    where = f"hydra.sweeper.params.{key}={expression!r}"
    try:
        override = OverridesParser.create().parse_override(f"{key}={expression}")
    except HydraException as err:
        raise ConfigError(f"{where}: cannot parse ({str(err).splitlines()[0]}); expected {EXPECTED}") from None
    value = override.value()
    if isinstance(value, ChoiceSweep):
        return _choice(where, value.list)
    if isinstance(value, RangeSweep):
        return _range(where, value.start, value.stop, value.step)
    if isinstance(value, IntervalSweep):
        return _interval(where, value.start, value.end, "log" in value.tags)
    raise ConfigError(f"{where}: a single value, not a search expression; expected {EXPECTED}")


def _choice(where: str, values: list) -> CategoricalDistribution:
    if not values:
        raise ConfigError(f"{where}: an empty choice; expected at least one value")
    if any(isinstance(v, (dict, list)) for v in values):
        raise ConfigError(f"{where}: choices must be numbers, strings or booleans")
    return CategoricalDistribution(values)


def _range(where: str, start, stop, step) -> BaseDistribution:
    if step == 0 or (stop - start) / step <= 0:
        raise ConfigError(f"{where}: range({start}, {stop}, {step}) holds no value; expected start < stop for a "
                          "positive step")
    count = math.ceil((stop - start) / step - 1e-9)
    last = round(start + (count - 1) * step, 12)  # no 0.30000000000000004
    if all(isinstance(v, int) for v in (start, stop, step)) and step > 0:
        return IntDistribution(start, last, step=step)
    if step < 0:
        raise ConfigError(f"{where}: a descending float range; write it ascending")
    return FloatDistribution(float(start), float(last), step=float(step)) if count > 1 else CategoricalDistribution([start])


def _interval(where: str, low, high, log: bool) -> BaseDistribution:
    if not low < high:
        raise ConfigError(f"{where}: an empty interval [{low}, {high}]; expected low < high")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log interval must start above 0, got low={low}")
    if isinstance(low, int) and isinstance(high, int):
        return IntDistribution(low, high, log=log)
    return FloatDistribution(float(low), float(high), log=log)


def parse_space(params: Mapping[str, str]) -> dict[str, BaseDistribution]:
    if not params:
        raise ConfigError("hydra.sweeper.params is empty: give at least one parameter to search, "
                          "e.g. hydra.sweeper.params.optim.lr='tag(log, interval(1e-4, 1e-2))'")
    return {key: parse_expression(key, str(expr)) for key, expr in params.items()}


def grid(space: Mapping[str, BaseDistribution]) -> dict[str, list]:
    """The values of each parameter for Optuna's GridSampler: choices and stepped ranges only."""
    values = {}
    for key, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            values[key] = list(dist.choices)
        elif getattr(dist, "step", None) is not None and not dist.log:
            n = round((dist.high - dist.low) / dist.step) + 1
            values[key] = [type(dist.low)(dist.low + i * dist.step) for i in range(n)]
            if isinstance(dist, FloatDistribution):
                values[key] = [round(v, 12) for v in values[key]]
        else:
            raise ConfigError(f"hydra.sweeper.params.{key}: a grid search needs choice(...) or range(...), "
                              f"got a continuous {type(dist).__name__}")
    return values


def corners(space: Mapping[str, BaseDistribution]) -> list[dict]:
    """Two settings that between them take each parameter's lowest and highest value (for a compose check)."""
    def end(dist: BaseDistribution, last: bool):
        if isinstance(dist, CategoricalDistribution):
            return dist.choices[-1 if last else 0]
        return dist.high if last else dist.low

    return [{k: end(d, last) for k, d in space.items()} for last in (False, True)]


def override(key: str, value) -> str:
    """`key=value` as Hydra parses it back to the same value."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = str(value)
    return f"{key}={text}"
