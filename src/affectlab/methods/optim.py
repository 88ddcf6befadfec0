"""Optimisers and learning-rate schedulers from config, as seed 000 lays them out.

``optimizer_init`` is typed, so jsonargparse resolves its ``class_path`` and checks its ``init_args``
against the class's signature at parse time (as LightningCLI does for its own optimiser options), and a
command-line override changes one value and keeps the others
(``--model.init_args.optimizer_init.init_args.lr 0.01``; a new ``class_path`` keeps the arguments it shares
with the old one). It is one optimiser, or several, each owning parameter-name prefixes (``params``; the
one without ``params`` takes all the rest) and named so that schedulers pair with it::

    optimizer_init:
      class_path: torch.optim.AdamW
      init_args: {lr: 1.0e-3, weight_decay: 1.0e-2}

    optimizer_init:
      - {name: encoders, params: [encoders], optimizer: {class_path: torch.optim.AdamW, init_args: {lr: 1.0e-4}}}
      - {name: heads, optimizer: {class_path: torch.optim.SGD, init_args: {lr: 1.0e-2}}}
    lr_scheduler_init:
      - {class_path: torch.optim.lr_scheduler.StepLR, optimizer_name: heads, init_args: {step_size: 5}}

``lr_scheduler_init`` is typed the same way: one scheduler (``class_path``/``init_args``, checked by
jsonargparse against the class's signature, ``--model.init_args.lr_scheduler_init.init_args.gamma 0.5``
changes one value), or a list of ``NamedScheduler`` that add the optimiser they pair with and Lightning's
settings ``interval`` (``epoch`` or ``step``), ``frequency`` and ``monitor``::

    lr_scheduler_init:
      - {optimizer_name: heads, interval: step, scheduler: {class_path: torch.optim.lr_scheduler.StepLR, init_args: {step_size: 5}}}

Python callers may also give seed 000's flat mappings (``{class_path, init_args, name, params}`` for an
optimiser; ``{class_path, init_args, optimizer_name, interval, frequency, monitor}`` for a scheduler),
checked here the same way.

Horizons come from the trainer: a schedule whose length is an argument (``T_max`` of cosine annealing,
``t_initial`` of timm's cosine, ``total_steps`` of one-cycle) and that the config leaves out runs over the
whole training, ``trainer.max_epochs`` for ``interval: epoch`` and ``trainer.estimated_stepping_batches``
for ``interval: step``, so changing ``--trainer.max_epochs`` moves the schedule with it. torch's and
timm's cosines *require* their horizon, and jsonargparse checks a typed config against the signature, so a
config that leaves it out names AffectLab's thin subclasses whose horizon is optional
(``TrainerCosineAnnealingLR``, ``TrainerCosineLRScheduler``: the same schedules, the length from the
trainer); one-cycle's ``total_steps`` is already optional.

Pairing: one scheduler and several optimisers -> a copy of it per optimiser; as many schedulers as
optimisers and no names -> in order; otherwise every scheduler names its optimiser.
Short class names resolve in ``torch.optim``, ``torch.optim.lr_scheduler``, ``timm.optim`` and
``timm.scheduler``. Classes are imported, never evaluated from strings, and only from the allowed packages
and of the allowed kind (an ``Optimizer`` subclass; a torch or timm scheduler): ``affectlab.imports``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from timm.scheduler.cosine_lr import CosineLRScheduler
from timm.scheduler.scheduler import Scheduler as TimmScheduler
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler

from affectlab.errors import ConfigError
from affectlab.imports import check_allowed, import_allowed

#: what jsonargparse builds from an optimiser's class_path/init_args: called with the parameters.
OptimizerFactory = Callable[[Iterable], torch.optim.Optimizer]
#: what jsonargparse builds from a scheduler's class_path/init_args: called with the optimiser (a torch
#: scheduler, ReduceLROnPlateau included, or a timm one).
SchedulerFactory = Callable[[torch.optim.Optimizer], LRScheduler | TimmScheduler]


@dataclass
class NamedOptimizer:
    """One of several optimisers: the parameter-name prefixes it owns (None: all the rest) and its name,
    which a scheduler's ``optimizer_name`` refers to."""

    optimizer: OptimizerFactory
    name: str | None = None
    params: list[str] | None = None


