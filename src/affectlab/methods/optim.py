"""Optimisers and learning-rate schedulers from config, as seed 000 lays them out.

``optimizer_init`` is one spec or a list; ``lr_scheduler_init`` likewise::

    optimizer_init:
      - {class_path: torch.optim.AdamW, name: encoders, params: [encoders], init_args: {lr: 1.0e-4}}
      - {class_path: torch.optim.SGD, name: heads, init_args: {lr: 1.0e-2}}
    lr_scheduler_init:
      - {class_path: torch.optim.lr_scheduler.StepLR, optimizer_name: heads, init_args: {step_size: 5}}

An optimiser spec takes ``class_path``, ``init_args``, an optional ``name`` and optional ``params``
(parameter-name prefixes it owns; the one optimiser without ``params`` takes all the rest).
A scheduler spec takes ``class_path``, ``init_args``, an optional ``optimizer_name`` and the Lightning
settings ``interval`` (``epoch`` or ``step``), ``frequency`` and ``monitor``.

Horizons come from the trainer: a schedule whose length is an argument (``T_max`` of cosine annealing,
``t_initial`` of timm's cosine, ``total_steps`` of one-cycle) and that the config leaves out runs over the
whole training, ``trainer.max_epochs`` for ``interval: epoch`` and ``trainer.estimated_stepping_batches``
for ``interval: step``, so changing ``--trainer.max_epochs`` moves the schedule with it.

Pairing: one scheduler and several optimisers -> a copy of it per optimiser; as many schedulers as
optimisers and no names -> in order; otherwise every scheduler names its optimiser.
Short class names resolve in ``torch.optim``, ``torch.optim.lr_scheduler``, ``timm.optim`` and
``timm.scheduler``. Classes are imported, never evaluated from strings.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from affectlab.errors import ConfigError

_OPTIMIZER_KEYS = {"class_path", "init_args", "name", "params"}
_SCHEDULER_KEYS = {"class_path", "init_args", "optimizer_name", "interval", "frequency", "monitor"}
_SEARCH_MODULES = ("torch.optim", "torch.optim.lr_scheduler", "timm.optim", "timm.scheduler")


@dataclass
class OptimizerSpec:
    cls: type
    init_args: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    params: list[str] | None = None


@dataclass
class SchedulerSpec:
    cls: type
    init_args: dict[str, Any] = field(default_factory=dict)
    optimizer_name: str | None = None
    interval: str = "epoch"
    frequency: int = 1
    monitor: str | None = None


#: per scheduler class name, the argument that is its horizon, in the units of its interval.
HORIZONS = {"CosineAnnealingLR": "T_max", "CosineLRScheduler": "t_initial", "OneCycleLR": "total_steps"}
#: arguments that, when given, set the horizon another way (OneCycleLR: epochs x steps_per_epoch).
_HORIZON_ALTERNATIVES = {"OneCycleLR": ("epochs",)}


def scheduler_init_args(spec: SchedulerSpec, trainer: Any, key: str = "model.init_args.lr_scheduler_init") -> dict[str, Any]:
    """``spec.init_args``, with the schedule's horizon filled from ``trainer`` when the config leaves it out."""
    name = next((k.__name__ for k in spec.cls.__mro__ if k.__name__ in HORIZONS), None)
    init_args = dict(spec.init_args)
    if name is None or trainer is None:
        return init_args
    argument = HORIZONS[name]
    if argument in init_args or any(a in init_args for a in _HORIZON_ALTERNATIVES.get(name, ())):
        return init_args
    if spec.interval == "step":
        horizon = trainer.estimated_stepping_batches
    else:
        horizon = trainer.max_epochs
        if horizon is None or horizon < 0:
            raise ConfigError(
                f"{key}.init_args.{argument}: {spec.cls.__name__} runs per epoch but the trainer has no "
                "max_epochs to take its length from; give it, or set interval: step"
            )
    if horizon == float("inf"):
        raise ConfigError(f"{key}.init_args.{argument}: the trainer has no max_steps or max_epochs to take it from")
    init_args[argument] = int(horizon)
    return init_args


def import_class(path: str, key: str) -> type:
    """Import ``path`` (dotted, or a short name found in the optimiser/scheduler modules)."""
    candidates = [path] if "." in path else [f"{module}.{path}" for module in _SEARCH_MODULES]
    for candidate in candidates:
        module_name, _, attr = candidate.rpartition(".")
        try:
            found = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError):
            continue
        if inspect.isclass(found):
            return found
    raise ConfigError(f"{key}: cannot import class {path!r}; give a full class path such as torch.optim.AdamW")


def _check_init_args(cls: type, init_args: dict[str, Any], key: str, skip: tuple[str, ...]) -> None:
    parameters = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [name for name in parameters if name not in ("self", *skip)]
    for name in init_args:
        if name not in accepted:
            raise ConfigError(
                f"{key}.init_args.{name}: {cls.__name__} has no argument {name!r}; it accepts {', '.join(accepted)}"
            )


