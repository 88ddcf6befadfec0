"""``affectlab run --seeds 0 1 2 ...``: the same run once per seed, as the members of one group, and the mean
± standard deviation of every metric they report.

The group follows ``runs/groups.py``: a parent run of kind ``seeds`` (no training) in the experiment the runs
go to, and per seed an ordinary run (``--seed_everything S``, tags ``affectlab.seed`` and
``affectlab.group.config`` ``{}``: nothing but the seed varies) created with ``--parent_run_id``. When every
seed has run, the parent holds, per metric ``M`` of the chain's ``validate`` and ``test`` (``test/acc``...),
``M_mean`` and ``M_std`` (the sample standard deviation, 0 for one seed, as ``experiments/report.py`` computes
it for the recipe tables), and ``seeds.md``: the table of every metric, its mean ± std and each seed's value,
with the runs' ids. A run that fails ends the parent FAILED; the seeds that ran stay in the store.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from affectlab.errors import ConfigError
from affectlab.experiments.report import mean_std
from affectlab.experiments.train import RunResult, train
from affectlab.runs.dry_run import experiment_name
from affectlab.runs.groups import (CONFIG_TAG, child_arguments, config_key, end_parent_run, open_parent_run,
                                   parent_outcome)
from affectlab.runs.lightning_cli import AffectLabCLI
from affectlab.runs.store import RunStore

KIND = "seeds"
TABLE = "seeds.md"


@dataclass
class GroupTarget:
    """Where a group's runs go: their MLflow experiment (``--dry_run`` included) and run store, and the name
    the user gave them (``--run_name``), read from one parse of the group's arguments."""

    experiment: str
    store: str | None
    run_name: str | None
    dry_run: bool = False


class _Parsed(Exception):
    def __init__(self, config) -> None:
        super().__init__("parsed")
        self.config = config


class _ParseOnly(AffectLabCLI):
    """Parses the arguments as a run would (every key checked), builds nothing."""

    def before_instantiate_classes(self) -> None:
        raise _Parsed(self.config)


def group_target(args: list[str]) -> GroupTarget:
    """The experiment, store and name of the runs ``args`` would make: the parent of a group must be in its
    members' experiment for MLflow's UI to nest them. A bad key stops here, before any run."""
    try:
        _ParseOnly(args)
    except _Parsed as parsed:
        config = parsed.config
        dry = bool(config.get("dry_run"))
        return GroupTarget(experiment_name(config.exp_name, dry), config.store, config.run_name, dry)
    raise AssertionError("the parser returned without parsing")  # pragma: no cover


def refuse_options(args: list[str], options: tuple[str, ...], group: str) -> None:
    """A group sets some options itself for every member; given by the user they would contradict it."""
    for option in options:
        if option in args or any(a.startswith(option + "=") for a in args):
            raise ConfigError(f"{group}: {option} is set by the group for each of its runs; drop {option} from the "
                              "command (a group's runs are new runs, each with its own id and seed)")


@dataclass
class SeedsResult:
    parent_run_id: str
    seeds: list[int]
    runs: list[RunResult] = field(default_factory=list)
    summary: dict[str, tuple[float, float, int]] = field(default_factory=dict)  # metric -> (mean, std, seeds)


def summarise_metrics(runs: list[RunResult]) -> dict[str, tuple[float, float, int]]:
    """metric -> (mean, std, number of runs that logged it), over the ``validate`` and ``test`` metrics."""
    values: dict[str, list[float]] = {}
    for result in runs:
        for command in ("validate", "test"):
            for name, value in result.metrics.get(command, {}).items():
                values.setdefault(name, []).append(float(value))
    return {name: (*mean_std(found), len(found)) for name, found in values.items()}


def seeds_markdown(result: SeedsResult, names: list[str]) -> str:
    """The group's table: one row per metric in ``names``, mean ± std, then each seed's value."""
    header = "| metric | mean ± std | " + " | ".join(f"seed {s}" for s in result.seeds) + " |"
    lines = [f"Mean ± sample standard deviation over seeds {', '.join(map(str, result.seeds))} "
             f"(group run {result.parent_run_id}).", "", header, "|---|---:|" + "---:|" * len(result.seeds)]
    for name in names:
        mean, std, _ = result.summary[name]
        cells = [f"{run.metrics.get(_command(name), {}).get(name, float('nan')):.4f}" for run in result.runs]
        lines.append(f"| {name} | {mean:.4f} ± {std:.4f} | " + " | ".join(cells) + " |")
    lines += ["", "| seed | run_id |", "|---:|---|", *(f"| {s} | {r.run_id} |" for s, r in zip(result.seeds, result.runs))]
    return "\n".join(lines) + "\n"


