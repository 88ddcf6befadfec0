"""``affectlab predict --run_id ID PATH...``: a trained face model on images, folders and videos.

Faces are found by MTCNN, cropped and aligned, and read by the run's model (``affectlab/inference.py``). Per
input file: ``<out>/<name>.csv`` with one row per face per frame in OpenFace 2.0's column names (``AU01_r``
intensity, ``AU01_c`` presence, plus ``AU01_p`` presence probability and ``emotion_<name>`` probabilities),
and for a video ``<out>/<name>_timeline.png``, the AU intensities over time. A frame without a face is a row
with ``success`` 0; a file that cannot be read is reported and skipped; ``<out>/report.txt`` lists both.

``--backend onnx`` exports the run's model (``affectlab export onnx``, checked against PyTorch) and runs it in
onnxruntime; ``--fps`` or ``--every`` subsample videos. (Without PATHs, ``affectlab predict`` is the trainer's
predict command on a data module.)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from affectlab.errors import ConfigError

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
                        help="smallest face side in pixels that MTCNN looks for")
    parser.add_argument("--largest-only", "--largest_only", dest="largest_only", action="store_true",
                        help="keep only the largest face per frame")
    parser.add_argument("--crop-scale", "--crop_scale", dest="crop_scale", type=float, default=1.3,
                        help="crop side as a multiple of the face box (1.3 frames brows to chin)")
    parser.add_argument("--no-timeline", dest="timeline", action="store_false", help="skip the timeline plots")
    return parser


def predict_command(args: list[str]) -> int:
    options = _parser().parse_args(args)
    if options.every < 1:
        raise ConfigError(f"--every {options.every}: give a positive number of frames")
    if options.fps is not None and options.fps <= 0:
        raise ConfigError(f"--fps {options.fps}: give a positive rate")

    from rich.progress import Progress

    from affectlab.cli.export import export_onnx
    from affectlab.data.media.face_detection import FaceDetector
    from affectlab.runs.models import load_deployed_model
    from affectlab.inference import FacePredictor, ModelBackend, head_specs, iterate_inputs

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
    predictor = FacePredictor(backend,
                              FaceDetector(min_face_size=options.min_face_size, largest_only=options.largest_only),
                              head_specs(model), crop_scale=options.crop_scale)
    files = list(iterate_inputs(options.paths))
    if not files:
        raise ConfigError(f"no images or videos in {options.paths}")
    reports = []
    with Progress(transient=True) as progress:
        task = progress.add_task("predicting", total=len(files))
        for path in files:
            progress.update(task, description=f"predicting {path.name}")
            reports.append(predictor.predict_file(path, out, options.fps, options.every, options.timeline))
            progress.advance(task)
    lines = []
    for r in reports:
        if r.skipped:
            lines.append(f"skipped {r.path}: {'; '.join(r.problems)}")
            continue
        rate = r.frames / r.seconds if r.seconds else 0.0
        lines.append(f"{r.path}: {r.frames} frames, {r.faces} faces, {r.frames_without_face} frames without a face, "
                     f"{rate:.1f} frames/s -> {r.csv}" + (f", {r.timeline}" if r.timeline else ""))
        lines += [f"  problem: {p}" for p in r.problems]
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    skipped = sum(r.skipped for r in reports)
    print(f"{len(reports) - skipped} of {len(reports)} files predicted with {predictor.backend.name}"
          + (f"; {skipped} skipped (see {out / 'report.txt'})" if skipped else ""))
    return 0 if skipped < len(reports) else 1