#: the type of ``optimizer_init``: one optimiser, or several named ones.
OptimizerInit = OptimizerFactory | list[NamedOptimizer]
@dataclass
class NamedScheduler:
    """One scheduler of a list: the optimiser it pairs with (``optimizer_name``, see the pairing rules) and
    Lightning's settings for it (``interval``: stepped per ``epoch`` or per optimiser ``step``; every
    ``frequency`` intervals; ``monitor``: the metric ReduceLROnPlateau reads)."""

    scheduler: SchedulerFactory
    optimizer_name: str | None = None
    interval: Literal["epoch", "step"] = "epoch"
    frequency: int = 1
    monitor: str | None = None


#: the type of ``lr_scheduler_init``: one scheduler, or several with their pairing and settings.
SchedulerInit = SchedulerFactory | list[NamedScheduler]


class TrainerCosineAnnealingLR(CosineAnnealingLR):
    """torch's cosine annealing, lr_t = eta_min + (lr_0 - eta_min) (1 + cos(pi t / T_max)) / 2, with
    ``T_max`` optional: left out (None), ``BaseMethod`` fills it from the trainer (``scheduler_init_args``)."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, T_max: int | None = None, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        if T_max is None:
            raise ConfigError("TrainerCosineAnnealingLR: T_max is filled from the trainer; build it through a method")
        super().__init__(optimizer, T_max, eta_min, last_epoch)


class TrainerCosineLRScheduler(CosineLRScheduler):
    """timm's cosine with warm-up and restarts, with ``t_initial`` (the first cycle's length) optional: left
    out (None), ``BaseMethod`` fills it from the trainer; every other argument is timm's."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        t_initial: int | None = None,
        lr_min: float = 0.0,
        cycle_mul: float = 1.0,
        cycle_decay: float = 1.0,
        cycle_limit: int = 1,
        warmup_t: int = 0,
        warmup_lr_init: float = 0.0,
        warmup_prefix: bool = False,
        t_in_epochs: bool = True,
        noise_range_t: list[int] | tuple[int, int] | int | None = None,
        noise_pct: float = 0.67,
        noise_std: float = 1.0,
        noise_seed: int = 42,
        k_decay: float = 1.0,
        initialize: bool = True,
    ) -> None:
        if t_initial is None:
            raise ConfigError("TrainerCosineLRScheduler: t_initial is filled from the trainer; build it through a method")
        super().__init__(
            optimizer, t_initial, lr_min=lr_min, cycle_mul=cycle_mul, cycle_decay=cycle_decay, cycle_limit=cycle_limit,
            warmup_t=warmup_t, warmup_lr_init=warmup_lr_init, warmup_prefix=warmup_prefix, t_in_epochs=t_in_epochs,
            noise_range_t=noise_range_t, noise_pct=noise_pct, noise_std=noise_std, noise_seed=noise_seed,
            k_decay=k_decay, initialize=initialize,
        )

_OPTIMIZER_KEYS = {"class_path", "init_args", "name", "params"}
_SCHEDULER_KEYS = {"class_path", "init_args", "optimizer_name", "interval", "frequency", "monitor"}
_SEARCH_MODULES = ("torch.optim", "torch.optim.lr_scheduler", "timm.optim", "timm.scheduler")


@dataclass
class OptimizerSpec:
    """``factory(parameter_groups)`` builds the optimiser; ``label`` names it in messages."""

    factory: Callable[[list], torch.optim.Optimizer]
    label: str
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
    # a typed config carries every default, so a horizon left out is there as None
    if any(init_args.get(a) is not None for a in (argument, *_HORIZON_ALTERNATIVES.get(name, ()))):
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


def _is_scheduler(found: Any) -> bool:
    bases = [torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau]
    try:
        from timm.scheduler.scheduler import Scheduler

        bases.append(Scheduler)
    except ImportError:
        pass
    return inspect.isclass(found) and issubclass(found, tuple(bases))


