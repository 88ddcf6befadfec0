"""The ``affectlab`` command.

    affectlab fit|validate|test|predict [OPTIONS]   one trainer command (= run --commands <command>)
    affectlab run [--commands fit-test-eval] ...    a chain of commands on one trainer (default fit-test)
    affectlab demo                                  AffectSynth + supervised baseline, prints results
    affectlab recipe VARIANT DATASET [--seed S]     pretrain a ConCluGen variant, probe it, print the table
    affectlab ablation [--seeds 0 1 2]              every variant x seed on AffectSynth -> docs/results.md
    affectlab export onnx --run_id ID [--out F]    the run's best model as ONNX, checked in onnxruntime
    affectlab predict --run_id ID PATH...           faces in images/videos -> OpenFace-style CSV + timeline
    affectlab ui [--store runs] [--port 5000]       the MLflow UI on the run store
    affectlab data synth --out DIR --num-clips N --seed S
    affectlab data export NAME --out DIR            AffectSynth in a real data set's layout (rafdb, meld, caer, ...)
    affectlab data check NAME --root DIR            validate a data set on disk
    affectlab data prepare NAME --raw DIR --out DIR a feature or video data set (faces cropped) -> a feature store

OPTIONS are LightningCLI's: --model, --data, --trainer, repeated --config, dotted overrides
(--model.init_args.fusion_dim 128), --print_config, plus --run_id, --commands, --eval_func, --eval,
--additional_callbacks, --store, --exp_name, --run_name. `affectlab run --help` lists them all.
"""

from __future__ import annotations

import argparse
import os
import sys

import yaml

from affectlab.errors import ConfigError, DataError

USAGE = __doc__


def _option_value(args: list[str], option: str) -> str | None:
    value = None
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(option + "="):
            value = arg.split("=", 1)[1]
    return value


def _run_id_in_configs(args: list[str]) -> str | None:
    from affectlab.cli.errors import config_files

    found = None
    for option, path in config_files(args):
        if option in ("--config", "-c"):
            content = yaml.safe_load(path.read_text()) or {}
            if isinstance(content, dict) and content.get("run_id"):
                found = str(content["run_id"])
    return found


def with_run_config(args: list[str]) -> list[str]:
    """If a run id is given, put that run's first config in front so every other option overrides it."""
    run_id = _option_value(args, "--run_id") or _run_id_in_configs(args)
    if not run_id or run_id in ("null", "None"):
        return args
    from affectlab.runs.store import RunStore

    first = RunStore.resolve(_option_value(args, "--store")).first_config(run_id)
    return ["--config", str(first), *args]


