"""The sweep file (``affectlab sweep --config SWEEP.yaml``): what it may say, read and checked before any trial.

    name: synth_supervised_grid          # the Optuna study (default: the file's stem)
    base:                                # the run, exactly as 'affectlab run' takes it
      args: [--config, configs/experiment/synth/supervised.yaml]
    metric: test/acc                     # a metric the base run logs
    direction: maximize                  # or minimize
    trials: 4                            # a grid: all its points by default
    seeds: [0, 1]                        # each seed a child run; a trial's value is their mean
    sampler: grid                        # grid, tpe or random (sampler_seed: N)
    space:
      grid:                              # an explicit grid: every combination of these values
        model.init_args.fusion_dim: [64, 256]
      model.init_args.dropout: {type: float, low: 0.0, high: 0.5}           # Optuna distributions
      model.init_args.optimizer_init.init_args.lr: {type: float, low: 1e-4, high: 1e-2, log: true}
      model.init_args.fusion: {type: categorical, choices: [concat, attention]}
    storage: sqlite:///runs/sweeps.db    # any SQLAlchemy URL (default: <run store>/sweeps.db)
    pruning: {monitor: val/loss, pruner: median, n_startup_trials: 2, n_warmup_steps: 1}

A grid is a ``grid:`` block, not "every list is an axis" (seed 002's convention): a hyper-parameter may itself
be a list (an encoder's channel widths, a modality subset), and a list written for it must not silently turn
into a grid axis. The second base kind, ``base: {recipe: {variant: conclugen, dataset: synth, ...}}``, runs the
ConCluGen recipe (``experiments.recipe``) per trial and seed; its space names ``RecipeOptions`` fields.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from affectlab.errors import ConfigError

KEYS = ("name", "base", "metric", "direction", "trials", "seeds", "sampler", "sampler_seed", "space", "storage",
        "pruning")
SAMPLERS = ("grid", "tpe", "random")
DIRECTIONS = ("maximize", "minimize")
PRUNERS = ("median", "percentile")
PRUNING_KEYS = ("monitor", "mode", "pruner", "n_startup_trials", "n_warmup_steps", "percentile")
DISTRIBUTION_KEYS = {"float": {"type", "low", "high", "log", "step"}, "int": {"type", "low", "high", "log", "step"},
                     "categorical": {"type", "choices"}}
SCALARS = (str, int, float, bool, type(None))


@dataclass
class Dimension:
    """One searched key: a grid axis (``values``), or an Optuna distribution (``kind`` float, int, categorical)."""

    key: str
    kind: str  # grid, float, int, categorical
    values: list[Any] = field(default_factory=list)  # grid values or categorical choices, as the config takes them
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    def choices(self) -> list[Any]:
        """The values as Optuna stores them: scalars as they are, a list or mapping as its JSON text."""
        return [optuna_value(v) for v in self.values]

    def config_value(self, stored: Any) -> Any:
        """The config's value for an Optuna parameter value (the inverse of ``optuna_value``)."""
        if self.kind in ("grid", "categorical"):
            for value in self.values:
                if optuna_value(value) == stored:
                    return value
        return stored


@dataclass
class Pruning:
    monitor: str = "val/loss"
    mode: str = "min"  # of the monitored metric; reported negated when it runs against the study's direction
    pruner: str = "median"
    n_startup_trials: int = 2
    n_warmup_steps: int = 0
    percentile: float = 50.0


@dataclass
class SweepSpec:
    path: Path
    name: str
    metric: str
    direction: str
    dimensions: list[Dimension]
    sampler: str
    trials: int
    args: list[str] = field(default_factory=list)  # base kind 'args': the run's command-line tokens
    recipe: dict[str, Any] | None = None  # base kind 'recipe': RecipeOptions fields
    seeds: list[int] | None = None  # None: one run per trial with the base run's own seed
    sampler_seed: int | None = None
    storage: str | None = None
    pruning: Pruning | None = None

    @property
    def grid(self) -> list[Dimension]:
        return [d for d in self.dimensions if d.kind == "grid"]

    def grid_points(self) -> list[dict[str, Any]]:
        """Every combination of the grid's values (Optuna's stored values), in the file's order, the last key
        varying fastest."""
        axes = self.grid
        return [dict(zip([d.key for d in axes], combo)) for combo in itertools.product(*[d.choices() for d in axes])]


