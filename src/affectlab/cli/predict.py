"""``affectlab predict --run_id ID PATH...``: a trained face model on images, folders and videos.

Faces are found (MTCNN, or ``--detector NAME``), followed across a video's frames as tracks (``face_id``),
cropped, aligned and read by the run's model (``affectlab/inference.py``). Per input ``<out>/<name>.csv``
(``<name>``: its path below the inputs' common folder, so no two collide) in OpenFace 2.0's column names, or
with ``--combined`` one ``<out>/predictions.csv`` with a ``source`` column; per track of a video a timeline
``<out>/<name>_timeline_face<ID>.png``; ``<out>/report.txt``. A frame without a face is a row with ``success``
0 and zeros, as in OpenFace. docs/predict.md: columns, tracking, detectors.

Without PATHs, ``affectlab predict`` is the trainer's predict command on a data module (its options:
``affectlab run --commands predict --help``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from affectlab.errors import ConfigError


def is_face_prediction(args: list[str]) -> bool:
    """Whether ``affectlab predict ARGS`` is this command (paths given, or its ``--help``) or the trainer's."""
    return has_paths(args) or any(a in ("-h", "--help") for a in args)


def has_paths(args: list[str]) -> bool:
    """Whether ``args`` name input files: a word that is neither an option nor an option's value."""
    flags = {o for action in _parser()._actions if action.nargs == 0 for o in action.option_strings}
    previous = None
    for arg in args:
        if not arg.startswith("-") and (previous is None or not previous.startswith("--") or "=" in previous
                                        or previous in flags):
            return True
        previous = arg
    return False


DEFAULT_DETECT_EVERY = 5  # = affectlab.inference.DEFAULT_DETECT_EVERY (not imported: --help stays quick)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="affectlab predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="images, videos, or folders of them")
    parser.add_argument("--run_id", "--run-id", dest="run_id", required=True, help="a trained AU model's run")
    parser.add_argument("--out", default=None, help="output folder (default: runs/predictions/<run_id>)")
    parser.add_argument("--store", default=None, help="run store folder (default: ./runs)")
    parser.add_argument("--checkpoint", default="best.ckpt")
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    parser.add_argument("--fps", type=float, default=None, help="frames per second to read from videos (default: all)")
    parser.add_argument("--every", type=int, default=1, help="read one video frame in EVERY (ignored with --fps)")
    parser.add_argument("--min-face-size", "--min_face_size", dest="min_face_size", type=int, default=20,
                        help="smallest face side in pixels the detector keeps (MTCNN: smaller is slower)")
    parser.add_argument("--largest-only", "--largest_only", dest="largest_only", action="store_true",
                        help="keep only the largest face per frame")
    parser.add_argument("--crop-scale", "--crop_scale", dest="crop_scale", type=float, default=1.3,
                        help="crop side as a multiple of the face box (1.3 frames brows to chin)")
    parser.add_argument("--no-timeline", dest="timeline", action="store_false", help="skip the timeline plots")
    parser.add_argument("--detector", default="mtcnn",
                        help="face detector: mtcnn (default), yunet, or a class's dotted path (module.Class)")
    parser.add_argument("--detector-weights", "--detector_weights", dest="detector_weights", default=None,
                        help="local weights file of the detector (yunet: the .onnx file); never downloaded")
    parser.add_argument("--detect-every", "--detect_every", dest="detect_every", type=int,
                        default=DEFAULT_DETECT_EVERY,
                        help="detect faces on every K-th frame and track in between (1: every frame; default "
                             "%(default)s, chosen by benchmarks/predict.py)")
    parser.add_argument("--max-missed", "--max_missed", dest="max_missed", type=int, default=10,
                        help="frames a face track may go undetected before it is lost (default %(default)s)")
    parser.add_argument("--combined", action="store_true",
                        help="one <out>/predictions.csv for all inputs, with a source column, instead of one CSV each")
    parser.add_argument("--openface-columns", "--openface_columns", dest="openface_columns",
                        choices=["model", "all"], default="model",
                        help="all: OpenFace's AU columns in its order, empty for AUs the model does not predict")
    return parser


def predict_command(args: list[str]) -> int:
    options = _parser().parse_args(args)
    for flag, value in (("--every", options.every), ("--detect-every", options.detect_every)):
        if value < 1:
            raise ConfigError(f"{flag} {value}: give a positive number of frames")
    if options.max_missed < 0:
        raise ConfigError(f"--max-missed {options.max_missed}: give 0 or more frames")
    if options.fps is not None and options.fps <= 0:
        raise ConfigError(f"--fps {options.fps}: give a positive rate")

    from affectlab.cli.export import export_onnx
    from affectlab.data.media.face_detection import create_detector
    from affectlab.inference import FacePredictor, ModelBackend, head_specs, iterate_inputs
    from affectlab.runs.models import load_deployed_model

    detector = create_detector(options.detector, options.detector_weights, min_face_size=options.min_face_size,
                               largest_only=options.largest_only)
    model = load_deployed_model(options.run_id, options.store, options.checkpoint)
    data = (model.run_config.get("data") or {}).get("init_args") or {}
    model.image_size = int(data.get("image_size", getattr(model, "image_size", 64)))
    if not hasattr(model, "heads"):
        raise ConfigError(f"run {options.run_id} trained {type(model).__name__}, which has no face heads: predict "
                          "needs an AU model run (configs/experiment/au_synth.yaml and its variants)")
    out = Path(options.out or Path(options.store or "runs") / "predictions" / options.run_id)
    if options.backend == "onnx":
        with tempfile.TemporaryDirectory(prefix="affectlab-predict-") as work:  # the session keeps the graph
            onnx_path = Path(work) / f"{options.run_id}.onnx"
            export_onnx(model, onnx_path)
            backend = ModelBackend(model, onnx_path)
    else:
        backend = ModelBackend(model)
    predictor = FacePredictor(backend, detector, head_specs(model), crop_scale=options.crop_scale,
                              detect_every=options.detect_every, max_missed=options.max_missed,
                              openface_columns=options.openface_columns)
    files = list(iterate_inputs(options.paths))
    if not files:
        raise ConfigError(f"no images or videos in {options.paths}")
    reports = _predict_all(predictor, files, out, options)
    lines = [line for r in reports for line in r.summary(out / "predictions.csv")]
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    skipped = sum(r.skipped for r in reports)
    print(f"{len(reports) - skipped} of {len(reports)} files predicted with {predictor.backend.name}"
          + (f"; {skipped} skipped (see {out / 'report.txt'})" if skipped else ""))
    return 0 if skipped < len(reports) else 1


def _predict_all(predictor, files: list[Path], out: Path, options: argparse.Namespace) -> list:
    """``inference.predict_files`` with a files bar and a frames bar (rich)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from affectlab.inference import predict_files

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True) as progress:
        files_task, frames_task = progress.add_task("files", total=len(files)), progress.add_task("frames", total=None)

        def on_file(path: Path | None) -> None:
            if path is None:
                progress.advance(files_task)
            else:
                progress.update(files_task, description=f"predicting {path.name}")
                progress.reset(frames_task, total=None, description="frames")

        return predict_files(predictor, files, out, options.fps, options.every, options.timeline, options.combined,
                             on_file=on_file,
                             on_frames=lambda done, total: progress.update(frames_task, completed=done, total=total))
