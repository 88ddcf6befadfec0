"""``--dry_run``: every command of the chain, end to end, on a sliver of the data, on CPU, in ``<exp_name>-dry``.

A dry run answers "does this config run?" (a misspelt key, a shape mismatch, a test step that fails after a
day of fitting) in seconds, before the real run is started. What it changes, after the config is parsed (so
the logged config shows what ran):

- ``trainer``: 1 epoch of at most ``BATCHES`` batches per split (``limit_{train,val,test,predict}_batches``),
  at most ``BATCHES`` optimiser steps, validation at the epoch's end, no sanity check, on one CPU process;
- ``tune`` (``runs/tune.py``): the learning-rate finder trains ``2 * BATCHES`` steps, the batch-size scaler
  tries once for one step; ``kfold`` runs each fold as a dry run (the folds get the same arguments);
- ``exp_name``: ``<exp_name>-dry``, so that a dry run's records (runs, checkpoints, metrics) never sit beside
  the real ones, and a later real run never has to delete anything by hand (seed 003 logged its dry runs into
  the real experiment);
- the run's tag ``affectlab.dry_run`` is ``true`` (summaries and recipes can tell a dry run from a real one).

A dry run reusing a run (``--run_id``) is refused unless that run is a dry run itself: continuing a real run
on two batches would mix a dry run's numbers into it.
"""

from __future__ import annotations

from typing import Any

from affectlab.errors import ConfigError

BATCHES = 2
SUFFIX = "-dry"
TAG = "affectlab.dry_run"
# What a dry run sets in ``trainer``; the other trainer options (callbacks, gradient clipping...) stay.
TRAINER = {
    "max_epochs": 1,
    "min_epochs": None,
    "max_steps": BATCHES,
    "min_steps": None,
    "max_time": None,
    "limit_train_batches": BATCHES,
    "limit_val_batches": BATCHES,
    "limit_test_batches": BATCHES,
    "limit_predict_batches": BATCHES,
    "val_check_interval": None,  # a step interval longer than the sliver would never validate
    "check_val_every_n_epoch": 1,
    "num_sanity_val_steps": 0,
    "accelerator": "cpu",
    "devices": 1,
    "num_nodes": 1,
    "strategy": "auto",
}
# ``tune`` in a dry chain: the learning-rate finder's and the batch-size scaler's loops cut to a few steps
TUNE_LR_FIND = {"num_training": BATCHES * 2}
TUNE_BATCH_SIZE = {"max_trials": 1, "steps_per_trial": 1}
_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off", "null", "none")


def bare_flag(args: list[str]) -> list[str]:
    """``--dry_run`` without a value means ``--dry_run true`` (jsonargparse's booleans need one)."""
    result = list(args)
    for i, arg in enumerate(result):
        if arg == "--dry_run" and (i + 1 == len(result) or result[i + 1].lower() not in (*_TRUE, *_FALSE)):
            result[i] = "--dry_run=true"
    return result


def split_dry_run(args: list[str]) -> tuple[bool, list[str]]:
    """(whether ``args`` ask for a dry run, ``args`` without the option), for callers that run many runs and
    keep records of their own (a recipe: its dry record is kept apart)."""
    dry, rest, i = False, [], 0
    args = bare_flag(args)
    while i < len(args):
        arg = args[i]
        if arg.startswith("--dry_run="):
            dry, i = arg.split("=", 1)[1].lower() in _TRUE, i + 1
        elif arg == "--dry_run" and i + 1 < len(args):
            dry, i = args[i + 1].lower() in _TRUE, i + 2
        else:
            rest.append(arg)
            i += 1
    return dry, rest


def experiment_name(exp_name: str, dry_run: bool) -> str:
    """The MLflow experiment of a run: ``exp_name``, or ``exp_name-dry`` for a dry run (never ``-dry-dry``)."""
    if not dry_run or str(exp_name).endswith(SUFFIX):
        return exp_name
    return f"{exp_name}{SUFFIX}"


def _precision(value: Any) -> Any:
    """Half precision is a GPU feature: a dry run on CPU computes in 32 bits (bf16 runs on CPU as it is)."""
    text = str(value) if value is not None else ""
    return "32-true" if text.startswith("16") else value


def apply_dry_run(config) -> bool:
    """Rewrite the parsed ``config`` (a jsonargparse namespace) for a dry run when ``config.dry_run`` is set;
    return whether it was."""
    if not config.get("dry_run"):
        return False
    trainer = config.trainer
    for key, value in TRAINER.items():
        trainer[key] = value
    trainer["precision"] = _precision(trainer.get("precision"))
    tune = config.get("tune")
    if tune is not None:  # the Tuner's own loops: a couple of steps each (runs/tune.py)
        for section, values in (("lr_find_kwargs", TUNE_LR_FIND), ("scale_batch_size_kwargs", TUNE_BATCH_SIZE)):
            if tune.get(section) is not None:
                for key, value in values.items():
                    tune[section][key] = value
    config.exp_name = experiment_name(config.exp_name, True)
    config.run_tags = {**(config.get("run_tags") or {}), TAG: "true"}
    return True


def check_reused_run(store, run_id: str | None) -> None:
    """A dry run may reuse only a dry run (``store`` a ``RunStore``)."""
    if run_id is None:
        return
    run = store.get_run(run_id)
    if run.data.tags.get(TAG) != "true":
        raise ConfigError(
            f"--dry_run with --run_id {run_id}: that run is a real run, and a dry run's two batches would be mixed "
            "into it; drop --run_id (the dry run gets a new run in <exp_name>-dry), or drop --dry_run"
        )


def announce(config) -> str:
    """The line a dry run prints when it starts."""
    return (f"dry run: {BATCHES} batches of each split, 1 epoch, at most {BATCHES} optimiser steps, on CPU, in "
            f"experiment {config.exp_name!r} (drop --dry_run for the real run)")