def optuna_value(value: Any) -> Any:
    return value if isinstance(value, SCALARS) else json.dumps(value, sort_keys=True)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:  # YAML 1.1 reads 1e-4 (no dot) as a string
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {value!r} is not a number") from None
    return float(value)


def _distribution(key: str, spec: Any, where: str) -> Dimension:
    if not isinstance(spec, dict) or spec.get("type") not in DISTRIBUTION_KEYS:
        raise ConfigError(
            f"{where}: space.{key} must be a distribution {{type: float|int, low, high, log, step}} or "
            f"{{type: categorical, choices: [...]}} (got {spec!r}); a list of values to try goes in the space's grid: block"
        )
    kind = spec["type"]
    unknown = sorted(set(spec) - DISTRIBUTION_KEYS[kind])
    if unknown:
        raise ConfigError(f"{where}: space.{key}: unknown key(s) {unknown} for type {kind}; valid: "
                          f"{', '.join(sorted(DISTRIBUTION_KEYS[kind]))}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: space.{key}.choices must be a non-empty list")
        return Dimension(key, kind, list(choices))
    for bound in ("low", "high"):
        if bound not in spec:
            raise ConfigError(f"{where}: space.{key} needs {bound} (type {kind}: low, high, optional log, step)")
    low, high = _number(spec["low"], f"{where}: space.{key}.low"), _number(spec["high"], f"{where}: space.{key}.high")
    if low > high:
        raise ConfigError(f"{where}: space.{key}: low {spec['low']} is above high {spec['high']}; swap them "
                          f"(low is the smallest value tried)")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise ConfigError(f"{where}: space.{key}: a log scale needs low > 0 (got {spec['low']}); raise low or drop log")
    step = None if spec.get("step") is None else _number(spec["step"], f"{where}: space.{key}.step")
    if log and step is not None:
        raise ConfigError(f"{where}: space.{key}: Optuna takes either log or step, not both; drop one")
    if kind == "int" and not all(float(v).is_integer() for v in (low, high)):
        raise ConfigError(f"{where}: space.{key}: type int needs whole low and high (got {spec['low']}, {spec['high']})")
    return Dimension(key, kind, low=low, high=high, log=log, step=step)


def _space(space: Any, where: str) -> list[Dimension]:
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{where}: space must map dotted config keys to distributions, with a grid: block for "
                          "grid values, e.g. space: {grid: {model.init_args.fusion_dim: [64, 256]}}")
    dimensions: list[Dimension] = []
    grid = space.get("grid") or {}
    if not isinstance(grid, dict):
        raise ConfigError(f"{where}: space.grid must map keys to lists of values, e.g. grid: {{model.init_args.dropout: [0.0, 0.2]}}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: space.grid.{key} must be a non-empty list of values (a single list-valued "
                              f"value is written as a one-element list: [[64, 32]])")
        dimensions.append(Dimension(str(key), "grid", list(values)))
    for key, spec in space.items():
        if key == "grid":
            continue
        if key in grid:
            raise ConfigError(f"{where}: space.{key} is both a grid key and a distribution; keep one")
        dimensions.append(_distribution(str(key), spec, where))
    _check_task_axes(dimensions, where)
    return dimensions


#: grid keys whose values may be per task (``{task: value}``, ``methods/task_values.py``): a multi-task model's
#: heads and the data (per-task data modules and label fractions)
TASK_OWNED_PREFIXES = ("model.init_args.heads.", "data.")


