"""``kfold`` in the command chain (seed 000's): fit then test on every fold of the data module's split, each fold a
child run of the run that was started, which holds the summary.

``affectlab run --commands kfold --data.init_args.split kfold ...`` makes the invoking run the *parent* (tag
``affectlab.group.kind: kfold``, ``runs/groups.py``): it trains nothing itself. For every fold ``k`` of the
configured split (``data/splits.py``: subject-disjoint ``kfold``, ``loso``, ``loco``, ``lodo``; the data module's
``fold_count``, every fold checked before the first trains) it builds a child ``AffectLabCLI`` in this process
from the parent's own arguments plus ``--data.init_args.fold k``, ``--parent_run_id``, and the tags
``affectlab.fold: k`` and ``affectlab.group.config: {"fold": k}``. A child is an ordinary run: it can be
opened, re-run or resumed alone with its run id.

Each fold runs the chain with ``kfold`` replaced by ``fit-test``: ``kfold`` is ``fit-test`` per fold,
``kfold-eval`` is ``fit-test-eval`` per fold, ``tune-kfold`` tunes per fold on that fold's training data; a
``fit`` or ``test`` after ``kfold`` is part of it already (``kfold-test`` is ``kfold``).

The parent logs ``<metric>_mean``, ``_std`` (sample standard deviation, as the recipe's tables), ``_min`` and
``_max`` of every test metric over the folds (``test/acc_mean`` ...), the table ``kfold/folds.csv`` (one row per
fold with its run id, then one row per statistic) and ``kfold/folds.md``, and prints the main metrics per fold.

Resuming: run the same command with ``--run_id <parent>``. Folds whose child run FINISHED with test metrics are
read from the store, not rerun; a fold whose child was killed or failed is rerun in that child run (``fit``
resumes from its ``last.ckpt``); folds never started start. Folds run one after another in one process, so a
multi-process strategy (DDP) is refused: run each fold alone with ``--data.init_args.fold k`` instead.
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

from affectlab.errors import ConfigError
from affectlab.runs.groups import CONFIG_TAG, KIND_TAG, child_runs, config_key
from affectlab.runs.lifecycle import RUN_ID_ENV, RunHeartbeat

KFOLD = "kfold"
FOLD_TAG = "affectlab.fold"
FOLD_KEY = "data.init_args.fold"
STATISTICS = ("mean", "std", "min", "max")
TABLE = "kfold/folds"


def fold_chain(commands: list[str]) -> list[str]:
    """The chain one fold runs: ``kfold`` replaced by ``fit-test`` (module docstring); only ``tune`` may precede it."""
    if commands.count(KFOLD) != 1 or any(c != "tune" for c in commands[: commands.index(KFOLD)]):
        raise ConfigError(f"commands: {'-'.join(commands)!r}: kfold runs fit then test on every fold and comes once, "
                          "preceded by tune at most; e.g. --commands kfold, kfold-eval or tune-kfold")
    index = commands.index(KFOLD)
    return [*commands[:index], "fit", "test", *(c for c in commands[index + 1 :] if c not in ("fit", "test"))]


@dataclass
class FoldResult:
    fold: int
    run_id: str
    metrics: dict[str, float]  # test/<name> -> value
    reused: bool = False  # read from a child run that had finished before this attempt


def fold_statistics(folds: list[FoldResult]) -> dict[str, float]:
    """``<metric>_mean``, ``_std``, ``_min``, ``_max`` of every metric over the folds that logged it."""
    names = sorted({name for fold in folds for name in fold.metrics})
    summary: dict[str, float] = {}
    for name in names:
        values = [fold.metrics[name] for fold in folds if name in fold.metrics]
        summary[f"{name}_mean"] = statistics.fmean(values)
        summary[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summary[f"{name}_min"] = min(values)
        summary[f"{name}_max"] = max(values)
    return summary


def fold_table(folds: list[FoldResult], summary: dict[str, float]) -> tuple[str, str]:
    """The CSV and Markdown tables: one row per fold (its run id and every metric), then one per statistic."""
    names = sorted({name for fold in folds for name in fold.metrics})
    rows = [[str(f.fold), f.run_id, *(f"{f.metrics[n]:.6g}" if n in f.metrics else "" for n in names)] for f in folds]
    rows += [[stat, "", *(f"{summary[f'{n}_{stat}']:.6g}" for n in names)] for stat in STATISTICS]
    header = ["fold", "run_id", *names]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    markdown = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    markdown += ["| " + " | ".join(row) + " |" for row in rows]
    return buffer.getvalue(), "\n".join(markdown) + "\n"


def fold_arguments(argv: list[str], fold: int, chain: list[str], parent_run_id: str, run_id: str | None,
                   name: str) -> list[str]:
    """The child's arguments: the parent's, then (winning, as later options do) the fold, its chain, and either
    its own earlier run (resumed) or the parent and tags that make a new run a member of the group."""
    tags = {FOLD_TAG: str(fold), CONFIG_TAG: config_key({"fold": fold})}
    return [*argv, f"--{FOLD_KEY}", str(fold), "--commands", "-".join(chain), "--run_id", run_id or "null",
            "--parent_run_id", parent_run_id, "--run_tags", json.dumps(tags), "--run_name", name]


def _finished_folds(store: Any, parent_run_id: str) -> dict[int, Any]:
    """The parent's children by fold; the latest started when a fold has several."""
    found = {}
    for run in child_runs(store, parent_run_id):
        fold = run.data.tags.get(FOLD_TAG)
        if fold is not None and fold.isdigit():
            found[int(fold)] = run
    return found


