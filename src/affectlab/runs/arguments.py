"""AffectLabCLI's own options and command chain: what ``--commands``, ``--run_id``, ``--eval_func`` and the
per-command sections (``--fit.ckpt_path``, ..., ``--tune.*``) accept, and ``$ckpt_dir`` resolution in their values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.tuner import Tuner

from affectlab.errors import ConfigError

TRAINER_COMMANDS = ("fit", "validate", "test", "predict")
COMMANDS = (*TRAINER_COMMANDS, "eval", "tune", "kfold")  # tune: runs/tune.py; kfold: runs/kfold.py
# Arguments of each Trainer method that the CLI supplies itself, not the config.
_METHOD_SKIP = {
    "fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"},
    "validate": {"model", "dataloaders", "datamodule"},
    "test": {"model", "dataloaders", "datamodule"},
    "predict": {"model", "dataloaders", "datamodule", "return_predictions"},
}
# Tuner arguments the chain supplies itself, or that would make its choice miss the fit that follows (runs/tune.py).
_TUNER_SKIP = {"model", "train_dataloaders", "val_dataloaders", "dataloaders", "datamodule", "method"}
TRAINER_DEFAULTS = {
    "max_epochs": 20,
    "deterministic": True,  # same config and seed, same numbers (a test checks equality)
    "log_every_n_steps": 10,
}


def parse_commands(text: str) -> list[str]:
    commands = [c for c in str(text).split("-") if c]
    unknown = [c for c in commands if c not in COMMANDS]
    if unknown or not commands:
        raise ConfigError(
            f"commands: {text!r} is not a '-'-joined chain of {', '.join(COMMANDS)}; e.g. --commands fit-test-eval"
        )
    from affectlab.runs.kfold import fold_chain
    from affectlab.runs.tune import check_tune_chain

    check_tune_chain(fold_chain(commands) if "kfold" in commands else commands)
    return commands


def as_list(value: Any) -> list:
    if value is None or isinstance(value, bool):
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def resolve_ckpt_dir(value: Any, ckpt_dir: Path) -> Any:
    """Replace ``$ckpt_dir`` in every string inside ``value`` (nested dicts, lists, namespaces)."""
    if isinstance(value, str):
        return value.replace("$ckpt_dir", str(ckpt_dir))
    if isinstance(value, Namespace):
        return Namespace(**{k: resolve_ckpt_dir(v, ckpt_dir) for k, v in vars(value).items()})
    if isinstance(value, dict):
        return {k: resolve_ckpt_dir(v, ckpt_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_ckpt_dir(v, ckpt_dir) for v in value]
    return value


def command_line_allowlist(args: list[str]) -> list[str]:
    """The packages ``--import_allowlist`` names on the command line (``a,b`` or ``[a, b]``). Only the command
    line counts: a value in a config file, a stored run's ``config.yaml`` included, widens nothing."""
    import yaml

    values = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--import_allowlist"]
    values += [arg.split("=", 1)[1] for arg in args if arg.startswith("--import_allowlist=")]
    packages: list[str] = []
    for value in values:
        parsed = yaml.safe_load(value) if value.strip().startswith("[") else value.split(",")
        packages += [str(p).strip() for p in parsed or [] if str(p).strip()]
    return packages


def add_run_arguments(parser) -> None:
    """The options AffectLabCLI adds to LightningCLI's: the run, the command chain, each command's arguments."""
    parser.add_argument("--commands", type=str, default="fit-test", help="'-'-joined chain of " + ", ".join(COMMANDS))
    parser.add_argument("--run_id", type=str | None, default=None, help="reuse this run: its config, checkpoints")
    parser.add_argument("--exp_name", type=str, default="affectlab", help="MLflow experiment of new runs")
    parser.add_argument("--run_name", type=str | None, default=None, help="name of a new run (default: generated)")
    parser.add_argument("--store", type=str | None, default=None, help="run store folder (default: ./runs)")
    parser.add_argument(
        "--parent_run_id", type=str | None, default=None,
        help="make a new run a child of this one (a sweep's trial, a seed of --seeds, a fold); MLflow's UI nests it",
    )
    parser.add_argument("--run_tags", type=dict[str, str] | None, default=None,
                        help="tags set on a new run, e.g. {affectlab.trial: '3'} (sweeps and repeats use them)")
    parser.add_argument(
        "--additional_callbacks", type=list[Callback] | None, default=None,
        help="callbacks added to the default ones (trainer.callbacks would replace them)",
    )
    parser.add_argument(
        "--import_allowlist", type=list[str] | str | None, default=None,
        help="packages besides torch, torchvision, timm, lightning and affectlab whose classes a config may name "
        "(command line only: a config file cannot widen its own permissions)",
    )
    parser.add_argument("--results_per_class", type=bool, default=False,
                        help="print per-class and per-AU rows in the results table (they are always in the run store)")
    parser.add_argument(
        "--checkpoint_every_n_steps", type=int | None, default=None,
        help="also write last.ckpt every N training steps, for long epochs (it is written at every epoch end anyway)",
    )
    parser.add_argument(
        "--dry_run", type=bool, default=False,
        help="every command on 2 batches of each split, 1 epoch, CPU, in experiment <exp_name>-dry (runs/dry_run.py); "
             "a bare --dry_run means true",
    )
    parser.add_argument("--eval_func", type=str | None, default=None, help="evaluation function run by 'eval'")
    parser.add_argument("--eval", type=dict | None, default=None, help="keyword arguments of eval_func")
    for command, skip in _METHOD_SKIP.items():
        parser.add_method_arguments(Trainer, command, command, skip=skip)
    # tune (runs/tune.py): which Tuner steps run, each one's arguments typed from its signature
    parser.add_argument("--tune.lr_find", type=bool, default=True,
                        help="tune: run Lightning's learning-rate finder and fit with its suggestion")
    parser.add_argument("--tune.scale_batch_size", type=bool, default=False,
                        help="tune: grow the data module's batch_size until memory (or the data) runs out")
    parser.add_method_arguments(Tuner, "lr_find", "tune.lr_find_kwargs", skip=_TUNER_SKIP | {"update_attr", "attr_name"})
    parser.add_method_arguments(Tuner, "scale_batch_size", "tune.scale_batch_size_kwargs",
                                skip=_TUNER_SKIP | {"batch_arg_name"})
    # The CLI prints one results table at the end of the chain; Lightning's own would repeat it.
    parser.set_defaults({"validate.verbose": False, "test.verbose": False})