def _command(metric: str) -> str:
    """The chain command a metric name comes from (``val/acc``: validate, ``test/acc``: test)."""
    return "validate" if metric.startswith("val") else "test"


def check_seeds(args: list[str], seeds: list[int]) -> None:
    """What a seeds group refuses before anything is parsed or run."""
    if not seeds:
        raise ConfigError("--seeds needs at least one seed, e.g. --seeds 0 1 2")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {' '.join(map(str, seeds))}: a seed is repeated; each seed runs once")
    refuse_options(args, ("--run_id", "--seed_everything", "--parent_run_id"), "--seeds")


def run_seeds(args: list[str], seeds: list[int], target: GroupTarget | None = None,
              on_open=None) -> SeedsResult:
    """Run ``args`` (``affectlab run``'s options, already prepared by ``cli/argv.py``) once per seed, each a
    child of a new parent of kind ``seeds``; log the summary on the parent. ``on_open(parent_run_id)`` is
    called once the parent exists."""
    check_seeds(args, seeds)
    target = target or group_target(args)
    store = RunStore.resolve(target.store)
    name = f"{target.run_name or 'seeds'} (seeds {' '.join(map(str, seeds))})"
    parent = open_parent_run(store, target.experiment, name, KIND, {"affectlab.seeds": json.dumps(seeds)})
    if on_open is not None:
        on_open(parent)
    result = SeedsResult(parent, list(seeds))
    with parent_outcome(store, parent):
        for seed in seeds:
            member = ["--seed_everything", str(seed), *child_arguments(parent, {CONFIG_TAG: config_key({})})]
            if target.run_name:
                member += ["--run_name", f"{target.run_name}-seed{seed}"]
            result.runs.append(train([], {}, extra=[*args, *member]))
        result.summary = summarise_metrics(result.runs)
        log_summary(store, result)
    return result


def log_summary(store: RunStore, result: SeedsResult) -> None:
    """``M_mean``, ``M_std`` per metric and the ``seeds.md`` table on the parent."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(f"{name}_{part}", value, now, 0) for name, (mean, std, _) in result.summary.items()
               for part, value in (("mean", mean), ("std", std))]
    for start in range(0, len(metrics), 1000):  # MLflow's batch limit
        store.client.log_batch(result.parent_run_id, metrics=metrics[start:start + 1000])
    store.client.log_text(result.parent_run_id, seeds_markdown(result, sorted(result.summary)), TABLE)


RECIPE_EXPERIMENT = "recipe-seeds"  # the parents of 'affectlab recipe --seeds' (a recipe's runs span experiments)


def group_recipe_seeds(recipes: list, rows_per_recipe: list[list]) -> str:
    """The recipes of ``affectlab recipe --seeds`` (one per seed, already run) as one group: a parent run of kind
    ``seeds`` in experiment ``recipe-seeds`` (``-dry`` for dry recipes) holding ``<row>_mean`` / ``<row>_std`` of
    every recipe row (the names a recipe sweep's trials have: ``probe/<fraction>/acc``, ``floor/...``) and each
    recipe's runs (pretraining, probes, floor, ceiling) tagged as its children. Returns the parent's id."""
    from mlflow.entities import Metric

    from affectlab.experiments.sweep import recipe_metrics
    from affectlab.runs.lifecycle import PARENT_TAG

    first = recipes[0].options
    store = RunStore.resolve(first.store)
    seeds = [recipe.options.seed for recipe in recipes]
    parent = open_parent_run(store, experiment_name(RECIPE_EXPERIMENT, first.dry_run),
                             f"{first.variant}-{first.dataset}-seeds-{'-'.join(map(str, seeds))}", KIND,
                             {"affectlab.seeds": json.dumps(seeds)})
    values: dict[str, list[float]] = {}
    for recipe, rows in zip(recipes, rows_per_recipe):
        for name, value in recipe_metrics(rows, recipe.options.variant).items():
            values.setdefault(name, []).append(value)
        tags = {PARENT_TAG: parent, CONFIG_TAG: config_key({}), "affectlab.seed": str(recipe.options.seed)}
        for run_id in {row.run_id for row in rows} | {recipe.record.pretrain_run_id} - {None}:
            for key, value in tags.items():
                store.client.set_tag(run_id, key, value)
    now = int(time.time() * 1000)
    metrics = [Metric(f"{name}_{part}", value, now, 0) for name, series in sorted(values.items())
               for part, value in zip(("mean", "std"), mean_std(series))]
    store.client.log_batch(parent, metrics=metrics)
    end_parent_run(store, parent)
    return parent