def _test_metrics(run: Any) -> dict[str, float]:
    return {k: float(v) for k, v in run.data.metrics.items() if k.startswith("test/")}


def print_folds(folds: list[FoldResult], summary: dict[str, float]) -> None:
    """The main head's test metrics (``test/<name>``) per fold, with mean ± std, min and max."""
    from rich.console import Console
    from rich.table import Table

    names = sorted({n for f in folds for n in f.metrics if n.count("/") == 1})
    table = Table(title=f"kfold: test metrics of {len(folds)} folds")
    table.add_column("metric")
    for fold in folds:
        table.add_column(f"fold {fold.fold}", justify="right")
    for column in ("mean ± std", "min", "max"):
        table.add_column(column, justify="right")
    for name in names:
        cells = [f"{f.metrics[name]:.4f}" if name in f.metrics else "" for f in folds]
        table.add_row(name, *cells, f"{summary[f'{name}_mean']:.4f} ± {summary[f'{name}_std']:.4f}",
                      f"{summary[f'{name}_min']:.4f}", f"{summary[f'{name}_max']:.4f}")
    Console().print(table)


def check_kfold(cli: Any) -> None:
    """Before the run opens: the data module's folds, every one checked (``BaseDataModule.fold_count``), as
    ``cli.fold_count``; nothing for a chain without kfold."""
    if KFOLD in cli.commands:
        fold_count = getattr(cli.datamodule, "fold_count", None)
        if fold_count is None:
            raise ConfigError(f"data: {type(cli.datamodule).__name__} is no AffectLab data module (BaseDataModule) and "
                              "has no cross-validation folds, so kfold cannot run on it; drop kfold from --commands")
        cli.fold_count = fold_count()


def run_kfold(cli: Any) -> dict[str, dict[str, float]]:
    """Run every fold as a child of ``cli``'s run (module docstring); returns ``{"kfold": statistics}``."""
    if cli.trainer.world_size > 1:
        raise ConfigError("commands: kfold runs its folds one after another in one process and cannot run under a "
                          f"{cli.trainer.world_size}-process strategy; run each fold alone with --{FOLD_KEY} k, or "
                          "use one device")
    chain, count = fold_chain(cli.commands), cli.fold_count
    store, parent = cli.store, cli.run_id
    client = store.client
    client.set_tag(parent, KIND_TAG, KFOLD)
    client.set_tag(parent, "affectlab.kfold.folds", str(count))
    client.set_tag(parent, "affectlab.kfold.split", str(getattr(cli.datamodule, "split", "")))
    earlier = _finished_folds(store, parent)
    base_name = store.get_run(parent).info.run_name
    print(f"kfold: {count} folds of data.init_args.split {getattr(cli.datamodule, 'split', '')}, each "
          f"{'-'.join(chain)}, as children of run {parent}", flush=True)
    folds: list[FoldResult] = []
    try:
        for fold in range(count):
            run = earlier.get(fold)
            if run is not None and run.info.status == "FINISHED" and _test_metrics(run):
                print(f"kfold: fold {fold} finished before in run {run.info.run_id}; not rerun", flush=True)
                folds.append(FoldResult(fold, run.info.run_id, _test_metrics(run), reused=True))
                continue
            run_id = run.info.run_id if run is not None else None
            print(f"kfold: fold {fold} of {count}" + (f", resuming run {run_id}" if run_id else ""), flush=True)
            child = type(cli)(fold_arguments(cli.argv, fold, chain, parent, run_id, f"{base_name}-fold{fold}"))
            # the parent trains nothing itself: its heartbeat beats with the fold's batches, or a store opened
            # from another host would take a long fold's parent for dead (lifecycle.mark_stale_runs)
            child.trainer.callbacks.append(RunHeartbeat(cli.run))
            results = child.run_commands()
            folds.append(FoldResult(fold, child.run_id, dict(results.get("test", {}))))
    finally:
        os.environ[RUN_ID_ENV] = parent  # each child's open_run set it to its own id
    summary = fold_statistics(folds)
    _log_summary(store, parent, folds, summary)
    print_folds(folds, summary)
    return {KFOLD: summary}


def _log_summary(store: Any, parent: str, folds: list[FoldResult], summary: dict[str, float]) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(name, value, now, 0) for name, value in summary.items()]
    for start in range(0, len(metrics), 500):
        store.client.log_batch(parent, metrics=metrics[start : start + 500])
    text, markdown = fold_table(folds, summary)
    store.client.log_text(parent, text, f"{TABLE}.csv")
    store.client.log_text(parent, markdown, f"{TABLE}.md")
