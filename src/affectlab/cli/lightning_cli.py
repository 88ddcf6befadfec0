"""AffectLabCLI: LightningCLI plus seed 000's command chains, run ids and the run store.

One parser builds everything from the config (``--model``, ``--data``, ``--trainer``, repeated
``--config``, dotted overrides); then ``commands`` (``fit-test``, ``fit-test-eval``, ...) run in order on
one trainer. ``affectlab fit ...`` is ``affectlab run --commands fit ...``.

Per run: the run is opened in the store (new, or reused by ``--run_id``), ``run_id: <id>`` is printed,
the config is logged (``config.yaml`` first, ``config_<timestamp>.yaml`` after), with the environment and,
for a new run, the flattened config as params. ``$ckpt_dir`` in any string value resolves to the run's
checkpoint folder. ``fit`` on a reused run resumes from its ``last.ckpt``; ``validate``/``test``/``predict``
use the run's ``best.ckpt`` unless told otherwise.

Under DDP Lightning re-launches this command once per extra process. Only global rank 0 creates the run and
writes to the store; it passes the run id to the others through ``AFFECTLAB_RUN_ID``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import Namespace
from lightning.pytorch import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, RichProgressBar
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import Logger, MLFlowLogger
from lightning.pytorch.plugins.io import CheckpointIO
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from affectlab.cli.evaluation import check_evaluation, run_evaluation
from affectlab.errors import ConfigError
from affectlab.runs.checkpoints import AtomicCheckpointIO
from affectlab.runs.determinism import EpochSeed
from affectlab.runs.environment import environment
from affectlab.runs.names import run_name
from affectlab.runs.store import RunStore

TRAINER_COMMANDS = ("fit", "validate", "test", "predict")
COMMANDS = (*TRAINER_COMMANDS, "eval")
# Arguments of each Trainer method that the CLI supplies itself, not the config.
_METHOD_SKIP = {
    "fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"},
    "validate": {"model", "dataloaders", "datamodule"},
    "test": {"model", "dataloaders", "datamodule"},
    "predict": {"model", "dataloaders", "datamodule", "return_predictions"},
}
TRAINER_DEFAULTS = {
    "max_epochs": 20,
    "deterministic": True,  # same config and seed, same numbers (a test checks equality)
    "log_every_n_steps": 10,
}
RUN_ID_ENV = "AFFECTLAB_RUN_ID"
SEED_DEFAULT = 127  # seed 000's default seed
BEST, LAST = "best.ckpt", "last.ckpt"


def parse_commands(text: str) -> list[str]:
    commands = [c for c in str(text).split("-") if c]
    unknown = [c for c in commands if c not in COMMANDS]
    if unknown or not commands:
        raise ConfigError(
            f"commands: {text!r} is not a '-'-joined chain of {', '.join(COMMANDS)}; e.g. --commands fit-test-eval"
        )
    return commands


def _as_list(value: Any) -> list:
    if value is None or isinstance(value, bool):
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _resolve_ckpt_dir(value: Any, ckpt_dir: Path) -> Any:
    """Replace ``$ckpt_dir`` in every string inside ``value`` (nested dicts, lists, namespaces)."""
    if isinstance(value, str):
        return value.replace("$ckpt_dir", str(ckpt_dir))
    if isinstance(value, Namespace):
        return Namespace(**{k: _resolve_ckpt_dir(v, ckpt_dir) for k, v in vars(value).items()})
    if isinstance(value, dict):
        return {k: _resolve_ckpt_dir(v, ckpt_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_ckpt_dir(v, ckpt_dir) for v in value]
    return value


def _flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(tree, dict) and tree:
        flat: dict[str, str] = {}
        for key, value in tree.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: str(tree)[:500]}


class AffectLabCLI(LightningCLI):
    def __init__(self, args: list[str]) -> None:
        self.argv = list(args)
        self.results: dict[str, dict[str, float]] = {}
        super().__init__(
            LightningModule,
            LightningDataModule,
            save_config_callback=None,  # the run store logs the config
            trainer_defaults=TRAINER_DEFAULTS,
            seed_everything_default=SEED_DEFAULT,
            parser_kwargs={"exit_on_error": False},
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=args,
            run=False,
            auto_configure_optimizers=False,  # methods configure their own (optimizer_init/lr_scheduler_init)
            load_from_checkpoint_support=False,  # checkpoints hold tensors only; configs live in the run store
        )

    # -- parsing ----------------------------------------------------------------------------------------------
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--commands", type=str, default="fit-test", help="'-'-joined chain of " + ", ".join(COMMANDS))
        parser.add_argument("--run_id", type=str | None, default=None, help="reuse this run: its config, checkpoints")
        parser.add_argument("--exp_name", type=str, default="affectlab", help="MLflow experiment of new runs")
        parser.add_argument("--run_name", type=str | None, default=None, help="name of a new run (default: generated)")
        parser.add_argument("--store", type=str | None, default=None, help="run store folder (default: ./runs)")
        parser.add_argument(
            "--additional_callbacks", type=list[Callback] | None, default=None,
            help="callbacks added to the default ones (trainer.callbacks would replace them)",
        )
        parser.add_argument("--eval_func", type=str | None, default=None, help="evaluation function run by 'eval'")
        parser.add_argument("--eval", type=dict | None, default=None, help="keyword arguments of eval_func")
        for command, skip in _METHOD_SKIP.items():
            parser.add_method_arguments(Trainer, command, command, skip=skip)
        # The CLI prints one results table at the end of the chain; Lightning's own would repeat it.
        parser.set_defaults({"validate.verbose": False, "test.verbose": False})

    def before_instantiate_classes(self) -> None:
        self.commands = parse_commands(self.config.commands)
        if "eval" in self.commands:
            check_evaluation(self.config.eval_func, self.config.eval or {})

    # -- the run ----------------------------------------------------------------------------------------------
    def _open_run(self) -> None:
        self.store = RunStore.resolve(self.config.store)
        seed = self.config.seed_everything
        if rank_zero_only.rank == 0:
            self.reused = self.config.run_id is not None
            if self.reused:
                self.run_id = self.store.get_run(self.config.run_id).info.run_id
            else:
                name = self.config.run_name or run_name(type(self.model).__name__, type(self.datamodule).__name__)
                self.run_id = self.store.create_run(self.config.exp_name, name, {"affectlab.seed": str(seed)})
            os.environ[RUN_ID_ENV] = self.run_id  # Lightning's DDP launcher copies the environment to its children
            self._log_run_contents(seed)
            run = self.store.get_run(self.run_id)
            print(f"run: {run.info.run_name} ({'reused' if self.reused else 'new'}) in {self.store.tracking_uri}")
            print(f"run_id: {self.run_id}", flush=True)
        else:
            self.reused = True
            self.run_id = os.environ.get(RUN_ID_ENV) or self.config.run_id
            if not self.run_id:
                raise ConfigError(
                    f"process of global rank {rank_zero_only.rank} has no run id: start distributed runs through "
                    f"Lightning's launcher (--trainer.strategy ddp) or set {RUN_ID_ENV}"
                )
        self.ckpt_dir = self.store.checkpoint_dir(self.run_id)

    def _log_run_contents(self, seed: Any) -> None:
        text = self.parser.dump(self.config, skip_none=False)  # before $ckpt_dir resolution: stays portable
        self.store.log_config(self.run_id, text)
        env = environment(seed, self.argv)
        client = self.store.client
        client.log_text(self.run_id, json.dumps(env, indent=2), "environment.json")
        tags = {"affectlab.command": env["command"][:5000], "affectlab.seed": str(seed)}
        if env["git"]:
            tags["mlflow.source.git.commit"] = env["git"]["commit"]
            tags["affectlab.git_dirty"] = str(env["git"]["dirty"])
        for key, value in tags.items():
            client.set_tag(self.run_id, key, value)
        if not self.reused:  # MLflow refuses to change a logged param; later configs are kept as files instead
            from mlflow.entities import Param

            params = [Param(k, v) for k, v in _flatten(yaml.safe_load(text)).items()]
            for start in range(0, len(params), 100):
                client.log_batch(self.run_id, params=params[start : start + 100])

    # -- the trainer ------------------------------------------------------------------------------------------
    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        self._open_run()
        for command in (*TRAINER_COMMANDS, "eval"):
            if self.config_init.get(command) is not None:
                self.config_init[command] = _resolve_ckpt_dir(self.config_init[command], self.ckpt_dir)
        config = {**self._get(self.config_init, "trainer", default={}), **kwargs}
        callbacks = _as_list(config.pop("callbacks", None))
        callbacks += self._default_callbacks(config)
        callbacks += _as_list(self.config_init.get("additional_callbacks"))
        self.mlflow_logger = MLFlowLogger(
            experiment_name=self.config.exp_name,
            tracking_uri=self.store.tracking_uri,
            run_id=self.run_id,
            log_model=not self.store.is_local(self.run_id) if rank_zero_only.rank == 0 else False,
        )
        loggers = [self.mlflow_logger] + [lg for lg in _as_list(config.pop("logger", None)) if isinstance(lg, Logger)]
        plugins = _as_list(config.pop("plugins", None))
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            plugins.append(AtomicCheckpointIO())
        return self.trainer_class(**config, callbacks=callbacks, logger=loggers, plugins=plugins)

    def _default_callbacks(self, trainer_config: dict[str, Any]) -> list[Callback]:
        callbacks: list[Callback] = [
            ModelCheckpoint(
                dirpath=self.ckpt_dir,
                filename=Path(BEST).stem,
                monitor=getattr(self.model, "monitor", None),
                mode=getattr(self.model, "monitor_mode", "min"),
                save_top_k=1,
                save_last=True,
                auto_insert_metric_name=False,
                enable_version_counter=False,
            ),
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
            default = self.ckpt_dir / (LAST if command == "fit" else BEST)
            if default.is_file():
                kwargs["ckpt_path"] = str(default)
                if rank_zero_only.rank == 0:
                    print(f"{command}: {'resuming from' if command == 'fit' else 'using'} {default}", flush=True)
        return kwargs

    def run_commands(self) -> dict[str, dict[str, float]]:
        for command in self.commands:
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
                self._log_predictions(output or [])
        return self.results

    def _load_best_weights(self) -> None:
        best = self.ckpt_dir / BEST
        if best.is_file():
            from affectlab.runs.checkpoints import load_checkpoint

            self.model.load_state_dict(load_checkpoint(best)["state_dict"])

    def _log_predictions(self, batches: list[dict[str, torch.Tensor]]) -> None:
        if not batches or not isinstance(batches[0], dict):
            return
        columns = {key: torch.cat([b[key] for b in batches]).cpu() for key in batches[0]}
        names = getattr(self.model, "class_names", None)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        header = [k for k in columns if columns[k].ndim == 1]
        probabilities = columns.get("probabilities")
        classes = names or ([str(i) for i in range(probabilities.shape[1])] if probabilities is not None else [])
        writer.writerow(header + [f"p_{c}" for c in classes] if probabilities is not None else header)
        for row in range(len(columns[header[0]])):
            values = [columns[k][row].item() for k in header]
            if probabilities is not None:
                values += [f"{p:.6f}" for p in probabilities[row].tolist()]
            writer.writerow(values)
        self.store.client.log_text(self.run_id, buffer.getvalue(), "predictions/predictions.csv")
        print(f"predict: {len(columns[header[0]])} predictions logged as predictions/predictions.csv", flush=True)


def run_cli(args: list[str]) -> AffectLabCLI:
    """Parse ``args``, build model, data and trainer, and run the command chain."""
    cli = AffectLabCLI(args)
    cli.run_commands()
    return cli