def _as_list(value: dict | list[dict] | None, key: str) -> list[dict]:
    if value is None:
        return []
    items = [value] if isinstance(value, dict) else list(value)
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "class_path" not in item:
            where = key if isinstance(value, dict) else f"{key}[{i}]"
            raise ConfigError(f"{where}: expected a mapping with a class_path entry, got {item!r}")
    return items


def parse_optimizers(value: dict | list[dict], key: str = "model.init_args.optimizer_init") -> list[OptimizerSpec]:
    specs = []
    for i, item in enumerate(_as_list(value, key)):
        where = key if isinstance(value, dict) else f"{key}[{i}]"
        unknown = set(item) - _OPTIMIZER_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_OPTIMIZER_KEYS)}")
        cls = import_class(item["class_path"], f"{where}.class_path")
        init_args = dict(item.get("init_args") or {})
        _check_init_args(cls, init_args, where, skip=("params",))
        specs.append(OptimizerSpec(cls, init_args, item.get("name"), item.get("params")))
    if not specs:
        raise ConfigError(f"{key}: at least one optimiser is needed")
    if sum(spec.params is None for spec in specs) > 1:
        raise ConfigError(f"{key}: only one optimiser may leave out 'params' (it takes the remaining parameters)")
    names = [spec.name for spec in specs if spec.name]
    if len(names) != len(set(names)):
        raise ConfigError(f"{key}: optimiser names must be unique, got {names}")
    return specs


def parse_schedulers(
    value: dict | list[dict] | None, optimizers: list[OptimizerSpec], key: str = "model.init_args.lr_scheduler_init"
) -> list[tuple[int, SchedulerSpec]]:
    """Parse scheduler specs and pair each with the index of its optimiser."""
    items = _as_list(value, key)
    specs = []
    for i, item in enumerate(items):
        where = key if isinstance(value, dict) else f"{key}[{i}]"
        unknown = set(item) - _SCHEDULER_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_SCHEDULER_KEYS)}")
        if item.get("interval", "epoch") not in ("epoch", "step"):
            raise ConfigError(f"{where}.interval: must be 'epoch' or 'step', got {item['interval']!r}")
        cls = import_class(item["class_path"], f"{where}.class_path")
        init_args = dict(item.get("init_args") or {})
        _check_init_args(cls, init_args, where, skip=("optimizer",))
        specs.append(
            SchedulerSpec(
                cls, init_args, item.get("optimizer_name"), item.get("interval", "epoch"),
                int(item.get("frequency", 1)), item.get("monitor"),
            )
        )
    if not specs:
        return []
    names = {spec.name: i for i, spec in enumerate(optimizers) if spec.name}
    if all(spec.optimizer_name is None for spec in specs):
        if len(specs) == 1:
            return [(i, specs[0]) for i in range(len(optimizers))]
        if len(specs) == len(optimizers):
            return list(enumerate(specs))
        raise ConfigError(
            f"{key}: {len(specs)} schedulers for {len(optimizers)} optimisers is ambiguous; give every optimiser a "
            "'name' and every scheduler the 'optimizer_name' it belongs to"
        )
    pairs = []
    for i, spec in enumerate(specs):
        if spec.optimizer_name not in names:
            raise ConfigError(
                f"{key}[{i}].optimizer_name: {spec.optimizer_name!r} names no optimiser; "
                f"optimiser names are {sorted(names) or 'unset (add name: to each optimizer_init entry)'}"
            )
        pairs.append((names[spec.optimizer_name], spec))
    return pairs


def partition_parameters(module: nn.Module, specs: list[OptimizerSpec]) -> list[list[nn.Parameter]]:
    """Give every trainable parameter to exactly one optimiser by name prefix."""
    groups: list[list[nn.Parameter]] = [[] for _ in specs]
    catch_all = next((i for i, spec in enumerate(specs) if spec.params is None), None)
    for name, parameter in module.named_parameters():
        if not parameter.requires_grad:
            continue
        owners = [i for i, spec in enumerate(specs) if spec.params and any(name.startswith(p) for p in spec.params)]
        if len(owners) > 1:
            raise ConfigError(f"parameter {name!r} matches the 'params' of several optimisers: {owners}")
        owner = owners[0] if owners else catch_all
        if owner is not None:
            groups[owner].append(parameter)
    for spec, group in zip(specs, groups):
        if not group:
            raise ConfigError(
                f"optimiser {spec.name or spec.cls.__name__} got no trainable parameters; check its 'params' prefixes"
            )
    return groups


def build_optimizers(
    module: nn.Module, specs: list[OptimizerSpec], param_groups: Callable[[list], list[dict]] | None = None
) -> list[torch.optim.Optimizer]:
    """One optimiser per spec over its parameters; ``param_groups`` may split them into groups, where a
    group's ``lr_scale`` multiplies the optimiser's learning rate (before any scheduler records it)."""
    optimizers = []
    for spec, parameters in zip(specs, partition_parameters(module, specs)):
        groups = param_groups(parameters) if param_groups else [{"params": parameters}]
        optimizer = spec.cls([g for g in groups if g["params"]], **spec.init_args)
        for group in optimizer.param_groups:
            group["lr"] *= group.get("lr_scale", 1.0)
        optimizers.append(optimizer)
    return optimizers
