"""Task-specific values: a setting written once for every task, or ``{task: value}`` per task (seed 002).

Seed 002 lets any config value be written ``{task_0: ..., task_1: ...}``; a value that is not such a mapping
holds for every task. AffectLab keeps the notation for the keys a task owns (its head's kind, width and
outputs, its loss and reduction, its loss weight, its head's learning rate: ``TaskHeads`` in
``methods/task_heads.py``; its data: ``MultiTaskDataModule``'s ``datasets``), and keeps what the seed got
wrong out:

- every per-task mapping must name exactly the configured tasks: an unknown task name, or a task left out,
  stops with a ``ConfigError`` naming the key (the seed silently dropped what it did not know);
- a per-task mapping under a key that no task owns (a trunk's width, the trainer's epochs) is refused by
  ``check_unowned`` with the key named, instead of reaching a constructor that would take the mapping for
  something else.

A grid over such values is a sweep grid axis whose values are per-task mappings (``experiments/sweep_spec.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from affectlab.errors import ConfigError


def is_task_specific(value: Any) -> bool:
    """Whether ``value`` is written per task: a non-empty mapping with string keys. The keys a task owns take no
    mapping as their plain value, so a mapping there can only mean "per task"."""
    return isinstance(value, Mapping) and bool(value) and all(isinstance(k, str) for k in value)


def resolve(value: Any, tasks: Collection[str], key: str) -> dict[str, Any]:
    """``value`` per task: a plain value repeated for every task, or a per-task mapping checked against ``tasks``.

    Raises:
        ConfigError: the mapping names a task that is not configured, or leaves one out; the message names
            ``key`` and the configured tasks.
    """
    if not is_task_specific(value):
        return {task: value for task in tasks}
    unknown = [name for name in value if name not in tasks]
    if unknown:
        raise ConfigError(f"{key}: unknown task{'s' if len(unknown) > 1 else ''} {unknown}; the tasks are "
                          f"{list(tasks)} (a per-task value names each of them once, or write one plain value for all)")
    missing = [task for task in tasks if task not in value]
    if missing:
        raise ConfigError(f"{key}: no value for task{'s' if len(missing) > 1 else ''} {missing}; a per-task value "
                          f"names every task {list(tasks)}, or write one plain value for all of them")
    return {task: value[task] for task in tasks}


def resolve_all(values: Mapping[str, Any], tasks: Collection[str], prefix: str) -> dict[str, dict[str, Any]]:
    """Every entry of ``values`` (key -> plain or per-task value) resolved, as task -> key -> value; each key is
    reported as ``prefix.key``."""
    resolved = {key: resolve(value, tasks, f"{prefix}.{key}") for key, value in values.items()}
    return {task: {key: per_task[task] for key, per_task in resolved.items()} for task in tasks}


def task_set(values: Mapping[str, Any], prefix: str) -> list[str] | None:
    """The task names the per-task entries of ``values`` agree on (in the first one's order), or None when all
    are plain. Two entries naming different task sets are a ConfigError naming both keys."""
    found: tuple[str, list[str]] | None = None
    for key, value in values.items():
        if not is_task_specific(value):
            continue
        if found is None:
            found = (key, list(value))
        elif set(value) != set(found[1]):
            raise ConfigError(f"{prefix}.{key} names tasks {sorted(value)} but {prefix}.{found[0]} names "
                              f"{sorted(found[1])}; every per-task value names the same tasks")
    return None if found is None else found[1]


def check_unowned(config: Any, tasks: Collection[str], owned: Iterable[str], prefix: str) -> None:
    """Refuse a per-task mapping anywhere in ``config`` (nested mappings and lists) except under the ``owned``
    keys (dotted paths relative to ``config``, e.g. ``heads``, ``datasets``): there a task has a value of its
    own, elsewhere the setting is shared and a mapping keyed by task names is a mistake.

    A mapping counts as per task when its keys are all task names; other mappings (a backbone's keyword
    arguments) pass.
    """
    owned = tuple(owned)
    task_names = set(tasks)

    def walk(value: Any, path: str) -> None:
        if any(path == o or path.startswith(f"{o}.") for o in owned):
            return
        if isinstance(value, Mapping):
            if value and set(value) <= task_names:
                where = ".".join(p for p in (prefix, path) if p)
                raise ConfigError(f"{where}: a per-task value ({sorted(value)}) under a key that no task owns; "
                                  f"it is shared by all tasks, so give it one plain value (keys a task owns: "
                                  f"{', '.join('.'.join(p for p in (prefix, o) if p) for o in owned)})")
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")

    walk(config, "")


#: where a per-task value may stand in a run's whole config: the heads' settings, and the data (per-task data
#: modules, the tasks each serves, per-task label fractions)
OWNED = ("model.init_args.heads", "data")


def check_config(config: Mapping[str, Any]) -> None:
    """A run's whole config (``AffectLabCLI.before_instantiate_classes``): when its model has ``tasks``, a
    per-task mapping anywhere outside ``OWNED`` is refused with its key (``check_unowned``). Keys typed as a
    number already refuse a mapping when parsed; this catches those that take any mapping (a backbone's
    keyword arguments, an optimiser's options) and would silently take a per-task one for something else."""
    model = config.get("model")
    init_args = model.get("init_args") if isinstance(model, Mapping) else None
    if not isinstance(init_args, Mapping):
        return
    tasks = init_args.get("tasks")
    heads = init_args.get("heads")
    if not tasks and isinstance(heads, Mapping):  # tasks left out: the ones the heads' per-task values name
        tasks = task_set(heads, "model.init_args.heads")
    if not isinstance(tasks, (list, tuple)) or not tasks:
        return
    check_unowned({k: v for k, v in config.items() if k != "data"}, tasks, ["model.init_args.heads"], "")
