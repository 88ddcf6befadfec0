"""Loss balancing for ``MultiTaskMethod``, selected by name (``balancing: dwa``) or by class path with its
arguments (``balancing: {class_path: affectlab.methods.balancing.GradNorm, init_args: {alpha: 1.0}}``).

| name | strategy | file |
|---|---|---|
| ``sum`` | seed 002's plain sum of the task losses (each times its head's static ``weight``, 1 by default) | ``weighting.py`` |
| ``fixed`` | the same, read as fixed weights: the heads' ``weight`` | ``weighting.py`` |
| ``uncertainty`` | Kendall et al. 2018, learned log-variances | ``weighting.py`` |
| ``dwa`` | Dynamic Weight Average, Liu et al. 2019 | ``weighting.py`` |
| ``gradnorm`` | GradNorm, Chen et al. 2018 | ``gradnorm.py`` |
| ``upgrad``, ``pcgrad``, ``cagrad`` | gradient aggregation through torchjd | ``aggregation.py`` |
"""

from __future__ import annotations

from affectlab.errors import ConfigError
from affectlab.methods.balancing.aggregation import (
    CAGradAggregation,
    JacobianAggregation,
    PCGradAggregation,
    UPGradAggregation,
)
from affectlab.methods.balancing.base import Balancing
from affectlab.methods.balancing.gradnorm import GradNorm
from affectlab.methods.balancing.weighting import DynamicWeightAverage, FixedWeights, UncertaintyWeighting

STRATEGIES: dict[str, type[Balancing]] = {
    "sum": FixedWeights,
    "fixed": FixedWeights,
    "uncertainty": UncertaintyWeighting,
    "dwa": DynamicWeightAverage,
    "gradnorm": GradNorm,
    "upgrad": UPGradAggregation,
    "pcgrad": PCGradAggregation,
    "cagrad": CAGradAggregation,
}


def create_balancing(value: str | Balancing, key: str = "model.init_args.balancing") -> Balancing:
    """A strategy from its name (default arguments) or as given."""
    if isinstance(value, Balancing):
        return value
    if value not in STRATEGIES:
        raise ConfigError(f"{key}: unknown balancing {value!r}; choose one of {', '.join(STRATEGIES)} (or a class_path "
                          "of affectlab.methods.balancing with its init_args)")
    return STRATEGIES[value]()


__all__ = ["Balancing", "CAGradAggregation", "DynamicWeightAverage", "FixedWeights", "GradNorm", "JacobianAggregation",
           "PCGradAggregation", "STRATEGIES", "UPGradAggregation", "UncertaintyWeighting", "create_balancing"]