def _is_optimizer(found: Any) -> bool:
    return inspect.isclass(found) and issubclass(found, torch.optim.Optimizer)


KINDS = {
    "optimizer": ("a torch.optim.Optimizer subclass", _is_optimizer),
    "scheduler": ("a torch.optim.lr_scheduler or timm.scheduler scheduler class", _is_scheduler),
}


def import_class(path: str, key: str, kind: str = "optimizer") -> type:
    """Import ``path`` (dotted, or a short name found in the optimiser/scheduler modules), refused before the
    import unless its package is allowed and after it unless it is an optimiser (or scheduler) class."""
    allows, check = KINDS[kind]
    if "." in path:
        check_allowed(path, key, allows)
        return import_allowed(path, key, allows, check)
    for module in _SEARCH_MODULES:
        try:
            return import_allowed(f"{module}.{path}", key, allows, check)
        except ConfigError:
            continue
    raise ConfigError(f"{key}: cannot import class {path!r}; give a full class path such as torch.optim.AdamW ({allows})")


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


def _factory_label(factory: Any) -> str:
    """The optimiser class a jsonargparse-built factory (a ``functools.partial``) makes, for messages."""
    if isinstance(factory, functools.partial):
        classes = [a for a in (factory.func, *factory.args) if inspect.isclass(a)]
        if classes:
            return classes[-1].__name__
    return getattr(factory, "__name__", type(factory).__name__)


def _check_factory(factory: Any, where: str) -> None:
    """jsonargparse types ``optimizer_init`` as a callable, which a function of an allowed package (``torch.load``)
    also is; only a partial of an Optimizer subclass (what a class_path to one becomes) is an optimiser."""
    func = factory.func if isinstance(factory, functools.partial) else factory
    classes = [a for a in (func, *getattr(factory, "args", ())) if inspect.isclass(a)]
    if not (classes and _is_optimizer(classes[-1])):
        name = getattr(classes[-1] if classes else func, "__name__", repr(func))
        if isinstance(factory, functools.partial) and not classes:
            name = getattr(factory.args[-1], "__name__", name) if factory.args else name
        raise ConfigError(f"{where}: {name!r} is refused; it takes {KINDS['optimizer'][0]}")


def _flat_mapping(item: dict, where: str, allowed: set[str], kind: str, skip: str) -> tuple[type, dict[str, Any]]:
    """Seed 000's flat mapping (``class_path``, ``init_args`` and the pairing keys), checked as jsonargparse
    checks a typed one: its class of the allowed kind and its init_args against the class's signature."""
    unknown = set(item) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    cls = import_class(item["class_path"], f"{where}.class_path", kind)
    init_args = dict(item.get("init_args") or {})
    _check_init_args(cls, init_args, where, skip=(skip,))
    return cls, init_args


def _dict_spec(item: dict, where: str) -> OptimizerSpec:
    cls, init_args = _flat_mapping(item, where, _OPTIMIZER_KEYS, "optimizer", skip="params")
    return OptimizerSpec(functools.partial(cls, **init_args), cls.__name__, item.get("name"), item.get("params"))