def _check_task_axes(dimensions: list[Dimension], where: str) -> None:
    """Grid values written per task name the same tasks on every axis and every point (a trial with another
    task set would fail only when it starts), and stand only under keys a task owns."""
    seen: tuple[str, set[str]] | None = None
    for d in dimensions:
        if d.kind != "grid" or not d.key.startswith(TASK_OWNED_PREFIXES[0]):
            continue
        for value in d.values:
            if not isinstance(value, dict):
                continue
            if seen is None:
                seen = (d.key, set(value))
            elif set(value) != seen[1]:
                raise ConfigError(f"{where}: space.grid.{d.key}: the per-task value {value} names tasks "
                                  f"{sorted(value)} but space.grid.{seen[0]} names {sorted(seen[1])}; every per-task "
                                  "value names the model's tasks")
    if seen is None:
        return
    for d in dimensions:
        if d.kind == "grid" and not d.key.startswith(TASK_OWNED_PREFIXES):
            for value in d.values:
                if isinstance(value, dict) and value and set(value) <= seen[1]:
                    raise ConfigError(f"{where}: space.grid.{d.key}: {value} is a per-task value under a key no task "
                                      f"owns (keys a task owns: {', '.join(p + '*' for p in TASK_OWNED_PREFIXES)}); "
                                      "give it plain values")


def _pruning(value: Any, where: str) -> Pruning | None:
    if value in (None, False):
        return None
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: pruning must be a mapping ({', '.join(PRUNING_KEYS)}) or absent (off)")
    unknown = sorted(set(value) - set(PRUNING_KEYS))
    if unknown:
        raise ConfigError(f"{where}: pruning: unknown key(s) {unknown}; valid: {', '.join(PRUNING_KEYS)}")
    monitor = str(value.get("monitor", "val/loss"))
    pruning = Pruning(monitor=monitor, mode=str(value.get("mode", "min" if "loss" in monitor else "max")),
                      pruner=str(value.get("pruner", "median")), n_startup_trials=int(value.get("n_startup_trials", 2)),
                      n_warmup_steps=int(value.get("n_warmup_steps", 0)), percentile=float(value.get("percentile", 50.0)))
    if pruning.pruner not in PRUNERS:
        raise ConfigError(f"{where}: pruning.pruner {pruning.pruner!r} is not one of {', '.join(PRUNERS)}")
    if pruning.mode not in ("min", "max"):
        raise ConfigError(f"{where}: pruning.mode {pruning.mode!r} is not min or max")
    return pruning


def recipe_fields() -> list[str]:
    from affectlab.experiments.recipe import RecipeOptions

    return [f.name for f in dataclasses.fields(RecipeOptions) if f.name not in ("seed", "store", "extra", "quiet")]


