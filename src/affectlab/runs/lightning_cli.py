"""AffectLabCLI: LightningCLI plus seed 000's command chains, run ids and the run store.

One parser builds everything from the config (``--model``, ``--data``, ``--trainer``, repeated
``--config``, dotted overrides); then ``commands`` (``fit-test``, ``fit-test-eval``, ...) run in order on
one trainer. ``affectlab fit ...`` is ``affectlab run --commands fit ...``.

Per run: the run is opened in the store (new, or reused by ``--run_id``), ``run_id: <id>`` is printed,
the config is logged (``config.yaml`` first, ``config_<timestamp>.yaml`` after), with the environment and,
for a new run, the flattened config as params. ``$ckpt_dir`` in any string value resolves to the run's
checkpoint folder. ``fit`` on a reused run resumes from its ``last.ckpt``; ``validate``/``test``/``predict``
use the run's ``best.ckpt`` unless told otherwise. ``--dry_run`` rewrites the parsed config for a run on a
sliver of the data in ``<exp_name>-dry`` (``affectlab.runs.dry_run``).

The run's life in the store (opening, logging, predictions) is ``affectlab.runs.lifecycle``'s.
"""

from __future__ import annotations

import warnings
from argparse import ArgumentError
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor, RichProgressBar
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import Logger
from lightning.fabric.plugins.environments import ClusterEnvironment
from lightning.pytorch.plugins.io import CheckpointIO
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from affectlab.imports import check_class_paths, restrict_imports, set_user_allowlist
from affectlab.methods.task_values import check_config as check_task_values
from affectlab.runs.arguments import (
    TRAINER_COMMANDS,
    TRAINER_DEFAULTS,
    add_run_arguments,
    as_list,
    command_line_allowlist,
    parse_commands,
    resolve_ckpt_dir,
)
from affectlab.runs.dry_run import announce, apply_dry_run, bare_flag, check_reused_run
from affectlab.runs.evaluation import check_evaluation, run_evaluation
from affectlab.io import load_checkpoint
from affectlab.runs.checkpoints import AtomicCheckpointIO, checkpoint_callbacks
from affectlab.runs.cross_domain import cross_domain_test
from affectlab.runs.determinism import EpochSeed
from affectlab.runs.preemption import Preemption, slurm_environment
from affectlab.runs.lifecycle import (BEST, DEFAULT_SEED, LAST, RunHeartbeat, RunLogger, end_attempt, log_predictions,
                                      log_run_contents, open_run, run_attempt)
from affectlab.runs.names import run_name
from affectlab.runs.schema_cache import record
from affectlab.runs.store import RunStore


