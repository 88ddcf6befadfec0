"""The ``affectlab`` command.

    affectlab fit|validate|test|predict [OPTIONS]   one trainer command (= run --commands <command>)
    affectlab run [--commands fit-test-eval] ...    a chain of commands on one trainer (default fit-test)
    affectlab run --seeds 0 1 2 ...                 the same run per seed, one group; mean ± std of each metric
    affectlab repeat --times 3 ...                  the same run N times: identical weights and metrics? (exit 1 if not)
    affectlab demo                                  AffectSynth + supervised baseline, prints results
    affectlab recipe VARIANT DATASET [--seed S]     pretrain a ConCluGen variant, probe it, print the table
    affectlab ablation [--seeds 0 1 2]              every variant x seed on AffectSynth -> docs/results.md
    affectlab sweep --config SWEEP.yaml [OPTIONS]   an Optuna study of runs (grid, TPE, random); resumable, shared
    affectlab summarize SWEEP_OR_EXPERIMENT         a group's table (mean ± std per configuration) and pictures
    affectlab export onnx --run_id ID [--out F]    the run's best model as ONNX, checked in onnxruntime
    affectlab predict --run_id ID PATH...           faces in images/videos -> OpenFace-style CSV + timeline
    affectlab ui [--store runs] [--port 5000]       the MLflow UI on the run store
    affectlab submit [--launcher slurm|local] [--slurm.time 4:00:00 ...] COMMAND ...   a command as a Slurm job
    affectlab data synth --out DIR --num-clips N --seed S
    affectlab data export NAME --out DIR            AffectSynth in a real data set's layout (rafdb, meld, caer, ...)
    affectlab data check NAME --root DIR            validate a data set on disk
    affectlab data prepare NAME --raw DIR --out DIR a feature or video data set (faces cropped) -> a feature store
    affectlab pose estimate --estimator NAME VIDEO_OR_FOLDER... --out DIR   videos -> .pose files (setup NAME, list)

OPTIONS are LightningCLI's (--model, --data, --trainer, repeated --config, dotted overrides, --print_config) and --run_id,
--commands, --eval_func, --eval, --additional_callbacks, --store, --exp_name, --run_name, --dry_run: see `affectlab run --help`.
"""

from __future__ import annotations

import importlib
import os
import sys

from affectlab.errors import ConfigError, DataError, StorageError

USAGE = __doc__


def _own_error(error: BaseException) -> ConfigError | DataError | None:
    """The ConfigError or DataError somewhere in ``error``'s chain of causes, if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, (ConfigError, DataError)):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def explain_errors(prepared: list[str], build):
    """``build()``, with jsonargparse's errors made readable as ``affectlab run`` reports them."""
    from argparse import ArgumentError

    from affectlab.cli.errors import explain_argument_error

    try:
        return build()
    except (ArgumentError, ValueError, TypeError) as error:
        if os.environ.get("AFFECTLAB_DEBUG"):
            raise
        # jsonargparse wraps what a constructor raised; AffectLab's own errors already read well.
        cause = _own_error(error)
        if cause is not None:
            raise cause from None
        if isinstance(error, ArgumentError):
            parser = getattr(error, "affectlab_parser", None)
            raise ConfigError(explain_argument_error(str(error), prepared, parser)) from None
        raise


def run_command(args: list[str]) -> int:
    from affectlab.cli.argv import prepare_run_args
    from affectlab.cli.seeds import seeds_command, split_seeds

    args, seeds = split_seeds(args)  # --seeds S1 S2 ...: the same run per seed, as one group (cli/seeds.py)
    prepared = prepare_run_args(args)  # YAML and file errors stop here, before torch and Lightning are imported
    if seeds is not None:
        return seeds_command(prepared, seeds)
    from affectlab.cli.results import print_results
    from affectlab.runs.lightning_cli import AffectLabCLI

    cli = explain_errors(prepared, lambda: AffectLabCLI(prepared))
    cli.run_commands()
    if cli.trainer.is_global_zero:
        print_results(cli.results, cli.run_id, cli.store.tracking_uri, bool(cli.config.results_per_class))
    return 0


def trainer_command(command: str, args: list[str]) -> int:
    """``affectlab fit|validate|test|predict``: one trainer command; ``predict`` with paths is face prediction."""
    if command == "predict":
        from affectlab.cli.predict import is_face_prediction, predict_command

        if is_face_prediction(args):
            return predict_command(args)
    if "--commands" in args or any(a.startswith("--commands=") for a in args):
        raise ConfigError(f"'affectlab {command}' runs {command} only; use 'affectlab run --commands ...' to chain")
    # last, so that it overrides a config's own chain (an experiment's 'commands: fit-test'): a subcommand
    # means what it says, and the chain a config names runs only under 'affectlab run'
    return run_command([*args, "--commands", command])


# command -> (module, handler taking the remaining arguments); modules load on use, so --help stays quick.
COMMANDS = {
    "run": ("affectlab.cli.main", "run_command"),
    "demo": ("affectlab.cli.demo", "demo_command"),
    "repeat": ("affectlab.cli.repeat", "repeat_command"),
    "recipe": ("affectlab.cli.recipe", "recipe_command"),
    "ablation": ("affectlab.cli.ablation", "ablation_command"),
    "sweep": ("affectlab.cli.sweep", "sweep_command"),
    "summarize": ("affectlab.cli.summarize", "summarize_command"),
    "export": ("affectlab.cli.export", "export_command"),
    "ui": ("affectlab.cli.ui", "ui_command"), "submit": ("affectlab.cli.submit", "submit_command"),
    "data": ("affectlab.cli.data", "data_command"), "pose": ("affectlab.cli.pose", "pose_command"),
}
TRAINER_COMMANDS = ("fit", "validate", "test", "predict")


def dispatch(command: str, args: list[str]) -> int:
    if command in TRAINER_COMMANDS:
        return trainer_command(command, args)
    if command not in COMMANDS:
        raise ConfigError(f"unknown command {command!r}; see 'affectlab --help'")
    module, handler = COMMANDS[command]
    return getattr(importlib.import_module(module), handler)(args)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] == "--version":
        from affectlab import __version__

        print(__version__)
        return 0
    from affectlab.cli.quiet import silence_noise

    silence_noise()
    try:
        return dispatch(argv[0], argv[1:])
    except (ConfigError, DataError) as error:
        prefix = "storage" if isinstance(error, StorageError) else "configuration" if isinstance(error, ConfigError) else "data"
        print(f"affectlab: {prefix} error: {error}", file=sys.stderr)
        if not os.environ.get("AFFECTLAB_DEBUG"):
            print("(set AFFECTLAB_DEBUG=1 for the full trace)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
