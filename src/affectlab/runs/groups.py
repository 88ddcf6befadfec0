"""Runs made of runs: a sweep, the seeds of ``--seeds``, the folds of ``kfold``, the copies of ``repeat``.

The group is an MLflow run of its own (the *parent*: no training, it holds the summary, its table and plots);
each member is an ordinary training run created with ``--parent_run_id`` (MLflow's ``mlflow.parentRunId`` tag,
so the UI nests it as an expandable row) and ``--run_tags``. The tags every kind shares:

| tag | on | value |
|---|---|---|
| ``affectlab.group.kind`` | parent | ``sweep``, ``seeds``, ``kfold`` or ``repeat`` |
| ``mlflow.parentRunId`` | child | the parent's run id |
| ``affectlab.seed`` | child | the member's seed (every run has it) |
| ``affectlab.group.config`` | child | the member's varied values as JSON (``{}`` when nothing varies): members with the same value are seeds of one configuration |
| ``affectlab.trial`` / ``affectlab.fold`` / ``affectlab.repeat`` | child | the member's index in its kind |
| ``affectlab.kfold.folds`` / ``affectlab.kfold.split`` | kfold parent | how many folds, of which split kind (``data.init_args.split``) |
| ``affectlab.sweep.study`` | parent, child | a sweep's Optuna study name (``<name>-dry`` for ``--dry_run``) |
| ``affectlab.sweep.storage`` / ``.metric`` / ``.direction`` | parent | the study's storage URL (password removed), metric, direction |
| ``affectlab.sweep.best_trial`` | parent | the best trial's number, once every trial is finished |
| ``affectlab.sweep.pruned`` | child | ``epoch N``: the pruner stopped this run after validation epoch N |
| ``affectlab.seeds`` | ``seeds`` parent | the seeds as a JSON list (``experiments/seeds.py``) |
| ``affectlab.repeat.identical`` | ``repeat`` parent | ``true`` when the copies' initial and final weights and every metric agree (``experiments/repeat.py``) |
| ``affectlab.cross_domain.source`` / ``.data`` / ``.key`` | cross-domain test (a child of its source) | the source run's id, the target data set's name, a digest of the target's data section (``runs/cross_domain.py``) |
| ``affectlab.dry_run`` | any run | ``true`` on a run of ``--dry_run`` (``runs/dry_run.py``); such runs live in ``<exp_name>-dry`` |
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from affectlab.runs.lifecycle import PARENT_TAG
from affectlab.runs.store import RunStore

KIND_TAG = "affectlab.group.kind"
CONFIG_TAG = "affectlab.group.config"
KINDS = ("sweep", "seeds", "kfold", "repeat")


def config_key(values: dict[str, Any]) -> str:
    """One configuration's varied values as the canonical JSON string that ``affectlab.group.config`` holds."""
    return json.dumps(values, sort_keys=True, default=str)


def open_parent_run(store: RunStore, experiment: str, name: str, kind: str, tags: dict[str, str] | None = None) -> str:
    """A new group run (RUNNING until ``end_parent_run``); returns its id."""
    if kind not in KINDS:
        raise ValueError(f"group kind {kind!r} is not one of {', '.join(KINDS)}")
    return store.create_run(experiment, name, {KIND_TAG: kind, **(tags or {})})


def end_parent_run(store: RunStore, run_id: str, status: str = "FINISHED") -> None:
    store.client.set_terminated(run_id, status=status)


@contextlib.contextmanager
def parent_outcome(store: RunStore, run_id: str) -> Iterator[None]:
    """End the parent as its members' work ends: FINISHED, KILLED on Ctrl-C, FAILED on any other error (which
    propagates); the members that ran stay in the store."""
    status = "FAILED"
    try:
        yield
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        end_parent_run(store, run_id, status)


def child_arguments(parent_run_id: str, tags: dict[str, str]) -> list[str]:
    """The command-line options that make a run a member of ``parent_run_id`` with ``tags``."""
    return ["--parent_run_id", parent_run_id, "--run_tags", json.dumps(tags)]


def child_runs(store: RunStore, parent_run_id: str) -> list:
    """The parent's members (MLflow ``Run`` objects), oldest first."""
    parent = store.get_run(parent_run_id)
    return store.client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
        order_by=["attributes.start_time ASC"], max_results=50_000,
    )