class AffectLabCLI(LightningCLI):
    def __init__(self, args: list[str]) -> None:
        self.argv = bare_flag(list(args))  # a bare --dry_run means true
        self.results: dict[str, dict[str, float]] = {}
        # before parsing: every class_path the config names is checked against the allowed packages before
        # jsonargparse imports it (affectlab.imports); a stored config.yaml put in front gets the same check
        set_user_allowlist(command_line_allowlist(self.argv))
        restrict_imports()
        super().__init__(
            LightningModule,
            LightningDataModule,
            save_config_callback=None,  # the run store logs the config
            trainer_defaults=TRAINER_DEFAULTS,
            seed_everything_default=DEFAULT_SEED,
            parser_kwargs={"exit_on_error": False},
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=self.argv,
            run=False,
            auto_configure_optimizers=False,  # methods configure their own (optimizer_init/lr_scheduler_init)
            load_from_checkpoint_support=False,  # checkpoints hold tensors only; configs live in the run store
        )

    # -- parsing ----------------------------------------------------------------------------------------------
    def add_arguments_to_parser(self, parser) -> None:
        add_run_arguments(parser)

    def parse_arguments(self, parser, args) -> None:
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as error:
            error.affectlab_parser = parser  # cli/errors.py lists the valid keys from it
            raise
        try:  # what this parse accepted: the next misspelt key is refused before torch loads (schema_cache)
            record(parser, self.config.as_dict(), self)
        except Exception as error:  # noqa: BLE001  (a cache that cannot be written costs speed, never the run)
            warnings.warn(f"config key cache not written ({error}); config errors stay slower", stacklevel=2)

    def before_instantiate_classes(self) -> None:
        check_class_paths(self.config.as_dict())  # a function named as a class would be called when built
        check_task_values(self.config.as_dict())  # a per-task {task: value} only where a task owns the key
        if apply_dry_run(self.config) and rank_zero_only.rank == 0:  # before anything is built: the trainer too
            check_reused_run(RunStore.resolve(self.config.store), self.config.run_id)  # never into a real run
            print(announce(self.config), flush=True)
        self.commands = parse_commands(self.config.commands)
        if "eval" in self.commands:
            check_evaluation(self.config.eval_func, self.config.eval or {})

    # -- the run ----------------------------------------------------------------------------------------------
    def _open_run(self) -> None:
        seed = self.config.seed_everything
        name = self.config.run_name or run_name(type(self.model).__name__, type(self.datamodule).__name__)
        config_text = self.parser.dump(self.config, skip_none=False)  # before $ckpt_dir resolution: portable
        run_id, experiment = self.config.run_id, self.config.exp_name
        parent, tags = self.config.parent_run_id, self.config.run_tags
        # a trained run tested on another data set logs into a child of it (runs/cross_domain.py)
        self.cross_domain = cross_domain_test(RunStore.resolve(self.config.store), run_id, self.commands, config_text)
        if self.cross_domain is not None:
            run_id, experiment, name = self.cross_domain.run_id, self.cross_domain.experiment, self.cross_domain.run_name
            parent, tags = self.cross_domain.source_run_id, {**(tags or {}), **self.cross_domain.tags()}
        self.run = open_run(self.config.store, run_id, experiment, name, seed, rank_zero_only.rank,
                            parent_run_id=parent, tags=tags)
        self.store, self.run_id, self.reused = self.run.store, self.run.run_id, self.run.reused
        if rank_zero_only.rank == 0:
            try:
                log_run_contents(self.run, config_text, seed, self.argv)
            except BaseException as error:  # a cancel (Ctrl-C) here ends the run KILLED, not RUNNING forever
                end_attempt(self.run, error)
                raise
            info = self.store.get_run(self.run_id).info
            print(f"run: {info.run_name} ({'reused' if self.reused else 'new'}) in {self.store.tracking_uri}")
            if self.cross_domain is not None:
                print(f"cross-domain test of run {self.cross_domain.source_run_id} on {self.cross_domain.target}", flush=True)
            print(f"run_id: {self.run_id}", flush=True)
        self.ckpt_dir = self.run.checkpoint_dir
        # the weights evaluated: a cross-domain test's are its source's
        source = None if self.cross_domain is None else self.cross_domain.source_run_id
        self.weights_dir = self.ckpt_dir if source is None else self.store.checkpoint_dir(source)

    # -- the trainer ------------------------------------------------------------------------------------------
    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        from affectlab.runs.kfold import check_kfold
        from affectlab.runs.tune import check_tune

        check_kfold(self)  # kfold's folds and tune's learning rate are refused before a run exists
        check_tune(self)
        self._open_run()
        try:
            return self._build_trainer(**kwargs)
        except BaseException as error:  # the run exists: it ends FAILED with the error, not RUNNING forever
            end_attempt(self.run, error)
            raise

    def _build_trainer(self, **kwargs: Any) -> Trainer:
        for command in (*TRAINER_COMMANDS, "eval"):
            if self.config_init.get(command) is not None:
                self.config_init[command] = resolve_ckpt_dir(self.config_init[command], self.weights_dir)
        config = {**self._get(self.config_init, "trainer", default={}), **kwargs}
        callbacks = as_list(config.pop("callbacks", None))
        callbacks += self._default_callbacks(config)
        callbacks += as_list(self.config_init.get("additional_callbacks"))
        self.mlflow_logger = RunLogger(
            experiment_name=self.config.exp_name,
            tracking_uri=self.store.tracking_uri,
            run_id=self.run_id,
            log_model=not self.store.is_local(self.run_id) if rank_zero_only.rank == 0 else False,
        )
        loggers = [self.mlflow_logger] + [lg for lg in as_list(config.pop("logger", None)) if isinstance(lg, Logger)]
        plugins = as_list(config.pop("plugins", None))
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            plugins.append(AtomicCheckpointIO())
        if not any(isinstance(p, ClusterEnvironment) for p in plugins) and (slurm := slurm_environment()):
            plugins.append(slurm)  # Lightning's own requeue off: Preemption owns the signal (runs/preemption.py)
        return self.trainer_class(**config, callbacks=callbacks, logger=loggers, plugins=plugins)

    def _default_callbacks(self, trainer_config: dict[str, Any]) -> list[Callback]:
        callbacks: list[Callback] = [
            *checkpoint_callbacks(self.ckpt_dir, getattr(self.model, "monitor", None),
                                  getattr(self.model, "monitor_mode", "min"), self.config.get("checkpoint_every_n_steps")),
            RunHeartbeat(self.run),
            Preemption(self.ckpt_dir / LAST, self.run_id),  # SIGUSR1 -> last.ckpt -> exit for a requeue
            LearningRateMonitor(logging_interval="epoch"),
        ]
        if isinstance(self.config.seed_everything, int) and not isinstance(self.config.seed_everything, bool):
            callbacks.append(EpochSeed(self.config.seed_everything))
        if trainer_config.get("enable_progress_bar", True) is not False:
            callbacks.append(RichProgressBar(leave=True))
        return callbacks

    # -- the command chain ------------------------------------------------------------------------------------
    def _command_kwargs(self, command: str) -> dict[str, Any]:
        section = self.config_init.get(command)
        kwargs = section.as_dict() if isinstance(section, Namespace) else dict(section or {})
        if kwargs.get("ckpt_path") is None:
            default = self.ckpt_dir / LAST if command == "fit" else self.weights_dir / BEST
            if default.is_file():
                kwargs["ckpt_path"] = str(default)
                if rank_zero_only.rank == 0:
                    print(f"{command}: {'resuming from' if command == 'fit' else 'using'} {default}", flush=True)
        return kwargs

    def run_commands(self) -> dict[str, dict[str, float]]:
        with run_attempt(self.run):  # the run ends FINISHED after the whole chain, or FAILED/KILLED with the error
            return self._run_chain()

    def _run_chain(self) -> dict[str, dict[str, float]]:
        if "kfold" in self.commands:  # this run is the folds' parent: each fold is a child run (runs/kfold.py)
            from affectlab.runs.kfold import run_kfold

            self.results = run_kfold(self)
            return self.results
        for command in self.commands:
            if command == "tune":  # Lightning's Tuner; its choice applies to the fit that follows (runs/tune.py)
                from affectlab.runs.tune import run_tune

                run_tune(self)
                continue
            if command == "eval":
                self._load_best_weights()
                run_evaluation(self.config.eval_func, self.config_init.get("eval") or {}, self.model, self.datamodule, self.trainer)
                continue
            output = getattr(self.trainer, command)(self.model, datamodule=self.datamodule, **self._command_kwargs(command))
            if command in ("validate", "test"):
                merged: dict[str, float] = {}
                for metrics in output or []:
                    merged.update({k: float(v) for k, v in metrics.items()})
                self.results[command] = merged
            elif command == "predict" and rank_zero_only.rank == 0:
                log_predictions(self.run, output or [], getattr(self.model, "class_names", None))
        return self.results

    def _load_best_weights(self) -> None:
        best = self.weights_dir / BEST
        if best.is_file():
            self.model.load_state_dict(load_checkpoint(best)["state_dict"])


class _Parsed(Exception):
    """Raised by ``_ParseOnly`` once the arguments are parsed (and the key cache written)."""


class _ParseOnly(AffectLabCLI):
    def before_instantiate_classes(self) -> None:
        raise _Parsed


def prime_schema_cache(args: list[str]) -> None:
    """Parse ``args`` as a run would, build nothing, and so write the cache of valid keys
    (``schema_cache``) that lets the next misspelt key be refused before torch loads."""
    try:
        _ParseOnly(args)
    except _Parsed:
        pass


def prime_bundled_schema_cache() -> None:
    """The cache complete for every bundled config, as ``make`` writes it at install: the parser's keys and types
    from one parse, then every class a file under ``configs/`` names (``schema_cache.bundled_classes``) with its
    arguments, types and module, so that a config mistake in any of them is refused before torch loads from the
    first run on, not only after a successful parse of that model."""
    from affectlab.runs.configs import config_root
    from affectlab.runs.schema_cache import record_bundled

    root = config_root()
    prime_schema_cache(["--model", str(root / "model/supervised.yaml"), "--data", str(root / "data/synth.yaml")])
    record_bundled()  # a no-op when that parse (a first one) already added them
