"""``tune`` in the command chain (seed 000's): Lightning's ``Tuner`` before ``fit``, its choice applied to that fit.

``--commands tune-fit-test`` runs, on the run's own trainer, model and data module:

The options (``runs/arguments.py``, typed from the Tuner's signatures, so a misspelt one is a parse error):

1. with ``--tune.scale_batch_size true`` (off by default): ``Tuner.scale_batch_size`` (its arguments under
   ``--tune.scale_batch_size_kwargs.*``: ``mode``, ``steps_per_trial``, ``init_val``, ``max_trials``, ...),
   which sets the data module's ``batch_size`` (``BaseDataModule``'s, the one every loader reads);
2. with ``--tune.lr_find true`` (the default): ``Tuner.lr_find`` (``--tune.lr_find_kwargs.*``: ``min_lr``,
   ``max_lr``, ``num_training``, ``mode``, ``early_stop_threshold``), whose suggestion sets the model's ``lr``:
   ``BaseMethod.lr``, a property over the typed ``optimizer_init``'s ``lr``, so the fit's optimiser is built
   with the suggestion and every other optimiser argument of the config. The finder runs its ``num_training``
   steps whatever ``trainer.max_epochs`` says (the data is cycled), since a suggestion needs more than a
   dozen points.

Both restore the model's weights and the trainer's state afterwards (Lightning's own checkpoint of them), so the
fit starts from the same initial weights as without ``tune``. The choice is logged as metrics and params
``tune/batch_size`` and ``tune/lr``, with the finder's loss curve as ``plots/lr_find.png``; the logged
``config.yaml`` keeps the configured values (the config that was given), the metrics say what ran.

A reused run whose fit resumes from its ``last.ckpt`` is not tuned again: the checkpoint's optimiser state
already holds the learning rate, and the batch size logged by the earlier attempt is applied again. A model with
several optimisers (``optimizer_init`` a list) has no single learning rate: ``lr_find`` is refused naming
``tune.lr_find``.
"""

from __future__ import annotations

from typing import Any

from affectlab.errors import ConfigError
from affectlab.runs.checkpoints import LAST

LR, BATCH_SIZE = "tune/lr", "tune/batch_size"
PLOT = "plots/lr_find.png"


def check_tune_chain(commands: list[str]) -> None:
    """``tune`` chooses for the fit after it: it comes once, before a ``fit``."""
    if "tune" not in commands:
        return
    if commands.count("tune") > 1 or "fit" not in commands[commands.index("tune") + 1 :]:
        raise ConfigError(f"commands: {'-'.join(commands)!r}: tune chooses the learning rate and batch size of the fit "
                          "after it; put it once before fit (tune-fit-test) or kfold (tune-kfold)")


def check_tune(cli: Any) -> None:
    """Before the run opens: a model ``lr_find`` can tune (one optimiser with an ``lr``: ``BaseMethod.lr``)."""
    if "tune" in cli.commands and _section(cli.config_init.get("tune")).get("lr_find"):
        found = getattr(type(cli.model), "lr", None)
        try:  # the property itself: through the instance, nn.Module's __getattr__ would replace its reason
            found.fget(cli.model) if isinstance(found, property) else cli.model.lr
        except AttributeError as error:
            raise ConfigError(f"tune.lr_find: {error}; the learning-rate finder tunes one optimiser's lr "
                              "(model.init_args.optimizer_init.init_args.lr); set --tune.lr_find false") from None


def _section(value: Any) -> dict[str, Any]:
    return value.as_dict() if hasattr(value, "as_dict") else dict(value or {})


def _resumes(cli: Any) -> bool:
    fit = _section(cli.config_init.get("fit"))
    return bool(cli.reused and fit.get("ckpt_path") is None and (cli.ckpt_dir / LAST).is_file())


def run_tune(cli: Any) -> dict[str, float]:
    """Tune ``cli``'s model and data module for its fit (module docstring); returns what was chosen."""
    options = _section(cli.config_init.get("tune"))
    model, datamodule, trainer, store, run_id = cli.model, cli.datamodule, cli.trainer, cli.store, cli.run_id
    if _resumes(cli):
        earlier = store.get_run(run_id).data.metrics
        if BATCH_SIZE in earlier:
            datamodule.batch_size = int(earlier[BATCH_SIZE])
        print(f"tune: skipped, the fit resumes from {LAST} (batch size {datamodule.batch_size}; the learning rate is "
              "in the checkpoint's optimiser state)", flush=True)
        return {}
    from lightning.pytorch.tuner import Tuner

    tuner, chosen = Tuner(trainer), {}
    # The Tuner saves the initial state in the trainer's root folder and restores it after; the run's checkpoint
    # folder, so that a tune killed midway leaves nothing in the folder the command was started from.
    root, trainer._default_root_dir = trainer._default_root_dir, str(cli.ckpt_dir)
    try:
        if options.get("scale_batch_size"):
            if not hasattr(datamodule, "batch_size"):
                raise ConfigError(f"tune.scale_batch_size: {type(datamodule).__name__} has no batch_size to scale; "
                                  "set --tune.scale_batch_size false")
            size = tuner.scale_batch_size(model, datamodule=datamodule,
                                          **_section(options.get("scale_batch_size_kwargs")))
            chosen[BATCH_SIZE] = float(size if size is not None else datamodule.batch_size)
            datamodule.batch_size = int(chosen[BATCH_SIZE])
        if options.get("lr_find"):
            chosen.update(_find_lr(cli, tuner, _section(options.get("lr_find_kwargs"))))
    finally:
        trainer._default_root_dir = root
    if chosen:
        _log_choice(store, run_id, chosen)
        print("tune: " + ", ".join(f"{k.split('/')[1]} {v:.6g}" for k, v in chosen.items()), flush=True)
    return chosen


def _find_lr(cli: Any, tuner: Any, kwargs: dict[str, Any]) -> dict[str, float]:
    from affectlab.plots import log_figure

    model, trainer = cli.model, cli.trainer
    configured = model.lr  # check_tune made sure there is one
    epochs = trainer.fit_loop.max_epochs
    trainer.fit_loop.max_epochs = -1  # the finder stops at its num_training steps, not at the end of the epochs
    try:
        finder = tuner.lr_find(model, datamodule=cli.datamodule, update_attr=True, attr_name="lr", **kwargs)
    finally:
        trainer.fit_loop.max_epochs = epochs
    suggestion = finder.suggestion() if finder is not None else None
    if finder is not None and finder.results.get("lr"):
        log_figure(trainer, finder.plot(suggest=suggestion is not None), PLOT)
    if suggestion is None:
        print(f"tune: the learning-rate finder made no suggestion (too few points: raise "
              f"--tune.lr_find_kwargs.num_training); the fit keeps lr {configured:.6g}", flush=True)
        return {}
    model.lr = suggestion  # update_attr did it already; stated so the fit's rate never depends on that default
    return {LR: float(suggestion)}


def _log_choice(store: Any, run_id: str, chosen: dict[str, float]) -> None:
    from mlflow.exceptions import MlflowException

    client = store.client
    for name, value in chosen.items():
        client.log_metric(run_id, name, value)
        try:
            client.log_param(run_id, name, f"{value:.6g}")
        except MlflowException:  # a param is written once: an earlier attempt's stays, the metric history has both
            pass