def load_spec(path: Path) -> SweepSpec:
    """Read and check a sweep file; every mistake is a ``ConfigError`` naming the key and the fix."""
    where = str(path)
    if not path.is_file():
        raise ConfigError(f"sweep file {path} does not exist; e.g. --config configs/sweep/synth_supervised_grid.yaml")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{where} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a sweep file is a mapping with keys {', '.join(KEYS)}")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; a sweep file's keys are "
                          f"{', '.join(KEYS)}")
    for required in ("base", "metric", "space"):
        if required not in data:
            raise ConfigError(f"{where}: {required} is missing (see configs/sweep/synth_supervised_grid.yaml)")
    base = data["base"]
    args: list[str] = []
    recipe = None
    if isinstance(base, dict) and set(base) == {"args"} and isinstance(base["args"], list):
        from affectlab.experiments.train import option_value

        args = [option_value(a) for a in base["args"]]
    elif isinstance(base, dict) and set(base) == {"recipe"} and isinstance(base["recipe"], dict):
        recipe = dict(base["recipe"])
        unknown = sorted(set(recipe) - set(recipe_fields()))
        if unknown or not {"variant", "dataset"} <= set(recipe):
            raise ConfigError(f"{where}: base.recipe names RecipeOptions fields, variant and dataset required (got "
                              f"unknown {unknown}); valid: {', '.join(recipe_fields())}")
    else:
        raise ConfigError(f"{where}: base must be {{args: [--config, FILE, ...]}} (the run as 'affectlab run' takes it) "
                          "or {recipe: {variant: V, dataset: D, ...}}")
    direction = str(data.get("direction", "maximize"))
    if direction not in DIRECTIONS:
        raise ConfigError(f"{where}: direction {direction!r} is not maximize or minimize")
    dimensions = _space(data["space"], where)
    has_grid = any(d.kind == "grid" for d in dimensions)
    sampler = str(data.get("sampler", "grid" if has_grid else "tpe"))
    if sampler not in SAMPLERS:
        raise ConfigError(f"{where}: sampler {sampler!r} is not one of {', '.join(SAMPLERS)}")
    others = [d.key for d in dimensions if d.kind != "grid"]
    if sampler == "grid" and others:
        raise ConfigError(f"{where}: sampler grid tries the grid: block's values only, and {others} are distributions; "
                          "give them grid values, or use sampler tpe or random (grid values are then sampled as choices)")
    spec = SweepSpec(path=path, name=str(data.get("name") or path.stem), metric=str(data["metric"]), direction=direction,
                     dimensions=dimensions, sampler=sampler, trials=0, args=args, recipe=recipe,
                     sampler_seed=None if data.get("sampler_seed") is None else int(data["sampler_seed"]),
                     storage=None if data.get("storage") is None else str(data["storage"]),
                     pruning=_pruning(data.get("pruning"), where))
    points = len(spec.grid_points()) if sampler == "grid" else math.inf
    trials = data.get("trials")
    if trials is None and sampler != "grid":
        raise ConfigError(f"{where}: trials is missing: sampler {sampler} needs a number of trials")
    spec.trials = int(points if trials is None else trials)
    if spec.trials < 1 or spec.trials > points:
        raise ConfigError(f"{where}: trials {trials} must be between 1 and the grid's {points} points")
    seeds = data.get("seeds")
    if seeds is not None:
        seeds = seeds if isinstance(seeds, list) else [seeds]
        if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds) or len(set(seeds)) < len(seeds):
            raise ConfigError(f"{where}: seeds must be a list of distinct integers, e.g. seeds: [0, 1, 2]")
        spec.seeds = seeds
    if recipe is not None:
        check_recipe_space(spec)
    return spec


def check_recipe_space(spec: SweepSpec) -> None:
    """A recipe trial keeps its record per variant, data set and seed (``experiments.recipe``): two trials that
    would share one are refused, since the second would find the first's record made with other options."""
    fields = set(recipe_fields())
    where = str(spec.path)
    bad = [d.key for d in spec.dimensions if d.key not in fields]
    if bad:
        raise ConfigError(f"{where}: a recipe sweep's space names RecipeOptions fields; {bad} are not (valid: "
                          f"{', '.join(sorted(fields))}); model options go in the command line after the sweep file")
    if spec.sampler != "grid":
        raise ConfigError(f"{where}: a recipe sweep runs a grid (sampler grid): each trial's recipe record is its "
                          "variant's, data set's and seed's")
    if spec.pruning is not None:
        raise ConfigError(f"{where}: pruning applies to base: {{args: ...}} sweeps (one training run per seed); a recipe "
                          "chains several runs")
    seen: dict[tuple, dict] = {}
    for point in spec.grid_points():
        options = {**spec.recipe, **{d.key: d.config_value(point[d.key]) for d in spec.grid}}
        for seed in spec.seeds or [None]:
            record = (options["variant"], options["dataset"], options.get("pretrain_data", "own"), seed)
            if record in seen:
                raise ConfigError(f"{where}: grid points {seen[record]} and {point} would share the recipe record of "
                                  f"{record[0]} on {record[1]} seed {seed}; a recipe sweep varies the variant (and "
                                  "data set) per trial, the seeds with seeds:")
            seen[record] = point
