"""Times ``affectlab predict``'s pipeline end to end on a video: per-frame detection against tracking.

The case: a video of ``--frames`` frames of ``--width`` x ``--height`` pixels (640 x 360 by default) in which
one rendered face (about a third of the frame's height) drifts and changes expression, encoded with x264. The
model is the shipped AU model's architecture (configs/model/au.yaml: resnet10t to stage 2, occurrence,
intensity and emotion heads, 64 x 64 crops) with random weights: speed does not depend on the weights, and no
run is needed. ``FacePredictor.predict_file`` (decode, detect, track, crop, model, CSV) runs with predict's
default settings (MTCNN, min face 20 px, PyTorch) in two modes: MTCNN on every frame (``--detect-every 1``)
and the default (MTCNN every ``DEFAULT_DETECT_EVERY`` frames, boxes interpolated between); it prints frames/s
of each (wall clock, and per CPU second of the process, which a machine shared with other jobs does not
distort), their ratio, and how far the tracked rows are from the per-frame ones (box IoU, presence
probabilities ``_p``, intensities ``_r``). Then the default mode on a video 4 times as long (per-frame cost
should stay flat), ``--sweep`` the same for k = 1, 2, 3, 5, 10, and the parts alone (decoding, MTCNN, the
model) in ms per frame. ``--threads 1`` (the default) pins PyTorch and onnxruntime to one thread, the set-up
of py-feat's published 9-13 frames/s. Run ``python benchmarks/predict.py [--sweep]``.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch



def make_video(path: Path, frames: int, width: int, height: int) -> Path:
    """A face drifting right and smiling over the clip (AffectSynth's renderer) in a flat scene."""
    from PIL import Image

    from affectlab.data.synth.faces import render_clip, sample_face, sample_pose
    from affectlab.data.media.video import write_video

    rng = np.random.default_rng(0)
    side = height // 3
    au = np.zeros((frames, 12), np.float32)
    au[:, 6] = 4.0 * np.sin(np.linspace(0, np.pi, frames))  # AU12 rises and falls
    faces = render_clip(sample_face(rng), au, sample_pose(rng, frames, amount=0.3), "shaded", side, rng)
    images = []
    for t, face in enumerate(faces):
        scene = Image.new("RGB", (width, height), (90, 120, 90))
        scene.paste(Image.fromarray(face), (int(width * 0.2 + t * width * 0.4 / frames), height // 3))
        images.append(np.asarray(scene))
    return write_video(path, images, fps=25)


def build_model():
    from affectlab.methods import AUModel
    from affectlab.nn.au_heads import EmotionHead, IntensityHead, OccurrenceHead

    model = AUModel("resnet10t", feature_stage=2,
                    heads=[OccurrenceHead, functools.partial(IntensityHead, mode="ordinal"), EmotionHead]).eval()
    model.image_size = 64
    return model


def rows_of(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open() as handle:
        return list(csv.DictReader(handle))


def agreement(reference: list[dict[str, str]], tracked: list[dict[str, str]]) -> str:
    """How far tracked rows are from per-frame detection's: least box IoU, largest |difference| of ``_p`` and ``_r``."""
    from affectlab.data.media.face_tracking import iou_matrix

    box = lambda r: [float(r["face_x"]), float(r["face_y"]), float(r["face_x"]) + float(r["face_width"]),  # noqa: E731
                     float(r["face_y"]) + float(r["face_height"])]
    pairs = [(a, b) for a, b in zip(reference, tracked) if a["success"] == b["success"] == "1"]
    ious = [iou_matrix([box(a)], [box(b)])[0, 0] for a, b in pairs]
    diff = lambda suffix: max(abs(float(a[k]) - float(b[k])) for a, b in pairs for k in a if k.endswith(suffix))  # noqa: E731
    mean_r = np.mean([abs(float(a[k]) - float(b[k])) for a, b in pairs for k in a if k.endswith("_r")])
    same = sum(a["success"] == b["success"] for a, b in zip(reference, tracked))
    return (f"success equal on {same}/{len(reference)} rows, box IoU min {min(ious):.3f} mean {np.mean(ious):.3f}, "
            f"max |d _p| {diff('_p'):.4f}, max |d _r| {diff('_r'):.2f} (mean {mean_r:.3f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for PyTorch and onnxruntime (0: all)")
    parser.add_argument("--min-face-size", type=int, default=20, help="MTCNN's smallest face (predict's default)")
    parser.add_argument("--sweep", action="store_true", help="also time detect-every k = 1, 2, 3, 5, 10")
    options = parser.parse_args()
    if options.threads:
        torch.set_num_threads(options.threads)

    from affectlab.cli.export import export_onnx
    from affectlab.data.media.face_detection import FaceDetector, align_crop
    from affectlab.data.media.video import VideoReader
    from affectlab.inference import DEFAULT_DETECT_EVERY, FacePredictor, ModelBackend, head_specs

    work = Path(tempfile.mkdtemp(prefix="affectlab-bench-predict-"))
    video = make_video(work / "face.mp4", options.frames, options.width, options.height)
    model = build_model()
    detector = FaceDetector(min_face_size=options.min_face_size)
    backend = ModelBackend(model, threads=options.threads)
    print(f"video: {options.frames} frames of {options.width}x{options.height}; threads: "
          f"{options.threads or torch.get_num_threads()}; MTCNN min face {options.min_face_size} px; PyTorch")

    def run(every: int, path: Path, name: str) -> tuple[float, Path]:
        predictor = FacePredictor(backend, detector, head_specs(model), detect_every=every)
        cpu = time.process_time()
        report = predictor.predict_file(path, work / name, timeline=False)
        cpu = time.process_time() - cpu  # all of the process's threads: one core's work when threads is 1
        print(f"  detect every {every:2d}: {report.frames / report.seconds:6.1f} frames/s wall, "
              f"{report.frames / cpu:6.1f} frames per CPU second, {cpu / report.frames * 1e3:5.1f} CPU ms per frame "
              f"({report.frames} frames, {report.detected_frames} detected, {report.tracks} track)")
        return report.frames / cpu, report.csv

    run(DEFAULT_DETECT_EVERY, video, "warm-up")  # first call: allocations, lazy imports
    print("end to end:")
    per_frame, reference = run(1, video, "per-frame")
    tracked, tracked_csv = run(DEFAULT_DETECT_EVERY, video, "tracked")
    print(f"ratio tracked (default, every {DEFAULT_DETECT_EVERY}) / per-frame detection (frames per CPU second): {tracked / per_frame:.2f}")
    print(f"tracked against per-frame: {agreement(rows_of(reference), rows_of(tracked_csv))}")
    long_video = make_video(work / "long.mp4", 4 * options.frames, options.width, options.height)
    print(f"per-frame cost with video length ({options.frames} and {4 * options.frames} frames, default mode):")
    run(DEFAULT_DETECT_EVERY, long_video, "long")
    if options.sweep:
        print("detect every k:")
        for every in (1, 2, 3, 5, 10):
            _, path = run(every, video, f"every-{every}")
            print(f"    {agreement(rows_of(reference), rows_of(path))}")

    # The parts alone, in ms per frame.
    onnx_path = work / "au.onnx"
    export_onnx(model, onnx_path)
    start = time.perf_counter()
    frames = [f.image for f in VideoReader(video)]
    decode = (time.perf_counter() - start) / len(frames)
    start = time.perf_counter()
    found = [faces for i in range(0, len(frames), 32) for faces in detector.detect(frames[i:i + 32])]
    detect = (time.perf_counter() - start) / len(frames)
    crops = np.stack([align_crop(image, faces[0], 64) for image, faces in zip(frames, found) if faces])
    batch = np.ascontiguousarray(crops.astype(np.float32).transpose(0, 3, 1, 2)[:, None] / 255.0)
    parts = [f"decode {decode * 1e3:.1f}", f"MTCNN {detect * 1e3:.1f}"]
    for name, backend in (("pytorch", ModelBackend(model, threads=options.threads)),
                          ("onnxruntime", ModelBackend(model, onnx_path, threads=options.threads))):
        backend(batch[:8])
        start = time.perf_counter()
        for i in range(0, len(batch), 32):
            backend(batch[i:i + 32])
        parts.append(f"model {name} {(time.perf_counter() - start) / len(frames) * 1e3:.2f}")
    print("ms per frame: " + ", ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