def parse_optimizers(value: Any, key: str = "model.init_args.optimizer_init") -> list[OptimizerSpec]:
    """``optimizer_init`` as jsonargparse built it (a factory, or a list of ``NamedOptimizer``) or as a
    Python caller wrote it (seed 000's mappings), as one spec per optimiser."""
    items = value if isinstance(value, (list, tuple)) else [value]
    specs = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]" if isinstance(value, (list, tuple)) else key
        if isinstance(item, dict):
            if "class_path" not in item:
                raise ConfigError(f"{where}: expected a mapping with a class_path entry, got {item!r}")
            specs.append(_dict_spec(item, where))
        elif isinstance(item, NamedOptimizer):
            if isinstance(item.optimizer, dict):
                inner = _dict_spec(item.optimizer, f"{where}.optimizer")
                specs.append(OptimizerSpec(inner.factory, inner.label, item.name, item.params))
            else:
                _check_factory(item.optimizer, f"{where}.optimizer")
                specs.append(OptimizerSpec(item.optimizer, _factory_label(item.optimizer), item.name, item.params))
        elif callable(item):
            _check_factory(item, where)
            specs.append(OptimizerSpec(item, _factory_label(item)))
        else:
            raise ConfigError(f"{where}: expected an optimiser (class_path and init_args), got {item!r}")
    if not specs:
        raise ConfigError(f"{key}: at least one optimiser is needed")
    if sum(spec.params is None for spec in specs) > 1:
        raise ConfigError(f"{key}: only one optimiser may leave out 'params' (it takes the remaining parameters)")
    names = [spec.name for spec in specs if spec.name]
    if len(names) != len(set(names)):
        raise ConfigError(f"{key}: optimiser names must be unique, got {names}")
    return specs


def _factory_scheduler(factory: Any, where: str) -> tuple[type, dict[str, Any]]:
    """The scheduler class and init_args of a jsonargparse-built factory (``functools.partial(instantiator,
    cls, **init_args)``), refused unless the class is a scheduler (a function of an allowed package is
    callable too)."""
    classes = [a for a in (getattr(factory, "func", None), *getattr(factory, "args", ())) if inspect.isclass(a)]
    if not (isinstance(factory, functools.partial) and classes and _is_scheduler(classes[-1])):
        name = getattr(classes[-1] if classes else getattr(factory, "func", factory), "__name__", repr(factory))
        raise ConfigError(f"{where}: {name!r} is refused; it takes {KINDS['scheduler'][0]}")
    return classes[-1], dict(factory.keywords)


def _dict_scheduler(item: dict, where: str) -> SchedulerSpec:
    cls, init_args = _flat_mapping(item, where, _SCHEDULER_KEYS, "scheduler", skip="optimizer")
    return SchedulerSpec(cls, init_args, item.get("optimizer_name"), item.get("interval", "epoch"),
                         int(item.get("frequency", 1)), item.get("monitor"))


def _scheduler_spec(item: Any, where: str) -> SchedulerSpec:
    if isinstance(item, dict):
        if "class_path" not in item:
            raise ConfigError(f"{where}: expected a mapping with a class_path entry, got {item!r}")
        return _dict_scheduler(item, where)
    if isinstance(item, NamedScheduler):
        if isinstance(item.scheduler, dict):
            inner = _dict_scheduler(item.scheduler, f"{where}.scheduler")
            cls, init_args = inner.cls, inner.init_args
        else:
            cls, init_args = _factory_scheduler(item.scheduler, f"{where}.scheduler")
        return SchedulerSpec(cls, init_args, item.optimizer_name, item.interval, int(item.frequency), item.monitor)
    if callable(item):
        return SchedulerSpec(*_factory_scheduler(item, where))
    raise ConfigError(f"{where}: expected a scheduler (class_path and init_args), got {item!r}")


def parse_schedulers(
    value: Any, optimizers: list[OptimizerSpec], key: str = "model.init_args.lr_scheduler_init"
) -> list[tuple[int, SchedulerSpec]]:
    """``lr_scheduler_init`` as jsonargparse built it (a factory, or a list of ``NamedScheduler``) or as a
    Python caller wrote it (seed 000's mappings), as specs each paired with the index of its optimiser."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    specs = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]" if isinstance(value, (list, tuple)) else key
        spec = _scheduler_spec(item, where)
        if spec.interval not in ("epoch", "step"):
            raise ConfigError(f"{where}.interval: must be 'epoch' or 'step', got {spec.interval!r}")
        specs.append(spec)
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
                f"optimiser {spec.name or spec.label} got no trainable parameters; check its 'params' prefixes"
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
        optimizer = spec.factory([g for g in groups if g["params"]])
        for group in optimizer.param_groups:
            group["lr"] *= group.get("lr_scale", 1.0)
        optimizers.append(optimizer)
    return optimizers