def _own_error(error: BaseException) -> ConfigError | DataError | None:
    """The ConfigError or DataError somewhere in ``error``'s chain of causes, if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, (ConfigError, DataError)):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def with_data_names(args: list[str]) -> list[str]:
    """``--data rafdb`` (a name, not a file) means the bundled ``configs/data/rafdb.yaml``; a data set whose
    reader does not exist yet stops with the layout it will read."""
    from affectlab.cli.configs import config_root
    from affectlab.data.registry import dataset_names, layout_error

    result = list(args)
    for i, arg in enumerate(result):
        name, index, prefix = None, None, ""
        if arg == "--data" and i + 1 < len(result):
            name, index = result[i + 1], i + 1
        elif arg.startswith("--data="):
            name, index, prefix = arg.split("=", 1)[1], i, "--data="
        if name is None or not name.replace("_", "").isalnum():
            continue  # a path, a class path or inline YAML
        path = config_root() / "data" / f"{name}.yaml"
        if path.is_file():
            result[index] = prefix + str(path)
        elif name in dataset_names():
            raise layout_error(name)
    return result


def run_command(args: list[str]) -> int:
    from argparse import ArgumentError

    from affectlab.cli.errors import check_yaml_files, explain_argument_error
    from affectlab.cli.lightning_cli import AffectLabCLI
    from affectlab.cli.results import print_results

    args = with_data_names(args)
    check_yaml_files(args)
    args = with_run_config(args)
    try:
        cli = AffectLabCLI(args)
    except (ArgumentError, ValueError, TypeError) as error:
        if os.environ.get("AFFECTLAB_DEBUG"):
            raise
        # jsonargparse wraps what a constructor raised; AffectLab's own errors already read well.
        cause = _own_error(error)
        if cause is not None:
            raise cause from None
        if isinstance(error, ArgumentError):
            raise ConfigError(explain_argument_error(str(error))) from None
        raise
    cli.run_commands()
    if cli.trainer.is_global_zero:
        print_results(cli.results, cli.run_id, cli.store.tracking_uri)
    return 0


def ui_command(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="affectlab ui", description="Start the MLflow UI on the run store.")
    parser.add_argument("--store", default=None, help="run store folder (default: MLFLOW_TRACKING_URI or ./runs)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    options = parser.parse_args(args)
    from affectlab.runs.store import RunStore

    store = RunStore.resolve(options.store)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store.tracking_uri,
               "--host", options.host, "--port", str(options.port)]
    if store.artifact_location:
        command += ["--default-artifact-root", store.artifact_location]
    print(f"MLflow UI on {store.tracking_uri}: http://{options.host}:{options.port}", flush=True)
    os.execv(sys.executable, command)  # become the server, so Ctrl-C and kill reach it directly


def data_command(args: list[str]) -> int:
    from affectlab.data.registry import MAX_ROWS

    parser = argparse.ArgumentParser(prog="affectlab data", description="Data set tools.")
    sub = parser.add_subparsers(dest="action", required=True)
    synth = sub.add_parser("synth", help="generate AffectSynth into a folder (memory-mapped, checksummed)")
    synth.add_argument("--out", required=True, help="folder to write")
    _synth_options(synth)
    export = sub.add_parser("export", help="write AffectSynth in a real data set's native layout (for readers' tests)")
    export.add_argument("name", help="the layout: rafdb, fer2013, expw, affectnet, caer_s (images), afe (photographs "
                        "and face boxes), meld, caer, voxceleb2 (videos)")
    export.add_argument("--out", required=True, help="folder to write the data set into")
    export.add_argument("--cache", default="data/affectsynth", help="where AffectSynth is generated (or found)")
    export.add_argument("--styles", nargs="+", default=None,
                        help="AffectSynth render styles to draw (default: all for images; 'shaded' for videos, the "
                        "style MTCNN finds most reliably)")
    export.add_argument("--frames-per-clip", dest="frames_per_clip", type=int, default=None,
                        help="videos: frames per clip, the clip played back and forth (default: its own frames)")
    _synth_options(export)
    prepare = sub.add_parser("prepare", help="convert a data set once into a feature store (resumable)")
    prepare.add_argument("name", help="mosei, mmsa, openface, pyfeat (features); meld, caer, voxceleb2 (videos)")
    prepare.add_argument("--raw", required=True, help="the data set as distributed (a folder, or the MMSA pickle)")
    prepare.add_argument("--out", required=True, help="the feature store's folder")
    prepare.add_argument("--shard-samples", dest="shard_samples", type=int, default=None,
                         help="samples per shard (default 4096 for features, 256 for videos)")
    prepare.add_argument("--max-rows", dest="max_rows", type=int, default=MAX_ROWS,
                         help="feature rows per sample, at most")
    video = prepare.add_argument_group("video data sets (data/video_prepare.py)")
    video.add_argument("--num-frames", dest="num_frames", type=int, help="frames per clip, evenly spaced (default 8)")
    video.add_argument("--fps", type=float, help="instead: frames per second of video, at most --max-frames")
    video.add_argument("--max-frames", dest="max_frames", type=int, help="with --fps: frames per clip at most (64)")
    video.add_argument("--size", type=int, help="side of the square face crops in pixels (64)")
    video.add_argument("--scale", type=float, help="crop side over the detected face's size (1.3)")
    video.add_argument("--no-face", dest="no_face", choices=("nearest", "frame", "skip"),
                       help="a frame without a face: the nearest frame's face box (default), the whole frame, or "
                       "dropped")
    video.add_argument("--min-face-size", dest="min_face_size", type=int, help="MTCNN's smallest face in pixels (20)")
    video.add_argument("--device", help="where MTCNN and --encoder run (cpu, cuda)")
    video.add_argument("--encoder", help="a timm model name: store its pooled features of each face crop instead of "
                       "the crops (random init unless --encoder-checkpoint; nothing is downloaded)")
    video.add_argument("--encoder-checkpoint", dest="encoder_checkpoint",
                       help="a local state dict for --encoder (torch.save(model.state_dict(), PATH))")
    video.add_argument("--encoder-batch", dest="encoder_batch", type=int, help="crops per encoder forward pass (64)")
    check = sub.add_parser("check", help="validate a data set on disk: counts, unreadable files, labels; exit 1 on errors")
    check.add_argument("name")
    check.add_argument("--root", required=True, help="the data set's folder")
    check.add_argument("--quick", action="store_true", help="open every file without decoding it (faster, misses "
                       "truncated files)")
    options = parser.parse_args(args)
    if options.action == "synth":
        from affectlab.data.synth import synth_command

        synth_command(
            out=options.out, num_clips=options.num_clips, seed=options.seed, num_identities=options.num_identities,
            num_frames=options.num_frames, image_size=options.image_size,
        )
        return 0
    if options.action == "export":
        from affectlab.data.registry import export_dataset

        counts = export_dataset(options.name, options.out, cache=options.cache, num_clips=options.num_clips,
                                seed=options.seed, num_identities=options.num_identities, num_frames=options.num_frames,
                                image_size=options.image_size, styles=options.styles,
                                frames_per_clip=options.frames_per_clip)
        print(f"wrote {options.name} to {options.out}: " + ", ".join(f"{split} {n}" for split, n in counts.items()))
        return 0
    if options.action == "prepare":
        from affectlab.data.registry import prepare_dataset

        video_keys = ("num_frames", "fps", "max_frames", "size", "scale", "no_face", "min_face_size", "device",
                      "encoder", "encoder_checkpoint", "encoder_batch")
        video = {key: getattr(options, key) for key in video_keys if getattr(options, key) is not None}
        prepare_dataset(options.name, options.raw, options.out, shard_samples=options.shard_samples,
                        max_rows=options.max_rows, **video)
        return 0
    from affectlab.data.registry import check_dataset

    return check_dataset(options.name, options.root, decode=not options.quick)


def _synth_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-clips", "--num_clips", dest="num_clips", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-identities", "--num_identities", dest="num_identities", type=int, default=60)
    parser.add_argument("--num-frames", "--num_frames", dest="num_frames", type=int, default=8)
    parser.add_argument("--image-size", "--image_size", dest="image_size", type=int, default=64)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] == "--version":
        from affectlab import __version__

        print(__version__)
        return 0
    command, rest = argv[0], argv[1:]
    from affectlab.cli.quiet import silence_noise

    silence_noise()
    try:
        if command == "predict":
            from affectlab.cli.predict import has_paths, predict_command

            if has_paths(rest):
                return predict_command(rest)
        if command in ("fit", "validate", "test", "predict"):
            if "--commands" in rest or any(a.startswith("--commands=") for a in rest):
                raise ConfigError(f"'affectlab {command}' runs {command} only; use 'affectlab run --commands ...' to chain")
            return run_command(["--commands", command, *rest])
        if command == "run":
            return run_command(rest)
        if command == "demo":
            from affectlab.cli.demo import demo_command

            return demo_command(rest)
        if command == "recipe":
            from affectlab.cli.recipe import recipe_command

            return recipe_command(rest)
        if command == "ablation":
            from affectlab.cli.ablation import ablation_command

            return ablation_command(rest)
        if command == "export":
            from affectlab.cli.export import export_command

            return export_command(rest)
        if command == "ui":
            return ui_command(rest)
        if command == "data":
            return data_command(rest)
        raise ConfigError(f"unknown command {command!r}; see 'affectlab --help'")
    except (ConfigError, DataError) as error:
        prefix = "configuration" if isinstance(error, ConfigError) else "data"
        print(f"affectlab: {prefix} error: {error}", file=sys.stderr)
        if not os.environ.get("AFFECTLAB_DEBUG"):
            print("(set AFFECTLAB_DEBUG=1 for the full trace)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
